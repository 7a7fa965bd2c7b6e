package genserver_test

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"github.com/enginekit/enginekit/genserver"
)

func TestInitRunsBeforeSpawnReturns(t *testing.T) {
	sys := newSystem(t)
	inited := false
	pid := spawn(t, sys, &fn{init: func(*genserver.Process) error { inited = true; return nil }}, genserver.WithName("svc"))
	if !inited {
		t.Fatal("Spawn returned before Init ran")
	}
	if got, ok := sys.Whereis("svc"); !ok || got != pid {
		t.Fatalf("Whereis = %v, %v", got, ok)
	}
}

func TestInitFailureLeavesNothing(t *testing.T) {
	sys := newSystem(t)
	for _, init := range []func(*genserver.Process) error{
		func(*genserver.Process) error { return errBoom },
		func(*genserver.Process) error { panic(errBoom) },
	} {
		_, err := sys.Spawn(func() genserver.Server { return &fn{init: init} }, genserver.WithName("x"))
		if !errors.Is(err, errBoom) {
			t.Fatalf("err = %v, want errBoom", err)
		}
		if _, ok := sys.Whereis("x"); ok {
			t.Fatal("name still registered after Init failed")
		}
		if n := sys.NumProcesses(); n != 0 {
			t.Fatalf("%d processes left", n)
		}
	}
}

func TestDuplicateNameRefused(t *testing.T) {
	sys := newSystem(t)
	first := spawn(t, sys, &fn{}, genserver.WithName("unique"))
	_, err := sys.Spawn(func() genserver.Server { return &fn{} }, genserver.WithName("unique"))
	if !errors.Is(err, genserver.ErrNameTaken) {
		t.Fatalf("err = %v, want ErrNameTaken", err)
	}
	if err := sys.StopProcess(context.Background(), first, nil); err != nil {
		t.Fatal(err)
	}
	if _, ok := sys.Whereis("unique"); ok {
		t.Fatal("name not released on exit")
	}
	second := spawn(t, sys, &fn{}, genserver.WithName("unique"))
	if second == first {
		t.Fatal("new process reused the old PID")
	}
}

func TestMessagesDuringInitWait(t *testing.T) {
	sys := newSystem(t)
	var order []string
	done := make(chan []string, 1)
	spawn(t, sys, &fn{
		init: func(p *genserver.Process) error {
			_ = p.System().Cast(p.Self(), "queued during init")
			p.Continue("continue")
			order = append(order, "init")
			return nil
		},
		cont: func(_ *genserver.Process, arg any) { order = append(order, arg.(string)) },
		cast: func(_ *genserver.Process, msg any) { order = append(order, msg.(string)); done <- order },
	})
	got := fmt.Sprint(recv(t, done))
	if want := "[init continue queued during init]"; got != want {
		t.Fatalf("order = %s, want %s", got, want)
	}
}

// Continue set in a callback runs before the next queued message, even when
// that message was already in the same batch.
func TestContinueRunsBeforeNextMessage(t *testing.T) {
	sys := newSystem(t)
	var order []any
	done := make(chan []any, 1)
	gate := make(chan struct{})
	pid := spawn(t, sys, &fn{
		cast: func(p *genserver.Process, msg any) {
			if msg == "gate" {
				<-gate
				return
			}
			order = append(order, msg)
			if msg == 1 {
				p.Continue("c1")
			}
			if msg == 3 {
				done <- order
			}
		},
		cont: func(p *genserver.Process, arg any) {
			order = append(order, arg)
			if arg == "c1" {
				p.Continue("c2") // continuations chain
			}
		},
	})
	_ = sys.Cast(pid, "gate") // hold the process so 1..3 arrive as one batch
	for i := 1; i <= 3; i++ {
		_ = sys.Cast(pid, i)
	}
	close(gate)
	if got, want := fmt.Sprint(recv(t, done)), "[1 c1 c2 2 3]"; got != want {
		t.Fatalf("order = %s, want %s", got, want)
	}
}

func TestPanicCrashesOnlyThatProcess(t *testing.T) {
	for name, send := range map[string]func(sys *genserver.System, pid genserver.PID){
		"cast":     func(sys *genserver.System, pid genserver.PID) { _ = sys.Cast(pid, "panic") },
		"info":     func(sys *genserver.System, pid genserver.PID) { _ = sys.Send(pid, "panic") },
		"call":     func(sys *genserver.System, pid genserver.PID) { _, _ = sys.Call(context.Background(), pid, "panic") },
		"continue": func(sys *genserver.System, pid genserver.PID) { _ = sys.Cast(pid, "continue") },
	} {
		t.Run(name, func(t *testing.T) {
			sys := newSystem(t)
			bystander := spawn(t, sys, &fn{})
			terminated := make(chan error, 1)
			victim := spawn(t, sys, &fn{
				call: func(*genserver.Process, genserver.From, any) (any, error) { panic(errBoom) },
				cast: func(p *genserver.Process, msg any) {
					if msg == "continue" {
						p.Continue(nil)
						return
					}
					panic(errBoom)
				},
				info: func(*genserver.Process, any) { panic(errBoom) },
				cont: func(*genserver.Process, any) { panic(errBoom) },
				term: func(_ *genserver.Process, reason error) { terminated <- reason },
			})
			send(sys, victim)
			reason := waitExit(t, victim)
			var pe *genserver.PanicError
			if !errors.As(reason, &pe) || !errors.Is(reason, errBoom) || len(pe.Stack) == 0 {
				t.Fatalf("reason = %v, want a PanicError wrapping errBoom", reason)
			}
			if got := recv(t, terminated); got != reason {
				t.Fatalf("Terminate got %v", got)
			}
			if v, err := sys.Call(context.Background(), bystander, "ok"); err != nil || v != "ok" {
				t.Fatalf("bystander: %v, %v", v, err)
			}
		})
	}
}

