package netconn

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/enginekit/enginekit/keyholder"
	"github.com/enginekit/enginekit/wire"
	"github.com/rs/zerolog"
	"github.com/thejerf/suture/v4"
)

// Conn holds one physical connection to a peer node: the TLS channel, the
// hello, and a reader and a writer goroutine that it owns. The writer
// numbers, authenticates and batches what Send queues; the reader checks
// every batch and hands the envelopes that pass to Config.Deliver.
//
// Listeners and dialers make and run Conns and report them through
// Config.OnUp and OnDown. NewServerConn and NewClientConn wrap a socket you
// connected yourself; run them with Serve.
type Conn struct {
	cfg      *Config
	guard    *ReplayGuard
	raw      net.Conn
	server   bool
	accept   AcceptPolicy      // server side
	pinned   keyholder.Address // client side
	reconnNo uint64            // dialer connections before this one
	log      zerolog.Logger

	// Set by the handshake, before up is closed; read-only afterwards.
	tls     *tls.Conn
	fr      *wire.FrameReader
	peer    keyholder.Address
	router  keyholder.Address
	mode    wire.AuthMode
	tagSize int
	mac     *keyholder.MACSession
	// The peer's hello credential, and whether the server must admit the
	// client by it (its AcceptPolicy refused the router).
	peerCred          []byte
	admitByCredential bool

	q sendQueue

	// wmu is held by whoever takes from the queue and writes: the writer
	// goroutine, or a sender writing in its own goroutine (flush). One
	// take is written before the next is taken: frames keep their order.
	wmu sync.Mutex
	ws  writeState // guarded by wmu

	upSince time.Time // when the handshake succeeded; set before up is closed

	onHandshakeError func(error) // the Listener's counter; set before Serve

	mu      sync.Mutex
	state   connState
	cancel  context.CancelFunc // of the Serve context, once Serve runs
	wasUp   bool
	downErr error

	up      chan struct{} // closed when the handshake has succeeded
	stopped chan struct{} // closed when the goroutines have ended and the socket is closed

	writerStop chan struct{} // closed to make the writer flush, say goodbye and end
	goAway     atomic.Pointer[wire.GoAway]

	stats counters
}

type connState int

const (
	stateNew connState = iota
	stateServing
	stateDone
)

func newConn(cfg *Config, guard *ReplayGuard, raw net.Conn) *Conn {
	c := &Conn{
		cfg:        cfg,
		guard:      guard,
		raw:        raw,
		router:     cfg.Keyholder.Router(),
		mode:       cfg.Auth.mode(),
		up:         make(chan struct{}),
		stopped:    make(chan struct{}),
		writerStop: make(chan struct{}),
	}
	c.tagSize = c.mode.TagSize()
	c.log = cfg.Logger.With().Str("remote", raw.RemoteAddr().String()).Logger()
	return c
}

// NewServerConn returns a holder for raw, an accepted socket on which this
// side plays the TLS server and admits peers that accept allows. Run it with
// Serve. cfg.Replay is used as is, or a fresh guard if nil.
func NewServerConn(cfg Config, raw net.Conn, accept AcceptPolicy) (*Conn, error) {
	cfgp, guard, err := prepare(cfg)
	if err != nil {
		return nil, err
	}
	if accept == nil {
		return nil, fmt.Errorf("%w: nil AcceptPolicy", ErrBadConfig)
	}
	c := newConn(cfgp, guard, raw)
	c.server, c.accept = true, accept
	return c, nil
}

// NewClientConn returns a holder for raw, a socket connected to a peer
// whose router must be peer, on which this side plays the TLS client. Run
// it with Serve.
func NewClientConn(cfg Config, raw net.Conn, peer keyholder.Address) (*Conn, error) {
	cfgp, guard, err := prepare(cfg)
	if err != nil {
		return nil, err
	}
	if peer.IsZero() {
		return nil, fmt.Errorf("%w: zero peer router", ErrBadConfig)
	}
	c := newConn(cfgp, guard, raw)
	c.pinned = peer
	return c, nil
}

// prepare validates cfg and fills in its defaults and replay guard.
func prepare(cfg Config) (*Config, *ReplayGuard, error) {
	if err := cfg.Verify(); err != nil {
		return nil, nil, err
	}
	cfg = cfg.withDefaults()
	cfg.Credential = bytes.Clone(cfg.Credential)
	guard := cfg.Replay
	if guard == nil {
		guard = mustReplayGuard()
		cfg.Replay = guard
	}
	return &cfg, guard, nil
}

// PeerRouter returns the router address the peer proved in the handshake
// (zero before the connection is up).
func (c *Conn) PeerRouter() keyholder.Address {
	select {
	case <-c.up:
		return c.peer
	default:
		return keyholder.Address{}
	}
}

