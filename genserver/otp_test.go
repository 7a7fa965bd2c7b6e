package genserver_test

// Where genserver follows OTP closely (issue 11): each test names the OTP
// behaviour it checks.

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"testing/synctest"

	"github.com/enginekit/enginekit/genserver"
	"github.com/rs/zerolog"
)

// OTP: stopping or killing a process that is gone answers noproc.
func TestStopAndKillDeadProcess(t *testing.T) {
	sys := newSystem(t)
	pid := spawn(t, sys, &fn{})
	if err := sys.StopProcess(context.Background(), pid, nil); err != nil {
		t.Fatalf("first stop: %v", err)
	}
	if err := sys.StopProcess(context.Background(), pid, nil); !errors.Is(err, genserver.ErrNoProcess) {
		t.Errorf("StopProcess of a dead PID = %v, want ErrNoProcess", err)
	}
	if err := sys.Kill(pid); !errors.Is(err, genserver.ErrNoProcess) {
		t.Errorf("Kill of a dead PID = %v, want ErrNoProcess", err)
	}
	if err := sys.Cast(pid, "x"); !errors.Is(err, genserver.ErrNoProcess) {
		t.Errorf("Cast of a dead PID = %v, want ErrNoProcess", err)
	}
}

// syncBuffer is a log sink written by processes and read by the test.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// OTP: {shutdown, Why} is no crash: no crash report. Any reason matching
// ErrShutdown is a shutdown.
func TestWrappedShutdownIsNotACrash(t *testing.T) {
	// In a bubble, synctest.Wait makes sure every exit has been logged:
	// a process logs its crash after its exit is visible.
	synctest.Test(t, func(t *testing.T) {
		var logs syncBuffer
		log := zerolog.New(&logs)
		sys := genserver.NewSystem(genserver.Config{Logger: log})
		defer sys.Stop(context.Background())
		why := fmt.Errorf("%w: config reloaded", genserver.ErrShutdown)
		for _, stop := range []func(genserver.PID) error{
			func(pid genserver.PID) error { return sys.StopProcess(context.Background(), pid, why) },
			func(pid genserver.PID) error { return sys.Cast(pid, "stop") },
		} {
			pid, _ := sys.Spawn(func() genserver.Server {
				return &fn{cast: func(p *genserver.Process, _ any) { p.Stop(why) }}
			})
			if err := stop(pid); err != nil {
				t.Fatal(err)
			}
			if reason := waitExit(t, pid); reason != why {
				t.Fatalf("reason = %v, want %v", reason, why)
			}
		}
		crash, _ := sys.Spawn(func() genserver.Server { return &fn{} })
		_ = sys.StopProcess(context.Background(), crash, errBoom)
		synctest.Wait()
		out := logs.String()
		if strings.Count(out, "process crashed") != 1 || !strings.Contains(out, "boom") {
			t.Fatalf("want exactly one crash report, for boom; log:\n%s", out)
		}
	})
}

// OTP: signals between a pair of processes keep their order. B sends M to A
// and exits: A, trapping exits, gets M before B's Exit even when both wait
// in its mailbox.
func TestTrappedExitAfterSendersMessages(t *testing.T) {
	sys := newSystem(t)
	got := make(chan string, 4)
	busy, release := make(chan struct{}), make(chan struct{})
	a := spawn(t, sys, &fn{
		init: func(p *genserver.Process) error { p.TrapExits(true); return nil },
		cast: func(_ *genserver.Process, msg any) {
			if msg == "block" {
				close(busy)
				<-release
				return
			}
			got <- fmt.Sprint(msg)
		},
		info: func(_ *genserver.Process, msg any) {
			if e, ok := msg.(genserver.Exit); ok {
				got <- "exit " + e.Reason.Error()
			}
		},
	})
	b := spawn(t, sys, &fn{
		init: func(p *genserver.Process) error { return p.Link(a) },
		cast: func(p *genserver.Process, msg any) {
			_ = p.Cast(a, "M")
			p.Stop(errBoom)
		},
	})
	_ = sys.Cast(a, "block")
	<-busy
	_ = sys.Cast(b, "go")
	waitExit(t, b)
	close(release)
	if first, second := recv(t, got), recv(t, got); first != "M" || second != "exit boom" {
		t.Fatalf("A got %q then %q, want M then the Exit", first, second)
	}
}

// OTP: init returning {stop, Reason} fails the start with Reason, and
// terminate does not run.
func TestInitStopFailsSpawn(t *testing.T) {
	sys := newSystem(t)
	for _, tc := range []struct {
		reason error
		want   error
	}{{errBoom, errBoom}, {nil, genserver.ErrInitStopped}} {
		terminated := false
		_, err := sys.Spawn(func() genserver.Server {
			return &fn{
				init: func(p *genserver.Process) error { p.Stop(tc.reason); return nil },
				term: func(*genserver.Process, error) { terminated = true },
			}
		}, genserver.WithName("stopper"))
		if !errors.Is(err, tc.want) {
			t.Errorf("Init Stop(%v): Spawn = %v, want %v", tc.reason, err, tc.want)
		}
		if terminated {
			t.Errorf("Init Stop(%v): Terminate ran", tc.reason)
		}
		if n := sys.NumProcesses(); n != 0 {
			t.Errorf("Init Stop(%v): %d processes remain", tc.reason, n)
		}
		if _, ok := sys.Whereis("stopper"); ok {
			t.Errorf("Init Stop(%v): name still registered", tc.reason)
		}
	}
}

// OTP: init returning ignore starts nothing, and is no error for a linked
// parent: it exits normally.
func TestInitIgnore(t *testing.T) {
	sys := newSystem(t)
	exits := make(chan genserver.Exit, 1)
	spawned := make(chan error, 1)
	parent := spawn(t, sys, &fn{
		init: func(p *genserver.Process) error { p.TrapExits(true); return nil },
		cast: func(p *genserver.Process, _ any) {
			_, err := p.SpawnLink(func() genserver.Server {
				return &fn{init: func(*genserver.Process) error { return fmt.Errorf("not today: %w", genserver.ErrIgnore) }}
			})
			spawned <- err
		},
		info: func(_ *genserver.Process, msg any) {
			if e, ok := msg.(genserver.Exit); ok {
				exits <- e
			}
		},
	})
	_ = sys.Cast(parent, "spawn")
	if err := recv(t, spawned); !errors.Is(err, genserver.ErrIgnore) {
		t.Fatalf("SpawnLink of an ignoring Init = %v, want ErrIgnore", err)
	}
	if e := recv(t, exits); e.Reason != nil {
		t.Fatalf("the parent got Exit %v, want a normal exit", e.Reason)
	}
	if n := sys.NumProcesses(); n != 1 {
		t.Fatalf("%d processes, want only the parent", n)
	}
}
