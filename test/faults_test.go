package test

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/enginekit/enginekit/callbridge"
	"github.com/enginekit/enginekit/genserver"
	"github.com/enginekit/enginekit/transport"
)

func longGrace(c *transport.Config) { c.ForgetGrace = time.Hour }

// A deferred reply across nodes, also when the From is handed to a second
// engine that answers.
func TestDeferredReplyAcrossNodes(t *testing.T) {
	eachSetup(t, func(t *testing.T, s setup) {
		a, b := newNode(t, "a", s), newNode(t, "b", s)
		helper := b.spawnEngine("helper", nil)
		holding := make(chan struct{}, 1)
		eb, _, err := b.tr.SpawnEngine("beta", func() genserver.Server {
			return &engine{held: map[string][]genserver.From{}, helper: dest(helper), holding: holding}
		})
		must(t, err)
		connect(t, a, b, s)
		a.waitLearn(eb)
		ctx := ctxT(t)

		got := make(chan any, 1)
		go func() {
			v, err := a.sys.Call(ctx, dest(eb), Hold{"k"})
			if err != nil {
				v = err
			}
			got <- v
		}()
		// The callee keeps serving while the call is deferred.
		for i := 0; i < 3; i++ {
			if _, err := a.sys.Call(ctx, dest(eb), Echo{"still serving"}); err != nil {
				t.Fatal(err)
			}
		}
		// The Hold is sent from another goroutine: release it only once
		// the engine holds it, or the Release may overtake it.
		select {
		case <-holding:
		case <-ctx.Done():
			t.Fatal("the engine never got the Hold")
		}
		must(t, b.sys.Cast(dest(eb), Release{"k", "released"}))
		if v := <-got; v != "released" {
			t.Fatalf("deferred reply = %v", v)
		}
		v, err := genserver.Call[string](ctx, a.sys, dest(eb), HandOff{"x"})
		if err != nil || v != "answered by the helper for x" {
			t.Fatalf("hand-off reply = %q, %v", v, err)
		}
	})
}

// The caller's deadline travels with the call: a deferred call that is
// never answered times out on the caller's side at its deadline, and a
// reply after that is dropped.
func TestDeadlineTravels(t *testing.T) {
	s := setup{"tcp", 0}
	a, b := newNode(t, "a", s), newNode(t, "b", s)
	eb := b.spawnEngine("beta", nil)
	connect(t, a, b, s)
	a.waitLearn(eb)
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	if _, err := a.sys.Call(ctx, dest(eb), Hold{"never"}); !errors.Is(err, genserver.ErrTimeout) {
		t.Fatalf("err = %v, want ErrTimeout", err)
	}
	// Released after the caller gave up: the reply crosses back and is dropped.
	must(t, b.sys.Cast(dest(eb), Release{"never", "too late"}))
	if _, err := genserver.Call[Echo](ctxT(t), a.sys, dest(eb), Echo{"after"}); err != nil {
		t.Fatal(err)
	}
}

// An engine started after the connection is learned; a stopped one is
// forgotten (by a forget message: the grace period is an hour) and calls
// to it fail with the no-process error.
func TestLearnAndForgetLater(t *testing.T) {
	eachSetup(t, func(t *testing.T, s setup) {
		a, b := newNode(t, "a", s, longGrace), newNode(t, "b", s, longGrace)
		connect(t, a, b, s)
		select {
		case <-a.ups:
		case <-time.After(20 * time.Second):
			t.Fatal("no connection")
		}
		late, pid, err := b.tr.SpawnEngine("late", newEngine(nil))
		must(t, err)
		a.waitLearn(late)
		ctx := ctxT(t)
		if _, err := genserver.Call[Echo](ctx, a.sys, dest(late), Echo{"hi"}); err != nil {
			t.Fatal(err)
		}
		must(t, b.sys.StopProcess(ctx, pid, nil))
		a.waitForget(late)
		if _, err := a.sys.Call(ctx, dest(late), Echo{"gone?"}); !errors.Is(err, genserver.ErrNoProcess) {
			t.Fatalf("call to a forgotten engine: %v, want ErrNoProcess", err)
		}
	})
}

