package genserver_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/enginekit/enginekit/genserver"
)

// fn is a Server made of closures, so each test states only the behaviour
// it needs.
type fn struct {
	init func(p *genserver.Process) error
	call func(p *genserver.Process, from genserver.From, req any) (any, error)
	cast func(p *genserver.Process, msg any)
	info func(p *genserver.Process, msg any)
	cont func(p *genserver.Process, arg any)
	term func(p *genserver.Process, reason error)
}

func (f *fn) Init(p *genserver.Process) error {
	if f.init != nil {
		return f.init(p)
	}
	return nil
}

func (f *fn) HandleCall(p *genserver.Process, from genserver.From, req any) (any, error) {
	if f.call != nil {
		return f.call(p, from, req)
	}
	return req, nil
}

func (f *fn) HandleCast(p *genserver.Process, msg any) {
	if f.cast != nil {
		f.cast(p, msg)
	}
}

func (f *fn) HandleInfo(p *genserver.Process, msg any) {
	if f.info != nil {
		f.info(p, msg)
	}
}

func (f *fn) HandleContinue(p *genserver.Process, arg any) {
	if f.cont != nil {
		f.cont(p, arg)
	}
}

func (f *fn) Terminate(p *genserver.Process, reason error) {
	if f.term != nil {
		f.term(p, reason)
	}
}

func newSystem(t *testing.T) *genserver.System {
	t.Helper()
	sys := genserver.NewSystem(genserver.Config{Name: t.Name()})
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := sys.Stop(ctx); err != nil {
			t.Errorf("stopping system: %v", err)
		}
	})
	return sys
}

func spawn(t *testing.T, sys *genserver.System, f *fn, opts ...genserver.Option) genserver.PID {
	t.Helper()
	pid, err := sys.Spawn(func() genserver.Server { return f }, opts...)
	if err != nil {
		t.Fatalf("spawn: %v", err)
	}
	return pid
}

func waitExit(t *testing.T, pid genserver.PID) error {
	t.Helper()
	select {
	case <-pid.Done():
		return pid.Reason()
	case <-time.After(10 * time.Second):
		t.Fatalf("%v did not exit", pid)
		return nil
	}
}

func recv[T any](t *testing.T, ch <-chan T) T {
	t.Helper()
	select {
	case v := <-ch:
		return v
	case <-time.After(10 * time.Second):
		t.Fatal("nothing received within 10s")
		var zero T
		return zero
	}
}

var errBoom = errors.New("boom")
