package nodetest

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/enginekit/enginekit/events"
	"github.com/enginekit/enginekit/genserver"
	"github.com/enginekit/enginekit/keyholder"
	"github.com/enginekit/enginekit/netconn"
	"github.com/enginekit/enginekit/node"
	"github.com/enginekit/enginekit/payload"
	"github.com/enginekit/enginekit/transport"
)

// Wait bounds every wait of this package.
const Wait = 20 * time.Second

// Node is one running node.Node, with its parts in fields.
type Node struct {
	Node   *node.Node
	Sys    *genserver.System
	Broker *events.Broker // shared with the transport: foreign engines may subscribe
	Keys   *keyholder.Keyholder
	Tr     *transport.Transport

	learned chan keyholder.Address
}

// New starts a node called name whose registry knows what each register
// function adds (e.g. storage.Register).
func New(t testing.TB, name string, auth netconn.Auth, register ...func(*payload.Registry) error) *Node {
	t.Helper()
	n := &Node{learned: make(chan keyholder.Address, 256)}
	tcfg := transport.Config{
		Auth: auth,
		OnLearn: func(e, _ keyholder.Address) {
			select {
			case n.learned <- e:
			default: // nobody is waiting for that many learns
			}
		},
	}
	tcfg.Net.Backoff = netconn.Backoff{Min: 5 * time.Millisecond, Max: 50 * time.Millisecond}
	nd, err := node.Start(context.Background(), node.Config{Name: name, Register: register, Transport: tcfg})
	if err != nil {
		t.Fatal(err)
	}
	n.Node, n.Sys, n.Broker, n.Keys, n.Tr = nd, nd.System(), nd.Broker(), nd.Keyholder(), nd.Transport()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), Wait)
		defer cancel()
		if err := nd.Stop(ctx); err != nil {
			t.Error(err)
		}
	})
	return n
}

// WaitLearn waits until n has learned engine (from any connection).
func (n *Node) WaitLearn(t testing.TB, engine keyholder.Address) {
	t.Helper()
	timeout := time.NewTimer(Wait)
	defer timeout.Stop()
	for {
		select {
		case a := <-n.learned:
			if a == engine {
				return
			}
		case <-timeout.C:
			t.Fatalf("%s never learned %v", n.Sys.Name(), engine)
		}
	}
}

// Connect makes a dial b on a fresh endpoint of network ("tcp" or "unix").
func Connect(t testing.TB, a, b *Node, network string) {
	t.Helper()
	ep := "tcp://127.0.0.1:0"
	if network == "unix" {
		ep = "unix://" + filepath.Join(t.TempDir(), b.Sys.Name()+".sock")
	}
	addr, err := b.Tr.Listen(context.Background(), ep, netconn.AcceptAny)
	if err != nil {
		t.Fatal(err)
	}
	if err := a.Tr.Connect(context.Background(), transport.Endpoint(addr.Network(), addr.String()), b.Keys.Router()); err != nil {
		t.Fatal(err)
	}
}
