package node_test

import (
	"context"
	"fmt"

	"github.com/enginekit/enginekit/examples/echo"
	"github.com/enginekit/enginekit/genserver"
	"github.com/enginekit/enginekit/netconn"
	"github.com/enginekit/enginekit/node"
	"github.com/enginekit/enginekit/payload"
)

// A program that embeds a node: an echo engine under supervision, a TCP
// listener that admits any router, and a call to the engine by its address
// (the same call would reach it from another node).
func Example() {
	ctx := context.Background()
	n, err := node.Start(ctx, node.Config{
		Name:     "alice",
		Register: []func(*payload.Registry) error{echo.Register},
		Engines:  []node.Engine{{Name: "echo", Factory: echo.New}},
		Listen:   []node.Listener{{Endpoint: "tcp://127.0.0.1:0", Accept: netconn.AcceptAny}},
		// Keys: node.Keys{File: "alice.keys", Passphrase: ...} keeps addresses across runs.
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer n.Stop(ctx) // engines, transport, System: in that order

	addr, _ := n.Engine("echo")
	reply, err := genserver.Call[echo.Echo](ctx, n.System(), genserver.Name(addr.String()), echo.Echo{Text: "hello"})
	fmt.Println(reply.Text, err, len(n.ListenAddrs()))
	// Output: hello <nil> 1
}
