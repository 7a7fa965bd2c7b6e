package main

import (
	"fmt"
	"slices"
	"strings"

	"github.com/enginekit/enginekit/examples/echo"
	"github.com/enginekit/enginekit/examples/ordering"
	"github.com/enginekit/enginekit/examples/storage"
	"github.com/enginekit/enginekit/genserver"
	"github.com/enginekit/enginekit/node"
	"github.com/enginekit/enginekit/payload"
)

// The engines `enginekit node --engines` can run are the example engines of
// examples/: echo (examples/echo), kv (examples/storage) and ordering
// (examples/ordering). The command adds nothing to them but a name.

// exampleEngine is one engine `enginekit node --engines` can run.
type exampleEngine struct {
	name    string
	summary string
	// engine makes the node.Engine; NewFactory is called once per node,
	// so what the factory closes over (the kv engine's snapshot store)
	// outlives each incarnation.
	engine func() node.Engine
}

func exampleEngines() []exampleEngine {
	return []exampleEngine{
		{"echo", "examples/echo: answers Echo calls with themselves, counts Echo casts, answers Count", func() node.Engine {
			return node.Engine{Name: "echo", Factory: echo.New}
		}},
		{"kv", "examples/storage: Put, Get (optionally waiting for the key), Delete; snapshots in memory,\nso the data survives a crash of the engine but not a restart of the node", func() node.Engine {
			return node.Engine{Name: "kv", NewFactory: func(*node.Node) (func() genserver.Server, error) {
				return storage.New(storage.Config{Snapshots: storage.NewMemoryStore()}), nil
			}}
		}},
		{"ordering", "examples/ordering: Submit gives a transaction the next height; Read answers once it is ordered\n(a deferred reply); each ordering is an event on the node's broker, which engines on\nother nodes can subscribe to", func() node.Engine {
			return node.Engine{Name: "ordering", NewFactory: func(n *node.Node) (func() genserver.Server, error) {
				return ordering.New(ordering.Config{Broker: n.Broker()}), nil
			}}
		}},
		{"relay", "makes a call from its node, to any engine the node knows: its own, a --peer's or a\ncluster member's ('enginekit call --via RELAY --to ENGINE')", relayEngine},
	}
}

func exampleEngineNames() []string {
	var names []string
	for _, e := range exampleEngines() {
		names = append(names, e.name)
	}
	return names
}

// parseEngines parses the --engines list: comma-separated example engine
// names, each at most once; "" is no engine.
func parseEngines(list string) ([]exampleEngine, error) {
	var out []exampleEngine
	if strings.TrimSpace(list) == "" {
		return nil, nil
	}
	all := exampleEngines()
	for _, name := range strings.Split(list, ",") {
		name = strings.TrimSpace(name)
		i := slices.IndexFunc(all, func(e exampleEngine) bool { return e.name == name })
		if i < 0 {
			return nil, fmt.Errorf("%w: --engines: no built-in engine %q (have %s)", errUsage, name, strings.Join(exampleEngineNames(), ", "))
		}
		if slices.ContainsFunc(out, func(e exampleEngine) bool { return e.name == name }) {
			return nil, fmt.Errorf("%w: --engines: %s given twice", errUsage, name)
		}
		out = append(out, all[i])
	}
	return out, nil
}

// nodeEngines turns parsed --engines into the node's engines.
func nodeEngines(es []exampleEngine) []node.Engine {
	out := make([]node.Engine, len(es))
	for i, e := range es {
		out[i] = e.engine()
	}
	return out
}

// builtinRegister names the message types of the example engines. Every
// enginekit node and client registers the same, so they understand each
// other.
var builtinRegister = []func(*payload.Registry) error{echo.Register, storage.Register, ordering.Register, registerRelay}
