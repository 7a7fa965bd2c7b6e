package genserver_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/enginekit/enginekit/genserver"
	"go.uber.org/goleak"
)

// Activations run on reused worker goroutines (System.serve). These tests
// attack that: a process that crashes or is killed on a worker that ran
// others before it, order and exclusion per process under many senders,
// and what Stop and the idle reaper leave behind.

// A panic in a callback on a reused worker is the process's exit exactly
// as on a fresh goroutine: Terminate sees the PanicError, monitors and
// trapping links get it, and the worker goes on serving other processes.
func TestWorkerPanicReportedAndWorkerReused(t *testing.T) {
	sys := newSystem(t)
	healthy := spawn(t, sys, &fn{})
	w, infos := watcher(t, sys, true)
	for i := range 20 {
		// Warm the workers: activations that end leave idle workers.
		if _, err := sys.Call(context.Background(), healthy, i); err != nil {
			t.Fatal(err)
		}
		terms := make(chan error, 1)
		victim := spawn(t, sys, &fn{
			cast: func(*genserver.Process, any) { panic(fmt.Sprint("boom ", i)) },
			term: func(_ *genserver.Process, reason error) { terms <- reason },
		})
		ref, _ := genserver.Call[genserver.Ref](context.Background(), sys, w, monitorReq{victim})
		if err, _ := genserver.Call[error](context.Background(), sys, w, victim); err != nil {
			t.Fatal(err)
		}
		_ = sys.Cast(victim, "go")
		var pe *genserver.PanicError
		if reason := recv(t, terms); !errors.As(reason, &pe) || pe.Value != fmt.Sprint("boom ", i) {
			t.Fatalf("round %d: Terminate saw %v", i, reason)
		}
		if reason := waitExit(t, victim); !errors.As(reason, &pe) {
			t.Fatalf("round %d: exit reason %v", i, reason)
		}
		var gotDown, gotExit bool
		for !gotDown || !gotExit {
			switch m := recv(t, infos).(type) {
			case genserver.Down:
				if m.Ref != ref || m.PID != victim || !errors.As(m.Reason, &pe) {
					t.Fatalf("round %d: down %+v", i, m)
				}
				gotDown = true
			case genserver.Exit:
				if m.PID != victim || !errors.As(m.Reason, &pe) {
					t.Fatalf("round %d: exit %+v", i, m)
				}
				gotExit = true
			default:
				t.Fatalf("round %d: unexpected %T %v", i, m, m)
			}
		}
	}
	if v, err := sys.Call(context.Background(), healthy, "after"); err != nil || v != "after" {
		t.Fatalf("healthy after crashes: %v, %v", v, err)
	}
}

