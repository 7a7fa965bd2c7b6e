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
	"github.com/enginekit/enginekit/transport"
	"github.com/enginekit/enginekit/wire"
)

// demoRegistry names the demo's message types; both nodes register the same.
func demoRegistry() (*wire.Registry, error) {
	reg, err := wire.NewRegistry(wire.Limits{})
	if err != nil {
		return nil, err
	}
	if err := errors.Join(
		wire.Register[add](reg, "demo.add"),
		wire.Register[get](reg, "demo.get"),
		wire.Register[deposit](reg, "demo.deposit"),
		wire.Register[withdraw](reg, "demo.withdraw"),
	); err != nil {
		return nil, err
	}
	return reg, nil
}

// demoNode is one node of the demo: a System, its keys and its transport.
type demoNode struct {
	name   string
	broker *events.Broker
	sys    *genserver.System
	kh     *keyholder.Keyholder
	tr     *transport.Transport
	events chan string // learn, forget and connection events, as text
}

func newDemoNode(name string, auth netconn.Auth) (*demoNode, error) {
	kh, err := keyholder.New(keyholder.Config{})
	if err != nil {
		return nil, err
	}
	reg, err := demoRegistry()
	if err != nil {
		return nil, err
	}
	n := &demoNode{name: name, kh: kh, sys: genserver.NewSystem(genserver.Config{Name: name}), events: make(chan string, 64)}
	if n.broker, err = events.NewBroker(n.sys, events.Config{}); err != nil {
		return nil, err
	}
	cfg := transport.Config{
		System: n.sys, Keyholder: kh, Registry: reg, Auth: auth, Broker: n.broker,
		OnLearn: func(e, _ keyholder.Address) { n.events <- "learn " + e.String() },
		OnConnection: func(_ keyholder.Address, up bool, _ error) {
			if up {
				n.events <- "up"
			} else {
				n.events <- "down"
			}
		},
	}
	cfg.Net.Backoff = netconn.Backoff{Min: 20 * time.Millisecond, Max: 200 * time.Millisecond}
	if n.tr, err = transport.New(cfg); err != nil {
		return nil, err
	}
	if err := n.tr.Start(); err != nil {
		return nil, err
	}
	return n, nil
}

func (n *demoNode) close() {
	_ = n.tr.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_ = n.sys.Stop(ctx)
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

func short(a keyholder.Address) string { s := a.String(); return s[:11] + "…" }

func nodesDemo(ctx context.Context, say func(string, ...any)) error {
	dir, err := os.MkdirTemp("", "enginekit-demo-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)

	alice, err := newDemoNode("alice", netconn.MACs)
	if err != nil {
		return err
	}
	defer alice.close()
	bob, err := newDemoNode("bob", netconn.MACs)
	if err != nil {
		return err
	}
	defer bob.close()

	publish := func(from genserver.PID, ev events.Event) { _, _ = alice.broker.Publish(from, ev) }
	vaultAddr, _, err := alice.tr.SpawnEngine("vault", func() genserver.Server { return &vault{publish: publish} })
	if err != nil {
		return err
	}
	audited := make(chan events.Event, 16)
	largeDeposits := events.And(events.Topic("vault.deposit"), events.AttrEquals("size", "large"))
	auditorAddr, _, err := bob.tr.SpawnEngine("auditor", func() genserver.Server { return &auditor{audited} },
		transport.WithSubscription(largeDeposits))
	if err != nil {
		return err
	}
	counterAddr, _, err := alice.tr.SpawnEngine("counter", func() genserver.Server { return &counter{} })
	if err != nil {
		return err
	}
	say("")
	say("== two nodes: alice (engines vault %s and counter %s) and bob (engine auditor %s)", short(vaultAddr), short(counterAddr), short(auditorAddr))

	tcpAddr, err := alice.tr.Listen(ctx, "tcp://127.0.0.1:0", netconn.AllowOnly(bob.kh.Router()))
	if err != nil {
		return err
	}
	sock := filepath.Join(dir, "alice.sock")
	if _, err := alice.tr.Listen(ctx, "unix://"+sock, netconn.AllowOnly(bob.kh.Router())); err != nil {
		return err
	}
	cable, err := relay.New("tcp", "127.0.0.1:0", "tcp", tcpAddr.String()) // a network link we can cut
	if err != nil {
		return err
	}
	defer cable.Close()
	say("alice listens on tcp://%v and unix://%s, accepting only bob's router key", tcpAddr, filepath.Base(sock))

	if err := bob.tr.Connect(ctx, "unix://"+sock, alice.kh.Router()); err != nil {
		return err
	}
	if err := bob.tr.Connect(ctx, "tcp://"+cable.Addr().String(), alice.kh.Router()); err != nil {
		return err
	}
	for i := 0; i < 4; i++ { // two engines, learned over each of the two connections
		if err := bob.await(ctx, "learn"); err != nil {
			return err
		}
	}
	for i := 0; i < 2; i++ { // and alice learned the auditor over both
		if err := alice.await(ctx, "learn"); err != nil {
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
		left, err := genserver.Call[int](ctx, bob.sys, vaultAt, withdraw{50})
		if err != nil {
			got <- "error: " + err.Error()
			return
		}
		got <- fmt.Sprint(left)
	}()
	for _, d := range []int{30, 40} {
		if err := bob.sys.Cast(vaultAt, deposit{d}); err != nil {
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
	balance, err := genserver.Call[int](ctx, bob.sys, vaultAt, withdraw{0})
	if err != nil {
		return err
	}
	say("forge a stranger connects and casts 'deposit 1000000' claiming to be an engine it never announced:")
	say("      alice drops it silently (dropped, unknown source: %d); the balance is still %d", alice.tr.Stats().DroppedUnknownSrc, balance)

	counterAt := genserver.Name(counterAddr.String())
	if err := bob.sys.Cast(counterAt, add{7}); err != nil {
		return err
	}
	if _, err := genserver.Call[int](ctx, bob.sys, counterAt, get{}); err != nil { // the cast has landed
		return err
	}
	say("cast  bob -> counter <- add 7")
	cable.Cut()
	say("cut   the TCP cable between bob and alice")
	if err := bob.await(ctx, "down"); err != nil {
		return err
	}
	n, err := genserver.Call[int](ctx, bob.sys, counterAt, get{})
	if err != nil {
		return err
	}
	say("call  bob -> counter <- get => %d: still reachable over the Unix socket route", n)
	if err := bob.await(ctx, "up"); err != nil {
		return err
	}
	if err := bob.await(ctx, "learn"); err != nil {
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
	open, err := alice.tr.Listen(ctx, "tcp://127.0.0.1:0", netconn.AcceptAny)
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
	reg, err := demoRegistry()
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
	}, raw, alice.kh.Router())
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
