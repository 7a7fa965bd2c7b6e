package transport_test

import (
	"context"
	"errors"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/enginekit/enginekit/genserver"
	"github.com/enginekit/enginekit/keyholder"
	"github.com/enginekit/enginekit/transport"
)

// PlainRelay carries a plain genserver.From, which cannot cross nodes.
type PlainRelay struct {
	From genserver.From
	Text string
}

// plainHolder hands its caller's From on as it is, in a message to an
// engine on another node.
type plainHolder struct{ next keyholder.Address }

func (h plainHolder) HandleCall(p *genserver.Process, from genserver.From, req any) (any, error) {
	if err := p.Cast(genserver.Name(h.next.String()), PlainRelay{from, req.(Ping).Text}); err != nil {
		return nil, err
	}
	return genserver.NoReply, nil
}
func (plainHolder) HandleCast(*genserver.Process, any) {}

// plainAnswerer answers the plain Froms it is handed with genserver.Reply.
type plainAnswerer struct{ deadlines chan time.Time }

func (plainAnswerer) HandleCall(*genserver.Process, genserver.From, any) (any, error) {
	return nil, nil
}
func (a plainAnswerer) HandleCast(_ *genserver.Process, msg any) {
	m := msg.(PlainRelay)
	a.deadlines <- m.From.Deadline()
	if !genserver.Reply(m.From, Ping{"answered plainly on c: " + m.Text}, nil) {
		a.deadlines <- time.Time{} // refused: the test fails on it
	}
}

// Issue #10 "From across nodes": A calls an engine on B whose handler puts
// the plain genserver.From in a message to an engine on C (A and C are not
// connected); C answers it with genserver.Reply, and the reply reaches A
// through B, the node holding the call. Without a transport on B's System
// the Cast would fail at once with genserver.ErrFromNotPortable (tested in
// genserver).
func TestPlainFromAcrossNodes(t *testing.T) {
	a, b, c := newTNode(t, "a"), newTNode(t, "b"), newTNode(t, "c")
	deadlines := make(chan time.Time, 2)
	ans, _, err := c.tr.SpawnEngine("answerer", func() genserver.Server { return plainAnswerer{deadlines} })
	if err != nil {
		t.Fatal(err)
	}
	hold, _, err := b.tr.SpawnEngine("holder", func() genserver.Server { return plainHolder{ans} })
	if err != nil {
		t.Fatal(err)
	}
	endpoint := b.listen(t)
	a.connect(t, b, endpoint)
	c.connect(t, b, endpoint)
	a.waitSynced(t, b)
	b.waitSynced(t, c)
	c.waitSynced(t, b)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	want, _ := ctx.Deadline()
	v, err := a.sys.Call(ctx, genserver.Name(hold.String()), Ping{"hi"})
	if err != nil || v != (Ping{"answered plainly on c: hi"}) {
		t.Fatalf("reply through a plain From handed to C: %v, %v", v, err)
	}
	if d := within(t, deadlines); d.Sub(want).Abs() > time.Millisecond {
		t.Fatalf("C saw the deadline %v, want the caller's %v", d, want)
	}
	if len(a.tr.Learned()[c.kh.Router()]) != 0 {
		t.Fatal("a and c are connected: the test proves nothing")
	}
}

// linker is an engine that links itself to the proxies it is told, and
// reports the Exits it gets (it traps exits when trap is set).
type linker struct {
	trap  bool
	exits chan genserver.Exit
}

// Messages to a linker (local only, never encoded).
type (
	linkTo struct {
		dest  genserver.PID
		probe genserver.Dest // called after the link, so the link is in place there when it returns
		done  chan error
	}
	unlinkFrom struct {
		dest genserver.PID
		done chan error
	}
	stopWith struct{ reason error }
)

