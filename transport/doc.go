// Package transport makes an engine on another node look exactly like a
// local one. It is the "Transport" of the design note
// (shared/seed/transport-engine-design.txt):
//
//	Transport (a suture.Service)
//	├── listeners and dialers   netconn; each holds its connections; restarted
//	│                           with backoff, never giving up, one failure never
//	│                           stops the rest
//	├── routes                  one goroutine per live connection: announces our
//	│                           engines on it, in order
//	├── proxies                 one genserver process per foreign engine,
//	│                           registered under the engine's address
//	└── core                    all routing state, a synchronous state machine
//
// A sender does nothing special: Call, Cast and Send to
// genserver.Name(addr.String()) reach a local engine or, when addr is a
// foreign engine, its proxy. The proxy encodes the message with the
// Registry and hands the envelope to a live route's connection, whose
// writer authenticates it with the sending engine's key (the router's when
// the sender is no engine) through the keyholder. The receiving
// connection verifies it and the transport delivers it as an ordinary
// call, cast or info message, coming from the sending engine's proxy on
// that node (Process.Sender, From.PID), with the verified address in
// From.Address.
//
// # The core
//
// Which foreign engine is reachable over which connection, the proxies,
// the engines learned per connection and per peer router, the calls we wait
// for and the calls we serve, the per-peer budgets and the grace timers
// live in one place: core.go, a plain state machine with no goroutines, no
// clock, no locks and no sockets, in the manner of supervisor's core and
// etcd raft's RawNode. Each event (a connection up or down, an envelope in,
// already authenticated; one of our engines started or stopped; a call or
// cast from a proxy; a dummy caller's answer; a tick of logical time) is a
// method that updates the state and returns actions (send an envelope,
// deliver to a local engine, start or stop a proxy, fail calls, start or
// cancel a dummy caller, notify). The goroutine that has the event steps
// the core inline under one mutex and carries out the actions after
// unlocking, so there is no extra goroutine hop per message and no blocking
// send under the lock. Payloads are decoded, and engine proofs verified,
// before the core is stepped. The core is tested by scenario files in
// testdata/ run on a simulated network of any number of nodes that drops,
// delays, reorders and cuts, on logical time (core_sim_test.go).
//
// # Learning and forgetting
//
// When a connection comes up each side announces all its engines in
// router-signed Learns envelopes (up to 1024 engines each), each carrying
// the engine's own proof that it belongs to that router, then an
// end-of-burst marker (Config.OnSynced on the other side). The burst is
// streamed by the route's own goroutine with blocking sends; the
// connection's reader never waits on a writer (its only sends, error
// replies, never block), so bursts of any size on both sides cannot
// deadlock. The receiver verifies the proofs of one envelope in parallel
// and creates a proxy (or adds a route to an existing one) only for the
// router authenticated on that connection. Engines started later are
// announced the same way; stopped engines are forgotten with a forget
// message, and their proxies go away at once. Control payloads are
// specified in wire/spec.md ("Control payloads"). A message whose source
// is not an engine learned on its connection (or the peer router itself)
// is dropped and counted, as is one for an engine that is not ours; every
// drop and refusal is counted by cause in Stats().Drops.
//
// An engine known over several connections has several routes; its proxy
// uses the first live one. When its last route goes down, the calls pending
// on that route fail at once with ErrNoConnection, and the proxy waits
// ForgetGrace for a route to come back before it is forgotten and its name
// released. Connections we dialled are re-dialled with backoff by netconn.
//
// # Monitors and links
//
// Monitoring a foreign engine's address monitors its proxy, and a link to
// the proxy links to the engine as far as this node can tell: both end
// with a *ForeignExit whose Reason is the engine's own exit reason (sent in
// its forget message; nil for a normal exit) or ErrNoConnection when the
// last route was lost and none came back within ForgetGrace (see
// ForeignExit for why after the grace period, not at the first drop). An
// exit of a local process linked to a proxy does not travel to the foreign
// engine.
//
// # Bounds
//
// Everything a peer can make us hold is bounded per peer router, summed
// over its connections, so reconnecting gains a peer nothing: engines
// learned (MaxLearnedPerPeer), calls in service (MaxCallsInPerPeer), our
// calls pending to it (MaxCallsOutPerPeer) and connections
// (MaxConnsPerPeer; with Net.MaxQueueBytes this bounds the bytes queued for
// it). Past a bound the peer is refused with a code, the refusal is counted
// and logged, and everyone else is served. The calls a peer made belong to
// the peer: when its last connection has been gone for ForgetGrace, their
// dummy callers are cancelled.
//
// # Calls
//
// The proxy sends each call and returns at once (it never blocks, so one
// proxy serves any number of concurrent calls); the core remembers the
// caller's From until the reply, the route's loss (ErrNoConnection at once)
// or the deadline. The receiving side runs a dummy caller (callbridge) that
// calls the engine locally with the caller's deadline and sends the result
// back, so deferred replies work across nodes unchanged. Errors come back
// as the same sentinels a local caller would get (genserver.ErrNoProcess,
// ErrTimeout, *ExitError...), and at once: a request over the frame limit
// fails with ErrTooLarge (size and limit in the error), a reply over it
// reaches the caller as ErrTooLarge, a call to an engine the node does not
// have is answered with ErrNoProcess by its router. A cast over the frame
// limit cannot return the error (Cast has returned when the proxy encodes
// it): it is dropped, logged and counted as too_large.
//
// A From handed by the callee to an engine on a third node cannot be
// answered from there: it arrives empty, so its Reply returns false and the
// caller waits for its deadline (see the package's known limits in the
// repository's issue tracker; it needs genserver to let a From be encoded).
//
// # Use
//
//	tr, err := transport.New(transport.Config{System: sys, Keyholder: kh, Registry: reg})
//	tr.Start()                                   // or run tr as a suture.Service
//	tr.Listen(ctx, "tcp://127.0.0.1:7001", netconn.AcceptAny)
//	tr.Connect(ctx, "unix:///run/peer.sock", peerRouter)
//	addr, pid, err := tr.SpawnEngine("vault", newVault) // or tr.Engine(...) under a supervisor
//
// Messages crossing the wire must be of types registered in the Registry
// under the same names on both nodes (wire.Register).
//
// The 100,000-engine burst test is heavy under the race detector; CI runs
// it on its own line:
//
//	go test -run TestLearnBurstBothWays -count=1 ./transport/
package transport
