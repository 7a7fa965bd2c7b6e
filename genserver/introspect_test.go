package genserver_test

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/enginekit/enginekit/genserver"
)

func TestProcessStatusString(t *testing.T) {
	for s, want := range map[genserver.ProcessStatus]string{
		genserver.Idle: "idle", genserver.Running: "running", genserver.Exiting: "exiting",
	} {
		if s.String() != want {
			t.Errorf("%d.String() = %q, want %q", s, s.String(), want)
		}
	}
}

// Processes lists every live process sorted by PID, with its name, links,
// monitors in both directions and whether it traps exits.
func TestProcessesListsRelations(t *testing.T) {
	sys := newSystem(t)
	before := time.Now()
	a := spawn(t, sys, &fn{}, genserver.WithName("a"))
	b := spawn(t, sys, &fn{init: func(p *genserver.Process) error {
		p.TrapExits(true)
		p.Monitor(genserver.Name("a"))
		return p.Link(a)
	}})
	c := spawn(t, sys, &fn{init: func(p *genserver.Process) error {
		p.Monitor(a)
		p.Monitor(a) // monitors stack
		return nil
	}})
	infos := sys.Processes()
	if got := pidsOf(infos); !slices.Equal(got, []genserver.PID{a, b, c}) {
		t.Fatalf("Processes PIDs = %v, want %v", got, []genserver.PID{a, b, c})
	}
	ia, ib, ic := infos[0], infos[1], infos[2]
	if ia.Name != "a" || ib.Name != "" {
		t.Errorf("names = %q, %q", ia.Name, ib.Name)
	}
	if !slices.Equal(ia.Links, []genserver.PID{b}) || !slices.Equal(ib.Links, []genserver.PID{a}) || len(ic.Links) != 0 {
		t.Errorf("links: a %v, b %v, c %v", ia.Links, ib.Links, ic.Links)
	}
	if !slices.Equal(ia.MonitoredBy, []genserver.PID{b, c, c}) {
		t.Errorf("a.MonitoredBy = %v, want [b c c]", ia.MonitoredBy)
	}
	if !slices.Equal(ib.Monitors, []genserver.PID{a}) || !slices.Equal(ic.Monitors, []genserver.PID{a, a}) || len(ia.Monitors) != 0 {
		t.Errorf("monitors: a %v, b %v, c %v", ia.Monitors, ib.Monitors, ic.Monitors)
	}
	if ia.TrapExits || !ib.TrapExits {
		t.Errorf("TrapExits: a %v, b %v", ia.TrapExits, ib.TrapExits)
	}
	for _, info := range infos {
		if info.Status != genserver.Idle || info.MailboxLen != 0 || info.Handled != 0 {
			t.Errorf("%v: status %v, mailbox %d, handled %d; want idle, 0, 0", info.PID, info.Status, info.MailboxLen, info.Handled)
		}
		if info.Started.Before(before) || info.Started.After(time.Now()) {
			t.Errorf("%v: Started %v out of range", info.PID, info.Started)
		}
	}

	// A Down consumed and a monitor dropped are no longer listed.
	if err := sys.StopProcess(context.Background(), a, nil); err != nil {
		t.Fatal(err)
	}
	if _, err := sys.ProcessInfo(a); !errors.Is(err, genserver.ErrNoProcess) {
		t.Fatalf("ProcessInfo of a dead process: %v, want ErrNoProcess", err)
	}
	if got := pidsOf(sys.Processes()); !slices.Equal(got, []genserver.PID{b, c}) {
		t.Fatalf("after a stopped: %v", got)
	}
	if _, err := sys.ProcessInfo(genserver.PID{}); !errors.Is(err, genserver.ErrNoProcess) {
		t.Fatalf("ProcessInfo of the zero PID: %v", err)
	}
	other := genserver.NewSystem(genserver.Config{})
	defer other.Stop(context.Background())
	if _, err := other.ProcessInfo(b); !errors.Is(err, genserver.ErrNoProcess) {
		t.Fatalf("ProcessInfo of another System's PID: %v", err)
	}
}

func pidsOf(infos []genserver.ProcessInfo) []genserver.PID {
	var out []genserver.PID
	for _, i := range infos {
		out = append(out, i.PID)
	}
	return out
}

// A process stuck in a callback shows as running, with its waiting messages
// and the time it has been seen in that callback; once it catches up it is
// idle with an empty mailbox.
func TestProcessInfoMailboxAndCallbackTime(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		sys := genserver.NewSystem(genserver.Config{})
		defer sys.Stop(context.Background())
		release := make(chan struct{})
		pid := spawn(t, sys, &fn{cast: func(_ *genserver.Process, msg any) {
			if msg == "block" {
				<-release
			}
		}})
		_ = sys.Cast(pid, "block")
		synctest.Wait()
		for range 3 {
			_ = sys.Cast(pid, "more")
		}
		info, err := sys.ProcessInfo(pid)
		if err != nil {
			t.Fatal(err)
		}
		if info.Status != genserver.Running || info.MailboxLen != 3 || info.Handled != 1 || info.InCallback != 0 {
			t.Fatalf("first look: %+v; want running, mailbox 3, handled 1, 0 in callback", info)
		}
		time.Sleep(2 * time.Second) // fake time: the callback stays stuck
		info, _ = sys.ProcessInfo(pid)
		if info.InCallback != 2*time.Second {
			t.Fatalf("second look: InCallback %v, want 2s", info.InCallback)
		}
		close(release)
		synctest.Wait()
		info, _ = sys.ProcessInfo(pid)
		if info.Status != genserver.Idle || info.MailboxLen != 0 || info.Handled != 4 || info.InCallback != 0 {
			t.Fatalf("caught up: %+v; want idle, mailbox 0, handled 4", info)
		}
	})
}