// Stopping a node sends forget messages: its peers' proxies go away at
// once, not after the (hour-long) grace period.
func TestNodeStopSendsForget(t *testing.T) {
	eachSetup(t, func(t *testing.T, s setup) {
		a := newNode(t, "a", s, longGrace)
		b := newNode(t, "b", s, longGrace)
		e1 := b.spawnEngine("one", nil)
		e2 := b.spawnEngine("two", nil)
		connect(t, a, b, s)
		a.waitLearn(e1)
		a.waitLearn(e2)
		must(t, b.tr.Close())
		a.waitForget(e1)
		a.waitForget(e2)
		if _, ok := a.sys.Whereis(e1.String()); ok {
			t.Fatal("proxy name still registered")
		}
		must(t, a.tr.Close()) // everything a's watcher will ever report is in
		if n1, n2 := a.forgetCount(e1), a.forgetCount(e2); n1 != 1 || n2 != 1 {
			t.Fatalf("OnForget fired %d and %d times, want once each", n1, n2)
		}
	})
}

// Three nodes, A connected to B and to C: A reaches both; B and C do not
// learn each other's engines.
func TestThreeNodes(t *testing.T) {
	eachSetup(t, func(t *testing.T, s setup) {
		a, b, c := newNode(t, "a", s), newNode(t, "b", s), newNode(t, "c", s)
		ea := a.spawnEngine("alpha", nil)
		eb := b.spawnEngine("beta", nil)
		ec := c.spawnEngine("gamma", nil)
		connect(t, a, b, s)
		connect(t, a, c, s)
		a.waitLearn(eb)
		a.waitLearn(ec)
		b.waitLearn(ea)
		c.waitLearn(ea)
		ctx := ctxT(t)
		for _, e := range []genserver.Dest{dest(eb), dest(ec)} {
			if _, err := genserver.Call[Echo](ctx, a.sys, e, Echo{"x"}); err != nil {
				t.Fatal(err)
			}
		}
		if _, ok := b.sys.Whereis(ec.String()); ok {
			t.Fatal("B learned C's engine without a connection to C")
		}
		if _, ok := c.sys.Whereis(eb.String()); ok {
			t.Fatal("C learned B's engine without a connection to B")
		}
		if _, err := b.sys.Call(ctx, dest(ec), Echo{"x"}); !errors.Is(err, genserver.ErrNoProcess) {
			t.Fatalf("B calling C's engine: %v", err)
		}
	})
}

// The connection is cut under load with 100 calls in flight: every call
// ends with a reply or a clear error within its deadline, the dialing side
// reconnects, the engines are learned again and calls work again.
func TestConnectionCutUnderLoad(t *testing.T) {
	eachSetup(t, func(t *testing.T, s setup) {
		a, b := newNode(t, "a", s), newNode(t, "b", s)
		holding := make(chan struct{}, 100)
		eb, _, err := b.tr.SpawnEngine("beta", newHoldingEngine(holding))
		must(t, err)
		relay := newCutter(t, s.network, s.network, strings.SplitN(b.listen(s), "://", 2)[1])
		must(t, a.tr.Connect(context.Background(), endpointOf(relay), b.kh.Router()))
		a.waitLearn(eb)

		const calls = 100
		deadline := time.Now().Add(15 * time.Second)
		errs := make(chan error, calls)
		var wg sync.WaitGroup
		for i := 0; i < calls; i++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				ctx, cancel := context.WithDeadline(context.Background(), deadline)
				defer cancel()
				var err error
				if i%2 == 0 {
					_, err = a.sys.Call(ctx, dest(eb), Hold{"forever"}) // in flight until the cut
				} else {
					_, err = genserver.Call[Echo](ctx, a.sys, dest(eb), Echo{"x"})
				}
				errs <- err
			}()
		}
		for i := 0; i < calls/2; i++ { // the held calls are all in flight
			select {
			case <-holding:
			case <-time.After(20 * time.Second):
				t.Fatalf("only %d calls reached the engine", i)
			}
		}
		relay.Cut()
		wg.Wait()
		close(errs)
		for err := range errs {
			if err != nil && !errors.Is(err, callbridge.ErrNoConnection) {
				t.Errorf("a call ended with %v, want a reply or ErrNoConnection", err)
			}
		}
		if time.Now().After(deadline) {
			t.Fatal("calls did not end before their deadline")
		}
		a.waitLearn(eb) // the dialer reconnected and B announced its engines again
		if _, err := genserver.Call[Echo](ctxT(t), a.sys, dest(eb), Echo{"again"}); err != nil {
			t.Fatalf("call after reconnect: %v", err)
		}
	})
}

