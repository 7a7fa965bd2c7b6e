package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/enginekit/enginekit/events"
	"github.com/enginekit/enginekit/genserver"
	"github.com/enginekit/enginekit/supervisor"
	"github.com/thejerf/suture/v4"
)

func runDemo(ctx context.Context, args []string, stdout, _ io.Writer) error {
	fs := newFlags("demo", "demo", stdout)
	if err := parse(fs, args); err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	say := func(format string, a ...any) { fmt.Fprintf(stdout, format+"\n", a...) }
	say("enginekit demo: the code is in cmd/enginekit/demo.go (one node) and cmd/enginekit/demo_nodes.go (two nodes).")
	say("")
	if err := localDemo(ctx, say); err != nil {
		return err
	}
	return nodesDemo(ctx, say)
}

// --- engines used by the demo -------------------------------------------

// counter counts casts and answers calls with the total.
type counter struct{ n int }

type (
	add struct{ N int }
	get struct{}
)

func (c *counter) HandleCall(_ *genserver.Process, _ genserver.From, req any) (any, error) {
	if _, ok := req.(get); ok {
		return c.n, nil
	}
	return nil, fmt.Errorf("counter: unknown request %T", req)
}

func (c *counter) HandleCast(_ *genserver.Process, msg any) {
	if a, ok := msg.(add); ok {
		c.n += a.N
	}
}

// vault holds a balance; a withdrawal larger than the balance does not fail
// and does not block the vault: its reply is deferred until deposits cover it.
type vault struct {
	balance int
	waiting []withdrawal
	// publish, when set, announces each deposit as an event.
	publish func(from genserver.PID, ev events.Event)
}

type (
	deposit  struct{ N int }
	withdraw struct{ N int }
)

type withdrawal struct {
	from genserver.From
	n    int
}

func (v *vault) HandleCall(_ *genserver.Process, from genserver.From, req any) (any, error) {
	w, ok := req.(withdraw)
	if !ok {
		return nil, fmt.Errorf("vault: unknown request %T", req)
	}
	if w.N <= v.balance {
		v.balance -= w.N
		return v.balance, nil
	}
	v.waiting = append(v.waiting, withdrawal{from, w.N})
	return genserver.NoReply, nil
}

func (v *vault) HandleCast(p *genserver.Process, msg any) {
	if d, ok := msg.(deposit); ok {
		v.balance += d.N
		if v.publish != nil {
			size := "small"
			if d.N >= 35 {
				size = "large"
			}
			v.publish(p.Self(), events.Event{Topic: "vault.deposit", Attrs: []events.Attr{{Key: "size", Value: size}}, Payload: d})
		}
	}
	rest := v.waiting[:0]
	for _, w := range v.waiting {
		if w.n <= v.balance {
			v.balance -= w.n
			genserver.Reply(w.from, v.balance, nil)
		} else {
			rest = append(rest, w)
		}
	}
	v.waiting = rest
}

// fragile crashes when asked to.
type fragile struct{}

type crash struct{}

func (fragile) HandleCall(_ *genserver.Process, _ genserver.From, req any) (any, error) {
	if _, ok := req.(crash); ok {
		panic("asked to crash")
	}
	return "fine", nil
}
func (fragile) HandleCast(*genserver.Process, any) {}

// --- the local part ------------------------------------------------------

func localDemo(ctx context.Context, say func(string, ...any)) error {
	sys := genserver.NewSystem(genserver.Config{Name: "local"})
	defer sys.Stop(context.Background())

	restarted := make(chan string, 4)
	service := func(name string, f func() genserver.Server) supervisor.ChildSpec {
		svc := sys.Service(f, genserver.WithName(name))
		return supervisor.ChildSpec{ID: name, Start: func() suture.Service { return svc }}
	}
	sup, err := supervisor.New(supervisor.Spec{
		Name:     "app",
		Strategy: supervisor.OneForOne,
		Children: []supervisor.ChildSpec{
			service("counter", func() genserver.Server { return &counter{} }),
			service("vault", func() genserver.Server { return &vault{} }),
			service("fragile", func() genserver.Server { return fragile{} }),
		},
		EventHook: func(e supervisor.Event) {
			if r, ok := e.(supervisor.ChildStarted); ok && r.Restarts > 0 {
				restarted <- r.Child
			}
		},
	})
	if err != nil {
		return err
	}
	supCtx, stopSup := context.WithCancel(ctx)
	supDone := make(chan error, 1)
	ready := make(chan struct{})
	go func() { supDone <- sup.ServeReady(supCtx, func() { close(ready) }) }()
	defer func() { stopSup(); <-supDone }()
	select {
	case <-ready:
	case err := <-supDone:
		return fmt.Errorf("supervisor did not start: %w", err)
	}
	say("== one node: a supervisor %q with three engines: counter, vault, fragile", "app")

	for _, n := range []int{1, 2, 3} {
		_ = sys.Cast(genserver.Name("counter"), add{n})
		say("cast  counter <- add %d", n)
	}
	n, err := genserver.Call[int](ctx, sys, genserver.Name("counter"), get{})
	if err != nil {
		return err
	}
	say("call  counter <- get          => %d (casts from one sender arrive in order)", n)

	say("call  vault   <- withdraw 50  (balance 0: the vault defers the reply and keeps serving)")
	got := make(chan int, 1)
	go func() {
		left, err := genserver.Call[int](ctx, sys, genserver.Name("vault"), withdraw{50})
		if err != nil {
			left = -1
		}
		got <- left
	}()
	for _, d := range []int{30, 40} {
		_ = sys.Cast(genserver.Name("vault"), deposit{d})
		say("cast  vault   <- deposit %d", d)
	}
	select {
	case left := <-got:
		say("      vault   => withdraw 50 answered later, balance now %d", left)
	case <-ctx.Done():
		return ctx.Err()
	}

	old, _ := sys.Whereis("fragile")
	_, err = sys.Call(ctx, genserver.Name("fragile"), crash{})
	var exit *genserver.ExitError
	if !errors.As(err, &exit) {
		return fmt.Errorf("expected the crash to fail the call, got %v", err)
	}
	say("call  fragile <- crash        => the engine panicked; the caller got: %v", exit.Reason)
	select {
	case id := <-restarted:
		say("      supervisor restarted %s", id)
	case <-ctx.Done():
		return ctx.Err()
	}
	reply, err := genserver.Call[string](ctx, sys, genserver.Name("fragile"), "ping")
	if err != nil {
		return err
	}
	now, _ := sys.Whereis("fragile")
	say("call  fragile <- ping         => %q from the new incarnation (pid %v, was %v)", reply, now, old)
	return nil
}
