package genserver_test

import (
	"context"
	"errors"
	"testing"

	"github.com/enginekit/enginekit/genserver"
	"github.com/enginekit/enginekit/supervisor"
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
	stop, err := supervisor.StartReady(context.Background(), svc)
	if err != nil {
		t.Fatal(err)
	}
	if err := stop(); err != nil {
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

// A Service whose process was stopped by System.Stop says so: its supervisor
// must not restart it into a System that takes no new processes.
func TestServiceStoppedWithSystem(t *testing.T) {
	sys := genserver.NewSystem(genserver.Config{})
	svc := sys.Service(func() genserver.Server { return &fn{} })
	stop, err := supervisor.StartReady(context.Background(), svc)
	if err != nil {
		t.Fatal(err)
	}
	if err := sys.Stop(context.Background()); err != nil {
		t.Fatal(err)
	}
	if err := stop(); !errors.Is(err, genserver.ErrSystemStopped) || !errors.Is(err, genserver.ErrShutdown) {
		t.Fatalf("Serve = %v, want ErrSystemStopped wrapping ErrShutdown", err)
	}
	if err := svc.Serve(context.Background()); !errors.Is(err, genserver.ErrSystemStopped) {
		t.Fatalf("Serve on a stopped System = %v", err)
	}
}
