// Package supervisor runs OTP supervision trees of suture services: child specs, restart
// types, the one_for_one, one_for_all and rest_for_one strategies, restart intensity with
// escalation, ordered start and shutdown, and dynamic children.
//
// # Use
//
// A child is any suture.Service, described by a ChildSpec whose Start returns the service
// for each incarnation. A Supervisor is itself a suture.Service, so supervisors nest, in
// each other and in suture.Supervisor trees both ways:
//
//	sup, err := supervisor.New(supervisor.Spec{
//		Name:     "app",
//		Strategy: supervisor.RestForOne,
//		Children: []supervisor.ChildSpec{
//			{ID: "db", Start: func() suture.Service { return db }},
//			{ID: "api", Start: newAPI, Restart: supervisor.Transient},
//		},
//		EventHook: supervisor.LogEvents(logger),
//	})
//	...
//	err = sup.Serve(ctx)
//
// Serve starts the children in order and stops them in reverse order when ctx is
// cancelled. StartReady runs a supervisor (or any ReadyServer) in the background and returns
// once it is ready, with a stop function that cancels it and waits. It returns an error only when the supervisor gives up; see ServeReady.
// StartChild, TerminateChild, RestartChild, DeleteChild, WhichChildren and CountChildren
// change and inspect the children while Serve runs, from any goroutine (Elixir's
// DynamicSupervisor is a Supervisor with no static children: its zero value).
//
// # Semantics
//
// Exits: a child's Serve returning nil is a normal exit; an error matching
// genserver.ErrShutdown (OTP's shutdown and {shutdown, Why}) is a shutdown; any other error
// or a panic (recovered, reported as a *PanicError with its stack) is abnormal. Permanent
// children are restarted after any exit, Transient ones after an abnormal exit (not after
// a normal exit or a shutdown), Temporary ones never. A child that declines to start (its
// ServeReady returns an error matching genserver.ErrIgnore before it is ready, as a genserver
// whose Init returns genserver.ErrIgnore does: OTP's ignore) is kept as not running, with
// no error and no restart (ChildIgnored). An error
// matching suture.ErrDoNotRestart is not restarted; one matching
// suture.ErrTerminateSupervisorTree stops the supervisor, whose Serve returns an error that
// still matches it, so the tree stops. A child stopped by its supervisor has not failed,
// whatever it returns.
//
// Readiness: a child implementing ReadyService is started when it calls ready (OTP: its
// init returned); any other child, when its goroutine runs. The next child starts only
// then, StartChild returns only then, and a supervisor is ready when its static children
// are. A child that returns before it is ready failed to start: Serve fails if it was a
// static child (OTP's failed init), StartChild returns the error.
//
// Restart intensity: when a restart would make more than Spec.MaxRestarts restarts within
// Spec.Period (3 in 5s by default), the supervisor stops its children and Serve returns an
// error matching ErrMaxRestarts and the child's exit reason, so its parent decides. It never
// backs off and waits. The error also matches genserver.ErrShutdown, as OTP's supervisor
// exits with reason shutdown: a parent restarts a Permanent child supervisor that gave up,
// not a Transient one.
//
// Shutdown: each child is cancelled and waited for up to its ChildSpec.Shutdown, in
// reverse start order. Go cannot kill a goroutine, so there is no brutal_kill: a child
// still running after its Shutdown is reported (StopTimeout) and left behind, and the
// supervisor goes on.
//
// Stopping with the System: a child that exits, or fails to restart, because its
// genserver.System is stopping (an error matching genserver.ErrSystemStopped, which a
// *genserver.Service returns then) is not restarted: the supervisor stops its other children
// and returns an error matching genserver.ErrSystemStopped, logged at info by LogEvents, and
// its parent does the same. So stopping the System under a running tree is quiet. The
// orderly way is still to stop the tree first (cancel its ctx), then the System.
//
// Where this package differs from OTP: one_for_all and rest_for_one restart only the
// siblings that were running, so a child that was terminated or finished stays so; a child
// returning suture.ErrDoNotRestart keeps its spec, for RestartChild; a restarted
// supervisor starts again from its Spec, without the dynamic children of its last run.
//
// # Introspection
//
// Supervisor.Tree returns the tree below a supervisor, for observers: each child's restart
// type, whether it runs, its restarts, its genserver PID, the subtrees of child supervisors,
// and the restart intensity in use. It reads a copy that the supervisor refreshes when its
// children change, so it never waits for a busy supervisor.
//
// # Events
//
// Supervisors report what they do as Event values (ChildStarted, ChildExited,
// ChildStopped, StopTimeout, StartFailed, SupervisorFailed) to Spec.EventHook. LogEvents
// sends them to a zerolog.Logger, and LogSutureEvents does the same for the events of
// plain suture.Supervisors. There is no global logger: nil drops the events.
//
// # Why not wrap suture.Supervisor
//
// suture restarts one service at a time, starts and stops them all at once, treats every
// exit alike and, when services fail too often, backs off and retries forever instead of
// failing. OTP semantics need the opposite in each case: strategies over ordered siblings,
// readiness, restart types, and escalation to the parent. So this package runs its own
// restart engine and takes from suture what makes trees compose: the Service contract, its
// distinguished errors, and interoperation with suture.Supervisor.
//
// The decisions (which children to restart and stop, in which order, and when the
// intensity is exceeded) are made by a synchronous core with no goroutines or clock, tested
// step by step. Around it, one goroutine per call to Serve owns all state: it starts and
// stops every child goroutine, receives their exits and the child API calls over channels,
// and applies what the core decides.
package supervisor
