package main

import (
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/enginekit/enginekit/events"
	"github.com/enginekit/enginekit/examples/echo"
	"github.com/enginekit/enginekit/examples/ordering"
	"github.com/enginekit/enginekit/examples/storage"
	"github.com/enginekit/enginekit/genserver"
	"github.com/enginekit/enginekit/wire"
)

// builtin is an engine that `enginekit node --engines` can run.
type builtin struct {
	name    string
	summary string
	// factory returns the engine's genserver factory. It is called once per
	// node, so what the factory closes over (the kv engine's snapshot
	// store) outlives each incarnation.
	factory func(env nodeEnv) func() genserver.Server
}

// nodeEnv is what a node offers its built-in engines.
type nodeEnv struct {
	broker *events.Broker // the node's event broker, shared with the transport
}

func builtinEngines() []builtin {
	return []builtin{
		{"echo", "examples/echo: answers Echo calls with themselves, counts Echo casts, answers Count", func(nodeEnv) func() genserver.Server {
			return echo.New
		}},
		{"kv", "examples/storage: Put, Get (optionally waiting for the key), Delete; snapshots in memory,\nso the data survives a crash of the engine but not a restart of the node", func(nodeEnv) func() genserver.Server {
			return storage.New(storage.Config{Snapshots: storage.NewMemoryStore()})
		}},
		{"ordering", "examples/ordering: Submit gives a transaction the next height; Read answers once it is ordered\n(a deferred reply); each ordering is an event on the node's broker, which engines on\nother nodes can subscribe to", func(env nodeEnv) func() genserver.Server {
			return ordering.New(ordering.Config{Broker: env.broker})
		}},
	}
}

func builtinNames() []string {
	var names []string
	for _, b := range builtinEngines() {
		names = append(names, b.name)
	}
	return names
}

// parseEngines parses the --engines list: comma-separated built-in names,
// each at most once; "" is no engine.
func parseEngines(list string) ([]builtin, error) {
	var out []builtin
	if strings.TrimSpace(list) == "" {
		return nil, nil
	}
	all := builtinEngines()
	for _, name := range strings.Split(list, ",") {
		name = strings.TrimSpace(name)
		i := slices.IndexFunc(all, func(b builtin) bool { return b.name == name })
		if i < 0 {
			return nil, fmt.Errorf("%w: --engines: no built-in engine %q (have %s)", errUsage, name, strings.Join(builtinNames(), ", "))
		}
		if slices.ContainsFunc(out, func(b builtin) bool { return b.name == name }) {
			return nil, fmt.Errorf("%w: --engines: %s given twice", errUsage, name)
		}
		out = append(out, all[i])
	}
	return out, nil
}

// builtinRegistry names the message types of the built-in engines. Every
// enginekit node and client registers the same, so they understand each
// other.
func builtinRegistry() (*wire.Registry, error) {
	reg, err := wire.NewRegistry(wire.Limits{})
	if err != nil {
		return nil, err
	}
	if err := errors.Join(echo.Register(reg), storage.Register(reg), ordering.Register(reg)); err != nil {
		return nil, err
	}
	return reg, nil
}
