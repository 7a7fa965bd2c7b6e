package genserver

import "strconv"

// PID identifies one incarnation of a process. It is comparable and usable as
// a map key; the zero PID identifies nothing. A PID stays valid (and keeps
// failing with ErrNoProcess) after its process exits; a restarted process gets
// a new PID.
type PID struct{ p *Process }

// IsZero reports whether pid is the zero PID.
func (pid PID) IsZero() bool { return pid.p == nil }

// String returns "<system.N>", or "<nil>" for the zero PID.
func (pid PID) String() string {
	if pid.p == nil {
		return "<nil>"
	}
	return "<" + pid.p.sys.name + "." + strconv.FormatUint(pid.p.id, 10) + ">"
}

// Alive reports whether the process is still running.
func (pid PID) Alive() bool {
	if pid.p == nil {
		return false
	}
	select {
	case <-pid.p.done:
		return false
	default:
		return true
	}
}

// Done returns a channel closed when the process has exited.
func (pid PID) Done() <-chan struct{} {
	if pid.p == nil {
		return closedChan
	}
	return pid.p.done
}

// Reason returns the exit reason of an exited process (nil for a normal exit,
// or while it runs).
func (pid PID) Reason() error {
	if pid.p == nil {
		return ErrNoProcess
	}
	select {
	case <-pid.p.done:
		return pid.p.reason
	default:
		return nil
	}
}

var closedChan = func() chan struct{} { c := make(chan struct{}); close(c); return c }()

// Dest is where a message goes: a PID or a Name. Only this package's types
// implement it.
type Dest interface {
	resolve(s *System) *Process
	String() string
}

func (pid PID) resolve(s *System) *Process {
	if pid.p == nil || pid.p.sys != s {
		return nil // a PID of another System is not reachable: Systems are separate trust domains
	}
	return pid.p
}

// Name is a registered name. Names are unique within a System; the transport
// registers proxies of foreign engines under their address text.
type Name string

func (n Name) resolve(s *System) *Process { return s.lookup(string(n)) }

func (n Name) String() string { return string(n) }

// Ref identifies a monitor or a timer.
type Ref uint64
