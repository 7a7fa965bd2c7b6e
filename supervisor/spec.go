package supervisor

import (
	"fmt"
	"time"

	"github.com/thejerf/suture/v4"
)

// Defaults for the zero fields of Spec and ChildSpec (Elixir's defaults, and OTP's for
// worker shutdown).
const (
	defaultMaxRestarts = 3
	defaultPeriod      = 5 * time.Second
	defaultShutdown    = 5 * time.Second
)

// Strategy says which children a supervisor restarts when one of them is restarted.
type Strategy int

const (
	// OneForOne restarts only the child that exited (the zero value).
	OneForOne Strategy = iota
	// OneForAll stops the other running children, in reverse start order, then starts them
	// all again in start order. For children that cannot work without each other.
	OneForAll
	// RestForOne stops the running children started after the one that exited, in reverse
	// order, then starts it and them again in start order. For children that depend on the
	// ones started before them.
	RestForOne
)

func (s Strategy) String() string {
	switch s {
	case OneForOne:
		return "one_for_one"
	case OneForAll:
		return "one_for_all"
	case RestForOne:
		return "rest_for_one"
	}
	return fmt.Sprintf("Strategy(%d)", int(s))
}

// RestartType says whether a child is restarted after it exits. A child exits normally when
// its Serve returns nil, and abnormally when it returns an error or panics.
type RestartType int

const (
	// Permanent children are always restarted, even after a normal exit (the zero value).
	Permanent RestartType = iota
	// Transient children are restarted only after an abnormal exit.
	Transient
	// Temporary children are never restarted. Their spec is removed when they exit or are
	// terminated, as in OTP.
	Temporary
)

func (t RestartType) String() string {
	switch t {
	case Permanent:
		return "permanent"
	case Transient:
		return "transient"
	case Temporary:
		return "temporary"
	}
	return fmt.Sprintf("RestartType(%d)", int(t))
}

// ChildSpec describes a child. ID and Start are required; the zero values of the other
// fields are the usual choice.
type ChildSpec struct {
	// ID names the child in its supervisor's events, errors and child API. It must be
	// unique within the supervisor.
	ID string

	// Start returns the service for one incarnation of the child. It is called on every
	// start and restart (OTP's start function), on the supervisor's goroutine, so a child
	// can begin each incarnation with fresh state. Returning the same value every time is
	// fine for services whose Serve may be called again after it returned, such as a
	// *Supervisor; a *suture.Supervisor cannot be served twice, so build a new one here.
	// A nil service or a panic is a failed start.
	Start func() suture.Service

	// Restart says when the child is restarted; the zero value is Permanent.
	Restart RestartType

	// Shutdown is how long the supervisor waits for the child's Serve to return after
	// cancelling its context. Zero means 5s. Negative means as long as it takes (OTP's
	// infinity), meant for children that are supervisors and so need the time to stop
	// their own children. Go cannot kill a goroutine: a child still running after its
	// Shutdown is reported with a StopTimeout event and left behind.
	Shutdown time.Duration
}

func (c ChildSpec) validate() error {
	switch {
	case c.ID == "":
		return fmt.Errorf("%w: child without ID", ErrInvalidSpec)
	case c.Start == nil:
		return fmt.Errorf("%w: child %q without Start", ErrInvalidSpec, c.ID)
	case c.Restart < Permanent || c.Restart > Temporary:
		return fmt.Errorf("%w: child %q: unknown %v", ErrInvalidSpec, c.ID, c.Restart)
	}
	return nil
}

func (c ChildSpec) shutdown() time.Duration {
	if c.Shutdown == 0 {
		return defaultShutdown
	}
	return c.Shutdown
}

// Spec configures a Supervisor. Its zero value is valid: a one-for-one supervisor with no
// static children, to which children are added with StartChild (Elixir's
// DynamicSupervisor).
type Spec struct {
	// Name identifies the supervisor in its events.
	Name string

	// Strategy says which children are restarted together.
	Strategy Strategy

	// MaxRestarts and Period set the restart intensity: when a restart would make more
	// than MaxRestarts restarts within Period, the supervisor stops all its children
	// instead and its Serve returns an error matching ErrMaxRestarts, so that its parent
	// decides. Zero values mean 3 restarts in 5s (Elixir's defaults); a negative
	// MaxRestarts allows no restart at all.
	MaxRestarts int
	Period      time.Duration

	// Children are the static children, started in this order by every call to Serve.
	Children []ChildSpec

	// EventHook receives the supervisor's events. It is called on the supervisor's
	// goroutine, so it must return quickly and must not call the supervisor's methods.
	// Nil drops the events; LogEvents sends them to a zerolog.Logger.
	EventHook func(Event)
}

func (s Spec) validate() error {
	switch {
	case s.Strategy < OneForOne || s.Strategy > RestForOne:
		return fmt.Errorf("%w: unknown %v", ErrInvalidSpec, s.Strategy)
	case s.Period < 0:
		return fmt.Errorf("%w: negative Period %v", ErrInvalidSpec, s.Period)
	}
	seen := make(map[string]bool, len(s.Children))
	for _, c := range s.Children {
		if err := c.validate(); err != nil {
			return err
		}
		if seen[c.ID] {
			return fmt.Errorf("%w: %q", ErrDuplicateChild, c.ID)
		}
		seen[c.ID] = true
	}
	return nil
}
