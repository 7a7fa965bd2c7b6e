package supervisor

import (
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/enginekit/enginekit/genserver"
	"github.com/thejerf/suture/v4"
)

func TestDecide(t *testing.T) {
	panicked := &PanicError{Value: "x"}
	doNotRestart := fmt.Errorf("done: %w", suture.ErrDoNotRestart)
	terminate := fmt.Errorf("fatal: %w", suture.ErrTerminateSupervisorTree)
	systemStopped := fmt.Errorf("%w: %w", genserver.ErrSystemStopped, genserver.ErrShutdown)
	for _, tc := range []struct {
		restart RestartType
		err     error
		want    Action
	}{
		{Permanent, nil, ActionRestart},
		{Permanent, errBoom, ActionRestart},
		{Permanent, panicked, ActionRestart},
		{Permanent, doNotRestart, ActionKeep},
		{Permanent, terminate, ActionTerminate},
		{Transient, nil, ActionKeep},
		{Transient, errBoom, ActionRestart},
		{Transient, panicked, ActionRestart},
		{Transient, doNotRestart, ActionKeep},
		{Transient, terminate, ActionTerminate},
		{Temporary, nil, ActionRemove},
		{Temporary, errBoom, ActionRemove},
		{Temporary, panicked, ActionRemove},
		{Temporary, doNotRestart, ActionRemove},
		{Temporary, terminate, ActionTerminate},
		// OTP: shutdown and {shutdown, Why} are no failure for a transient child.
		{Permanent, errDrained, ActionRestart},
		{Transient, errDrained, ActionKeep},
		{Transient, genserver.ErrShutdown, ActionKeep},
		{Temporary, errDrained, ActionRemove},
		// Stopped with the System: nothing could restart, so stop quietly.
		{Permanent, systemStopped, ActionStop},
		{Transient, systemStopped, ActionStop},
		{Temporary, systemStopped, ActionStop},
		// A supervisor that gave up exits with shutdown, as in OTP.
		{Permanent, maxRestarts(errBoom, "c", 3, time.Second), ActionRestart},
		{Transient, maxRestarts(errBoom, "c", 3, time.Second), ActionKeep},
	} {
		if got := decide(tc.restart, tc.err); got != tc.want {
			t.Errorf("decide(%v, %v) = %v, want %v", tc.restart, tc.err, got, tc.want)
		}
	}
}

// testCore returns a core whose children (ID "t…" temporary, others permanent) have all
// started.
func testCore(strategy Strategy, maxRestarts int, ids ...string) *core {
	var children []ChildSpec
	for _, id := range ids {
		cs := ChildSpec{ID: id}
		if id[0] == 't' {
			cs.Restart = Temporary
		}
		children = append(children, cs)
	}
	c := newCore(Spec{Strategy: strategy, MaxRestarts: maxRestarts, Children: children})
	startAll(c)
	return c
}

// startAll starts the pending children as the runner does, and returns them in order.
func startAll(c *core) []string {
	var ids []string
	for ch := c.next(); ch != nil; ch = c.next() {
		c.started(ch, false)
		ids = append(ids, ch.spec.ID)
	}
	return ids
}

func ids(c *core) []string {
	var ids []string
	for _, ch := range c.children {
		ids = append(ids, ch.spec.ID)
	}
	return ids
}

func TestCoreStrategies(t *testing.T) {
	for _, tc := range []struct {
		strategy  Strategy
		stop      []string // in order
		start     []string // in order
		remaining []string
	}{
		{OneForOne, nil, []string{"b"}, []string{"a", "b", "c", "d", "t"}},
		{OneForAll, []string{"t", "d", "a"}, []string{"a", "b", "d"}, []string{"a", "b", "c", "d"}},
		{RestForOne, []string{"t", "d"}, []string{"b", "d"}, []string{"a", "b", "c", "d"}},
	} {
		t.Run(tc.strategy.String(), func(t *testing.T) {
			c := testCore(tc.strategy, 0, "a", "b", "c", "d", "t")
			_, cc := c.find("c")
			c.terminated(cc) // a stopped sibling stays stopped

			action, stop := c.exited("b", errBoom, frozen())
			if action != ActionRestart {
				t.Fatalf("action %v", action)
			}
			expect(t, stop, tc.stop...)
			expect(t, startAll(c), tc.start...)
			expect(t, ids(c), tc.remaining...)
			if cc.state != stopped {
				t.Errorf("c is %v", cc.state)
			}
		})
	}
}