// PeerCredential returns the credential the peer sent in its hello (nil if
// none, or before the connection is up). Do not modify it.
func (c *Conn) PeerCredential() []byte {
	select {
	case <-c.up:
		return c.peerCred
	default:
		return nil
	}
}

// Auth returns the authentication mode of the connection.
func (c *Conn) Auth() Auth { return c.cfg.Auth }

// LocalAddr returns the socket's local network address.
func (c *Conn) LocalAddr() net.Addr { return c.raw.LocalAddr() }

// RemoteAddr returns the peer's network address.
func (c *Conn) RemoteAddr() net.Addr { return c.raw.RemoteAddr() }

// Inbound reports whether the peer dialled us (the connection was
// accepted by a Listener or made by NewServerConn).
func (c *Conn) Inbound() bool { return c.server }

// Up returns a channel closed once the handshake has succeeded.
func (c *Conn) Up() <-chan struct{} { return c.up }

// Done returns a channel closed once the connection has stopped: its
// goroutines have ended and its socket is closed.
func (c *Conn) Done() <-chan struct{} { return c.stopped }

// Err returns why the connection went down (nil after Close or
// cancellation), once Done is closed.
func (c *Conn) Err() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.downErr
}

func (c *Conn) String() string {
	return fmt.Sprintf("netconn.Conn(%v, peer %v)", c.raw.RemoteAddr(), c.PeerRouter())
}

// Send queues env for the peer and returns; the writer goroutine numbers
// it (env.Seq is ignored and left alone), authenticates it with the key of
// env.Src, which must be this node's router or one of its engines, and
// writes it. Send copies env and its payload, so the caller may reuse both
// at once.
//
// Envelopes sent on one Conn arrive in the order of their Sends. Send
// blocks while the connection is still handshaking or its queue is full
// (Config.MaxQueueBytes), until ctx ends. It fails with ErrClosed once the
// connection is going down: envelopes queued but not yet written then are
// lost, as with any network send; calls should rely on their deadlines.
//
// An envelope whose payload can never fit in one frame to the peer fails at
// once with a *SizeError (errors.Is(err, ErrTooLarge)); before the
// connection is up that is checked against wire.MaxFrameSizeLimit, after it
// against the frame size the peer announced (MaxPayload).
func (c *Conn) Send(ctx context.Context, env *wire.Envelope) error {
	if err := c.precheck(env); err != nil {
		return err
	}
	if err := c.waitUp(ctx); err != nil {
		return err
	}
	return c.q.push(ctx, env, c.cfg.Keyholder.Owns, true)
}

// SendTail is Send for an envelope whose payload is env.Payload followed
// by tail: the two go into the send queue with one copy each, so a caller
// that encodes a large value as a short head and the value's own bytes
// (payload.Registry.AppendMarshalTail) copies those bytes once rather than
// twice. It sends what Send would with the two joined, with Send's errors
// (the size checked on the whole); tail is not kept after it returns.
func (c *Conn) SendTail(ctx context.Context, env *wire.Envelope, tail []byte) error {
	if !env.Kind.Valid() {
		return fmt.Errorf("%w: %v", wire.ErrUnknownKind, env.Kind)
	}
	if limit, n := maxPayload(wire.MaxFrameSizeLimit, c.tagSize), len(env.Payload)+len(tail); n > limit {
		return &SizeError{Size: n, Limit: limit}
	}
	if err := c.waitUp(ctx); err != nil {
		return err
	}
	_, err := c.q.pushTail(ctx, env, tail, c.cfg.Keyholder.Owns, true, false)
	return err
}

// TrySend is Send that never blocks: it queues env and returns nil, or
// returns at once with a *SizeError (ErrTooLarge) for an envelope that can
// never fit, ErrClosed once the connection is going down, ErrQueueFull when
// the queue holds Config.MaxQueueBytes or the connection is not up yet, or
// the errors of Send for a bad kind or source. Nothing is queued when it
// returns an error.
func (c *Conn) TrySend(env *wire.Envelope) error {
	if err := c.precheck(env); err != nil {
		return err
	}
	select {
	case <-c.up:
	default:
		select {
		case <-c.stopped:
			return ErrClosed
		default:
			return fmt.Errorf("%w: connection not up yet", ErrQueueFull)
		}
	}
	return c.q.push(context.Background(), env, c.cfg.Keyholder.Owns, false)
}

