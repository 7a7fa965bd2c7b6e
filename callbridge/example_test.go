package callbridge_test

import (
	"context"
	"fmt"

	"github.com/enginekit/enginekit/callbridge"
	"github.com/enginekit/enginekit/genserver"
)

// A call crosses "the wire" here as a function call: the sending side
// registers a call replier, the receiving side runs a dummy caller, and the
// reply comes back through Resolve.
func Example() {
	ctx := context.Background()
	remote := genserver.NewSystem(genserver.Config{Name: "remote"})
	defer remote.Stop(ctx)
	_, _ = remote.Spawn(func() genserver.Server { return &deferring{} }, genserver.WithName("engine"))
	in := callbridge.NewIncoming(remote)
	defer in.Close()

	local := genserver.NewSystem(genserver.Config{Name: "local"})
	defer local.Stop(ctx)
	proxy, _ := local.Spawn(func() genserver.Server {
		return &relay{pending: callbridge.NewPending(), in: in}
	})
	v, err := local.Call(ctx, proxy, "who")
	fmt.Println(v, err)
	// Output:
	// ek1caller <nil>
}

// relay plays the proxy and the network at once.
type relay struct {
	pending *callbridge.Pending
	in      *callbridge.Incoming
}

func (r *relay) HandleCall(_ *genserver.Process, from genserver.From, req any) (any, error) {
	ref, err := r.pending.Add(from, [32]byte{})
	if err != nil {
		return nil, err
	}
	r.in.Start(callbridge.Call{From: "ek1caller", Dest: genserver.Name("engine"), Req: req}, func(v any, err error) {
		wire := callbridge.EncodeError(err) // what would travel in the reply envelope
		r.pending.Resolve(ref, [32]byte{}, v, wire.Err())
	})
	return genserver.NoReply, nil
}
func (r *relay) HandleCast(*genserver.Process, any) {}
