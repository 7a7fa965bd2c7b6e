package testkit_test

import (
	"context"
	"testing"

	"github.com/enginekit/enginekit/genserver"
	"github.com/enginekit/enginekit/node"
	"github.com/enginekit/enginekit/payload"
	"github.com/enginekit/enginekit/testkit"
)

type Greet struct{ Name string } // the request; every node registers it
type greeter struct{}            // the engine under test

func (greeter) HandleCall(_ *genserver.Process, _ genserver.From, req any) (any, error) {
	return "hello, " + req.(Greet).Name, nil
}
func (greeter) HandleCast(*genserver.Process, any) {}

func TestGreeter(t *testing.T) { testGreeter(t) }

// testGreeter: node 1 calls node 0's greeter, before a cut and after the heal.
func testGreeter(t testkit.TB) {
	c := testkit.Start(t, testkit.Options{
		Register: []func(*payload.Registry) error{func(r *payload.Registry) error { return payload.Register[Greet](r, "greet") }},
		Engines:  []node.Engine{{Name: "greeter", Factory: func() genserver.Server { return greeter{} }}},
	})
	greet := func() {
		got, err := genserver.Call[string](context.Background(), c.Nodes[1].System(), c.Nodes[0].Dest("greeter"), Greet{"bob"})
		if err != nil || got != "hello, bob" {
			t.Fatalf("greet: %q, %v", got, err)
		}
	}
	greet()
	c.Cut(t, 0, 1)  // returns once both ends saw the link go down
	c.Heal(t, 0, 1) // returns once both ends learned each other's engines again
	greet()
}