// A peer cannot pin more than MaxCallsInPerPeer dummy callers: the call
// beyond is answered at once with an error, and the bound frees as calls
// finish.
func TestIncomingCallsBounded(t *testing.T) {
	s := setup{"unix", 0}
	a := newNode(t, "a", s)
	b := newNode(t, "b", s, func(c *transport.Config) { c.MaxCallsInPerPeer = 3 })
	holding := make(chan struct{}, 10)
	eb, _, err := b.tr.SpawnEngine("beta", newHoldingEngine(holding))
	must(t, err)
	connect(t, a, b, s)
	a.waitLearn(eb)
	ctx := ctxT(t)
	done := make(chan error, 3)
	for i := 0; i < 3; i++ {
		go func() { _, err := a.sys.Call(ctx, dest(eb), Hold{"k"}); done <- err }()
		<-holding
	}
	_, err = a.sys.Call(ctx, dest(eb), Echo{"one too many"})
	if err == nil || !strings.Contains(err.Error(), transport.ErrTooManyCalls.Error()) {
		t.Fatalf("call beyond the bound: %v", err)
	}
	must(t, b.sys.Cast(dest(eb), Release{"k", "done"}))
	for i := 0; i < 3; i++ {
		if err := <-done; err != nil {
			t.Fatal(err)
		}
	}
	if _, err := genserver.Call[Echo](ctx, a.sys, dest(eb), Echo{"room again"}); err != nil {
		t.Fatal(err)
	}
}

// A peer's far-future deadline is capped by MaxCallDeadline: the dummy
// caller gives up at the cap and the caller gets ErrTimeout back.
func TestCallDeadlineCapped(t *testing.T) {
	s := setup{"tcp", 0}
	a := newNode(t, "a", s)
	b := newNode(t, "b", s, func(c *transport.Config) { c.MaxCallDeadline = 50 * time.Millisecond })
	eb := b.spawnEngine("beta", nil)
	connect(t, a, b, s)
	a.waitLearn(eb)
	ctx, cancel := context.WithTimeout(context.Background(), time.Hour)
	defer cancel()
	if _, err := a.sys.Call(ctx, dest(eb), Hold{"never"}); !errors.Is(err, genserver.ErrTimeout) {
		t.Fatalf("err = %v, want ErrTimeout from the capped deadline", err)
	}
}

// When the last route goes and does not come back, calls fail at once with
// ErrNoConnection during the grace period; after it the proxy is forgotten
// and calls fail with ErrNoProcess, as for any engine that is gone.
func TestProxyForgottenAfterGrace(t *testing.T) {
	eachSetup(t, func(t *testing.T, s setup) {
		a, b := newNode(t, "a", s, func(c *transport.Config) { c.ForgetGrace = time.Hour }), newNode(t, "b", s)
		eb := b.spawnEngine("beta", nil)
		relay := newCutter(t, s.network, s.network, strings.SplitN(b.listen(s), "://", 2)[1])
		must(t, a.tr.Connect(context.Background(), endpointOf(relay), b.kh.Router()))
		a.waitLearn(eb)
		must(t, relay.Close()) // cut, and no way back
		ctx := ctxT(t)
		select {
		case <-a.downs:
		case <-time.After(20 * time.Second):
			t.Fatal("the connection did not go down")
		}
		// Within the (hour-long) grace: the proxy is there, the route is not.
		if _, err := a.sys.Call(ctx, dest(eb), Echo{"x"}); !errors.Is(err, callbridge.ErrNoConnection) {
			t.Fatalf("during the grace period: %v, want ErrNoConnection", err)
		}
		if _, ok := a.sys.Whereis(eb.String()); !ok {
			t.Fatal("the proxy went before its grace period")
		}
	})
	s := setup{"tcp", 0}
	a, b := newNode(t, "a", s), newNode(t, "b", s) // ForgetGrace 200 ms
	eb := b.spawnEngine("beta", nil)
	relay := newCutter(t, s.network, s.network, strings.SplitN(b.listen(s), "://", 2)[1])
	must(t, a.tr.Connect(context.Background(), endpointOf(relay), b.kh.Router()))
	a.waitLearn(eb)
	must(t, relay.Close())
	a.waitForget(eb)
	if _, err := a.sys.Call(ctxT(t), dest(eb), Echo{"x"}); !errors.Is(err, genserver.ErrNoProcess) {
		t.Fatalf("after the grace period: %v, want ErrNoProcess", err)
	}
}
