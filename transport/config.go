package transport

import (
	"errors"
	"fmt"
	"time"

	"github.com/enginekit/enginekit/callbridge"
	"github.com/enginekit/enginekit/events"
	"github.com/enginekit/enginekit/genserver"
	"github.com/enginekit/enginekit/keyholder"
	"github.com/enginekit/enginekit/netconn"
	"github.com/enginekit/enginekit/payload"
	"github.com/enginekit/enginekit/wire"
	"github.com/rs/zerolog"
	"go.opentelemetry.io/otel/trace"
)

// Errors of this package.
var (
	// ErrNoConnection: the foreign engine has no live route (also what
	// pending calls fail with when their route dies).
	ErrNoConnection = callbridge.ErrNoConnection
	// ErrNotRunning: Listen, Connect or an engine start before Start/Serve,
	// or after the transport stopped.
	ErrNotRunning = errors.New("transport: not running")
	// ErrAlreadyRunning: Serve called twice.
	ErrAlreadyRunning = errors.New("transport: already running")
	// ErrBadConfig: the Config is not usable (an error from netconn's Verify
	// also matches netconn.ErrBadConfig).
	ErrBadConfig = errors.New("transport: bad config")
	// ErrTooManyCalls answers a call beyond the bounds on calls per peer:
	// ours (MaxCallsOutPerPeer, at once) or the remote node's (its
	// MaxCallsInPerPeer, in its reply).
	ErrTooManyCalls = callbridge.ErrTooManyCalls
	// ErrTooLarge: a request, cast or reply that cannot fit in a frame. The
	// error names the size and the limit; match it with errors.Is.
	ErrTooLarge = netconn.ErrTooLarge
	// ErrNotConnected: Disconnect of a Connect that is not running.
	ErrNotConnected = errors.New("transport: no such connect")
)

// ForeignExit is the exit reason of a foreign engine's proxy, which is what
// monitors of the engine's address get in Down and processes linked to the
// proxy get in Exit: Reason is the engine's own exit reason, carried in its
// forget message (a *callbridge.RemoteError with its text), or
// ErrNoConnection when its last route was lost and no route came back
// within ForgetGrace (or the transport stopped). An engine that exited
// normally makes its proxy exit normally (reason nil), not with a
// ForeignExit, so that a linked process lives on as OTP's would.
//
// The Down comes after the grace period, not when the connection drops:
// within it the proxy keeps the engine's name, calls fail at once with
// ErrNoConnection, and a reconnect restores the route without disturbing
// anyone who monitors it; a Down at the first drop would make every
// monitor re-monitor a name that is still there.
//
// For the proxy it is a shutdown: errors.Is(err, genserver.ErrShutdown)
// holds (it is not logged as a crash here), and so does errors.Is(err,
// Reason) (ErrNoConnection, say).
type ForeignExit struct {
	Engine keyholder.Address
	Reason error
}

func (e *ForeignExit) Error() string {
	if e.Reason == nil {
		return "transport: foreign engine " + e.Engine.String() + " exited"
	}
	return "transport: foreign engine " + e.Engine.String() + ": " + e.Reason.Error()
}

// Unwrap gives genserver.ErrShutdown and the reason.
func (e *ForeignExit) Unwrap() []error {
	if e.Reason == nil {
		return []error{genserver.ErrShutdown}
	}
	return []error{genserver.ErrShutdown, e.Reason}
}

// remoteTooLarge is a size error reported by the callee's node.
type remoteTooLarge struct{ msg string }

func (e *remoteTooLarge) Error() string        { return "transport: reply too large: " + e.msg }
func (e *remoteTooLarge) Is(target error) bool { return target == ErrTooLarge }

// Defaults of Config.
const (
	DefaultForgetGrace        = 5 * time.Second
	DefaultMaxCallsInPerPeer  = 10_000
	DefaultMaxCallsOutPerPeer = 100_000
	DefaultMaxLearnedPerPeer  = 250_000
	DefaultMaxConnsPerPeer    = 4
	DefaultMaxCallDeadline    = 10 * time.Minute
)

