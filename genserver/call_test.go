package genserver_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/enginekit/enginekit/genserver"
)

func TestCallAndCast(t *testing.T) {
	sys := newSystem(t)
	n := 0
	spawn(t, sys, &fn{
		call: func(_ *genserver.Process, _ genserver.From, _ any) (any, error) { return n, nil },
		cast: func(_ *genserver.Process, msg any) { n += msg.(int) },
	}, genserver.WithName("counter"))
	for i := 1; i <= 10; i++ {
		if err := sys.Cast(genserver.Name("counter"), i); err != nil {
			t.Fatal(err)
		}
	}
	got, err := genserver.Call[int](context.Background(), sys, genserver.Name("counter"), "get")
	if err != nil || got != 55 {
		t.Fatalf("got %d, %v; want 55", got, err)
	}
}

func TestCallReturnsHandlerError(t *testing.T) {
	sys := newSystem(t)
	pid := spawn(t, sys, &fn{call: func(*genserver.Process, genserver.From, any) (any, error) { return nil, errBoom }})
	if _, err := sys.Call(context.Background(), pid, "x"); !errors.Is(err, errBoom) {
		t.Fatalf("err = %v, want errBoom", err)
	}
	if !pid.Alive() {
		t.Fatal("an error reply must not stop the process")
	}
}

func TestCallTypedReplyMismatch(t *testing.T) {
	sys := newSystem(t)
	pid := spawn(t, sys, &fn{})
	if _, err := genserver.Call[int](context.Background(), sys, pid, "a string"); !errors.Is(err, genserver.ErrBadReply) {
		t.Fatalf("err = %v, want ErrBadReply", err)
	}
}

func TestCallNoProcess(t *testing.T) {
	sys := newSystem(t)
	if _, err := sys.Call(context.Background(), genserver.Name("nobody"), 1); !errors.Is(err, genserver.ErrNoProcess) {
		t.Fatalf("err = %v", err)
	}
	if err := sys.Cast(genserver.Name("nobody"), 1); !errors.Is(err, genserver.ErrNoProcess) {
		t.Fatalf("cast err = %v", err)
	}
	if _, err := sys.Call(context.Background(), genserver.PID{}, 1); !errors.Is(err, genserver.ErrNoProcess) {
		t.Fatalf("zero pid err = %v", err)
	}
}

// The callee dies while the call is pending: the call fails with the exit
// reason at once (zero fake time elapses), not at the timeout.
func TestCallFailsAtOnceWhenCalleeDies(t *testing.T) {
	for _, tc := range []struct {
		name string
		die  func(p *genserver.Process)
		is   error
	}{
		{"stop", func(p *genserver.Process) { p.Stop(errBoom) }, errBoom},
		{"panic", func(p *genserver.Process) { panic(errBoom) }, errBoom},
		{"normal", func(p *genserver.Process) { p.Stop(nil) }, genserver.ErrExited},
	} {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				sys := genserver.NewSystem(genserver.Config{})
				defer sys.Stop(context.Background())
				pid := spawn(t, sys, &fn{call: func(p *genserver.Process, _ genserver.From, _ any) (any, error) {
					tc.die(p)
					return genserver.NoReply, nil
				}})
				start := time.Now()
				_, err := sys.Call(context.Background(), pid, "die")
				var exit *genserver.ExitError
				if !errors.As(err, &exit) || exit.PID != pid || !errors.Is(err, tc.is) || !errors.Is(err, genserver.ErrExited) {
					t.Fatalf("err = %v, want an ExitError from %v matching %v", err, pid, tc.is)
				}
				if waited := time.Since(start); waited != 0 {
					t.Fatalf("call failed after %v of fake time, want at once", waited)
				}
			})
		})
	}
}

func TestCallDefaultTimeout(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		sys := genserver.NewSystem(genserver.Config{})
		defer sys.Stop(context.Background())
		pid := spawn(t, sys, &fn{call: func(*genserver.Process, genserver.From, any) (any, error) { return genserver.NoReply, nil }})
		start := time.Now()
		_, err := sys.Call(context.Background(), pid, "never answered")
		if !errors.Is(err, genserver.ErrTimeout) {
			t.Fatalf("err = %v, want ErrTimeout", err)
		}
		if waited := time.Since(start); waited != genserver.DefaultCallTimeout {
			t.Fatalf("timed out after %v, want %v", waited, genserver.DefaultCallTimeout)
		}
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		start = time.Now()
		if _, err := sys.Call(ctx, pid, "x"); !errors.Is(err, genserver.ErrTimeout) || time.Since(start) != time.Second {
			t.Fatalf("ctx deadline: err = %v after %v", err, time.Since(start))
		}
		ctx, cancel2 := context.WithCancel(context.Background())
		cancel2()
		if _, err := sys.Call(ctx, pid, "x"); !errors.Is(err, context.Canceled) {
			t.Fatalf("cancelled ctx: err = %v", err)
		}
	})
}

