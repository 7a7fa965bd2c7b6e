package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/enginekit/enginekit/events"
	"github.com/enginekit/enginekit/genserver"
	"github.com/enginekit/enginekit/internal/relay"
	"github.com/enginekit/enginekit/keyholder"
	"github.com/enginekit/enginekit/netconn"
	"github.com/enginekit/enginekit/node"
	"github.com/enginekit/enginekit/payload"
	"github.com/enginekit/enginekit/transport"
	"github.com/enginekit/enginekit/wire"
)

// registerDemoTypes names the demo's message types; both nodes register
// the same.
func registerDemoTypes(reg *payload.Registry) error {
	return errors.Join(
		payload.Register[add](reg, "demo.add"),
		payload.Register[get](reg, "demo.get"),
		payload.Register[deposit](reg, "demo.deposit"),
		payload.Register[withdraw](reg, "demo.withdraw"),
	)
}

// demoNode is one node of the demo, with its learn, forget and connection
// events as text.
type demoNode struct {
	*node.Node
	name   string
	events chan string
}

func newDemoNode(ctx context.Context, name string, auth netconn.Auth, engines []node.Engine) (*demoNode, error) {
	n := &demoNode{name: name, events: make(chan string, 64)}
	event := func(e string) {
		select {
		case n.events <- e:
		default: // nobody reads that far back
		}
	}
	tcfg := transport.Config{
		Auth:    auth,
		OnLearn: func(e, _ keyholder.Address) { event("learn " + e.String()) },
		// Per connection: the peer's engines are all learned over it. The
		// demo waits for these, not for a number of learns: an engine
		// learned over two connections while its proxy is starting is
		// reported once, not once per connection.
		OnSynced: func(keyholder.Address) { event("synced") },
		OnConnection: func(_ keyholder.Address, up bool, _ error) {
			if up {
				event("up")
			} else {
				event("down")
			}
		},
	}
	tcfg.Net.Backoff = netconn.Backoff{Min: 20 * time.Millisecond, Max: 200 * time.Millisecond}
	var err error
	n.Node, err = node.Start(ctx, node.Config{
		Name:      name,
		Register:  []func(*payload.Registry) error{registerDemoTypes},
		Engines:   engines,
		Transport: tcfg,
	})
	if err != nil {
		return nil, err
	}
	return n, nil
}

func (n *demoNode) close() {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_ = n.Stop(ctx)
}

// await waits for an event with the given prefix, dropping others.
func (n *demoNode) await(ctx context.Context, prefix string) error {
	for {
		select {
		case e := <-n.events:
			if strings.HasPrefix(e, prefix) {
				return nil
			}
		case <-ctx.Done():
			return fmt.Errorf("%s: waiting for %q: %w", n.name, prefix, ctx.Err())
		}
	}
}