// Config configures a Transport. System, Keyholder and Registry are
// required; zero values elsewhere take the documented defaults.
type Config struct {
	// System is where local engines and the proxies of foreign engines live.
	System *genserver.System
	// Keyholder holds the router key and the keys of the local engines.
	Keyholder *keyholder.Keyholder
	// Registry names the payload types engines exchange. Both nodes must
	// register the same names.
	Registry *payload.Registry
	// Broker is the System's event broker. With one, the proxy of each
	// foreign engine that asked for events (its learn message carries a
	// filter spec) subscribes to it and forwards the matching events.
	// Without one, foreign engines get no events. Optional.
	Broker *events.Broker
	// Auth is the per-message authentication: netconn.Signatures (the
	// default) or netconn.MACs. Both ends of a connection must agree.
	Auth netconn.Auth
	// ForgetGrace is how long a proxy whose last route went down waits for
	// a route to come back before it is forgotten and its name released,
	// and how long the calls a peer made to us are served after its last
	// connection went (then they are cancelled). Calls made to its engines
	// meanwhile fail at once with ErrNoConnection. Default 5 s.
	ForgetGrace time.Duration

	// Bounds per peer router (summed over all its connections), so that a
	// peer cannot make us hold more by reconnecting. Past one the peer is
	// refused with a code, the refusal is counted (Stats.Drops) and logged
	// at warn level, and everyone else is served as before.

	// MaxLearnedPerPeer bounds the engines one peer router may teach us
	// (each costs a proxy). Learns past it are refused. Default 250,000.
	MaxLearnedPerPeer int
	// MaxCallsInPerPeer bounds the calls from one peer router being served
	// at once (each holds a From, or a dummy caller, until the reply); beyond it a call
	// is answered at once with ErrTooManyCalls. Default 10,000.
	MaxCallsInPerPeer int
	// MaxIncomingCalls is the old name of MaxCallsInPerPeer, used when that
	// is zero.
	//
	// Deprecated: use MaxCallsInPerPeer.
	MaxIncomingCalls int
	// MaxCallsOutPerPeer bounds our calls waiting for replies from one peer
	// router; past it a call fails at once with ErrTooManyCalls. Default
	// 100,000.
	MaxCallsOutPerPeer int
	// MaxConnsPerPeer bounds the live connections of one peer router;
	// one past it is closed at once. With Net.MaxQueueBytes it bounds the
	// bytes queued for one peer: MaxConnsPerPeer × Net.MaxQueueBytes.
	// Default 4.
	MaxConnsPerPeer int
	// MaxCallDeadline caps how far in the future a peer may set a call's
	// deadline, so a peer cannot pin calls in service for ever (checked each
	// tick of the transport's clock). Default 10 min.
	MaxCallDeadline time.Duration

	// Net tunes connections: frame and queue sizes, timeouts, redial
	// backoff. Its Keyholder, Auth, callbacks, Replay and Logger are set by
	// the transport. Net.Backoff also paces re-binding a failed listener.
	Net netconn.Config
	// Logger gets learn/forget and connection events. Default: discard.
	Logger zerolog.Logger
	// OnLearn, when set, is called each time a connection teaches us a
	// foreign engine (its proxy is registered by then); OnForget after a
	// proxy is gone and its name released. They run on transport
	// goroutines (OnLearn, OnSynced and OnConnection on a connection's
	// reader); keep them short and do not call the transport from them,
	// nor send to a foreign engine: the send runs in the caller's goroutine
	// and may wait for room on a connection, which a reader must never do.
	OnLearn  func(engine keyholder.Address, peer keyholder.Address)
	OnForget func(engine keyholder.Address)
	// OnSynced, when set, is called when a peer's end-of-burst marker
	// arrives on a connection: every engine the peer had when that
	// connection came up has been learned (or refused) by then.
	OnSynced func(peer keyholder.Address)
	// OnConnection, when set, is called when a connection comes up (err nil,
	// up true) and when it goes down (up false, err the reason or nil).
	OnConnection func(peer keyholder.Address, up bool, err error)
	// OnConnectionEvent, when set, is called where OnConnection is (after
	// it), with what a log line about the connection needs: the remote
	// endpoint, who dialled, and when it goes down how long it lived and
	// what it taught us.
	OnConnectionEvent func(ConnectionEvent)
	// OnListenError, when set, is called each time a listener fails; the
	// transport re-binds its address with backoff for as long as it runs.
	OnListenError func(addr string, err error)
	// Tracer, when set, traces cross-node calls with OpenTelemetry: a
	// client span (enginekit.call, kind client) on the caller's node, a
	// child of the span in the caller's Call ctx, and a server span (kind
	// server) around the dummy caller's call on the engine's node, a child
	// of the client span: the trace context travels in the call envelope
	// (wire/spec.md, "Trace context"), to peers that announce the feature
	// only. The engine's handler finds the server span in From.Context.
	// Nil (the default) costs a nil check per call and changes no byte on
	// the wire. See docs/tracing.md.
	Tracer trace.Tracer
}