// SendDirect is Send for a sender that is about to wait for an answer (a
// call, or the reply a caller waits for): when its envelope is the first in
// an empty queue and no one is writing, it writes the queue in the calling
// goroutine instead of waking the writer goroutine, after letting runnable
// senders add to it, which saves a goroutine hand-off per message. Else it
// queues as Send does. It may block as a write does, up to
// Config.IdleTimeout when the peer does not read (the connection then
// fails); never call it from Deliver. Envelopes keep their order with
// those of Send and TrySend.
func (c *Conn) SendDirect(ctx context.Context, env *wire.Envelope) error {
	if err := c.precheck(env); err != nil {
		return err
	}
	if err := c.waitUp(ctx); err != nil {
		return err
	}
	flush, err := c.q.pushOpt(ctx, env, c.cfg.Keyholder.Owns, true, true)
	if err != nil || !flush {
		return err
	}
	return c.flush()
}

// TryQueue is TrySend that does not wake the writer: when it reports flush,
// env went into an empty queue and the caller must call Flush (soon: what
// is queued waits for it). It lets one goroutine queue several envelopes,
// to one or more connections, without blocking, and then write them with
// one Flush per connection. It never blocks or writes.
func (c *Conn) TryQueue(env *wire.Envelope) (flush bool, err error) {
	if err := c.precheck(env); err != nil {
		return false, err
	}
	select {
	case <-c.up:
	default:
		select {
		case <-c.stopped:
			return false, ErrClosed
		default:
			return false, fmt.Errorf("%w: connection not up yet", ErrQueueFull)
		}
	}
	return c.q.pushOpt(context.Background(), env, c.cfg.Keyholder.Owns, false, true)
}

// Flush writes what TryQueue queued, as SendDirect does: in the calling
// goroutine when no one else is writing, else by the writer. It may block
// as SendDirect may; never call it from Deliver. It returns ErrClosed, or
// the write's error, when what is queued may not have left.
func (c *Conn) Flush() error { return c.flush() }

// waitUp returns once the connection is up, or with ErrClosed if it goes
// down first, or with ctx's error.
func (c *Conn) waitUp(ctx context.Context) error {
	select {
	case <-c.up:
		return nil
	default:
	}
	select {
	case <-c.up:
		return nil
	case <-c.stopped:
		return ErrClosed
	case <-ctx.Done():
		return ctx.Err()
	}
}

// precheck refuses at once what no queue state can make sendable.
func (c *Conn) precheck(env *wire.Envelope) error {
	if !env.Kind.Valid() {
		return fmt.Errorf("%w: %v", wire.ErrUnknownKind, env.Kind)
	}
	if limit := maxPayload(wire.MaxFrameSizeLimit, c.tagSize); len(env.Payload) > limit {
		return &SizeError{Size: len(env.Payload), Limit: limit}
	}
	return nil
}

// MaxPayload returns the largest envelope payload one frame to the peer can
// hold, from the frame size it announced in its hello; before the
// connection is up, the largest any peer could take.
func (c *Conn) MaxPayload() int {
	select {
	case <-c.up:
		return c.q.maxPayload()
	default:
		return maxPayload(wire.MaxFrameSizeLimit, c.tagSize)
	}
}

// QueueBytes returns how many encoded bytes wait in the send queue for the
// writer (0 before the connection is up). Send blocks, and TrySend fails,
// while it is at Config.MaxQueueBytes.
func (c *Conn) QueueBytes() int {
	select {
	case <-c.up:
		return c.q.bytes()
	default:
		return 0
	}
}

// UpSince returns when the connection came up (its handshake succeeded),
// or the zero time if it never did. It keeps its value after the connection
// went down.
func (c *Conn) UpSince() time.Time {
	select {
	case <-c.up:
		return c.upSince
	default:
		return time.Time{}
	}
}

// Close shuts the connection down in order: it refuses new Sends, writes
// what is queued and a go-away frame (within Config.HandshakeTimeout),
// closes the socket and waits for the connection's goroutines. Close is safe
// to call twice and on a connection that never ran. Do not call it from a
// Config callback; use CloseAsync there.
func (c *Conn) Close() error {
	c.CloseAsync()
	<-c.stopped
	return nil
}

// CloseWith is CloseAsync that tells the peer why, with g as the go-away
// frame (say wire.GoAwayOverLimit and which bound, when the layer above
// refuses a peer). It returns at once; Done is closed when the connection
// has stopped. If the connection fails on its own first, the go-away says
// that instead.
func (c *Conn) CloseWith(g wire.GoAway) {
	c.goAway.CompareAndSwap(nil, &g)
	c.CloseAsync()
}

// CloseAsync starts Close and returns at once.
func (c *Conn) CloseAsync() {
	c.mu.Lock()
	defer c.mu.Unlock()
	switch c.state {
	case stateNew:
		c.state = stateDone
		c.q.close()
		_ = c.raw.Close()
		close(c.stopped)
	case stateServing:
		c.cancel()
	}
}

