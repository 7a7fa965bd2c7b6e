package netconn

import (
	"fmt"
	"math/rand/v2"
	"net"
	"time"

	"github.com/enginekit/enginekit/keyholder"
	"github.com/enginekit/enginekit/wire"
	"github.com/rs/zerolog"
)

// Auth selects how the envelopes of a connection are authenticated. Both ends
// of a connection must use the same mode; a mismatch fails the handshake.
type Auth int

const (
	// Signatures (the default): each batch of envelopes carries an ed25519
	// signature by the sending engine. Anyone holding the batch can check
	// it; it costs about 15 µs to sign and 35 µs to verify per batch, which
	// batching under load spreads over many envelopes.
	Signatures Auth = iota
	// MACs: each batch carries a 16-byte GMAC (AES-256-GCM) of its body
	// under a key derived from the TLS session, the direction and the
	// sending engine's address, with the batch's first seq as nonce
	// (keyholder.MACSession). Much cheaper, and meaningful only on that
	// connection.
	MACs
)

func (a Auth) String() string {
	switch a {
	case Signatures:
		return "signatures"
	case MACs:
		return "macs"
	}
	return fmt.Sprintf("auth(%d)", int(a))
}

func (a Auth) mode() wire.AuthMode {
	if a == MACs {
		return wire.AuthMACs
	}
	return wire.AuthSignatures
}