// DefaultConfig returns a Config with every default filled in (System,
// Keyholder and Registry are still to be set).
func DefaultConfig() Config {
	return Config{
		ForgetGrace:        DefaultForgetGrace,
		MaxLearnedPerPeer:  DefaultMaxLearnedPerPeer,
		MaxCallsInPerPeer:  DefaultMaxCallsInPerPeer,
		MaxCallsOutPerPeer: DefaultMaxCallsOutPerPeer,
		MaxConnsPerPeer:    DefaultMaxConnsPerPeer,
		MaxCallDeadline:    DefaultMaxCallDeadline,
		Net:                netconn.DefaultConfig(),
	}
}

func (c Config) withDefaults() Config {
	if c.MaxCallsInPerPeer == 0 {
		c.MaxCallsInPerPeer = c.MaxIncomingCalls
	}
	set := func(v *int, d int) {
		if *v == 0 {
			*v = d
		}
	}
	set(&c.MaxCallsInPerPeer, DefaultMaxCallsInPerPeer)
	set(&c.MaxCallsOutPerPeer, DefaultMaxCallsOutPerPeer)
	set(&c.MaxLearnedPerPeer, DefaultMaxLearnedPerPeer)
	set(&c.MaxConnsPerPeer, DefaultMaxConnsPerPeer)
	if c.ForgetGrace == 0 {
		c.ForgetGrace = DefaultForgetGrace
	}
	if c.MaxCallDeadline == 0 {
		c.MaxCallDeadline = DefaultMaxCallDeadline
	}
	return c
}

// Verify reports what makes c unusable, wrapping ErrBadConfig. Zero values
// are fine (they take the defaults); System, Keyholder and Registry are
// required.
func (c Config) Verify() error {
	if c.System == nil || c.Keyholder == nil || c.Registry == nil {
		return fmt.Errorf("%w: System, Keyholder and Registry are required", ErrBadConfig)
	}
	if c.ForgetGrace < 0 || c.MaxCallDeadline < 0 || c.MaxLearnedPerPeer < 0 || c.MaxCallsInPerPeer < 0 ||
		c.MaxIncomingCalls < 0 || c.MaxCallsOutPerPeer < 0 || c.MaxConnsPerPeer < 0 {
		return fmt.Errorf("%w: negative ForgetGrace, MaxCallDeadline or per-peer bound", ErrBadConfig)
	}
	n := c.Net
	n.Keyholder = c.Keyholder
	n.Auth = c.Auth
	n.Deliver = func(*netconn.Conn, *wire.Envelope) {}
	if err := n.Verify(); err != nil {
		return fmt.Errorf("%w: %w", ErrBadConfig, err)
	}
	return nil
}
