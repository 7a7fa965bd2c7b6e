package netconn

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/enginekit/enginekit/keyholder"
	"github.com/enginekit/enginekit/wire"
	"github.com/rs/zerolog"
	"github.com/thejerf/suture/v4"
)

// macLabel is the TLS exporter label of the MAC channel secret (RFC 8446
// §7.5); spec.md, "Authentication".
const macLabel = "enginekit mac v1"

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

	q sendQueue

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

// Auth returns the authentication mode of the connection.
func (c *Conn) Auth() Auth { return c.cfg.Auth }

// LocalAddr returns the socket's local network address.
func (c *Conn) LocalAddr() net.Addr { return c.raw.LocalAddr() }

// RemoteAddr returns the peer's network address.
func (c *Conn) RemoteAddr() net.Addr { return c.raw.RemoteAddr() }

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
func (c *Conn) Send(ctx context.Context, env *wire.Envelope) error {
	if !env.Kind.Valid() {
		return fmt.Errorf("%w: %v", wire.ErrUnknownKind, env.Kind)
	}
	select {
	case <-c.up:
	default:
		select {
		case <-c.up:
		case <-c.stopped:
			return ErrClosed
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	return c.q.push(ctx, env, c.cfg.Keyholder.Owns)
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

// aLongTimeAgo is a deadline in the past, to interrupt blocked I/O.
var aLongTimeAgo = time.Unix(1, 0)

// handshake runs TLS and the hello exchange within HandshakeTimeout. On
// success the connection is up.
func (c *Conn) handshake(ctx context.Context) (err error) {
	defer func() {
		if err != nil {
			if ctx.Err() != nil {
				err = fmt.Errorf("%w: %w", ErrHandshake, ErrClosed)
			} else if errors.Is(err, os.ErrDeadlineExceeded) {
				err = fmt.Errorf("%w: %w after %v", ErrHandshake, ErrHandshakeTimeout, c.cfg.HandshakeTimeout)
			} else if !errors.Is(err, ErrHandshake) {
				err = fmt.Errorf("%w: %w", ErrHandshake, err)
			}
		}
	}()
	if err := c.raw.SetDeadline(time.Now().Add(c.cfg.HandshakeTimeout)); err != nil {
		return err
	}
	stop := context.AfterFunc(ctx, func() { _ = c.raw.SetDeadline(aLongTimeAgo) })
	defer stop()

	if c.server {
		c.tls = tls.Server(c.raw, c.serverTLS())
	} else {
		c.tls = tls.Client(c.raw, c.clientTLS())
	}
	if err := c.tls.Handshake(); err != nil {
		return err
	}
	st := c.tls.ConnectionState()
	c.peer, err = keyholder.RouterFromCertificate(st.PeerCertificates[0]) // checked in VerifyConnection
	if err != nil {
		return err
	}
	if c.mode == wire.AuthMACs {
		secret, err := st.ExportKeyingMaterial(macLabel, nil, 32)
		if err != nil {
			return err
		}
		if c.mac, err = c.cfg.Keyholder.NewMACSession(secret); err != nil {
			return err
		}
	}

	c.fr = wire.NewFrameReader(c.tls, c.cfg.MaxFrameSize)
	ours := wire.Hello{Version: wire.Version, Auth: c.mode, MaxFrameSize: uint32(c.cfg.MaxFrameSize)}
	var theirs wire.Hello
	if c.server {
		// The client speaks first, so the server can refuse with a reason.
		if theirs, err = c.readHello(); err != nil {
			return err
		}
		if _, err := c.tls.Write(wire.AppendHello(nil, ours)); err != nil {
			return err
		}
	} else {
		if _, err := c.tls.Write(wire.AppendHello(nil, ours)); err != nil {
			return err
		}
		if theirs, err = c.readHello(); err != nil {
			return err
		}
	}
	if !stop() {
		return ctx.Err()
	}
	if err := c.raw.SetDeadline(time.Time{}); err != nil {
		return err
	}
	c.q.init(c.cfg.MaxQueueBytes, int(theirs.MaxFrameSize), c.tagSize)
	c.log = c.log.With().Str("peer", c.peer.String()).Logger()
	c.mu.Lock()
	c.wasUp = true
	c.mu.Unlock()
	close(c.up)
	return nil
}

// readHello reads the peer's hello and checks it against ours. It refuses
// an unacceptable one with a go-away frame that says why.
func (c *Conn) readHello() (wire.Hello, error) {
	typ, body, err := c.fr.ReadFrame()
	if err != nil {
		return wire.Hello{}, err
	}
	switch typ {
	case wire.FrameHello:
		h, err := wire.ParseHello(body)
		if err == nil {
			err = c.checkHello(h)
		}
		if err != nil {
			_, _ = c.tls.Write(wire.AppendGoAway(nil, wire.GoAway{Code: wire.GoAwayRefused, Reason: err.Error()}))
		}
		return h, err
	case wire.FrameGoAway:
		g, err := wire.ParseGoAway(body)
		if err != nil {
			return wire.Hello{}, err
		}
		return wire.Hello{}, fmt.Errorf("%w: %w", ErrPeerClosed, g)
	}
	return wire.Hello{}, fmt.Errorf("%w: %v frame before hello", ErrProtocol, typ)
}

func (c *Conn) checkHello(h wire.Hello) error {
	switch {
	case h.Version != wire.Version:
		return fmt.Errorf("%w: peer speaks version %d, we speak %d", ErrIncompatible, h.Version, wire.Version)
	case h.Auth != c.mode:
		return fmt.Errorf("%w: peer authenticates with %v, we with %v", ErrIncompatible, h.Auth, c.mode)
	}
	return nil
}

func (c *Conn) serverTLS() *tls.Config {
	kh := c.cfg.Keyholder
	return &tls.Config{
		MinVersion:             tls.VersionTLS13,
		MaxVersion:             tls.VersionTLS13,
		ClientAuth:             tls.RequireAnyClientCert,
		NextProtos:             []string{wire.ALPN},
		SessionTicketsDisabled: true,
		GetCertificate: func(*tls.ClientHelloInfo) (*tls.Certificate, error) {
			cert, err := kh.TLSCertificate()
			return &cert, err
		},
		VerifyConnection: func(cs tls.ConnectionState) error {
			peer, err := c.checkPeerState(cs)
			if err != nil {
				return err
			}
			if !c.accept(peer) {
				return fmt.Errorf("%w: %w: %v", ErrHandshake, ErrNotAccepted, peer)
			}
			return nil
		},
	}
}

func (c *Conn) clientTLS() *tls.Config {
	kh := c.cfg.Keyholder
	return &tls.Config{
		MinVersion: tls.VersionTLS13,
		MaxVersion: tls.VersionTLS13,
		NextProtos: []string{wire.ALPN},
		ServerName: "enginekit",
		// Peers are identified by their router key, not by names or CAs:
		// VerifyConnection checks the key against the pinned one.
		InsecureSkipVerify: true,
		GetClientCertificate: func(*tls.CertificateRequestInfo) (*tls.Certificate, error) {
			cert, err := kh.TLSCertificate()
			return &cert, err
		},
		VerifyConnection: func(cs tls.ConnectionState) error {
			peer, err := c.checkPeerState(cs)
			if err != nil {
				return err
			}
			if peer != c.pinned {
				return fmt.Errorf("%w: %w: got %v, want %v", ErrHandshake, ErrWrongPeer, peer, c.pinned)
			}
			return nil
		},
	}
}

// checkPeerState extracts the peer's router key from a finished TLS
// handshake and checks what both sides require.
func (c *Conn) checkPeerState(cs tls.ConnectionState) (keyholder.Address, error) {
	if cs.Version != tls.VersionTLS13 {
		return keyholder.Address{}, fmt.Errorf("%w: TLS version %x", ErrHandshake, cs.Version)
	}
	if cs.NegotiatedProtocol != wire.ALPN {
		return keyholder.Address{}, fmt.Errorf("%w: %w: peer does not speak %s", ErrHandshake, ErrIncompatible, wire.ALPN)
	}
	if len(cs.PeerCertificates) != 1 {
		return keyholder.Address{}, fmt.Errorf("%w: peer sent %d certificates, want 1", ErrHandshake, len(cs.PeerCertificates))
	}
	peer, err := keyholder.RouterFromCertificate(cs.PeerCertificates[0])
	if err != nil {
		return keyholder.Address{}, fmt.Errorf("%w: %w", ErrHandshake, err)
	}
	if peer == c.router {
		return keyholder.Address{}, fmt.Errorf("%w: %w", ErrHandshake, ErrSelf)
	}
	return peer, nil
}

// run serves an established connection until it ends, then tears it down.
func (c *Conn) run(ctx context.Context) error {
	c.log.Info().Str("auth", c.mode.String()).Msg("connection up")
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
		if !errors.Is(err, ErrPeerClosed) {
			g := goAwayFor(err)
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

// readLoop reads frames until the stream fails or the peer misbehaves.
func (c *Conn) readLoop() error {
	var rs readState
	for {
		typ, body, err := c.fr.ReadFrame()
		if err != nil {
			switch {
			case errors.Is(err, wire.ErrFrameTooLarge), errors.Is(err, wire.ErrMalformedFrame), errors.Is(err, wire.ErrUnknownFrame):
				return fmt.Errorf("%w: %w", ErrProtocol, err)
			case errors.Is(err, io.EOF):
				return fmt.Errorf("%w: end of stream", ErrPeerClosed)
			}
			return err
		}
		c.stats.framesIn.Add(1)
		c.stats.bytesIn.Add(uint64(wire.FrameHeaderSize + len(body)))
		switch typ {
		case wire.FrameBatch:
			if err := c.handleBatch(body, &rs); err != nil {
				return err
			}
		case wire.FramePing:
			v, err := wire.ParsePing(body)
			if err != nil {
				return fmt.Errorf("%w: %w", ErrProtocol, err)
			}
			c.q.requestPong(v)
		case wire.FramePong:
			if _, err := wire.ParsePing(body); err != nil {
				return fmt.Errorf("%w: %w", ErrProtocol, err)
			}
		case wire.FrameGoAway:
			g, err := wire.ParseGoAway(body)
			if err != nil {
				return fmt.Errorf("%w: %w", ErrProtocol, err)
			}
			return fmt.Errorf("%w: %w", ErrPeerClosed, g)
		default: // a second hello
			return fmt.Errorf("%w: unexpected %v frame", ErrProtocol, typ)
		}
	}
}

// readState is the reader's scratch space, reused from batch to batch.
type readState struct {
	env  wire.Envelope
	mask []uint64
	auth []byte
	bad  int
}

// handleBatch checks a batch frame body and delivers its envelopes: the
// layout (else the peer is broken: error), the tag (else the batch is
// dropped and counted, and the peer disconnected after MaxBadBatches), the
// replay window, the kinds.
func (c *Conn) handleBatch(body []byte, rs *readState) error {
	b, err := wire.DecodeBatch(body, c.tagSize)
	if err != nil {
		return fmt.Errorf("%w: %w", ErrProtocol, err)
	}
	rs.auth = wire.AppendAuthMessage(rs.auth[:0], c.mode, &c.peer, &c.router, b.Signed)
	if !c.verify(b.Src, rs.auth, b.Tag) {
		c.stats.droppedAuth.Add(uint64(b.Count))
		c.log.Debug().Str("src", b.Src.String()).Int("envelopes", b.Count).Msg("batch failed authentication; dropped")
		if rs.bad++; rs.bad > c.cfg.MaxBadBatches {
			return fmt.Errorf("%w: %d batches", ErrTooManyBad, rs.bad)
		}
		return nil
	}
	if words := (b.Count + 63) / 64; len(rs.mask) < words {
		rs.mask = make([]uint64, words)
	}
	accepted := c.guard.accept(b.Src, b.Seq, b.Count, rs.mask)
	if accepted < b.Count {
		c.stats.droppedReplay.Add(uint64(b.Count - accepted))
		c.log.Debug().Str("src", b.Src.String()).Int("envelopes", b.Count-accepted).Msg("replayed envelopes dropped")
	}
	it := b.Envelopes()
	env := &rs.env
	for i := 0; it.Next(env); i++ {
		if rs.mask[i/64]&(1<<(i%64)) == 0 {
			continue
		}
		if !env.Kind.Valid() {
			c.stats.droppedMalformed.Add(1)
			c.log.Debug().Str("src", b.Src.String()).Stringer("kind", env.Kind).Msg("envelope of unknown kind dropped")
			continue
		}
		c.stats.envelopesIn.Add(1) // before Deliver, so what it triggers sees the count
		c.cfg.Deliver(c, env)
	}
	return nil
}

// verify checks a batch tag. No peer may speak for this node's router or
// engines (MACSession.Verify refuses them too), whatever it signs.
func (c *Conn) verify(src keyholder.Address, msg, tag []byte) bool {
	if c.mac != nil {
		return c.mac.Verify(src, msg, tag)
	}
	return !c.cfg.Keyholder.Owns(src) && keyholder.Verify(src, msg, tag)
}

// writeLoop writes what Send queues, pings when the peer is quiet and gives
// up when it stays quiet, until told to stop.
func (c *Conn) writeLoop() error {
	tick := time.NewTicker(c.cfg.IdleTimeout / 4)
	defer tick.Stop()
	var (
		spare     []byte
		spareB    []queuedBatch
		auth      []byte
		lastIn    = c.stats.framesIn.Load()
		idleTicks int
		pingNo    uint64
	)
	for {
		var ctrl []byte // control frames to add this round
		stopping := false
		select {
		case <-c.q.kick:
		case <-c.writerStop:
			stopping = true
		case <-tick.C:
			if n := c.stats.framesIn.Load(); n != lastIn {
				lastIn, idleTicks = n, 0
				continue
			}
			idleTicks++
			if idleTicks >= 4 {
				c.writeFinal(wire.AppendGoAway(nil, wire.GoAway{Code: wire.GoAwayIdleTimeout}), 1)
				return fmt.Errorf("%w: nothing for %v", ErrIdleTimeout, c.cfg.IdleTimeout)
			}
			pingNo++
			ctrl = wire.AppendPing(ctrl, pingNo)
		}
		buf, batches, pong, pongData := c.q.take(spare, spareB)
		if pong {
			ctrl = wire.AppendPong(ctrl, pongData)
		}
		var sealed int
		buf, sealed, auth = c.seal(buf, batches, auth)
		out := append(buf, ctrl...)
		frames := sealed + countFrames(ctrl)
		if stopping {
			if g := c.goAway.Load(); g != nil {
				out = wire.AppendGoAway(out, *g)
				frames++
			}
			c.writeFinal(out, frames)
			return nil
		}
		if len(out) > 0 {
			if err := c.write(out, frames, c.cfg.IdleTimeout); err != nil {
				return err
			}
		}
		spare, spareB = out, batches
	}
}

func countFrames(ctrl []byte) int {
	// Control frames are pings and pongs here, all the same size.
	return len(ctrl) / (wire.FrameHeaderSize + wire.PingSize)
}

// write writes out within timeout and counts it.
func (c *Conn) write(out []byte, frames int, timeout time.Duration) error {
	if err := c.tls.SetWriteDeadline(time.Now().Add(timeout)); err != nil {
		return err
	}
	if _, err := c.tls.Write(out); err != nil {
		if errors.Is(err, os.ErrDeadlineExceeded) {
			return fmt.Errorf("%w: write blocked for %v", ErrIdleTimeout, timeout)
		}
		return err
	}
	c.stats.framesOut.Add(uint64(frames))
	c.stats.bytesOut.Add(uint64(len(out)))
	return nil
}

// writeFinal makes a last, best-effort write when closing.
func (c *Conn) writeFinal(out []byte, frames int) {
	if len(out) > 0 {
		_ = c.write(out, frames, c.cfg.HandshakeTimeout)
	}
}

// seal numbers and authenticates the batches in buf, dropping (and
// counting) those the keyholder will not authenticate. It returns buf
// without them and how many batches are left.
func (c *Conn) seal(buf []byte, batches []queuedBatch, auth []byte) ([]byte, int, []byte) {
	w, kept := 0, 0 // buf[:w] is done
	for i := range batches {
		b := &batches[i]
		end := len(buf)
		if i+1 < len(batches) {
			end = batches[i+1].off
		}
		frame := buf[b.off:end]
		wire.SetBatchSeq(frame, c.guard.nextSeq(b.src, b.count))
		auth = wire.AppendAuthMessage(auth[:0], c.mode, &c.router, &c.peer, wire.BatchSigned(frame, c.tagSize))
		if err := c.tag(b.src, auth, wire.BatchTag(frame, c.tagSize)); err != nil {
			c.stats.droppedSend.Add(uint64(b.count))
			c.log.Warn().Err(err).Str("src", b.src.String()).Int("envelopes", b.count).Msg("cannot authenticate; envelopes dropped")
			continue
		}
		c.stats.envelopesOut.Add(uint64(b.count))
		if w != b.off {
			copy(buf[w:], frame)
		}
		w += len(frame)
		kept++
	}
	return buf[:w], kept, auth
}

// tag writes src's tag of msg into slot.
func (c *Conn) tag(src keyholder.Address, msg, slot []byte) error {
	if c.mac != nil {
		t, err := c.mac.MAC(src, slot[:0], msg)
		if err != nil {
			return err
		}
		if len(t) != len(slot) {
			return fmt.Errorf("netconn: MAC of %d bytes, want %d", len(t), len(slot))
		}
		if &t[0] != &slot[0] {
			copy(slot, t)
		}
		return nil
	}
	sig, err := c.cfg.Keyholder.Sign(src, msg)
	if err != nil {
		return err
	}
	if len(sig) != len(slot) {
		return fmt.Errorf("netconn: signature of %d bytes, want %d", len(sig), len(slot))
	}
	copy(slot, sig)
	return nil
}
