package supervisor_test

// The README's supervised server, kept here so that it compiles and runs as
// shown.

import (
	"context"
	"fmt"

	"github.com/enginekit/enginekit/genserver"
	"github.com/enginekit/enginekit/supervisor"
	"github.com/rs/zerolog"
	"github.com/thejerf/suture/v4"
)

type hits struct{ n int }

func (h *hits) HandleCall(*genserver.Process, genserver.From, any) (any, error) { return h.n, nil }
func (h *hits) HandleCast(_ *genserver.Process, msg any)                        { h.n += msg.(int) }

func Example_readmeSupervised() {
	sys := genserver.NewSystem(genserver.Config{Name: "app"})
	newHits := func() genserver.Server { return &hits{} }
	sup, err := supervisor.New(supervisor.Spec{
		Name:     "app",
		Strategy: supervisor.OneForOne,
		Children: []supervisor.ChildSpec{{
			ID:    "hits",
			Start: func() suture.Service { return sys.Service(newHits, genserver.WithName("hits")) },
		}},
		EventHook: supervisor.LogEvents(zerolog.Nop()), // your logger here
	})
	if err != nil {
		panic(err)
	}

	// StartReady runs the supervisor in the background and returns once
	// every child has started (a server's Init has returned and its name is
	// registered): only then is it safe to cast.
	stop, err := supervisor.StartReady(context.Background(), sup)
	if err != nil {
		panic(err) // a child failed to start
	}

	sys.Cast(genserver.Name("hits"), 2)
	n, err := genserver.Call[int](context.Background(), sys, genserver.Name("hits"), "get")
	fmt.Println(n, err)

	// Stop in the reverse order of start: the supervisor first (it stops
	// its children, newest first, each within its Shutdown time), then the
	// System, which would otherwise pull the children out from under their
	// supervisor.
	fmt.Println("supervisor:", stop())
	fmt.Println("system:", sys.Stop(context.Background()))
	// Output:
	// 2 <nil>
	// supervisor: <nil>
	// system: <nil>
}