func (l *linker) Init(p *genserver.Process) error {
	p.TrapExits(l.trap)
	return nil
}
func (l *linker) HandleCall(_ *genserver.Process, _ genserver.From, req any) (any, error) {
	return req, nil
}
func (l *linker) HandleCast(p *genserver.Process, msg any) {
	switch m := msg.(type) {
	case linkTo:
		err := p.Link(m.dest)
		if err == nil && m.probe != nil {
			// The link envelope went first on the same connection: once
			// the call is answered, the other node has made the link.
			_, err = p.Call(context.Background(), m.probe, Ping{"probe"})
		}
		m.done <- err
	case unlinkFrom:
		p.Unlink(m.dest)
		_, err := p.Call(context.Background(), m.dest, Ping{"probe"})
		m.done <- err
	case stopWith:
		p.Stop(m.reason)
	}
}
func (l *linker) HandleInfo(_ *genserver.Process, msg any) {
	if e, ok := msg.(genserver.Exit); ok && l.exits != nil {
		l.exits <- e
	}
}

// cable is a connection from a to b the test can pull, with no way back.
type cable struct {
	mu   sync.Mutex
	raw  net.Conn
	gone bool
}

func (c *cable) dial(address string) func(ctx context.Context) (net.Conn, error) {
	return func(ctx context.Context) (net.Conn, error) {
		c.mu.Lock()
		defer c.mu.Unlock()
		if c.gone {
			return nil, errors.New("cable pulled")
		}
		var d net.Dialer
		conn, err := d.DialContext(ctx, "tcp", address)
		c.raw = conn
		return conn, err
	}
}

func (c *cable) pull() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.gone = true
	_ = c.raw.Close()
}

