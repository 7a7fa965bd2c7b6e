package genserver

import (
	"errors"
	"fmt"
)

// Errors returned by this package, matched with errors.Is.
var (
	// ErrTimeout: a call got no reply before its deadline (the default is
	// DefaultCallTimeout when ctx has none).
	ErrTimeout = errors.New("genserver: call timed out")
	// ErrNoProcess: the destination did not exist when the message was sent.
	ErrNoProcess = errors.New("genserver: no such process")
	// ErrCallingSelf: a process called itself, which would deadlock.
	ErrCallingSelf = errors.New("genserver: process called itself")
	// ErrNameTaken: another live process is registered under that name.
	ErrNameTaken = errors.New("genserver: name already registered")
	// ErrExited matches every *ExitError: the callee exited before it replied.
	ErrExited = errors.New("genserver: process exited")
	// ErrShutdown is the exit reason of a process stopped by its owner (its
	// supervisor's context, System.Stop or StopProcess without a reason).
	ErrShutdown = errors.New("genserver: shutdown")
	// ErrKilled is the exit reason of a process killed with Kill; it cannot be
	// trapped.
	ErrKilled = errors.New("genserver: killed")
	// ErrMailboxFull: the destination's bounded mailbox refused the message.
	ErrMailboxFull = errors.New("genserver: mailbox full")
	// ErrSystemStopped: the System is stopping or stopped and takes no new processes.
	ErrSystemStopped = errors.New("genserver: system stopped")
	// ErrBadReply: Call[T] got a reply that is not a T.
	ErrBadReply = errors.New("genserver: reply has unexpected type")
	// ErrAlreadyRunning: a Service's Serve was called while an incarnation is running.
	ErrAlreadyRunning = errors.New("genserver: service already running")
	// ErrIgnore, returned by Init (or wrapped in its error), says "do not
	// start" (OTP's ignore): Spawn returns it and leaves no process, a linked
	// parent sees a normal exit, nothing is logged, and a supervisor records
	// the child as not running, with no error and no restart.
	ErrIgnore = errors.New("genserver: init ignored the start")
	// ErrInitStopped: Init called Stop(nil), a normal stop before the start
	// completed (OTP's {stop, normal} from init). Spawn returns it.
	ErrInitStopped = errors.New("genserver: init stopped normally")
)

// ExitError is the error of a call whose callee exited before replying. It
// matches ErrExited and unwraps to the exit reason, so
// errors.Is(err, ErrShutdown) tells a shutdown from a crash.
type ExitError struct {
	PID    PID
	Reason error // nil for a normal exit
}

func (e *ExitError) Error() string {
	if e.Reason == nil {
		return fmt.Sprintf("genserver: %v exited normally before replying", e.PID)
	}
	return fmt.Sprintf("genserver: %v exited before replying: %v", e.PID, e.Reason)
}

// Unwrap returns the exit reason.
func (e *ExitError) Unwrap() error { return e.Reason }

// Is reports whether target is ErrExited.
func (e *ExitError) Is(target error) bool { return target == ErrExited }

// PanicError is the exit reason of a process whose callback panicked.
type PanicError struct {
	Value any    // what was passed to panic
	Stack []byte // the panicking goroutine's stack
}

func (e *PanicError) Error() string { return fmt.Sprintf("genserver: panic: %v", e.Value) }

// Unwrap returns the panic value when it is an error.
func (e *PanicError) Unwrap() error {
	err, _ := e.Value.(error)
	return err
}

// IsNormal reports whether an exit reason is normal: nil. A normal exit does
// not kill linked processes that do not trap exits; every other reason,
// ErrShutdown included, does (as in OTP).
func IsNormal(reason error) bool { return reason == nil }