// Config configures listeners, dialers and the connections they hold. Zero
// fields take the defaults documented on them (DefaultConfig shows them);
// only Keyholder and Deliver are required.
//
// Callbacks run on connection goroutines: keep them short, and do not call
// Conn.Close from them (it waits for those goroutines); use Conn.CloseAsync.
type Config struct {
	// Keyholder holds this node's router key (the TLS identity) and the keys
	// of its engines (for signing and MACs). Required.
	Keyholder *keyholder.Keyholder

	// Auth is the per-envelope authentication mode. Default Signatures.
	Auth Auth

	// MaxFrameSize is the longest frame we accept, announced to the peer in
	// the hello; it also bounds the largest envelope either way. Default
	// wire.DefaultMaxFrameSize (1 MiB + 64 KiB, so a 1 MiB payload and its
	// headers fit); range [wire.MinFrameSize, wire.MaxFrameSizeLimit]. The
	// reader's buffer grows to the longest frame that arrives, so this also
	// bounds the read buffer of a connection. We send frames no longer than
	// the peer announced, whatever this says.
	MaxFrameSize int

	// MaxQueueBytes bounds the encoded envelopes waiting to be written on one
	// connection; Send blocks while the queue is full. Default 1 MiB.
	MaxQueueBytes int

	// HandshakeTimeout bounds connecting, the TLS handshake and the hello
	// exchange together, and the final flush when a connection closes.
	// Default 10 s.
	HandshakeTimeout time.Duration

	// IdleTimeout closes a connection on which nothing has arrived for this
	// long. A side that has heard nothing for a quarter of it sends a ping,
	// which the peer answers at once, so a live peer is never idle. Writes
	// blocked this long also fail. Default 30 s.
	IdleTimeout time.Duration

	// MaxBadBatches is how many batches failing authentication a peer may
	// send on one connection before it is disconnected. Such batches are
	// dropped silently (counted in Stats.DroppedAuth) until then. Default 16.
	MaxBadBatches int

	// Credential is sent to the peer in our hello: an opaque statement
	// about this node, at most wire.MaxCredentialSize (8 KiB) bytes, that
	// the peer's AdmitCredential may admit us by (a cluster membership
	// certificate). Default none. Peers that predate credentials ignore it.
	Credential []byte

	// AdmitCredential, when set, gives a Listener a second chance to admit
	// a client whose router its AcceptPolicy refused: the connection goes on
	// to the hello exchange, and is admitted if AdmitCredential approves the
	// credential of the client's hello (empty if it sent none) for the
	// router TLS authenticated; else the client is sent a go-away (refused)
	// and the handshake fails with ErrNotAccepted. It may be called
	// concurrently and must not block. Dialers do not use it: they pin the
	// router they dial.
	AdmitCredential func(router keyholder.Address, credential []byte) bool

	// Deliver receives each envelope that passed authentication and the
	// replay check, in the order the peer sent them, on the connection's
	// reader goroutine. env and env.Payload are valid only until Deliver
	// returns: they are reused for the next envelope. Copy what you keep
	// (decoding the payload with a payload.Registry copies), except that
	// when env.Owned is set (a payload of 64 KiB or more, alone in its
	// frame) env.Payload is handed over and may be kept as it is
	// (payload.Registry.UnmarshalOwned does so). A slow Deliver
	// slows the peer down (TCP backpressure); it never loses envelopes.
	// Deliver must not wait for space in a Conn's send queue (Send on a full
	// queue): while it waits this reader reads nothing, and a peer whose
	// reader does the same would wait for ever too. Use TrySend, or hand the
	// work to another goroutine. Nothing inside netconn makes a reader wait
	// for a writer: pings are answered by flagging the writer. Required.
	Deliver func(c *Conn, env *wire.Envelope)

	// OnUp is called when a connection has completed its handshake, before
	// any envelope from it is delivered, on the connection's goroutine
	// before its reader starts. It must not block: a Send from OnUp that
	// waits for queue space needs the peer to read, and a peer doing the
	// same waits for our reader, which starts only when OnUp returns. Queue
	// what fits with TrySend and send the rest from a goroutine of yours
	// (the transport streams its learn burst so).
	OnUp func(c *Conn)

	// OnDown is called once for each connection that came up, after it went
	// down and its goroutines have ended, with the reason (nil after Close or
	// cancellation).
	OnDown func(c *Conn, err error)

	// OnHandshakeError is called when a connection fails before it comes up:
	// TLS, the peer's key, the hello, the handshake timeout. remote is the
	// peer's network address. The error wraps ErrHandshake.
	OnHandshakeError func(remote net.Addr, err error)

	// OnListenError is called for each failure of a Listener's socket: a
	// failed accept (the Listener then binds addr again, or retries the
	// accept if the error is temporary) and each failed attempt to bind it
	// again. addr is the Listener's address. The Listener keeps serving;
	// this is for alerting. It must not block.
	OnListenError func(addr string, err error)

	// Logger receives connection events: up and down at info, dropped
	// envelopes and handshake failures at debug. Default: the zero
	// zerolog.Logger, which discards everything.
	Logger zerolog.Logger

	// Replay is the replay state of this node: the sequence numbers of our
	// engines and the windows of peer engines. Share one across all the
	// listeners and dialers of a node, so that an envelope replayed on
	// another connection is caught and our sequence numbers never go back.
	// Default: each Listener and Dialer makes its own.
	Replay *ReplayGuard

	// Backoff paces a Dialer's re-dials and a Listener's attempts to bind
	// its address again after its socket failed.
	Backoff Backoff
}

// Backoff is exponential backoff with jitter: after the n-th consecutive
// failure a Dialer waits a random duration in [d/2, d], d = min(Max,
// Min·2ⁿ), before it dials again, and a Listener before it binds again. A
// connection that came up (Dialer) or was accepted (Listener) resets n.
type Backoff struct {
	Min time.Duration // first delay; default 100 ms
	Max time.Duration // largest delay; default 30 s
}

// Defaults for zero Config fields.
const (
	DefaultMaxQueueBytes    = 1 << 20
	DefaultHandshakeTimeout = 10 * time.Second
	DefaultIdleTimeout      = 30 * time.Second
	DefaultMaxBadBatches    = 16
	DefaultBackoffMin       = 100 * time.Millisecond
	DefaultBackoffMax       = 30 * time.Second
)

// DefaultConfig returns a Config with every default filled in. Set Keyholder
// and Deliver before use.
func DefaultConfig() Config {
	return Config{}.withDefaults()
}

