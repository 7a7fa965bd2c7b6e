package netconn_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"

	"github.com/enginekit/enginekit/keyholder"
	"github.com/enginekit/enginekit/netconn"
	"github.com/enginekit/enginekit/wire"
)

// Two nodes, one listening on a Unix socket and one dialing it, exchange a
// cast authenticated with MACs.
func Example() {
	alice, _ := keyholder.New(keyholder.Config{})
	bob, _ := keyholder.New(keyholder.Config{})
	defer alice.Close()
	defer bob.Close()
	greeter, _ := bob.NewEngine("greeter")
	listener, _ := alice.NewEngine("listener")

	got := make(chan string, 1)
	up := make(chan *netconn.Conn, 1)
	acfg := netconn.Config{
		Keyholder: alice,
		Auth:      netconn.MACs,
		Deliver: func(c *netconn.Conn, env *wire.Envelope) {
			got <- fmt.Sprintf("%v from engine %v to %v via router %v: %s",
				env.Kind, env.Src == greeter, env.Dst == listener, c.PeerRouter() == bob.Router(), env.Payload)
		},
	}
	bcfg := netconn.Config{
		Keyholder: bob,
		Auth:      netconn.MACs,
		Deliver:   func(*netconn.Conn, *wire.Envelope) {},
		OnUp:      func(c *netconn.Conn) { up <- c },
	}

	dir, _ := os.MkdirTemp("", "netconn-example")
	defer os.RemoveAll(dir)
	l, err := netconn.NewListener(acfg, "unix", filepath.Join(dir, "alice.sock"), netconn.AllowOnly(bob.Router()))
	if err != nil {
		panic(err)
	}
	d, err := netconn.NewDialer(bcfg, "unix", l.Addr().String(), alice.Router())
	if err != nil {
		panic(err)
	}
	// Normally both run under a suture supervisor.
	ctx, cancel := context.WithCancel(context.Background())
	lDone, dDone := make(chan error), make(chan error)
	go func() { lDone <- l.Serve(ctx) }()
	go func() { dDone <- d.Serve(ctx) }()

	c := <-up
	err = c.Send(ctx, &wire.Envelope{Kind: wire.Cast, Src: greeter, Dst: listener, Payload: []byte("hello")})
	fmt.Println("send:", err)
	fmt.Println(<-got)

	cancel()
	fmt.Println("stopped:", <-dDone, <-lDone)
	// Output:
	// send: <nil>
	// cast from engine true to true via router true: hello
	// stopped: <nil> <nil>
}

// Two nodes in one process connected in memory: a PipeListener served by
// NewListenerOn, dialed by NewDialerFunc. Bob's node admits Alice by the
// credential in her hello, though its AcceptPolicy knows nobody.
func ExampleNewListenerOn() {
	alice, _ := keyholder.New(keyholder.Config{})
	bob, _ := keyholder.New(keyholder.Config{})
	defer alice.Close()
	defer bob.Close()

	up := make(chan *netconn.Conn, 2)
	bcfg := netconn.Config{
		Keyholder: bob,
		Deliver:   func(*netconn.Conn, *wire.Envelope) {},
		OnUp:      func(c *netconn.Conn) { up <- c },
		AdmitCredential: func(router keyholder.Address, cred []byte) bool {
			return string(cred) == "member of the demo cluster"
		},
	}
	acfg := netconn.Config{
		Keyholder:  alice,
		Deliver:    func(*netconn.Conn, *wire.Envelope) {},
		Credential: []byte("member of the demo cluster"),
	}

	pl := netconn.NewPipeListener("bob")
	l, err := netconn.NewListenerOn(bcfg, pl, netconn.AllowOnly())
	if err != nil {
		panic(err)
	}
	d, err := netconn.NewDialerFunc(acfg, "bob", pl.Dial, bob.Router())
	if err != nil {
		panic(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	lDone, dDone := make(chan error), make(chan error)
	go func() { lDone <- l.Serve(ctx) }()
	go func() { dDone <- d.Serve(ctx) }()

	c := <-up
	fmt.Println("bob admitted alice:", c.PeerRouter() == alice.Router())
	fmt.Printf("her credential: %s\n", c.PeerCredential())
	cancel()
	fmt.Println("stopped:", <-dDone, <-lDone)
	// Output:
	// bob admitted alice: true
	// her credential: member of the demo cluster
	// stopped: <nil> <nil>
}
