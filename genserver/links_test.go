package genserver_test

import (
	"context"
	"errors"
	"testing"

	"github.com/enginekit/enginekit/genserver"
)

// watcher records info messages.
func watcher(t *testing.T, sys *genserver.System, trap bool) (genserver.PID, chan any) {
	infos := make(chan any, 16)
	pid := spawn(t, sys, &fn{
		init: func(p *genserver.Process) error { p.TrapExits(trap); return nil },
		call: func(p *genserver.Process, _ genserver.From, req any) (any, error) {
			switch r := req.(type) {
			case genserver.PID:
				return p.Link(r), nil
			case monitorReq:
				return p.Monitor(r.dest), nil
			case demonitorReq:
				return p.Demonitor(r.ref), nil
			}
			return nil, nil
		},
		info: func(_ *genserver.Process, msg any) { infos <- msg },
	})
	return pid, infos
}

type monitorReq struct{ dest genserver.Dest }
type demonitorReq struct{ ref genserver.Ref }

func TestMonitorDown(t *testing.T) {
	sys := newSystem(t)
	w, infos := watcher(t, sys, false)
	target := spawn(t, sys, &fn{cast: func(p *genserver.Process, _ any) { p.Stop(errBoom) }}, genserver.WithName("target"))
	ref, _ := genserver.Call[genserver.Ref](context.Background(), sys, w, monitorReq{genserver.Name("target")})
	_ = sys.Cast(target, "die")
	down := recv(t, infos).(genserver.Down)
	if down.Ref != ref || down.PID != target || down.Reason != errBoom {
		t.Fatalf("down = %+v", down)
	}
	// Already gone: Down with ErrNoProcess at once.
	ref2, _ := genserver.Call[genserver.Ref](context.Background(), sys, w, monitorReq{target})
	down = recv(t, infos).(genserver.Down)
	if down.Ref != ref2 || !errors.Is(down.Reason, genserver.ErrNoProcess) {
		t.Fatalf("down for a dead process = %+v", down)
	}
	ref3, _ := genserver.Call[genserver.Ref](context.Background(), sys, w, monitorReq{genserver.Name("never")})
	if down = recv(t, infos).(genserver.Down); down.Ref != ref3 || !errors.Is(down.Reason, genserver.ErrNoProcess) {
		t.Fatalf("down for an unknown name = %+v", down)
	}
}

func TestDemonitor(t *testing.T) {
	sys := newSystem(t)
	w, infos := watcher(t, sys, false)
	target := spawn(t, sys, &fn{})
	ref, _ := genserver.Call[genserver.Ref](context.Background(), sys, w, monitorReq{target})
	if ok, _ := genserver.Call[bool](context.Background(), sys, w, demonitorReq{ref}); !ok {
		t.Fatal("demonitor of an active monitor reported false")
	}
	marker := spawn(t, sys, &fn{})
	mref, _ := genserver.Call[genserver.Ref](context.Background(), sys, w, monitorReq{marker})
	_ = sys.StopProcess(context.Background(), target, errBoom)
	_ = sys.StopProcess(context.Background(), marker, nil)
	// The marker's Down comes after any Down for target would have: only it arrives.
	if down := recv(t, infos).(genserver.Down); down.Ref != mref {
		t.Fatalf("got %+v, want only the marker's Down", down)
	}
}

func TestLinkPropagatesAbnormalExit(t *testing.T) {
	sys := newSystem(t)
	w, _ := watcher(t, sys, false)
	partner := spawn(t, sys, &fn{})
	if err, _ := genserver.Call[error](context.Background(), sys, w, partner); err != nil {
		t.Fatal(err)
	}
	_ = sys.StopProcess(context.Background(), partner, errBoom)
	if reason := waitExit(t, w); reason != errBoom {
		t.Fatalf("linked process exited with %v, want errBoom", reason)
	}
}

func TestLinkIgnoresNormalExit(t *testing.T) {
	sys := newSystem(t)
	w, _ := watcher(t, sys, false)
	partner := spawn(t, sys, &fn{cast: func(p *genserver.Process, _ any) { p.Stop(nil) }})
	_, _ = sys.Call(context.Background(), w, partner)
	_ = sys.Cast(partner, "stop normally")
	waitExit(t, partner)
	if _, err := sys.Call(context.Background(), w, "still alive?"); err != nil {
		t.Fatalf("a normal exit killed the linked process: %v", err)
	}
}

func TestTrapExits(t *testing.T) {
	sys := newSystem(t)
	w, infos := watcher(t, sys, true)
	partner := spawn(t, sys, &fn{})
	_, _ = sys.Call(context.Background(), w, partner)
	_ = sys.StopProcess(context.Background(), partner, errBoom)
	exit := recv(t, infos).(genserver.Exit)
	if exit.PID != partner || exit.Reason != errBoom {
		t.Fatalf("exit = %+v", exit)
	}
	if !w.Alive() {
		t.Fatal("trapping process died")
	}
	// Links are two-way: the trapping process's crash takes a non-trapping partner down.
	other := spawn(t, sys, &fn{})
	_, _ = sys.Call(context.Background(), w, other)
	_ = sys.StopProcess(context.Background(), w, errBoom)
	if reason := waitExit(t, other); reason != errBoom {
		t.Fatalf("partner exited with %v", reason)
	}
}

func TestLinkToDeadProcess(t *testing.T) {
	sys := newSystem(t)
	w, _ := watcher(t, sys, false)
	gone := spawn(t, sys, &fn{})
	_ = sys.StopProcess(context.Background(), gone, nil)
	if err, _ := genserver.Call[error](context.Background(), sys, w, gone); !errors.Is(err, genserver.ErrNoProcess) {
		t.Fatalf("err = %v", err)
	}
}

func TestSpawnLink(t *testing.T) {
	sys := newSystem(t)
	childPID := make(chan genserver.PID, 1)
	parent := spawn(t, sys, &fn{cast: func(p *genserver.Process, _ any) {
		c, err := p.SpawnLink(func() genserver.Server { return &fn{} })
		if err != nil {
			t.Error(err)
		}
		childPID <- c
	}})
	_ = sys.Cast(parent, "spawn")
	child := recv(t, childPID)
	_ = sys.StopProcess(context.Background(), child, errBoom)
	if reason := waitExit(t, parent); reason != errBoom {
		t.Fatalf("parent exited with %v", reason)
	}
}

func TestUnlink(t *testing.T) {
	sys := newSystem(t)
	w, _ := watcher(t, sys, false)
	partner := spawn(t, sys, &fn{call: func(p *genserver.Process, _ genserver.From, req any) (any, error) {
		p.Unlink(req.(genserver.PID))
		return nil, nil
	}})
	if err, _ := genserver.Call[error](context.Background(), sys, w, partner); err != nil {
		t.Fatal(err)
	}
	if _, err := sys.Call(context.Background(), partner, w); err != nil { // the partner unlinks: both directions go
		t.Fatal(err)
	}
	_ = sys.StopProcess(context.Background(), partner, errBoom)
	if _, err := sys.Call(context.Background(), w, "alive?"); err != nil {
		t.Fatalf("an unlinked process died with its former partner: %v", err)
	}
}
