package supervisor

import (
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/enginekit/enginekit/genserver"
	"github.com/thejerf/suture/v4"
)

// Action is what a supervisor does about a child that exited on its own.
type Action int

const (
	// ActionRestart restarts the child, with the siblings its strategy names.
	ActionRestart Action = iota
	// ActionKeep leaves the child stopped and keeps its spec, for RestartChild.
	ActionKeep
	// ActionRemove leaves the child stopped and removes its spec.
	ActionRemove
	// ActionEscalate stops the supervisor: the restart would exceed its restart intensity.
	ActionEscalate
	// ActionTerminate stops the supervisor: the child returned an error matching
	// suture.ErrTerminateSupervisorTree.
	ActionTerminate
	// ActionStop stops the supervisor quietly: the child exited, or failed to restart,
	// because its genserver.System is stopping (genserver.ErrSystemStopped), so no restart
	// could succeed. The supervisor's Serve returns an error that still matches it, so its
	// parent stops the same way.
	ActionStop
)

func (a Action) String() string {
	switch a {
	case ActionRestart:
		return "restart"
	case ActionKeep:
		return "keep"
	case ActionRemove:
		return "remove"
	case ActionEscalate:
		return "escalate"
	case ActionTerminate:
		return "terminate"
	case ActionStop:
		return "stop"
	}
	return fmt.Sprintf("Action(%d)", int(a))
}

// decide applies the restart type and suture's distinguished errors to an exit reason;
// whether a restart stays within the restart intensity is decided by core.exited.
func decide(restart RestartType, err error) Action {
	switch {
	case errors.Is(err, suture.ErrTerminateSupervisorTree):
		return ActionTerminate
	case errors.Is(err, genserver.ErrSystemStopped):
		return ActionStop
	case restart == Temporary:
		return ActionRemove
	case errors.Is(err, suture.ErrDoNotRestart), restart == Transient && isShutdown(err):
		return ActionKeep
	}
	return ActionRestart
}

// isShutdown reports whether an exit reason is no failure for a Transient child: a normal
// exit, or a shutdown (OTP's shutdown and {shutdown, Why}: any error matching
// genserver.ErrShutdown).
func isShutdown(err error) bool {
	return err == nil || errors.Is(err, genserver.ErrShutdown)
}

type childState uint8

const (
	stopped childState = iota // never started in this run, exited for good, or terminated
	pending                   // to be started, in order, before the supervisor goes on
	running
)

type child struct {
	spec       ChildSpec
	state      childState
	starts     int  // in this run of the supervisor
	supervisor bool // its last incarnation was a supervisor
}

// core decides what a supervisor does: which children run, which are restarted after an
// exit and when the restart intensity is exceeded. It has no goroutines and no clock, so
// tests drive it step by step; the goroutine in Serve feeds it what happens and carries out
// what it decides.
type core struct {
	strategy    Strategy
	maxRestarts int
	period      time.Duration
	children    []*child    // in start order
	restarts    []time.Time // the restarts within the last period
}

// newCore returns the core of a new run of a supervisor: its static children are pending.
func newCore(spec Spec) *core {
	c := &core{strategy: spec.Strategy, maxRestarts: spec.MaxRestarts, period: spec.Period}
	switch {
	case c.maxRestarts == 0:
		c.maxRestarts = defaultMaxRestarts
	case c.maxRestarts < 0:
		c.maxRestarts = 0
	}
	if c.period == 0 {
		c.period = defaultPeriod
	}
	for _, cs := range spec.Children {
		c.children = append(c.children, &child{spec: cs, state: pending})
	}
	return c
}

func (c *core) find(id string) (int, *child) {
	for i, ch := range c.children {
		if ch.spec.ID == id {
			return i, ch
		}
	}
	return -1, nil
}

// next returns the first pending child, or nil.
func (c *core) next() *child {
	for _, ch := range c.children {
		if ch.state == pending {
			return ch
		}
	}
	return nil
}

// add appends a dynamic child, stopped.
func (c *core) add(spec ChildSpec) (*child, error) {
	if _, ch := c.find(spec.ID); ch != nil {
		return nil, fmt.Errorf("%w: %q", ErrDuplicateChild, spec.ID)
	}
	ch := &child{spec: spec}
	c.children = append(c.children, ch)
	return ch, nil
}

// remove deletes the spec of a stopped child.
func (c *core) remove(id string) error {
	i, ch := c.find(id)
	switch {
	case ch == nil:
		return fmt.Errorf("%w: %q", ErrNotFound, id)
	case ch.state != stopped:
		return fmt.Errorf("%w: %q", ErrRunning, id)
	}
	c.children = slices.Delete(c.children, i, i+1)
	return nil
}

func (c *core) started(ch *child, supervisor bool) {
	ch.state = running
	ch.starts++
	ch.supervisor = supervisor
}

// ignored records that ch declined to start (OTP's ignore): it is not running, and a
// Temporary child's spec is removed, as when it exits.
func (c *core) ignored(ch *child) {
	ch.state = stopped
	if ch.spec.Restart == Temporary {
		if i, _ := c.find(ch.spec.ID); i >= 0 {
			c.children = slices.Delete(c.children, i, i+1)
		}
	}
}

// terminated records that the supervisor stopped ch on request (TerminateChild).
func (c *core) terminated(ch *child) {
	ch.state = stopped
	if ch.spec.Restart == Temporary {
		i, _ := c.find(ch.spec.ID)
		c.children = slices.Delete(c.children, i, i+1)
	}
}

// exited decides about child id, which exited with err at now: either on its own while
// running, or by failing to start while pending. For ActionRestart it marks pending the
// children to start again and returns the running siblings to stop first, in the order to
// stop them. Siblings that are not running stay as they are: a child that was terminated,
// or a transient child that finished, is not revived by a sibling's failure (OTP would
// restart them too with one_for_all and rest_for_one; we find that surprising).
func (c *core) exited(id string, err error, now time.Time) (Action, []string) {
	i, ch := c.find(id)
	if ch == nil {
		panic("supervisor: exit of unknown child " + id) // the runner only reports its own children
	}
	action := decide(ch.spec.Restart, err)
	switch action {
	case ActionRestart:
		if !c.allowRestart(now) {
			return ActionEscalate, nil
		}
	case ActionKeep:
		ch.state = stopped
		return action, nil
	case ActionRemove:
		c.children = slices.Delete(c.children, i, i+1)
		return action, nil
	default:
		return action, nil
	}

	ch.state = pending
	first := len(c.children) // the first sibling the strategy takes down too
	switch c.strategy {
	case OneForAll:
		first = 0
	case RestForOne:
		first = i + 1
	}
	var stop []string
	for j := len(c.children) - 1; j >= first; j-- {
		sib := c.children[j]
		if sib.state != running {
			continue
		}
		stop = append(stop, sib.spec.ID)
		if sib.spec.Restart == Temporary {
			c.children = slices.Delete(c.children, j, j+1)
		} else {
			sib.state = pending
		}
	}
	return ActionRestart, stop
}

// allowRestart records a restart at now and reports whether it stays within the restart
// intensity: at most maxRestarts restarts in the period that ends at now.
func (c *core) allowRestart(now time.Time) bool {
	recent := c.restarts[:0]
	for _, t := range c.restarts {
		if now.Sub(t) < c.period {
			recent = append(recent, t)
		}
	}
	c.restarts = append(recent, now)
	return len(c.restarts) <= c.maxRestarts
}
