package callbridge_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/enginekit/enginekit/callbridge"
	"github.com/enginekit/enginekit/genserver"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// proxy is a stand-in for the transport's proxy: each call gets a call
// replier in the Pending table and the proxy returns NoReply at once.
type proxy struct {
	pending *callbridge.Pending
	sent    chan uint64
}

func (p *proxy) HandleCall(_ *genserver.Process, from genserver.From, _ any) (any, error) {
	ref, err := p.pending.Add(from, callee)
	if err != nil {
		return nil, err
	}
	p.sent <- ref
	return genserver.NoReply, nil
}
func (p *proxy) HandleCast(*genserver.Process, any) {}

var callee = [32]byte{1}

func newProxy(t *testing.T) (*genserver.System, genserver.PID, *proxy) {
	sys := genserver.NewSystem(genserver.Config{})
	t.Cleanup(func() { _ = sys.Stop(context.Background()) })
	px := &proxy{pending: callbridge.NewPending(), sent: make(chan uint64, 100)}
	pid, err := sys.Spawn(func() genserver.Server { return px })
	if err != nil {
		t.Fatal(err)
	}
	return sys, pid, px
}

func TestPendingResolve(t *testing.T) {
	sys, pid, px := newProxy(t)
	// Many concurrent calls through one proxy: it never blocks.
	const n = 50
	results := make(chan any, n)
	for i := 0; i < n; i++ {
		go func() {
			v, err := sys.Call(context.Background(), pid, i)
			if err != nil {
				v = err
			}
			results <- v
		}()
	}
	refs := make([]uint64, 0, n)
	for i := 0; i < n; i++ {
		refs = append(refs, <-px.sent)
	}
	for _, ref := range refs {
		if px.pending.Resolve(ref, [32]byte{2}, "forged", nil) {
			t.Fatalf("resolve %d: a reply from another engine answered the call", ref)
		}
		if !px.pending.Resolve(ref, callee, ref, nil) {
			t.Fatalf("resolve %d: no waiting call", ref)
		}
		if px.pending.Resolve(ref, callee, ref, nil) {
			t.Fatalf("resolve %d twice accepted", ref)
		}
	}
	seen := map[any]bool{}
	for i := 0; i < n; i++ {
		seen[<-results] = true
	}
	if len(seen) != n {
		t.Fatalf("got %d distinct replies, want %d", len(seen), n)
	}
	if px.pending.Resolve(9999, callee, nil, nil) {
		t.Fatal("unknown ref resolved")
	}
}

func TestPendingFailAllFailsCallsAtOnce(t *testing.T) {
	sys, pid, px := newProxy(t)
	errs := make(chan error, 3)
	for i := 0; i < 3; i++ {
		go func() { _, err := sys.Call(context.Background(), pid, i); errs <- err }()
	}
	for i := 0; i < 3; i++ {
		<-px.sent
	}
	if n := px.pending.FailAll(nil); n != 3 {
		t.Fatalf("FailAll failed %d calls, want 3", n)
	}
	for i := 0; i < 3; i++ {
		if err := <-errs; !errors.Is(err, callbridge.ErrNoConnection) {
			t.Fatalf("err = %v", err)
		}
	}
	if _, err := sys.Call(context.Background(), pid, "after"); !errors.Is(err, callbridge.ErrNoConnection) {
		t.Fatalf("call on a closed route: %v", err)
	}
}

func TestPendingSweepsAbandonedCalls(t *testing.T) {
	sys, pid, px := newProxy(t)
	for i := 0; i < 200; i++ {
		ctx, cancel := context.WithCancel(context.Background())
		go func() { <-px.sent; cancel() }()
		_, _ = sys.Call(ctx, pid, i) // gives up: its entry is abandoned
	}
	if n := px.pending.Len(); n > 128 {
		t.Fatalf("%d entries left for 200 abandoned calls: not swept", n)
	}
}

type deferring struct{ froms chan genserver.From }