// A process in its Terminate callback is exiting.
func TestProcessInfoExiting(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		sys := genserver.NewSystem(genserver.Config{})
		defer sys.Stop(context.Background())
		release := make(chan struct{})
		pid := spawn(t, sys, &fn{term: func(*genserver.Process, error) { <-release }})
		go func() { _ = sys.StopProcess(context.Background(), pid, nil) }()
		synctest.Wait()
		info, err := sys.ProcessInfo(pid)
		if err != nil || info.Status != genserver.Exiting {
			t.Fatalf("in Terminate: %v %v, want exiting", info.Status, err)
		}
		close(release)
		synctest.Wait()
		if _, err := sys.ProcessInfo(pid); !errors.Is(err, genserver.ErrNoProcess) {
			t.Fatalf("after exit: %v", err)
		}
	})
}

type reporter struct {
	secret string
	n      int
}

func (r *reporter) HandleCall(*genserver.Process, genserver.From, any) (any, error) { return nil, nil }
func (r *reporter) HandleCast(_ *genserver.Process, msg any)                        { r.n += msg.(int) }
func (r *reporter) FormatStatus() any                                               { return map[string]int{"n": r.n} }

type plain struct{ N int }

func (s *plain) HandleCall(*genserver.Process, genserver.From, any) (any, error) { return nil, nil }
func (s *plain) HandleCast(_ *genserver.Process, msg any)                        { s.N += msg.(int) }

type panicky struct{ plain }

func (panicky) FormatStatus() any { panic("no status today") }

// GetState runs in the process after the messages already queued: a
// StatusReporter chooses what to show, other servers are printed with %+v.
func TestGetState(t *testing.T) {
	sys := newSystem(t)
	ctx := context.Background()
	rep, _ := sys.Spawn(func() genserver.Server { return &reporter{secret: "hunter2"} })
	_ = sys.Cast(rep, 5)
	v, err := sys.GetState(ctx, rep)
	if err != nil {
		t.Fatal(err)
	}
	if m, ok := v.(map[string]int); !ok || m["n"] != 5 {
		t.Fatalf("GetState = %#v, want map[n:5]", v)
	}
	pl, _ := sys.Spawn(func() genserver.Server { return &plain{} }, genserver.WithName("plain"))
	_ = sys.Cast(pl, 7)
	if v, err := sys.GetState(ctx, genserver.Name("plain")); err != nil || v != "&{N:7}" {
		t.Fatalf("GetState without reporter = %#v, %v; want \"&{N:7}\"", v, err)
	}
	// Looking must not kill: a panicking FormatStatus is an error value.
	pk, _ := sys.Spawn(func() genserver.Server { return &panicky{} })
	v, err = sys.GetState(ctx, pk)
	if e, ok := v.(error); err != nil || !ok || !strings.Contains(e.Error(), "no status today") {
		t.Fatalf("panicking FormatStatus: %#v, %v", v, err)
	}
	if !pk.Alive() {
		t.Fatal("a panicking FormatStatus killed the process")
	}
	if _, err := sys.GetState(ctx, genserver.Name("none")); !errors.Is(err, genserver.ErrNoProcess) {
		t.Fatalf("GetState of no process: %v", err)
	}
}

// A stuck process cannot hang the asker: ctx bounds the wait.
func TestGetStateOfStuckProcess(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		sys := genserver.NewSystem(genserver.Config{})
		defer sys.Stop(context.Background())
		release := make(chan struct{})
		defer close(release)
		pid := spawn(t, sys, &fn{cast: func(*genserver.Process, any) { <-release }})
		_ = sys.Cast(pid, "block")
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		start := time.Now()
		if _, err := sys.GetState(ctx, pid); !errors.Is(err, genserver.ErrTimeout) || time.Since(start) != time.Second {
			t.Fatalf("GetState of a stuck process: %v after %v; want ErrTimeout after 1s", err, time.Since(start))
		}
	})
}

// The counts stay exact while a process works through a burst, also when a
// Continue interrupts the burst and puts the rest back in the mailbox.
func TestProcessInfoCountsInABurst(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		sys := genserver.NewSystem(genserver.Config{})
		defer sys.Stop(context.Background())
		release := make(chan struct{})
		pid := spawn(t, sys, &fn{
			cast: func(p *genserver.Process, msg any) {
				switch msg {
				case 0:
					<-release
				case 10:
					p.Continue(nil)
				case 50:
					<-release
				}
			},
		})
		_ = sys.Cast(pid, 0)
		synctest.Wait()
		for i := 1; i <= 100; i++ {
			_ = sys.Cast(pid, i)
		}
		if info, _ := sys.ProcessInfo(pid); info.Handled != 1 || info.MailboxLen != 100 {
			t.Fatalf("stuck on the first: handled %d, mailbox %d; want 1, 100", info.Handled, info.MailboxLen)
		}
		release <- struct{}{}
		synctest.Wait() // stuck on 50, past the Continue at 10
		if info, _ := sys.ProcessInfo(pid); info.Handled != 51 || info.MailboxLen != 50 || info.Status != genserver.Running {
			t.Fatalf("stuck on 50: %+v; want handled 51, mailbox 50", info)
		}
		close(release)
		synctest.Wait()
		if info, _ := sys.ProcessInfo(pid); info.Handled != 101 || info.MailboxLen != 0 || info.Status != genserver.Idle {
			t.Fatalf("done: %+v; want handled 101, mailbox 0, idle", info)
		}
	})
}
