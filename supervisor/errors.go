package supervisor

import (
	"errors"
	"fmt"
	"time"

	"github.com/enginekit/enginekit/genserver"
)

var (
	// ErrNotRunning is returned by the child API when Serve is not running, or stopped
	// while the call waited.
	ErrNotRunning = errors.New("supervisor: not running")

	// ErrAlreadyRunning is returned by Serve when the supervisor is already being served.
	ErrAlreadyRunning = errors.New("supervisor: already running")

	// ErrMaxRestarts is matched by the error Serve returns when it gave up because its
	// children needed more restarts than MaxRestarts within Period. The error also wraps
	// the exit reason of the child whose restart was one too many, and matches
	// genserver.ErrShutdown: OTP's supervisor exits with reason shutdown then, so a parent
	// restarts a Permanent child supervisor and leaves a Transient one stopped.
	ErrMaxRestarts = errors.New("supervisor: too many restarts")

	// ErrStartFailed is matched by the error of a child that failed to start: its Start
	// panicked or returned nil, or its ServeReady returned before calling ready. The error
	// also wraps the child's own error, if any.
	ErrStartFailed = errors.New("supervisor: start failed")

	// ErrInvalidSpec is returned for a Spec or ChildSpec that cannot be run.
	ErrInvalidSpec = errors.New("supervisor: invalid spec")

	// ErrDuplicateChild is returned for a child ID that is already in use.
	ErrDuplicateChild = errors.New("supervisor: duplicate child ID")

	// ErrNotFound is returned by the child API for an unknown child ID.
	ErrNotFound = errors.New("supervisor: no such child")

	// ErrRunning is returned by RestartChild and DeleteChild for a child that is running.
	ErrRunning = errors.New("supervisor: child is running")
)

// PanicError is the exit reason of a child whose Serve or Start panicked.
type PanicError struct {
	Value any    // the value passed to panic
	Stack []byte // the stack of the panicking goroutine
}

func (e *PanicError) Error() string { return fmt.Sprintf("panic: %v", e.Value) }

func startError(id string, err error) error {
	if err == nil {
		return fmt.Errorf("%w: child %q returned before it was ready", ErrStartFailed, id)
	}
	return fmt.Errorf("%w: child %q: %w", ErrStartFailed, id, err)
}

// maxRestartsError is the error of a supervisor past its restart intensity.
type maxRestartsError struct {
	msg   string
	cause error // the exit reason of the child whose restart was one too many
}

func maxRestarts(cause error, child string, max int, period time.Duration) error {
	msg := fmt.Sprintf("%v (more than %d in %v): child %q", ErrMaxRestarts, max, period, child)
	if cause == nil {
		msg += " exited normally"
	} else {
		msg += ": " + cause.Error()
	}
	return &maxRestartsError{msg: msg, cause: cause}
}

func (e *maxRestartsError) Error() string { return e.msg }

func (e *maxRestartsError) Unwrap() error { return e.cause }

// Is matches ErrMaxRestarts, and genserver.ErrShutdown as OTP's exit reason shutdown.
func (e *maxRestartsError) Is(target error) bool {
	return target == ErrMaxRestarts || target == genserver.ErrShutdown
}