// Issue #11 item 6: an engine on A that links itself to the proxy of an
// engine on B links the two engines: B links its engine with its proxy of
// A's engine. A's engine exiting (with a reason, normally, or the route
// lost past the grace period) reaches B's engine as the Exit of that proxy,
// or its exit when it does not trap exits; an unlinked pair hears nothing.
func TestLinksAcrossNodes(t *testing.T) {
	grace := func(c *transport.Config) { c.ForgetGrace = 100 * time.Millisecond }
	forgotOnB := make(chan keyholder.Address, 16)
	a := newTNode(t, "a", grace)
	b := newTNode(t, "b", grace, func(c *transport.Config) { c.OnForget = func(e keyholder.Address) { forgotOnB <- e } })
	engine := func(n *tnode, name string, l *linker) (keyholder.Address, genserver.PID) {
		t.Helper()
		addr, pid, err := n.tr.SpawnEngine(name, func() genserver.Server { return l })
		if err != nil {
			t.Fatal(err)
		}
		return addr, pid
	}
	// On B: far traps exits, plain does not, quiet (trapping) will be unlinked.
	far := &linker{trap: true, exits: make(chan genserver.Exit, 4)}
	farAddr, _ := engine(b, "far", far)
	plainA, plainPID := engine(b, "plain", &linker{})
	quiet := &linker{trap: true, exits: make(chan genserver.Exit, 4)}
	quietAddr, _ := engine(b, "quiet", quiet)
	// On A: one linker per case; back traps exits and sees B's side exit.
	nearAddr, nearPID := engine(a, "near", &linker{})
	normalAddr, normalPID := engine(a, "normal", &linker{})
	crashAddr, crashPID := engine(a, "crash", &linker{})
	unlAddr, unlPID := engine(a, "unlinked", &linker{})
	_, cutPID := engine(a, "cut", &linker{})

	_, address, _ := transport.ParseEndpoint(b.listen(t))
	var cab cable
	if err := a.tr.ConnectWith(context.Background(), "b-cable", cab.dial(address), b.kh.Router()); err != nil {
		t.Fatal(err)
	}
	a.waitSynced(t, b)
	proxyOn := func(n *tnode, e keyholder.Address) genserver.PID {
		t.Helper()
		px, ok := n.sys.Whereis(e.String())
		if !ok {
			t.Fatalf("%s has no proxy for %v", n.name, e)
		}
		return px
	}
	link := func(pid genserver.PID, to keyholder.Address) {
		t.Helper()
		done := make(chan error, 1)
		dest := proxyOn(a, to)
		if err := a.sys.Cast(pid, linkTo{dest: dest, probe: dest, done: done}); err != nil {
			t.Fatal(err)
		}
		if err := within(t, done); err != nil {
			t.Fatalf("link: %v", err)
		}
	}
	waitForgot := func(e keyholder.Address) {
		t.Helper()
		for within(t, forgotOnB) != e {
		}
	}
	stop := func(pid genserver.PID, reason error) {
		t.Helper()
		if err := a.sys.Cast(pid, stopWith{reason}); err != nil {
			t.Fatal(err)
		}
	}
	b.waitSynced(t, a) // B has learned A's engines

	// A crash on A reaches the trapping engine on B, from B's proxy of it.
	link(nearPID, farAddr)
	stop(nearPID, errors.New("boom"))
	e := within(t, far.exits)
	var fe *transport.ForeignExit
	if !errors.As(e.Reason, &fe) || fe.Engine != nearAddr || fe.Reason == nil || fe.Reason.Error() != "boom" {
		t.Fatalf("far got %+v, want near's boom", e)
	}
	if px, _ := b.sys.Whereis(nearAddr.String()); e.PID.IsZero() || px == e.PID {
		t.Fatalf("the Exit comes from %v, want B's (gone) proxy of near", e.PID)
	}

	// A normal exit on A leaves a non-trapping linked engine alive; a crash
	// takes it down with the reason.
	link(normalPID, plainA)
	stop(normalPID, nil)
	waitForgot(normalAddr)
	if _, err := b.sys.Call(ctxT(t), plainPID, Ping{"alive?"}); err != nil {
		t.Fatalf("a normal exit on A took down the linked engine on B: %v", err)
	}
	link(crashPID, plainA)
	stop(crashPID, errors.New("disk on fire"))
	within(t, plainPID.Done())
	if !errors.As(plainPID.Reason(), &fe) || fe.Engine != crashAddr || fe.Reason.Error() != "disk on fire" {
		t.Fatalf("plain exited with %v", plainPID.Reason())
	}

	// Unlinked: quiet hears nothing of unlinked's crash.
	link(unlPID, quietAddr)
	done := make(chan error, 1)
	if err := a.sys.Cast(unlPID, unlinkFrom{dest: proxyOn(a, quietAddr), done: done}); err != nil {
		t.Fatal(err)
	}
	if err := within(t, done); err != nil {
		t.Fatal(err)
	}
	stop(unlPID, errors.New("unseen"))
	waitForgot(unlAddr)
	for range 2 { // the second call comes after any Exit the first let in
		if _, err := b.sys.Call(ctxT(t), genserver.Name(quietAddr.String()), Ping{"x"}); err != nil {
			t.Fatal(err)
		}
	}
	select {
	case e := <-quiet.exits:
		t.Fatalf("quiet got %+v after the unlink", e)
	default:
	}

	// The other direction: an engine on B linked to A's proxy... and the
	// lost connection: past the grace period both sides get noconnection.
	link(cutPID, farAddr)
	back := &linker{trap: true, exits: make(chan genserver.Exit, 4)}
	_, backPID := engine(a, "back", back)
	link(backPID, farAddr)
	cab.pull()
	for _, ex := range []genserver.Exit{within(t, far.exits), within(t, far.exits), within(t, back.exits)} {
		if !errors.Is(ex.Reason, transport.ErrNoConnection) || !errors.As(ex.Reason, &fe) {
			t.Fatalf("after the cut: %+v, want no connection", ex)
		}
	}
	within(t, cutPID.Done()) // cut does not trap exits: it exits with noconnection
	if !errors.Is(cutPID.Reason(), transport.ErrNoConnection) {
		t.Fatalf("cut exited with %v", cutPID.Reason())
	}
}

// within receives from ch, failing the test (instead of hanging it) when
// nothing comes in a generous while: a missing exit is a bug, not a wait.
func within[T any](t testing.TB, ch <-chan T) T {
	t.Helper()
	select {
	case v := <-ch:
		return v
	case <-time.After(30 * time.Second):
		t.Fatalf("nothing came in 30 s")
	}
	var zero T
	return zero
}