// A call without a ctx deadline fixes its deadline lazily (when the caller
// parks or the callee asks, whichever is first): both sides see the same
// deadline, DefaultCallTimeout after the call, and the caller stops waiting
// exactly then, whoever asked first.
func TestCallDefaultDeadlineSeenByCallee(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		sys := genserver.NewSystem(genserver.Config{})
		defer sys.Stop(context.Background())
		seen := make(chan time.Time, 1)
		held := make(chan genserver.From, 1)
		pid := spawn(t, sys, &fn{call: func(_ *genserver.Process, from genserver.From, req any) (any, error) {
			if req == "ask" {
				seen <- from.Deadline() // before the caller has parked, or after: same answer
			}
			held <- from
			return genserver.NoReply, nil
		}})
		for _, req := range []string{"ask", "hold"} {
			start := time.Now()
			_, err := sys.Call(context.Background(), pid, req)
			if !errors.Is(err, genserver.ErrTimeout) || time.Since(start) != genserver.DefaultCallTimeout {
				t.Fatalf("%s: err = %v after %v", req, err, time.Since(start))
			}
			from := <-held
			if req == "ask" {
				if d := <-seen; !d.Equal(start.Add(genserver.DefaultCallTimeout)) {
					t.Fatalf("callee saw deadline %v, want %v", d, start.Add(genserver.DefaultCallTimeout))
				}
			}
			if from.Pending() || from.Deadline().After(time.Now()) {
				t.Fatalf("%s: From of a timed-out call: pending %v, deadline %v after now %v", req, from.Pending(), from.Deadline(), time.Now())
			}
		}
	})
}

// A reply that arrives after the caller gave up goes nowhere: Reply reports
// false, and the next call through a recycled slot gets its own reply.
func TestLateReplyIsDropped(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		sys := genserver.NewSystem(genserver.Config{})
		defer sys.Stop(context.Background())
		held := make(chan genserver.From, 1)
		pid := spawn(t, sys, &fn{call: func(_ *genserver.Process, from genserver.From, req any) (any, error) {
			if req == "hold" {
				held <- from
				return genserver.NoReply, nil
			}
			return req, nil
		}})
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		if _, err := sys.Call(ctx, pid, "hold"); !errors.Is(err, genserver.ErrTimeout) {
			t.Fatalf("err = %v", err)
		}
		from := <-held
		if from.Pending() {
			t.Fatal("From of an abandoned call reports pending")
		}
		for i := 0; i < 100; i++ { // recycle the slot many times
			if v, err := sys.Call(context.Background(), pid, i); err != nil || v != i {
				t.Fatalf("call %d = %v, %v", i, v, err)
			}
		}
		if genserver.Reply(from, "late", nil) {
			t.Fatal("late reply was accepted")
		}
		if v, err := sys.Call(context.Background(), pid, "fresh"); err != nil || v != "fresh" {
			t.Fatalf("call after late reply = %v, %v", v, err)
		}
	})
}

func TestCallingSelfFailsAtOnce(t *testing.T) {
	sys := newSystem(t)
	pid := spawn(t, sys, &fn{call: func(p *genserver.Process, _ genserver.From, req any) (any, error) {
		if req == "outer" {
			_, err := genserver.Call[any](context.Background(), p, p.Self(), "inner")
			return nil, err
		}
		return req, nil
	}}, genserver.WithName("me"))
	if _, err := sys.Call(context.Background(), pid, "outer"); !errors.Is(err, genserver.ErrCallingSelf) {
		t.Fatalf("err = %v, want ErrCallingSelf", err)
	}
}

// A deferred reply: the From is handed to another process, which answers;
// a second Reply is ignored; the From tells who called.
func TestDeferredReplyFromAnotherProcess(t *testing.T) {
	sys := newSystem(t)
	type handOff struct{ from genserver.From }
	second := make(chan bool, 1)
	var sawCaller genserver.PID
	replier := spawn(t, sys, &fn{cast: func(_ *genserver.Process, msg any) {
		h := msg.(handOff)
		genserver.Reply(h.from, "from the replier", nil)
		second <- genserver.Reply(h.from, "again", nil)
	}})
	front := spawn(t, sys, &fn{call: func(p *genserver.Process, from genserver.From, _ any) (any, error) {
		sawCaller = from.PID()
		p.Cast(replier, handOff{from})
		return genserver.NoReply, nil
	}})
	client := spawn(t, sys, &fn{call: func(p *genserver.Process, _ genserver.From, _ any) (any, error) {
		return genserver.Call[string](context.Background(), p, front, "go")
	}})
	got, err := genserver.Call[string](context.Background(), sys, client, "start")
	if err != nil || got != "from the replier" {
		t.Fatalf("got %q, %v", got, err)
	}
	if recv(t, second) {
		t.Fatal("second Reply was accepted")
	}
	if sawCaller != client {
		t.Fatalf("From.PID = %v, want %v", sawCaller, client)
	}
}