// A process killed while its callback runs on a worker (Kill, or a linked
// process's abnormal exit) exits once the callback returns, with the kill's
// reason and without Terminate for Kill; the worker then serves others.
func TestWorkerKilledWhileRunning(t *testing.T) {
	sys := newSystem(t)
	healthy := spawn(t, sys, &fn{})
	for i := range 10 {
		if _, err := sys.Call(context.Background(), healthy, i); err != nil {
			t.Fatal(err)
		}
		in, release := make(chan struct{}), make(chan struct{})
		terminated := make(chan error, 1)
		victim := spawn(t, sys, &fn{
			cast: func(*genserver.Process, any) { close(in); <-release },
			term: func(_ *genserver.Process, reason error) { terminated <- reason },
		})
		// A linked partner that does not trap: the victim's exit takes it.
		partner := spawn(t, sys, &fn{call: func(p *genserver.Process, _ genserver.From, req any) (any, error) {
			return nil, p.Link(req.(genserver.PID))
		}})
		if _, err := sys.Call(context.Background(), partner, victim); err != nil {
			t.Fatal(err)
		}
		_ = sys.Cast(victim, "block")
		<-in
		var want error
		if i%2 == 0 {
			want = genserver.ErrKilled
			if err := sys.Kill(victim); err != nil {
				t.Fatal(err)
			}
		} else {
			// An exit signal from a crashing linked process.
			want = errBoom
			killer := spawn(t, sys, &fn{
				call: func(p *genserver.Process, _ genserver.From, req any) (any, error) {
					return nil, p.Link(req.(genserver.PID))
				},
				cast: func(p *genserver.Process, _ any) { p.Stop(errBoom) },
			})
			if _, err := sys.Call(context.Background(), killer, victim); err != nil {
				t.Fatal(err)
			}
			_ = sys.Cast(killer, "die")
			if reason := waitExit(t, killer); reason != errBoom {
				t.Fatalf("killer: %v", reason)
			}
		}
		select {
		case <-victim.Done():
			t.Fatal("victim exited while its callback ran")
		default:
		}
		close(release)
		if reason := waitExit(t, victim); reason != want {
			t.Fatalf("round %d: victim exit %v, want %v", i, reason, want)
		}
		select {
		case reason := <-terminated:
			if want == genserver.ErrKilled {
				t.Fatalf("round %d: Terminate ran on Kill (%v)", i, reason)
			}
			if reason != want {
				t.Fatalf("round %d: Terminate saw %v", i, reason)
			}
		default:
			if want != genserver.ErrKilled {
				t.Fatalf("round %d: Terminate did not run", i)
			}
		}
		if reason := waitExit(t, partner); reason != want {
			t.Fatalf("round %d: linked partner exit %v, want %v", i, reason, want)
		}
	}
	if v, err := sys.Call(context.Background(), healthy, "after"); err != nil || v != "after" {
		t.Fatalf("healthy after kills: %v, %v", v, err)
	}
}

// seqMsg is sender's n-th message to one process.
type seqMsg struct{ sender, n int }

// Many senders to many processes: every process sees each sender's
// messages (casts and calls mixed) in order, all of them, and never runs
// two callbacks at once (as it would if two workers took it).
func TestWorkersKeepOrderAndExclusion(t *testing.T) {
	const procs, senders, per = 24, 6, 300
	sys := newSystem(t)
	var bad atomic.Value
	fail := func(format string, args ...any) { bad.CompareAndSwap(nil, fmt.Sprintf(format, args...)) }
	type state struct {
		inside atomic.Int32
		last   [senders]int
		count  int
	}
	pids := make([]genserver.PID, procs)
	for i := range pids {
		st := &state{}
		for k := range st.last {
			st.last[k] = -1
		}
		see := func(m seqMsg) {
			if !st.inside.CompareAndSwap(0, 1) {
				fail("process %d: two callbacks at once", i)
			}
			if m.n != st.last[m.sender]+1 {
				fail("process %d: sender %d's message %d after %d", i, m.sender, m.n, st.last[m.sender])
			}
			st.last[m.sender] = m.n
			st.count++
			st.inside.Store(0)
		}
		pids[i] = spawn(t, sys, &fn{
			cast: func(_ *genserver.Process, msg any) { see(msg.(seqMsg)) },
			call: func(_ *genserver.Process, _ genserver.From, req any) (any, error) {
				if m, ok := req.(seqMsg); ok {
					see(m)
					return nil, nil
				}
				return st.count, nil
			},
		})
	}
	var wg sync.WaitGroup
	for s := range senders {
		wg.Go(func() {
			for n := range per {
				for i, pid := range pids {
					m := seqMsg{s, n}
					if (n+i+s)%7 == 0 {
						if _, err := sys.Call(context.Background(), pid, m); err != nil {
							fail("call: %v", err)
						}
					} else if err := sys.Cast(pid, m); err != nil {
						fail("cast: %v", err)
					}
				}
			}
		})
	}
	wg.Wait()
	for i, pid := range pids {
		n, err := genserver.Call[int](context.Background(), sys, pid, "count")
		if err != nil || n != senders*per {
			t.Fatalf("process %d handled %d of %d (%v)", i, n, senders*per, err)
		}
	}
	if b := bad.Load(); b != nil {
		t.Fatal(b)
	}
}