func (c Config) withDefaults() Config {
	if c.MaxFrameSize == 0 {
		c.MaxFrameSize = wire.DefaultMaxFrameSize
	}
	if c.MaxQueueBytes == 0 {
		c.MaxQueueBytes = DefaultMaxQueueBytes
	}
	if c.HandshakeTimeout == 0 {
		c.HandshakeTimeout = DefaultHandshakeTimeout
	}
	if c.IdleTimeout == 0 {
		c.IdleTimeout = DefaultIdleTimeout
	}
	if c.MaxBadBatches == 0 {
		c.MaxBadBatches = DefaultMaxBadBatches
	}
	if c.Backoff.Min == 0 {
		c.Backoff.Min = DefaultBackoffMin
	}
	if c.Backoff.Max == 0 {
		c.Backoff.Max = max(DefaultBackoffMax, c.Backoff.Min)
	}
	return c
}

// Verify reports what is wrong with c once defaults are applied, as an error
// wrapping ErrBadConfig, or nil.
func (c Config) Verify() error {
	c = c.withDefaults()
	bad := func(format string, args ...any) error {
		return fmt.Errorf("%w: "+format, append([]any{ErrBadConfig}, args...)...)
	}
	switch {
	case c.Keyholder == nil:
		return bad("no Keyholder")
	case c.Deliver == nil:
		return bad("no Deliver function")
	case c.Auth != Signatures && c.Auth != MACs:
		return bad("unknown Auth %d", int(c.Auth))
	case c.MaxFrameSize < wire.MinFrameSize || c.MaxFrameSize > wire.MaxFrameSizeLimit:
		return bad("MaxFrameSize %d outside [%d, %d]", c.MaxFrameSize, wire.MinFrameSize, wire.MaxFrameSizeLimit)
	case c.MaxQueueBytes < 0:
		return bad("negative MaxQueueBytes")
	case c.HandshakeTimeout < 0 || c.IdleTimeout < 0:
		return bad("negative timeout")
	case c.IdleTimeout < 4*time.Millisecond:
		return bad("IdleTimeout %v too short", c.IdleTimeout)
	case len(c.Credential) > wire.MaxCredentialSize:
		return bad("Credential of %d bytes, limit %d", len(c.Credential), wire.MaxCredentialSize)
	case c.MaxBadBatches < 0:
		return bad("negative MaxBadBatches")
	case c.Backoff.Min < 0 || c.Backoff.Max < c.Backoff.Min:
		return bad("Backoff %v..%v", c.Backoff.Min, c.Backoff.Max)
	}
	return nil
}

// delay returns the jittered wait after n consecutive failures.
func (b Backoff) delay(n int) time.Duration {
	d := b.Min
	for i := 0; i < n && d < b.Max; i++ {
		if d > b.Max/2 {
			d = b.Max
			break
		}
		d *= 2
	}
	d = min(d, b.Max)
	if d <= 1 {
		return d
	}
	return d/2 + rand.N(d/2+1)
}

// AcceptPolicy decides which peer routers a Listener accepts, after TLS has
// proved that the peer holds the router key. It may be called concurrently.
type AcceptPolicy func(router keyholder.Address) bool

// AcceptAny accepts every router.
func AcceptAny(keyholder.Address) bool { return true }

// AllowOnly accepts exactly the given routers.
func AllowOnly(routers ...keyholder.Address) AcceptPolicy {
	allowed := make(map[keyholder.Address]bool, len(routers))
	for _, r := range routers {
		allowed[r] = true
	}
	return func(r keyholder.Address) bool { return allowed[r] }
}

// checkNetwork accepts the stream networks this package runs over.
func checkNetwork(network string) error {
	switch network {
	case "tcp", "tcp4", "tcp6", "unix":
		return nil
	}
	return fmt.Errorf("%w: network %q (want tcp, tcp4, tcp6 or unix)", ErrBadConfig, network)
}
