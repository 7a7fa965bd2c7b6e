package transport

import (
	"fmt"
	"maps"
	"slices"

	"github.com/enginekit/enginekit/genserver"
	"github.com/enginekit/enginekit/keyholder"
	"github.com/enginekit/enginekit/wire"
)

// epochCheck checks core.epoch's promise on the scenarios (runScenario
// calls check after every step): while a node's epoch keeps its value,
// what message decides for a cast and what outMessage decides stay the
// same, for every connection, source, destination and caller the
// scenario has used so far. The driver reuses such decisions without
// stepping the core (deliverCache, proxy.out).
type epochCheck struct {
	addrs map[keyholder.Address]struct{}
	last  map[string]epochSnap // by node
}

type epochSnap struct {
	epoch     uint64
	decisions map[string]string
}

func (e *epochCheck) check(n *simNet) {
	if e.addrs == nil {
		e.addrs = map[keyholder.Address]struct{}{}
		e.last = map[string]epochSnap{}
	}
	for name := range n.engines {
		e.addrs[n.engineAddr(name)] = struct{}{}
	}
	for _, nd := range n.nodes {
		e.addrs[nd.router] = struct{}{}
	}
	for name, nd := range n.nodes {
		snap := epochSnap{epoch: nd.core.epoch.Load(), decisions: e.decisions(nd)}
		if old, ok := e.last[name]; ok && old.epoch == snap.epoch {
			for k, v := range snap.decisions {
				if w, ok := old.decisions[k]; ok && w != v {
					n.t.Fatalf("%s: node %s: epoch %d unchanged, but %s went from %q to %q", n.where, name, snap.epoch, k, w, v)
				}
			}
		}
		e.last[name] = snap
	}
}

// decisions asks nd's core for every decision the epoch covers, leaving
// its counts as they were (message and outMessage change nothing else for
// a cast).
func (e *epochCheck) decisions(nd *simNode) map[string]string {
	c := nd.core
	drops := c.drops
	defer func() { c.drops = drops }()
	addrs := slices.SortedFunc(maps.Keys(e.addrs), func(a, b keyholder.Address) int { return slices.Compare(a[:], b[:]) })
	callers := append([]genserver.PID{{}}, slices.Collect(maps.Values(nd.pids))...)
	out := map[string]string{}
	for id := range c.conns {
		for _, src := range addrs {
			for _, dst := range addrs {
				acts := c.message(nil, id, wire.Cast, src, dst, 0)
				out[fmt.Sprintf("message %d %x %x", id, src[:4], dst[:4])] = fmt.Sprint(summarize(acts))
			}
		}
	}
	for _, engine := range addrs {
		for _, caller := range callers {
			acts := c.outMessage(nil, wire.Cast, engine, caller)
			out[fmt.Sprintf("outMessage %x %v", engine[:4], caller)] = fmt.Sprint(summarize(acts))
		}
	}
	return out
}

func summarize(acts []action) []string {
	var s []string
	for _, a := range acts {
		s = append(s, fmt.Sprintf("%d %v %v %v %x %x", a.kind, a.handle, a.pid, a.dst, a.env.Src[:4], a.env.Dst[:4]))
	}
	return s
}