func TestDeferredReplyFromGoroutine(t *testing.T) {
	sys := newSystem(t)
	var wg sync.WaitGroup
	defer wg.Wait()
	pid := spawn(t, sys, &fn{call: func(_ *genserver.Process, from genserver.From, req any) (any, error) {
		wg.Add(1)
		go func() { defer wg.Done(); genserver.Reply(from, req.(int)*2, nil) }()
		return genserver.NoReply, nil
	}})
	var callers sync.WaitGroup
	for i := 0; i < 50; i++ {
		callers.Add(1)
		go func() {
			defer callers.Done()
			if v, err := genserver.Call[int](context.Background(), sys, pid, i); err != nil || v != 2*i {
				t.Errorf("call %d = %d, %v", i, v, err)
			}
		}()
	}
	callers.Wait()
}

func TestCallAsReportsAddress(t *testing.T) {
	sys := newSystem(t)
	pid := spawn(t, sys, &fn{call: func(_ *genserver.Process, from genserver.From, _ any) (any, error) {
		return from.Address(), nil
	}})
	v, err := sys.Relay().CallAs(context.Background(), genserver.PID{}, "ek1remote", pid, "who")
	if err != nil || v != "ek1remote" {
		t.Fatalf("got %v, %v", v, err)
	}
	if _, err := (genserver.Relay{}).CallAs(context.Background(), genserver.PID{}, "x", pid, "who"); !errors.Is(err, genserver.ErrNoProcess) {
		t.Fatalf("zero Relay: %v", err)
	}
}

func TestPerSenderOrder(t *testing.T) {
	sys := newSystem(t)
	const n = 20000
	const senders = 4
	done := make(chan []int, 1)
	next := make([]int, senders)
	bad := -1
	pid := spawn(t, sys, &fn{cast: func(_ *genserver.Process, msg any) {
		m := msg.([2]int)
		if m[1] != next[m[0]] && bad < 0 {
			bad = m[0]
		}
		next[m[0]] = m[1] + 1
		if m[1] == n-1 {
			next := next
			if all(next, n) {
				done <- append([]int{bad}, next...)
			}
		}
	}})
	for s := 0; s < senders; s++ {
		go func() {
			for i := 0; i < n; i++ {
				_ = sys.Cast(pid, [2]int{s, i})
			}
		}()
	}
	got := recv(t, done)
	if got[0] >= 0 {
		t.Fatalf("sender %d's messages arrived out of order", got[0])
	}
}

func all(xs []int, v int) bool {
	for _, x := range xs {
		if x != v {
			return false
		}
	}
	return true
}

func TestSender(t *testing.T) {
	sys := newSystem(t)
	senders := make(chan genserver.PID, 3)
	target := spawn(t, sys, &fn{
		cast: func(p *genserver.Process, _ any) { senders <- p.Sender() },
		info: func(p *genserver.Process, _ any) { senders <- p.Sender() },
	})
	from := spawn(t, sys, &fn{cast: func(p *genserver.Process, _ any) { _ = p.Cast(target, "hi") }})
	_ = sys.Cast(from, "go")
	if got := recv(t, senders); got != from {
		t.Fatalf("Sender = %v, want %v", got, from)
	}
	_ = sys.Cast(target, "anonymous")
	if got := recv(t, senders); !got.IsZero() {
		t.Fatalf("Sender of a System.Cast = %v, want zero", got)
	}
	relay := sys.Relay()
	_ = relay.SendFrom(from, target, "on behalf")
	if got := recv(t, senders); got != from {
		t.Fatalf("Sender of SendFrom = %v", got)
	}
	_ = relay.CastFrom(from, target, "on behalf")
	if got := recv(t, senders); got != from {
		t.Fatalf("Sender of CastFrom = %v", got)
	}
	if err := (genserver.Relay{}).SendFrom(from, target, "x"); !errors.Is(err, genserver.ErrNoProcess) {
		t.Fatalf("zero Relay: %v", err)
	}
}

type ctxKey struct{}

// The handler sees the caller's ctx in From.Context (its values: a trace
// context above all); the zero From gives context.Background().
func TestFromContextIsTheCallersCtx(t *testing.T) {
	sys := newSystem(t)
	pid := spawn(t, sys, &fn{call: func(_ *genserver.Process, from genserver.From, _ any) (any, error) {
		v, _ := from.Context().Value(ctxKey{}).(string)
		return v, nil
	}})
	ctx := context.WithValue(context.Background(), ctxKey{}, "trace me")
	if v, err := sys.Call(ctx, pid, "x"); err != nil || v != "trace me" {
		t.Fatalf("got %v, %v", v, err)
	}
	if v, err := sys.Relay().CallAs(ctx, genserver.PID{}, "remote", pid, "x"); err != nil || v != "trace me" {
		t.Fatalf("CallAs: got %v, %v", v, err)
	}
	if (genserver.From{}).Context() != context.Background() {
		t.Fatal("the zero From's Context is not Background")
	}
}