func (d *deferring) HandleCall(_ *genserver.Process, from genserver.From, req any) (any, error) {
	if req == "defer" {
		d.froms <- from
		return genserver.NoReply, nil
	}
	return from.Address(), nil
}
func (d *deferring) HandleCast(*genserver.Process, any) {}

func TestIncomingDummyCaller(t *testing.T) {
	sys := genserver.NewSystem(genserver.Config{})
	defer sys.Stop(context.Background())
	d := &deferring{froms: make(chan genserver.From, 1)}
	_, _ = sys.Spawn(func() genserver.Server { return d }, genserver.WithName("engine"))
	in := callbridge.NewIncoming(sys)
	defer in.Close()

	type result struct {
		v   any
		err error
	}
	replies := make(chan result, 4)
	reply := func(v any, err error) { replies <- result{v, err} }

	in.Start(callbridge.Call{From: "ek1caller", Dest: genserver.Name("engine"), Req: "who"}, reply)
	if r := <-replies; r.v != "ek1caller" || r.err != nil {
		t.Fatalf("got %+v: the callee must see the remote caller's address", r)
	}
	// A deferred reply: the dummy caller simply waits.
	in.Start(callbridge.Call{Dest: genserver.Name("engine"), Req: "defer"}, reply)
	genserver.Reply(<-d.froms, "later", nil)
	if r := <-replies; r.v != "later" {
		t.Fatalf("deferred: %+v", r)
	}
	// The caller's deadline travels: an already-passed deadline times out.
	in.Start(callbridge.Call{Dest: genserver.Name("engine"), Req: "defer", Deadline: time.Now().Add(-time.Second)}, reply)
	if r := <-replies; !errors.Is(r.err, genserver.ErrTimeout) {
		t.Fatalf("expired deadline: %+v", r)
	}
	<-d.froms
}

func TestIncomingCloseCancelsWaitingCallers(t *testing.T) {
	sys := genserver.NewSystem(genserver.Config{})
	defer sys.Stop(context.Background())
	d := &deferring{froms: make(chan genserver.From, 1)}
	_, _ = sys.Spawn(func() genserver.Server { return d }, genserver.WithName("engine"))
	in := callbridge.NewIncoming(sys)
	got := make(chan error, 1)
	in.Start(callbridge.Call{Dest: genserver.Name("engine"), Req: "defer"}, func(_ any, err error) { got <- err })
	<-d.froms
	if err := in.Close(); err != nil {
		t.Fatal(err)
	}
	if err := <-got; callbridge.EncodeError(err).Code != callbridge.CodeCanceled {
		t.Fatalf("err = %v", err)
	}
	if err := in.Close(); err != nil { // a second Close is harmless
		t.Fatal(err)
	}
}

func TestWireErrorRoundTrip(t *testing.T) {
	boom := errors.New("boom")
	for _, tc := range []struct {
		in    error
		check func(error) bool
	}{
		{nil, func(e error) bool { return e == nil }},
		{genserver.ErrNoProcess, func(e error) bool { return errors.Is(e, genserver.ErrNoProcess) }},
		{genserver.ErrTimeout, func(e error) bool { return errors.Is(e, genserver.ErrTimeout) }},
		{genserver.ErrCallingSelf, func(e error) bool { return errors.Is(e, genserver.ErrCallingSelf) }},
		{genserver.ErrMailboxFull, func(e error) bool { return errors.Is(e, genserver.ErrMailboxFull) }},
		{callbridge.ErrNoConnection, func(e error) bool { return errors.Is(e, callbridge.ErrNoConnection) }},
		{&genserver.ExitError{Reason: boom}, func(e error) bool {
			var x *genserver.ExitError
			return errors.As(e, &x) && errors.Is(e, genserver.ErrExited) && x.Reason.Error() == "boom"
		}},
		{&genserver.ExitError{}, func(e error) bool {
			var x *genserver.ExitError
			return errors.As(e, &x) && x.Reason == nil
		}},
		{boom, func(e error) bool { return e.Error() == "boom" }},
	} {
		if got := callbridge.EncodeError(tc.in).Err(); !tc.check(got) {
			t.Errorf("%v came back as %v", tc.in, got)
		}
	}
}