// A child that fails to start during a one-for-all restart takes down the ones restarted
// before it, and the whole group is started again.
func TestCoreStartFailureDuringRestart(t *testing.T) {
	c := testCore(OneForAll, 0, "a", "b", "c")
	_, stop := c.exited("b", errBoom, frozen())
	expect(t, stop, "c", "a")

	c.started(c.next(), false) // a
	if ch := c.next(); ch.spec.ID != "b" {
		t.Fatalf("next is %q", ch.spec.ID)
	}
	action, stop := c.exited("b", startError("b", errBoom), frozen())
	if action != ActionRestart {
		t.Fatalf("action %v", action)
	}
	expect(t, stop, "a")
	expect(t, startAll(c), "a", "b", "c")
}

func TestCoreIntensity(t *testing.T) {
	t0 := frozen()
	at := func(d time.Duration) time.Time { return t0.Add(d) }
	for _, tc := range []struct {
		name        string
		maxRestarts int
		exits       []time.Time
		want        []Action
	}{{
		name:  "default 3 in 5s",
		exits: []time.Time{at(0), at(time.Second), at(2 * time.Second), at(3 * time.Second)},
		want:  []Action{ActionRestart, ActionRestart, ActionRestart, ActionEscalate},
	}, {
		name:  "old restarts leave the window",
		exits: []time.Time{at(0), at(2 * time.Second), at(4 * time.Second), at(5 * time.Second), at(7 * time.Second), at(7 * time.Second)},
		want:  []Action{ActionRestart, ActionRestart, ActionRestart, ActionRestart, ActionRestart, ActionEscalate},
	}, {
		name:  "all at once",
		exits: []time.Time{t0, t0, t0, t0},
		want:  []Action{ActionRestart, ActionRestart, ActionRestart, ActionEscalate},
	}, {
		name:        "one allowed",
		maxRestarts: 1,
		exits:       []time.Time{t0, at(time.Hour), at(time.Hour)},
		want:        []Action{ActionRestart, ActionRestart, ActionEscalate},
	}, {
		name:        "none allowed",
		maxRestarts: -1,
		exits:       []time.Time{t0},
		want:        []Action{ActionEscalate},
	}} {
		t.Run(tc.name, func(t *testing.T) {
			c := testCore(OneForOne, tc.maxRestarts, "a")
			var got []Action
			for _, now := range tc.exits {
				action, _ := c.exited("a", errBoom, now)
				got = append(got, action)
				startAll(c)
			}
			if !slices.Equal(got, tc.want) {
				t.Errorf("got %v, want %v", got, tc.want)
			}
		})
	}
}

// Exits that do not restart do not count against the intensity.
func TestCoreIntensityCountsRestartsOnly(t *testing.T) {
	c := newCore(Spec{MaxRestarts: -1, Children: []ChildSpec{{ID: "a", Restart: Transient}}})
	startAll(c)
	if action, _ := c.exited("a", nil, frozen()); action != ActionKeep {
		t.Fatalf("action %v", action)
	}
	if len(c.restarts) != 0 {
		t.Fatalf("restarts %v", c.restarts)
	}
}

func TestCoreDynamicChildren(t *testing.T) {
	c := testCore(OneForOne, 0, "a")
	b, err := c.add(ChildSpec{ID: "b"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.add(ChildSpec{ID: "a"}); !errors.Is(err, ErrDuplicateChild) {
		t.Fatalf("add duplicate: %v", err)
	}
	if c.next() != nil {
		t.Fatal("an added child is pending")
	}
	c.started(b, true)
	if err := c.remove("b"); !errors.Is(err, ErrRunning) {
		t.Fatalf("remove running: %v", err)
	}
	c.terminated(b)
	if err := c.remove("b"); err != nil {
		t.Fatal(err)
	}
	if err := c.remove("b"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("remove twice: %v", err)
	}
	expect(t, ids(c), "a")
}
