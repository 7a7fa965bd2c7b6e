package transport_test

import (
	"context"
	"fmt"

	"github.com/enginekit/enginekit/genserver"
	"github.com/enginekit/enginekit/keyholder"
	"github.com/enginekit/enginekit/netconn"
	"github.com/enginekit/enginekit/payload"
	"github.com/enginekit/enginekit/transport"
)

type Greet struct{ Name string }

type greeter struct{}

func (greeter) HandleCall(_ *genserver.Process, from genserver.From, req any) (any, error) {
	return "hello, " + req.(Greet).Name, nil
}
func (greeter) HandleCast(*genserver.Process, any) {}

// Two nodes in one process over loopback TCP: an engine on one is called
// from the other with the same code as a local call.
func Example() {
	ctx := context.Background()
	learned := make(chan keyholder.Address, 1)
	node := func(name string) (*genserver.System, *keyholder.Keyholder, *transport.Transport) {
		sys := genserver.NewSystem(genserver.Config{Name: name})
		kh, _ := keyholder.New(keyholder.Config{})
		reg, _ := payload.NewRegistry(payload.Limits{})
		_ = payload.Register[Greet](reg, "example.Greet")
		tr, err := transport.New(transport.Config{
			System: sys, Keyholder: kh, Registry: reg, Auth: netconn.MACs,
			OnLearn: func(e, _ keyholder.Address) { learned <- e },
		})
		if err != nil {
			panic(err)
		}
		if err := tr.Start(); err != nil {
			panic(err)
		}
		return sys, kh, tr
	}
	aliceSys, aliceKeys, alice := node("alice")
	bobSys, _, bob := node("bob")
	defer func() {
		bob.Close()
		alice.Close()
		bobSys.Stop(ctx)
		aliceSys.Stop(ctx)
	}()

	greeterAddr, _, _ := alice.SpawnEngine("greeter", func() genserver.Server { return greeter{} })
	at, _ := alice.Listen(ctx, "tcp://127.0.0.1:0", netconn.AcceptAny)
	_ = bob.Connect(ctx, "tcp://"+at.String(), aliceKeys.Router())
	fmt.Println("bob learned the greeter:", <-learned == greeterAddr)

	reply, err := genserver.Call[string](ctx, bobSys, genserver.Name(greeterAddr.String()), Greet{"bob"})
	fmt.Println(reply, err)
	// Output:
	// bob learned the greeter: true
	// hello, bob <nil>
}
