package netconn

import (
	"context"
	"fmt"
	"net"
	"sync"
	"time"

	"github.com/enginekit/enginekit/keyholder"
)

// Dialer keeps one connection to a peer node up: it dials, holds the
// connection in a Conn, and when that goes down dials again, with
// exponential backoff and jitter (Config.Backoff) between failed attempts.
// The peer must prove the pinned router key. It is a suture.Service.
type Dialer struct {
	cfg     *Config
	guard   *ReplayGuard
	network string
	address string // or the name given to NewDialerFunc
	dial    func(ctx context.Context) (net.Conn, error)
	peer    keyholder.Address

	mu      sync.Mutex
	conn    *Conn // current connection, up or handshaking
	serving bool
	past    Stats // of connections that ended
	ups     uint64
	fails   uint64 // attempts that brought no connection up
}

// NewDialer validates cfg and returns a Dialer for the node at address on
// network ("tcp", "tcp4", "tcp6" or "unix") whose router must be peer.
// Connections use cfg.Replay, or one guard made here if it is nil.
func NewDialer(cfg Config, network, address string, peer keyholder.Address) (*Dialer, error) {
	cfgp, guard, err := prepare(cfg)
	if err != nil {
		return nil, err
	}
	if err := checkNetwork(network); err != nil {
		return nil, err
	}
	if peer.IsZero() {
		return nil, fmt.Errorf("%w: zero peer router", ErrBadConfig)
	}
	return &Dialer{cfg: cfgp, guard: guard, network: network, address: address, peer: peer}, nil
}

// NewDialerFunc is NewDialer with your own way to connect: dial is called
// for each attempt (and again after each failure or lost connection, with
// Config.Backoff between failures) and must return a connected stream
// socket or an error, ending when ctx ends; Config.HandshakeTimeout bounds
// it as it bounds a network dial. name says where dial goes, for logs and
// String (an in-memory peer's name, a relay's address).
func NewDialerFunc(cfg Config, name string, dial func(ctx context.Context) (net.Conn, error), peer keyholder.Address) (*Dialer, error) {
	cfgp, guard, err := prepare(cfg)
	if err != nil {
		return nil, err
	}
	if dial == nil {
		return nil, fmt.Errorf("%w: nil dial function", ErrBadConfig)
	}
	if peer.IsZero() {
		return nil, fmt.Errorf("%w: zero peer router", ErrBadConfig)
	}
	return &Dialer{cfg: cfgp, guard: guard, network: "func", address: name, dial: dial, peer: peer}, nil
}

func (d *Dialer) String() string {
	return fmt.Sprintf("netconn.Dialer(%s %s, peer %v)", d.network, d.address, d.peer)
}

// Peer returns the pinned router address.
func (d *Dialer) Peer() keyholder.Address { return d.peer }

// Conn returns the current connection if it is up, else nil.
func (d *Dialer) Conn() *Conn {
	d.mu.Lock()
	c := d.conn
	d.mu.Unlock()
	if c == nil {
		return nil
	}
	select {
	case <-c.up:
		select {
		case <-c.stopped:
			return nil
		default:
			return c
		}
	default:
		return nil
	}
}

// Stats returns the counters of all the Dialer's connections so far, the
// current one included, and how many times it reconnected.
func (d *Dialer) Stats() Stats {
	d.mu.Lock()
	s, c, ups := d.past, d.conn, d.ups
	d.mu.Unlock()
	if c != nil {
		s.add(c.Stats())
		select {
		case <-c.up:
			ups++
		default:
		}
	}
	s.Reconnects = ups - min(ups, 1)
	d.mu.Lock()
	s.DialFailures = d.fails
	d.mu.Unlock()
	return s
}

// Serve dials and holds the connection, re-dialling whenever it goes down,
// until ctx is cancelled; then it closes the connection in order (see
// Conn.Close) and returns nil.
func (d *Dialer) Serve(ctx context.Context) error {
	d.mu.Lock()
	if d.serving {
		d.mu.Unlock()
		return fmt.Errorf("%w: dialer already serving", ErrBadConfig)
	}
	d.serving = true
	d.mu.Unlock()
	defer func() {
		d.mu.Lock()
		d.serving = false
		d.mu.Unlock()
	}()

	failures := 0
	for ctx.Err() == nil {
		if d.dialOnce(ctx) {
			failures = 0
		}
		if ctx.Err() != nil {
			break
		}
		delay := d.cfg.Backoff.delay(failures)
		failures++
		d.cfg.Logger.Debug().Str("remote", d.address).Str("peer", d.peer.String()).Dur("delay", delay).Msg("redialling")
		t := time.NewTimer(delay)
		select {
		case <-t.C:
		case <-ctx.Done():
		}
		t.Stop()
	}
	return nil
}

// dialOnce makes one connection and serves it until it ends. It reports
// whether the connection came up.
func (d *Dialer) dialOnce(ctx context.Context) bool {
	raw, err := d.connect(ctx)
	if err != nil {
		if ctx.Err() == nil {
			d.mu.Lock()
			d.fails++
			d.mu.Unlock()
			d.cfg.Logger.Debug().Err(err).Str("address", d.address).Msg("dial failed")
		}
		return false
	}
	c := newConn(d.cfg, d.guard, raw)
	c.pinned = d.peer
	d.mu.Lock()
	c.reconnNo = d.ups
	d.conn = c
	d.mu.Unlock()

	_ = c.Serve(ctx)

	d.mu.Lock()
	defer d.mu.Unlock()
	d.conn = nil
	d.past.add(c.Stats())
	if c.wasUp {
		d.ups++
	} else if ctx.Err() == nil {
		d.fails++
	}
	return c.wasUp
}

// connect makes one socket to the peer within HandshakeTimeout.
func (d *Dialer) connect(ctx context.Context) (net.Conn, error) {
	if d.dial == nil {
		nd := net.Dialer{Timeout: d.cfg.HandshakeTimeout}
		return nd.DialContext(ctx, d.network, d.address)
	}
	ctx, cancel := context.WithTimeout(ctx, d.cfg.HandshakeTimeout)
	defer cancel()
	raw, err := d.dial(ctx)
	if err == nil && raw == nil {
		err = fmt.Errorf("%w: dial function returned no connection", ErrBadConfig)
	}
	return raw, err
}
