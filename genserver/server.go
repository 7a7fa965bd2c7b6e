package genserver

// Server is the behaviour of a process: its state lives in the value's own
// fields, and each incarnation gets a fresh value from the factory given to
// Spawn or Service. Callbacks run one at a time on the process's behalf, so
// the value needs no locking.
type Server interface {
	// HandleCall answers a Call. Returning NoReply defers the reply: keep
	// the From and answer later with Reply, from anywhere. An error goes to
	// the caller; it does not stop the process.
	HandleCall(p *Process, from From, req any) (any, error)
	// HandleCast handles a Cast.
	HandleCast(p *Process, msg any)
}

// Initer is implemented by servers that set themselves up before the process
// is reported as started. An error stops the process and is returned by
// Spawn (or Serve), without running Terminate (OTP's {stop, Reason}); so does
// calling p.Stop(reason), with ErrInitStopped for a nil reason. Returning
// ErrIgnore (OTP's ignore) starts nothing and is no crash: Spawn returns it,
// a linked parent sees a normal exit, and a supervisor keeps the child as not
// running without restarting it.
type Initer interface {
	Init(p *Process) error
}

// InfoHandler is implemented by servers that take info messages: Send,
// SendAfter timers, Down, Exit and Timeout. Without it, info messages are
// logged at debug level and dropped.
type InfoHandler interface {
	HandleInfo(p *Process, msg any)
}

// ContinueHandler is implemented by servers that use Process.Continue.
type ContinueHandler interface {
	HandleContinue(p *Process, arg any)
}

// Terminator is implemented by servers that clean up when they stop. It runs
// for every exit except Kill, after the last callback, with the exit reason.
type Terminator interface {
	Terminate(p *Process, reason error)
}

// ExitNotifier is implemented by servers that must learn of their
// process's exit however it comes, Kill and a failed Init included (when
// Terminate does not run). Exited runs once, after the exit is visible
// (PID.Done closed, the name released, links and monitors fired), with the
// process's PID and exit reason, on the goroutine that ended the process:
// it must not block. Unlike a Monitor it costs no watching process, no
// map entry on either side and no Down message: the transport's proxies
// use it, 100,000 of them on a node that learned as many engines.
type ExitNotifier interface {
	Exited(pid PID, reason error)
}

type noReply struct{}

// NoReply, returned by HandleCall, defers the reply (OTP's {:noreply, state}).
var NoReply any = noReply{}

// Down is delivered to HandleInfo when a monitored process exits (Reason nil
// for a normal exit), or at once with ErrNoProcess when it was already gone.
type Down struct {
	Ref    Ref
	PID    PID
	Reason error
}

// Exit is delivered to HandleInfo of a process that traps exits when a linked
// process exits. It is queued like a message, behind the messages the exiting
// process sent before it exited (OTP's per-pair signal order).
type Exit struct {
	PID    PID
	Reason error
}

// Timeout is delivered to HandleInfo when the process has been idle for its
// idle timeout (see Process.SetIdleTimeout).
type Timeout struct{}
