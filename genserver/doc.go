// Package genserver runs processes with Erlang/OTP GenServer semantics:
// call, cast and info messages, deferred replies, continue, timers, idle
// timeouts, links, monitors and trapped exits, in a System that is one trust
// domain with its own name registry.
//
// A Server keeps its state in its own fields; the factory given to Spawn or
// Service makes a fresh value for each incarnation:
//
//	type Counter struct{ n int }
//
//	func (c *Counter) HandleCall(p *genserver.Process, from genserver.From, req any) (any, error) {
//		return c.n, nil
//	}
//	func (c *Counter) HandleCast(p *genserver.Process, msg any) { c.n += msg.(int) }
//
//	sys := genserver.NewSystem(genserver.Config{Name: "alice"})
//	pid, err := sys.Spawn(func() genserver.Server { return &Counter{} }, genserver.WithName("counter"))
//	sys.Cast(genserver.Name("counter"), 5)
//	n, err := genserver.Call[int](ctx, sys, genserver.Name("counter"), "get")
//
// Under a supervisor, use sys.Service(factory, opts...), a suture.Service
// whose every Serve is a new incarnation (new Server value, new PID, name
// registered again).
//
// # Semantics
//
//   - Call waits for the reply, for ctx, or for DefaultCallTimeout (5 s)
//     when ctx has no deadline. A callee that exits before replying fails
//     the call at once with an *ExitError carrying the reason (as if the
//     caller monitored the callee, which is what OTP does). A reply that
//     comes after the caller gave up is dropped. A process that calls
//     itself (pass p, not the System, as the Caller) gets ErrCallingSelf.
//   - HandleCall may return NoReply and answer later with Reply(from, ...),
//     from any goroutine; only the first Reply counts. From.PID and
//     From.Address tell who is calling.
//   - A panic in any callback is a crash: the process exits with a
//     *PanicError, its pending callers fail, links and monitors fire.
//   - Messages from one sender to one receiver arrive in order. Mailboxes
//     are unbounded unless WithMailboxLimit is given.
//   - Init runs before Spawn returns or a Service reports ready; the name is
//     registered before Init and released on exit, before the exit is
//     visible to anyone (so a restarted incarnation can take it at once).
//   - Exit signals (StopProcess, Kill, linked exits, supervisor shutdown)
//     overtake queued messages and are acted on after the current callback.
//     A process that traps exits gets a linked process's Exit as a message
//     queued behind what that process sent it before exiting, so between
//     two processes messages, Down and Exit keep the order they were sent
//     in, as in OTP.
//   - Exit reasons: nil is normal; any reason matching ErrShutdown
//     (errors.Is, so fmt.Errorf("%w: why", ErrShutdown) too: OTP's
//     {shutdown, Why}) is a shutdown: not logged as a crash, and no reason
//     to restart a Transient child. Every other reason is a crash, logged
//     at error level. A shutdown still takes down a linked process that
//     does not trap exits, as in OTP; only a normal exit spares it.
//   - Init can refuse the start: an error or p.Stop(reason) makes Spawn
//     fail with that reason without running Terminate; ErrIgnore starts
//     nothing and is no crash (OTP's {stop, Reason} and ignore).
//   - StopProcess and Kill on a process that is gone return ErrNoProcess,
//     as Cast does (OTP's noproc).
//   - A server that must learn of its own exit whatever the cause (Kill
//     and a failed Init skip Terminate) implements ExitNotifier: Exited
//     runs once, after the exit is visible, on the goroutine that ended
//     the process (what a Monitor would tell a watcher, without one).
//
// # Where it differs from OTP
//
//   - Go cannot kill a goroutine, so Kill (and a supervisor's shutdown)
//     takes effect after the current callback: a callback that never
//     returns cannot be stopped, and there is no brutal_kill.
//   - StopProcess on a process that traps exits stops it; it is not turned
//     into an Exit message.
//   - No selective receive: messages are handled in arrival order, with
//     Continue for work that must come first.
//   - Values are shared, not copied, between processes of one System.
//
// # Relaying for transports and brokers
//
// System.Relay returns a Relay, which sends on behalf of someone else: a
// call as a verified remote engine (CallAs), a cast or info message from
// another sender (CastFrom, SendFrom). The transport and the event broker
// use it; everyday code sends as itself, and System has no such methods.
// Relay.Link and Relay.Unlink link two
// processes for a transport that mirrors a link made on another node.
//
// # Stand-ins for processes elsewhere
//
// A Server that implements Forwarder stands in for a process elsewhere (the
// transport's proxy of an engine on another node): Cast, Send, Call,
// Relay.CastFrom/SendFrom, Link and Unlink to it call its Forward at once,
// in the sender's goroutine, instead of queueing, and return its error. A
// sender's messages to a stand-in, calls included, reach Forward in the
// order sent, and an error there (too large, no route, a type that cannot
// be encoded) is the sender's at once, not a silent drop.
//
// A From may cross nodes: the transport installs a FromCodec on its System
// (Relay.SetFromCodec) that gives a From a wire form when a message is
// encoded, and binds the Froms in each message it decodes
// (Relay.BindFroms), so that Reply on the other node sends the answer to
// the node holding the call. Without a FromCodec a From cannot be encoded
// (ErrFromNotPortable; the zero From encodes as null), so a message that
// would carry one fails at once in its sender instead of arriving empty and
// leaving the caller to its deadline.
//
// # Introspection
//
// System.Processes and System.ProcessInfo return snapshots (ProcessInfo: name,
// status, mailbox length, messages handled, time in the current callback,
// links, monitors) for observers and metrics; System.GetState asks a process
// for its state (OTP's sys:get_state), which a Server may shape by
// implementing StatusReporter (OTP's format_status). The counts move under
// the lock the mailbox takes anyway, plus one atomic store per message only
// while a process works through a burst; the message path takes no clock
// reading and no extra lock for them.
//
// # How it runs
//
// A process has no goroutine while it is idle: sending to an idle process
// hands it to a goroutine that works through the mailbox and leaves it when
// it is empty: one of the System's idle workers (goroutines that ran such a
// turn lately, whose stacks have grown to what handlers need; at most 64
// wait, and a reaper ends those left waiting every 20 ms and all at Stop),
// else a new one. An idle server therefore costs a few hundred bytes, not a
// goroutine stack, and a message to it costs waking a parked goroutine. The
// mailbox is a chain of fixed-size segments recycled within the System, so
// a burst of casts never copies the queue. Stop a System made in a
// testing/synctest bubble before the bubble's function returns: its idle
// workers are goroutines of the bubble, and the bubble's clock (which the
// reaper needs) stops when that function returns, so a bubble left with
// a System that ran anything fails with "blocked goroutines remain"
// (goleak, which retries for longer than 20 ms, is not affected). A
// callback must also leave its goroutine as it found it: the goroutine runs
// other processes' callbacks next, so an OS thread locked with
// runtime.LockOSThread must be unlocked before the callback returns (it is
// no longer ended with its goroutine), and the same goes for goroutine
// labels (pprof.SetGoroutineLabels) and debug.SetPanicOnFault.
// Reply slots are pooled per System and carry a generation token, which is
// how a stale From can never answer a later call.
package genserver
