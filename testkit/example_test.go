package testkit_test

import (
	"context"
	"fmt"
	"testing"

	"github.com/enginekit/enginekit/genserver"
	"github.com/enginekit/enginekit/node"
	"github.com/enginekit/enginekit/testkit"
	"github.com/enginekit/enginekit/wire"
)

// Greet is the request of the engine under test; every node registers it.
type Greet struct{ Name string }

type greeter struct{}

func (greeter) HandleCall(_ *genserver.Process, _ genserver.From, req any) (any, error) {
	return "hello, " + req.(Greet).Name, nil
}
func (greeter) HandleCast(*genserver.Process, any) {}

// testGreeter tests the greeter across two nodes: node 1 calls node 0's
// greeter, then again after the link between them was cut and healed.
func testGreeter(t testkit.TB) {
	c := testkit.Start(t, testkit.Options{
		Register: []func(*wire.Registry) error{func(r *wire.Registry) error { return wire.Register[Greet](r, "greet") }},
		Engines:  []node.Engine{{Name: "greeter", Factory: func() genserver.Server { return greeter{} }}},
	})
	for range 2 {
		got, err := genserver.Call[string](context.Background(), c.Nodes[1].System(), c.Nodes[0].Dest("greeter"), Greet{"bob"})
		fmt.Println(got, err)
		c.Cut(t, 0, 1)
		c.Heal(t, 0, 1)
	}
}

func TestGreeter(t *testing.T) { testGreeter(t) }

func Example() {
	t := &exampleT{} // in a test file: func TestGreeter(t *testing.T) { testGreeter(t) }
	testGreeter(t)
	t.cleanup()
	// Output:
	// hello, bob <nil>
	// hello, bob <nil>
}