func nodesDemo(ctx context.Context, say func(string, ...any)) error {
	dir, err := os.MkdirTemp("", "enginekit-demo-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)

	alice, err := newDemoNode(ctx, "alice", netconn.MACs, []node.Engine{
		{Name: "vault", NewFactory: func(n *node.Node) (func() genserver.Server, error) {
			publish := func(from genserver.PID, ev events.Event) { _, _ = n.Broker().Publish(from, ev) }
			return func() genserver.Server { return &vault{publish: publish} }, nil
		}},
		{Name: "counter", Factory: func() genserver.Server { return &counter{} }},
	})
	if err != nil {
		return err
	}
	defer alice.close()
	audited := make(chan events.Event, 16)
	largeDeposits := events.And(events.Topic("vault.deposit"), events.AttrEquals("size", "large"))
	bob, err := newDemoNode(ctx, "bob", netconn.MACs, []node.Engine{{
		Name:    "auditor",
		Factory: func() genserver.Server { return &auditor{audited} },
		Options: []transport.EngineOption{transport.WithSubscription(largeDeposits)},
	}})
	if err != nil {
		return err
	}
	defer bob.close()
	vaultAddr, _ := alice.Engine("vault")
	counterAddr, _ := alice.Engine("counter")
	auditorAddr, _ := bob.Engine("auditor")
	say("")
	say("== two nodes in this process: alice runs the engines vault and counter, bob the engine auditor.")
	say("   An engine's address is its ed25519 public key:")
	say("      vault    %s", vaultAddr)
	say("      counter  %s", counterAddr)
	say("      auditor  %s", auditorAddr)

	tcpAddr, err := alice.Transport().Listen(ctx, "tcp://127.0.0.1:0", netconn.AllowOnly(bob.Router()))
	if err != nil {
		return err
	}
	sock := filepath.Join(dir, "alice.sock")
	if _, err := alice.Transport().Listen(ctx, "unix://"+sock, netconn.AllowOnly(bob.Router())); err != nil {
		return err
	}
	cable, err := relay.New("tcp", "127.0.0.1:0", "tcp", tcpAddr.String()) // a network link we can cut
	if err != nil {
		return err
	}
	defer cable.Close()
	say("alice listens on tcp://%v and unix://%s, accepting only bob's router key", tcpAddr, sock)

	if err := bob.Transport().Connect(ctx, "unix://"+sock, alice.Router()); err != nil {
		return err
	}
	if err := bob.Transport().Connect(ctx, "tcp://"+cable.Addr().String(), alice.Router()); err != nil {
		return err
	}
	for i := 0; i < 2; i++ { // each side learned the other's engines over both connections
		if err := bob.await(ctx, "synced"); err != nil {
			return err
		}
		if err := alice.await(ctx, "synced"); err != nil {
			return err
		}
	}
	say("bob dials alice over the Unix socket and over TCP (TLS 1.3, alice's router key pinned):")
	say("      each router bursts signed learn messages: bob now has proxies for vault and counter, two routes each,")
	say("      and alice a proxy for the auditor, subscribed to alice's events with the auditor's filter: %v", largeDeposits)

	vaultAt := genserver.Name(vaultAddr.String())
	say("call  bob -> vault  <- withdraw 50  (balance 0: alice's vault defers the reply)")
	got := make(chan string, 1)
	go func() {
		left, err := genserver.Call[int](ctx, bob.System(), vaultAt, withdraw{50})
		if err != nil {
			got <- "error: " + err.Error()
			return
		}
		got <- fmt.Sprint(left)
	}()
	for _, d := range []int{30, 40} {
		if err := bob.System().Cast(vaultAt, deposit{d}); err != nil {
			return err
		}
		say("cast  bob -> vault  <- deposit %d", d)
	}
	select {
	case left := <-got:
		say("      vault => the deferred reply crossed back to bob: balance %s", left)
	case <-ctx.Done():
		return ctx.Err()
	}
	select {
	case ev := <-audited:
		say("event alice's vault published both deposits; bob's auditor received only the large one: %s %v", ev.Topic, ev.Payload)
	case <-ctx.Done():
		return ctx.Err()
	}

	if err := forgeCast(ctx, alice, vaultAddr); err != nil {
		return err
	}
	balance, err := genserver.Call[int](ctx, bob.System(), vaultAt, withdraw{0})
	if err != nil {
		return err
	}
	say("forge a stranger connects and casts 'deposit 1000000' claiming to be an engine it never announced:")
	say("      alice drops it silently (dropped, unknown source: %d); the balance is still %d", alice.Transport().Stats().DroppedUnknownSrc, balance)

	counterAt := genserver.Name(counterAddr.String())
	if err := bob.System().Cast(counterAt, add{7}); err != nil {
		return err
	}
	if _, err := genserver.Call[int](ctx, bob.System(), counterAt, get{}); err != nil { // the cast has landed
		return err
	}
	say("cast  bob -> counter <- add 7")
	cable.Cut()
	say("cut   the TCP cable between bob and alice")
	if err := bob.await(ctx, "down"); err != nil {
		return err
	}
	n, err := genserver.Call[int](ctx, bob.System(), counterAt, get{})
	if err != nil {
		return err
	}
	say("call  bob -> counter <- get => %d: still reachable over the Unix socket route", n)
	if err := bob.await(ctx, "up"); err != nil {
		return err
	}
	if err := bob.await(ctx, "synced"); err != nil {
		return err
	}
	say("      bob re-dialled with backoff; the TCP link is back and alice's engines were announced again")
	return nil
}

// forgeCast plays a stranger: a router alice accepts (on a third listener
// that takes anyone; the other two refuse strangers at the TLS handshake)
// that casts from an engine it never announced. The call it sends after
// the forgery comes back only once alice has judged the forgery, since a
// connection's envelopes are handled in order.
func forgeCast(ctx context.Context, alice *demoNode, vault keyholder.Address) error {
	open, err := alice.Transport().Listen(ctx, "tcp://127.0.0.1:0", netconn.AcceptAny)
	if err != nil {
		return err
	}
	stranger, err := keyholder.New(keyholder.Config{})
	if err != nil {
		return err
	}
	ghost, err := stranger.NewEngine("ghost")
	if err != nil {
		return err
	}
	raw, err := net.Dial("tcp", open.String())
	if err != nil {
		return err
	}
	reg, err := payload.NewRegistry(payload.Limits{})
	if err == nil {
		err = registerDemoTypes(reg)
	}
	if err != nil {
		return err
	}
	replied := make(chan struct{})
	var once sync.Once
	conn, err := netconn.NewClientConn(netconn.Config{
		Keyholder: stranger, Auth: netconn.MACs,
		Deliver: func(_ *netconn.Conn, env *wire.Envelope) {
			if env.Kind == wire.Reply { // not the learn burst alice sends any peer
				once.Do(func() { close(replied) })
			}
		},
	}, raw, alice.Router())
	if err != nil {
		raw.Close()
		return err
	}
	cctx, cancel := context.WithCancel(ctx)
	served := make(chan error, 1)
	go func() { served <- conn.Serve(cctx) }()
	defer func() { cancel(); <-served }()
	forged, _ := reg.Marshal(deposit{1_000_000})
	probe, _ := reg.Marshal(withdraw{0})
	for _, env := range []wire.Envelope{
		{Kind: wire.Cast, Src: ghost, Dst: vault, Payload: forged},
		{Kind: wire.Call, Src: stranger.Router(), Dst: vault, Ref: 1, Payload: probe}, // in order after it
	} {
		if err := conn.Send(ctx, &env); err != nil {
			return err
		}
	}
	select {
	case <-replied:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// auditor is bob's engine that watches alice's vault through events.
type auditor struct{ seen chan<- events.Event }

func (a *auditor) HandleCall(*genserver.Process, genserver.From, any) (any, error) { return nil, nil }
func (a *auditor) HandleCast(*genserver.Process, any)                              {}
func (a *auditor) HandleInfo(_ *genserver.Process, msg any) {
	if d, ok := msg.(events.Delivery); ok {
		a.seen <- *d.Event
		d.Done()
	}
}
