package supervisor

import (
	"context"
	"errors"
	"testing"
)

func TestStartReady(t *testing.T) {
	ctx := context.Background()
	t.Run("ready", func(t *testing.T) {
		stopped := false
		stop, err := StartReady(ctx, readyFunc(func(ctx context.Context, ready func()) error {
			ready()
			<-ctx.Done()
			stopped = true
			return ctx.Err() // context.Canceled counts as a clean stop
		}))
		if err != nil {
			t.Fatal(err)
		}
		if err := stop(); err != nil || !stopped {
			t.Fatalf("stop = %v, stopped %v", err, stopped)
		}
		if err := stop(); err != nil {
			t.Fatalf("second stop = %v", err)
		}
	})
	t.Run("stop returns the service's error", func(t *testing.T) {
		stop, err := StartReady(ctx, readyFunc(func(ctx context.Context, ready func()) error {
			ready()
			<-ctx.Done()
			return errBoom
		}))
		if err != nil {
			t.Fatal(err)
		}
		if err := stop(); !errors.Is(err, errBoom) {
			t.Fatalf("stop = %v, want boom", err)
		}
	})
	t.Run("fails before ready", func(t *testing.T) {
		stop, err := StartReady(ctx, readyFunc(func(context.Context, func()) error { return errBoom }))
		if !errors.Is(err, errBoom) || stop != nil {
			t.Fatalf("StartReady = %v (stop %v), want boom", err, stop != nil)
		}
		_, err = StartReady(ctx, readyFunc(func(context.Context, func()) error { return nil }))
		if !errors.Is(err, ErrStartFailed) {
			t.Fatalf("returning nil before ready: %v, want ErrStartFailed", err)
		}
	})
	t.Run("ctx ends first", func(t *testing.T) {
		cctx, cancel := context.WithCancel(ctx)
		started := make(chan struct{})
		go func() { <-started; cancel() }()
		stop, err := StartReady(cctx, readyFunc(func(ctx context.Context, _ func()) error {
			close(started)
			<-ctx.Done() // never ready
			return ctx.Err()
		}))
		if !errors.Is(err, context.Canceled) || stop != nil {
			t.Fatalf("StartReady = %v, want context.Canceled", err)
		}
	})
	t.Run("a supervisor", func(t *testing.T) {
		j := newJournal()
		sup := mustNew(t, Spec{Children: []ChildSpec{worker("a"), worker("b")}, EventHook: j.hook})
		stop, err := StartReady(ctx, sup)
		if err != nil {
			t.Fatal(err)
		}
		expect(t, j.take(t, 2), "start a", "start b") // both ready before StartReady returned
		if n, err := sup.CountChildren(ctx); err != nil || n.Active != 2 {
			t.Fatalf("CountChildren = %+v, %v", n, err)
		}
		if err := stop(); err != nil {
			t.Fatal(err)
		}
		expect(t, j.take(t, 2), "stop b", "stop a")
	})
}