// Stop with workers both busy (callbacks blocked) and idle, and the
// reaper's timer armed, returns once the busy ones finish and leaves no
// goroutine behind.
func TestStopWithWorkersBusyAndIdle(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	sys := genserver.NewSystem(genserver.Config{Name: t.Name()})
	release := make(chan struct{})
	started := make(chan struct{}, 8)
	for range 8 {
		pid := spawn(t, sys, &fn{cast: func(*genserver.Process, any) { started <- struct{}{}; <-release }})
		_ = sys.Cast(pid, "block")
	}
	for i := range 40 {
		pid := spawn(t, sys, &fn{})
		if _, err := sys.Call(context.Background(), pid, i); err != nil {
			t.Fatal(err)
		}
	}
	for range 8 {
		<-started
	}
	stopped := make(chan error, 1)
	go func() { stopped <- sys.Stop(context.Background()) }()
	close(release)
	if err := recv(t, stopped); err != nil {
		t.Fatal(err)
	}
}

// A System left alone keeps no worker: the reaper ends the idle ones
// within a few periods. In a synctest bubble the test cannot end while
// any goroutine of it remains, Stop or not.
func TestIdleWorkersReapedWithoutStop(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		sys := genserver.NewSystem(genserver.Config{Name: t.Name()})
		var pids []genserver.PID
		for i := range 100 {
			pid, err := sys.Spawn(func() genserver.Server { return &fn{} })
			if err != nil {
				t.Fatal(err)
			}
			pids = append(pids, pid)
			_ = sys.Cast(pid, i)
		}
		for i, pid := range pids {
			if _, err := sys.Call(context.Background(), pid, i); err != nil {
				t.Fatal(err)
			}
		}
		synctest.Wait()
		time.Sleep(time.Second)
		synctest.Wait()
		// Work after the reaper ran still finds a worker (or starts one).
		if v, err := sys.Call(context.Background(), pids[0], "again"); err != nil || v != "again" {
			t.Fatalf("after reaping: %v, %v", v, err)
		}
		// No Stop: the bubble's clock stops when this function returns, and
		// the bubble ends only if the reaper has ended every worker by then.
		time.Sleep(time.Second)
		synctest.Wait()
	})
}

// A System stopped while the reaper's timer is armed and workers wait
// ends clean (the bubble ends with no goroutine and no live timer work).
func TestStopWithReaperArmed(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		sys := genserver.NewSystem(genserver.Config{Name: t.Name()})
		for i := range 20 {
			pid, err := sys.Spawn(func() genserver.Server { return &fn{} })
			if err != nil {
				t.Fatal(err)
			}
			if _, err := sys.Call(context.Background(), pid, i); err != nil {
				t.Fatal(err)
			}
		}
		synctest.Wait() // workers wait, the reaper's timer is armed
		if err := sys.Stop(context.Background()); err != nil {
			t.Fatal(err)
		}
	})
}

// Introspection of a process on a worker: running while its callback
// runs, idle (not running) once done, and GetState answers.
func TestWorkerIntrospection(t *testing.T) {
	sys := newSystem(t)
	in, release := make(chan struct{}), make(chan struct{})
	pid := spawn(t, sys, &fn{cast: func(*genserver.Process, any) { in <- struct{}{}; <-release }})
	for range 3 {
		_ = sys.Cast(pid, "block")
		<-in
		info, err := sys.ProcessInfo(pid)
		if err != nil || info.Status != genserver.Running {
			t.Fatalf("while running: %+v, %v", info, err)
		}
		release <- struct{}{}
		// A call after the cast: answered once the cast's callback is done.
		if _, err := sys.Call(context.Background(), pid, "x"); err != nil {
			t.Fatal(err)
		}
		if st, err := sys.GetState(context.Background(), pid); err != nil || st == nil {
			t.Fatalf("GetState: %v, %v", st, err)
		}
	}
}