func TestStopAfterCurrentCallback(t *testing.T) {
	sys := newSystem(t)
	handled := 0
	pid := spawn(t, sys, &fn{
		call: func(p *genserver.Process, _ genserver.From, _ any) (any, error) {
			p.Stop(errBoom)
			return "last words", nil
		},
		cast: func(*genserver.Process, any) { handled++ },
	})
	v, err := sys.Call(context.Background(), pid, "stop")
	if err != nil || v != "last words" {
		t.Fatalf("reply %v, %v: the reply of the stopping callback must still go out", v, err)
	}
	if reason := waitExit(t, pid); reason != errBoom {
		t.Fatalf("reason = %v", reason)
	}
	if err := sys.Cast(pid, 1); !errors.Is(err, genserver.ErrNoProcess) {
		t.Fatalf("cast to dead process: %v", err)
	}
}

func TestMailboxLimit(t *testing.T) {
	sys := newSystem(t)
	gate := make(chan struct{})
	block := &fn{cast: func(_ *genserver.Process, msg any) {
		if msg == "gate" {
			<-gate
		}
	}}
	pid := spawn(t, sys, block, genserver.WithMailboxLimit(2, genserver.Reject))
	_ = sys.Cast(pid, "gate")
	// The process may or may not have taken "gate" off the queue yet, so
	// fill until refused and check the bound.
	accepted := 0
	for ; accepted < 10; accepted++ {
		if err := sys.Cast(pid, accepted); err != nil {
			if !errors.Is(err, genserver.ErrMailboxFull) {
				t.Fatalf("err = %v", err)
			}
			break
		}
	}
	if accepted < 1 || accepted > 2 {
		t.Fatalf("accepted %d messages into a mailbox of 2", accepted)
	}
	close(gate)

	gate2 := make(chan struct{})
	crashy := spawn(t, sys, &fn{cast: func(_ *genserver.Process, msg any) {
		if msg == "gate" {
			<-gate2
		}
	}}, genserver.WithMailboxLimit(1, genserver.Crash))
	_ = sys.Cast(crashy, "gate")
	for i := 0; i < 3; i++ {
		_ = sys.Cast(crashy, i)
	}
	close(gate2)
	if reason := waitExit(t, crashy); !errors.Is(reason, genserver.ErrMailboxFull) {
		t.Fatalf("reason = %v", reason)
	}
}

func TestSystemStopRunsTerminate(t *testing.T) {
	sys := genserver.NewSystem(genserver.Config{})
	reasons := make(chan error, 3)
	for i := 0; i < 3; i++ {
		spawn(t, sys, &fn{term: func(_ *genserver.Process, r error) { reasons <- r }})
	}
	if err := sys.Stop(context.Background()); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 3; i++ {
		if r := recv(t, reasons); r != genserver.ErrShutdown {
			t.Fatalf("reason %v", r)
		}
	}
	if _, err := sys.Spawn(func() genserver.Server { return &fn{} }); !errors.Is(err, genserver.ErrSystemStopped) {
		t.Fatalf("spawn after stop: %v", err)
	}
}

func TestSystemsAreSeparate(t *testing.T) {
	a, b := newSystem(t), newSystem(t)
	pa := spawn(t, a, &fn{}, genserver.WithName("same"))
	pb := spawn(t, b, &fn{}, genserver.WithName("same"))
	if pa == pb {
		t.Fatal("two systems returned one PID")
	}
	if _, err := b.Call(context.Background(), pa, 1); !errors.Is(err, genserver.ErrNoProcess) {
		t.Fatalf("a PID of another System must not be reachable: %v", err)
	}
}

func TestKillSkipsTerminateAndTrap(t *testing.T) {
	sys := newSystem(t)
	terminated := false
	pid := spawn(t, sys, &fn{
		init: func(p *genserver.Process) error { p.TrapExits(true); return nil },
		term: func(*genserver.Process, error) { terminated = true },
	})
	if err := sys.Kill(pid); err != nil {
		t.Fatal(err)
	}
	if reason := waitExit(t, pid); reason != genserver.ErrKilled || terminated {
		t.Fatalf("reason %v, terminated %v", reason, terminated)
	}
}
