package genserver_test

import (
	"context"
	"errors"
	"testing"

	"github.com/enginekit/enginekit/genserver"
)

// exitReport is what an ExitNotifier saw when told of its exit.
type exitReport struct {
	pid        genserver.PID
	reason     error
	alive      bool // pid.Alive() at the time
	registered bool // its name still resolved then
}

// notifier is a server that reports its exit (ExitNotifier).
type notifier struct {
	sys     *genserver.System
	name    string
	initErr error
	exits   chan exitReport
}

func (n *notifier) Init(*genserver.Process) error { return n.initErr }
func (n *notifier) HandleCall(*genserver.Process, genserver.From, any) (any, error) {
	return nil, nil
}
func (n *notifier) HandleCast(*genserver.Process, any) {}
func (n *notifier) Exited(pid genserver.PID, reason error) {
	_, registered := n.sys.Whereis(n.name)
	n.exits <- exitReport{pid: pid, reason: reason, alive: pid.Alive(), registered: registered}
}

// Exited runs once per exit, however the process ends (a stop, Kill, which
// skips Terminate, a failed Init), after the exit is visible.
func TestExitNotifierOnEveryExit(t *testing.T) {
	sys := genserver.NewSystem(genserver.Config{})
	defer func() { _ = sys.Stop(context.Background()) }()
	boom := errors.New("boom")
	for _, tc := range []struct {
		name string
		end  func(pid genserver.PID) error
		want error
	}{
		{"stop", func(pid genserver.PID) error { return sys.StopProcess(context.Background(), pid, boom) }, boom},
		{"kill", func(pid genserver.PID) error { return sys.Kill(pid) }, genserver.ErrKilled},
		{"normal", func(pid genserver.PID) error {
			return sys.StopProcess(context.Background(), pid, genserver.ErrShutdown)
		}, genserver.ErrShutdown},
	} {
		t.Run(tc.name, func(t *testing.T) {
			n := &notifier{sys: sys, name: "n-" + tc.name, exits: make(chan exitReport, 2)}
			pid, err := sys.Spawn(func() genserver.Server { return n }, genserver.WithName(n.name))
			if err != nil {
				t.Fatal(err)
			}
			if err := tc.end(pid); err != nil {
				t.Fatal(err)
			}
			<-pid.Done()
			r := <-n.exits
			if r.pid != pid || !errors.Is(r.reason, tc.want) || r.alive || r.registered {
				t.Fatalf("Exited(%v, %v) alive=%v registered=%v; want (%v, %v), gone", r.pid, r.reason, r.alive, r.registered, pid, tc.want)
			}
			if err := sys.Kill(pid); !errors.Is(err, genserver.ErrNoProcess) {
				t.Fatalf("Kill after exit: %v", err)
			}
			if len(n.exits) != 0 {
				t.Fatal("Exited ran twice")
			}
		})
	}
	t.Run("init", func(t *testing.T) {
		n := &notifier{sys: sys, name: "n-init", initErr: boom, exits: make(chan exitReport, 2)}
		if _, err := sys.Spawn(func() genserver.Server { return n }, genserver.WithName(n.name)); !errors.Is(err, boom) {
			t.Fatalf("Spawn: %v", err)
		}
		if len(n.exits) != 1 {
			t.Fatalf("Exited ran %d times, want once", len(n.exits))
		}
		if r := <-n.exits; !errors.Is(r.reason, boom) || r.alive || r.registered {
			t.Fatalf("Exited(%v, %v) alive=%v registered=%v", r.pid, r.reason, r.alive, r.registered)
		}
	})
}
