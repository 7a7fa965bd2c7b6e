package genserver_test

import (
	"context"
	"errors"
	"testing"

	"github.com/enginekit/enginekit/genserver"
)

// Each Serve is a new incarnation: fresh Server value, new PID, the name
// registered again.
func TestServiceIncarnations(t *testing.T) {
	sys := newSystem(t)
	made := 0
	svc := sys.Service(func() genserver.Server {
		made++
		n := 0
		return &fn{
			call: func(p *genserver.Process, _ genserver.From, req any) (any, error) {
				if req == "crash" {
					panic(errBoom)
				}
				n++
				return n, nil
			},
		}
	}, genserver.WithName("svc"))

	var pids []genserver.PID
	for i := 0; i < 2; i++ {
		ready := make(chan struct{})
		served := make(chan error, 1)
		go func() { served <- svc.ServeReady(context.Background(), func() { close(ready) }) }()
		<-ready
		pid, ok := sys.Whereis("svc")
		if !ok || pid != svc.PID() {
			t.Fatalf("incarnation %d: whereis %v %v, PID %v", i, pid, ok, svc.PID())
		}
		pids = append(pids, pid)
		if n, _ := genserver.Call[int](context.Background(), sys, genserver.Name("svc"), "inc"); n != 1 {
			t.Fatalf("incarnation %d starts at %d, want fresh state", i, n)
		}
		_, _ = sys.Call(context.Background(), genserver.Name("svc"), "crash")
		if err := recv(t, served); !errors.Is(err, errBoom) {
			t.Fatalf("Serve returned %v, want the crash reason", err)
		}
	}
	if pids[0] == pids[1] || made != 2 {
		t.Fatalf("pids %v, made %d", pids, made)
	}
}

func TestServiceShutdownIsNormal(t *testing.T) {
	sys := newSystem(t)
	reason := make(chan error, 1)
	svc := sys.Service(func() genserver.Server {
		return &fn{term: func(_ *genserver.Process, r error) { reason <- r }}
	})
	ctx, cancel := context.WithCancel(context.Background())
	served := make(chan error, 1)
	ready := make(chan struct{})
	go func() { served <- svc.ServeReady(ctx, func() { close(ready) }) }()
	<-ready
	cancel()
	if err := recv(t, served); err != nil {
		t.Fatalf("Serve after cancel = %v, want nil", err)
	}
	if r := recv(t, reason); r != genserver.ErrShutdown {
		t.Fatalf("Terminate reason %v", r)
	}
}

func TestServiceInitErrorReturned(t *testing.T) {
	sys := newSystem(t)
	svc := sys.Service(func() genserver.Server {
		return &fn{init: func(*genserver.Process) error { return errBoom }}
	})
	if err := svc.ServeReady(context.Background(), func() { t.Error("ready called after Init failed") }); !errors.Is(err, errBoom) {
		t.Fatalf("err = %v", err)
	}
}
