package supervisor

import (
	"errors"
	"fmt"
	"time"

	"github.com/enginekit/enginekit/genserver"
	"github.com/rs/zerolog"
	"github.com/thejerf/suture/v4"
)

// Event is something a supervisor reports to its Spec.EventHook: one of ChildStarted,
// ChildIgnored, ChildExited, ChildStopped, StopTimeout, StartFailed and SupervisorFailed.
type Event interface {
	fmt.Stringer
	event()
}

// ChildStarted reports that a child started and is ready.
type ChildStarted struct {
	Supervisor, Child string
	Restarts          int // starts before this one, in this run of the supervisor
}

// ChildIgnored reports that a child declined to start (OTP's ignore: its ServeReady returned
// an error matching genserver.ErrIgnore before it was ready, as a genserver whose Init returns
// genserver.ErrIgnore does). The child is kept as not running; it is no failure and is not
// restarted.
type ChildIgnored struct {
	Supervisor, Child string
}

// ChildExited reports that a running child exited on its own, or that a restart failed to
// start (Err matches ErrStartFailed), and what the supervisor does about it.
type ChildExited struct {
	Supervisor, Child string
	Err               error // nil for a normal exit
	Action            Action
}

// ChildStopped reports that a child the supervisor stopped returned in time. Err is what its
// Serve returned, often context.Canceled; it is no failure.
type ChildStopped struct {
	Supervisor, Child string
	Err               error
}

// StopTimeout reports that a child did not return within its Shutdown time after being
// asked to stop. The supervisor went on without it; its goroutine still runs.
type StopTimeout struct {
	Supervisor, Child string
	Timeout           time.Duration
}

// StartFailed reports that a static child failed to start, so that Serve fails, or that
// StartChild or RestartChild failed. Failed restarts are reported by ChildExited.
type StartFailed struct {
	Supervisor, Child string
	Err               error
}

// SupervisorFailed reports that the supervisor gave up: it has stopped its children and its
// Serve returns Err. Err matches ErrMaxRestarts when the restart intensity was exceeded, and
// genserver.ErrSystemStopped when it stopped because its System is stopping (no failure).
type SupervisorFailed struct {
	Supervisor string
	Err        error
}

func (ChildStarted) event()     {}
func (ChildIgnored) event()     {}
func (ChildExited) event()      {}
func (ChildStopped) event()     {}
func (StopTimeout) event()      {}
func (StartFailed) event()      {}
func (SupervisorFailed) event() {}

func (e ChildStarted) String() string {
	if e.Restarts > 0 {
		return fmt.Sprintf("supervisor %q: child %q restarted (restarts: %d)", e.Supervisor, e.Child, e.Restarts)
	}
	return fmt.Sprintf("supervisor %q: child %q started", e.Supervisor, e.Child)
}

func (e ChildIgnored) String() string {
	return fmt.Sprintf("supervisor %q: child %q ignored its start", e.Supervisor, e.Child)
}

func (e ChildExited) String() string {
	reason := "normally"
	if e.Err != nil {
		reason = "with error: " + e.Err.Error()
	}
	return fmt.Sprintf("supervisor %q: child %q exited %s (action: %v)", e.Supervisor, e.Child, reason, e.Action)
}

func (e ChildStopped) String() string {
	return fmt.Sprintf("supervisor %q: child %q stopped", e.Supervisor, e.Child)
}

func (e StopTimeout) String() string {
	return fmt.Sprintf("supervisor %q: child %q did not stop within %v; left running", e.Supervisor, e.Child, e.Timeout)
}

func (e StartFailed) String() string {
	return fmt.Sprintf("supervisor %q: child %q failed to start: %v", e.Supervisor, e.Child, e.Err)
}

func (e SupervisorFailed) String() string {
	return fmt.Sprintf("supervisor %q failed: %v", e.Supervisor, e.Err)
}

// LogEvents returns an EventHook that logs supervisor events to log: failures at error
// level, stop timeouts at warn, starts, ignored starts, normal exits, shutdowns (errors
// matching genserver.ErrShutdown) and stops with the System (genserver.ErrSystemStopped)
// at info, stops at debug. A panic's
// stack goes in the "stack" field.
func LogEvents(log zerolog.Logger) func(Event) {
	return func(e Event) {
		var ev *zerolog.Event
		var msg string
		switch e := e.(type) {
		case ChildStarted:
			ev = log.Info().Str("supervisor", e.Supervisor).Str("child", e.Child).Int("restarts", e.Restarts)
			msg = "child started"
		case ChildIgnored:
			ev = log.Info().Str("supervisor", e.Supervisor).Str("child", e.Child)
			msg = "child ignored its start"
		case ChildExited:
			if (isShutdown(e.Err) && e.Action != ActionEscalate) || e.Action == ActionStop {
				ev = log.Info().AnErr("error", e.Err)
			} else {
				ev = withStack(log.Error().Err(e.Err), e.Err)
			}
			ev = ev.Str("supervisor", e.Supervisor).Str("child", e.Child).Stringer("action", e.Action)
			msg = "child exited"
		case ChildStopped:
			ev = log.Debug().Str("supervisor", e.Supervisor).Str("child", e.Child)
			msg = "child stopped"
		case StopTimeout:
			ev = log.Warn().Str("supervisor", e.Supervisor).Str("child", e.Child).Dur("timeout", e.Timeout)
			msg = "child did not stop in time; left running"
		case StartFailed:
			ev = withStack(log.Error().Err(e.Err), e.Err).Str("supervisor", e.Supervisor).Str("child", e.Child)
			msg = "child failed to start"
		case SupervisorFailed:
			if errors.Is(e.Err, genserver.ErrSystemStopped) {
				ev = log.Info().Err(e.Err).Str("supervisor", e.Supervisor)
				msg = "supervisor stopped with its System"
				break
			}
			ev = log.Error().Err(e.Err).Str("supervisor", e.Supervisor)
			msg = "supervisor failed"
		default:
			return
		}
		ev.Msg(msg)
	}
}

func withStack(ev *zerolog.Event, err error) *zerolog.Event {
	var pe *PanicError
	if errors.As(err, &pe) {
		return ev.Bytes("stack", pe.Stack)
	}
	return ev
}

// LogSutureEvents returns a suture.EventHook that logs the events of a plain
// suture.Supervisor to log, for trees that mix both kinds.
func LogSutureEvents(log zerolog.Logger) suture.EventHook {
	return func(e suture.Event) {
		// Map has the details (including a panic's stack), so the message stays short.
		var ev *zerolog.Event
		var msg string
		switch e.Type() {
		case suture.EventTypeServicePanic:
			ev, msg = log.Error(), "service panicked"
		case suture.EventTypeServiceTerminate:
			ev, msg = log.Error(), "service terminated"
		case suture.EventTypeStopTimeout:
			ev, msg = log.Warn(), "service did not stop in time"
		case suture.EventTypeBackoff:
			ev, msg = log.Warn(), "supervisor backing off"
		case suture.EventTypeResume:
			ev, msg = log.Info(), "supervisor resuming"
		default:
			ev, msg = log.Info(), e.String()
		}
		ev.Fields(e.Map()).Msg(msg)
	}
}