// Serve runs the connection: handshake, then reading and writing until ctx
// is cancelled, Close is called, or the connection fails. It returns nil in
// the first two cases, the reason otherwise. A Conn is served once; further
// calls return suture.ErrDoNotRestart, so a supervisor does not restart it.
func (c *Conn) Serve(ctx context.Context) error {
	c.mu.Lock()
	if c.state != stateNew {
		c.mu.Unlock()
		return suture.ErrDoNotRestart
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	c.state, c.cancel = stateServing, cancel
	c.mu.Unlock()

	err := c.handshake(ctx)
	if err != nil {
		_ = c.raw.Close()
		c.q.close()
		c.finish(err)
		if ctx.Err() == nil && c.onHandshakeError != nil {
			c.onHandshakeError(err)
		}
		if ctx.Err() == nil && c.cfg.OnHandshakeError != nil {
			c.cfg.OnHandshakeError(c.raw.RemoteAddr(), err)
		}
		c.log.Debug().Err(err).Msg("handshake failed")
		if ctx.Err() != nil {
			return nil
		}
		return err
	}
	err = c.run(ctx)
	if c.cfg.OnDown != nil {
		c.cfg.OnDown(c, err)
	}
	return err
}

// finish records the end of the connection and releases Close.
func (c *Conn) finish(err error) {
	c.mu.Lock()
	c.state = stateDone
	c.downErr = err
	c.mu.Unlock()
	close(c.stopped)
}

// run serves an established connection until it ends, then tears it down.
func (c *Conn) run(ctx context.Context) error {
	c.log.Info().Str("auth", c.mode.String()).Msg("connection up")
	c.q.mu.Lock()
	c.q.framesIn = &c.stats.framesIn
	c.q.mu.Unlock()
	writerDone := make(chan error, 1)
	go func() { writerDone <- c.writeLoop() }()
	if c.cfg.OnUp != nil {
		c.cfg.OnUp(c)
	}
	readerDone := make(chan error, 1)
	go func() { readerDone <- c.readLoop() }()

	var (
		err                  error
		readerOut, writerOut bool
	)
	select {
	case err = <-readerDone:
		readerOut = true
	case err = <-writerDone:
		writerOut = true
	case <-ctx.Done():
	}

	// Refuse new work first, then let the writer flush and say goodbye,
	// unless it is the writer that failed.
	c.q.close()
	if !writerOut {
		if !errors.Is(err, ErrPeerClosed) && (err != nil || c.goAway.Load() == nil) {
			g := goAwayFor(err) // a failure says so; else CloseWith's, or normal
			c.goAway.Store(&g)
		}
		close(c.writerStop)
		t := time.NewTimer(c.cfg.HandshakeTimeout)
		select {
		case <-writerDone:
			if !readerOut {
				readerOut = c.linger(readerDone, t)
			}
		case <-t.C:
			_ = c.raw.Close() // the peer does not read; give up on it
			<-writerDone
		}
		t.Stop()
	}
	_ = c.raw.Close()
	if !readerOut {
		<-readerDone
	}
	if ctx.Err() != nil && !readerOut && !writerOut {
		err = nil // closed by us
	}
	c.finish(err)
	if err != nil {
		c.log.Info().Err(err).Msg("connection down")
	} else {
		c.log.Info().Msg("connection closed")
	}
	return err
}

// linger half-closes a connection on which we said goodbye and waits,
// until t fires, for the peer to close its side, delivering what it still
// sends. Closing at once could make the kernel reset the connection, which
// may destroy our go-away frame before the peer reads it. It reports
// whether the reader ended.
func (c *Conn) linger(readerDone <-chan error, t *time.Timer) bool {
	cw, ok := c.raw.(interface{ CloseWrite() error })
	if !ok || cw.CloseWrite() != nil {
		return false
	}
	select {
	case <-readerDone:
		return true
	case <-t.C:
		return false
	}
}

// goAwayFor returns the go-away frame telling the peer why we close.
func goAwayFor(err error) wire.GoAway {
	switch {
	case err == nil:
		return wire.GoAway{Code: wire.GoAwayNormal}
	case errors.Is(err, wire.ErrFrameTooLarge):
		return wire.GoAway{Code: wire.GoAwayFrameTooLarge, Reason: err.Error()}
	case errors.Is(err, ErrProtocol):
		return wire.GoAway{Code: wire.GoAwayProtocolError, Reason: err.Error()}
	case errors.Is(err, ErrTooManyBad):
		return wire.GoAway{Code: wire.GoAwayTooManyBad}
	case errors.Is(err, ErrIdleTimeout):
		return wire.GoAway{Code: wire.GoAwayIdleTimeout}
	}
	return wire.GoAway{Code: wire.GoAwayInternal}
}
