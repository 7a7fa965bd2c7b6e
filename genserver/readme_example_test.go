package genserver_test

// The README's quick start, kept here so that it compiles and runs as shown.

import (
	"context"
	"fmt"

	"github.com/enginekit/enginekit/genserver"
)

// Tally keeps its state in its own fields; each incarnation gets a fresh value.
type Tally struct{ n int }

type Total struct{}

func (t *Tally) HandleCall(p *genserver.Process, from genserver.From, req any) (any, error) {
	return t.n, nil
}

func (t *Tally) HandleCast(p *genserver.Process, msg any) { t.n += msg.(int) }

func Example_readmeQuickStart() {
	ctx := context.Background()
	sys := genserver.NewSystem(genserver.Config{Name: "alice"})
	defer sys.Stop(ctx)

	sys.Spawn(func() genserver.Server { return &Tally{} }, genserver.WithName("tally"))
	sys.Cast(genserver.Name("tally"), 5)
	n, err := genserver.Call[int](ctx, sys, genserver.Name("tally"), Total{})
	fmt.Println(n, err)
	// Output: 5 <nil>
}
