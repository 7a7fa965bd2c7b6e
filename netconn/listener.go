package netconn

import (
	"context"
	"errors"
	"fmt"
	"net"
	"sync"
	"syscall"
	"time"
)

// Listener accepts connections on a TCP or Unix socket and holds each in a
// Conn that it owns. It is a suture.Service.
//
// NewListener binds the socket at once, so Addr is known (and peers can
// connect, queueing in the kernel's backlog) before Serve runs.
//
// A fault of the socket stays in the Listener: when accepting fails for
// good, Serve closes the socket and binds the same address again, with
// Config.Backoff between attempts, for as long as its ctx lives, while the
// connections it accepted go on serving. Each failure is logged, counted in
// Stats and reported to Config.OnListenError.
type Listener struct {
	cfg     *Config
	guard   *ReplayGuard
	network string
	accept  AcceptPolicy
	// listen binds the address again; nil when the Listener serves a
	// net.Listener it was given (NewListenerOn) and cannot re-bind.
	listen func(network, address string) (net.Listener, error)

	mu      sync.Mutex
	ln      net.Listener // bound socket; nil between failure and re-bind
	addr    net.Addr
	conns   map[*Conn]struct{}
	serving bool
	cancel  context.CancelFunc // of the running Serve
	closed  bool
	failed  error // why a listener that cannot re-bind stopped accepting
	stats   ListenerStats
}

// ListenerStats are the counters of a Listener (Listener.Stats).
type ListenerStats struct {
	Accepted     uint64 // sockets accepted (handshakes not yet judged)
	AcceptErrors uint64 // failed accepts, the temporary ones included
	BindErrors   uint64 // failed attempts to bind the address again
	Rebinds      uint64 // times the address was bound again: after a failure, or by a later Serve
	// Handshakes that failed (TLS, hello, timeout), of which NotAccepted
	// were peers refused by the AcceptPolicy (and AdmitCredential).
	HandshakeFailures uint64
	NotAccepted       uint64
	Conns             int  // connections held now, handshaking or up
	Listening         bool // the socket is bound now
}

// NewListener validates cfg, binds network ("tcp", "tcp4", "tcp6" or
// "unix") and address, and returns a Listener that admits the peer routers
// accept allows (AcceptAny, AllowOnly or your own). Connections share
// cfg.Replay, or one guard made here if it is nil. A port 0 is bound to a
// free port, which the Listener keeps when it binds again.
func NewListener(cfg Config, network, address string, accept AcceptPolicy) (*Listener, error) {
	return newListener(cfg, network, address, accept, net.Listen)
}

func newListener(cfg Config, network, address string, accept AcceptPolicy, listen func(network, address string) (net.Listener, error)) (*Listener, error) {
	if err := checkNetwork(network); err != nil {
		return nil, err
	}
	l, err := makeListener(cfg, network, accept)
	if err != nil {
		return nil, err
	}
	ln, err := listen(network, address)
	if err != nil {
		return nil, err
	}
	l.listen, l.ln, l.addr = listen, ln, ln.Addr()
	return l, nil
}

// NewListenerOn returns a Listener that serves ln, a listener you made
// (an in-memory one in tests, a socket handed over by systemd), with the
// same policy and callbacks as NewListener. It takes ln over: the Listener
// closes it.
//
// Such a Listener cannot bind again: when ln's Accept fails for good, the
// failure is logged, counted and reported to Config.OnListenError as with
// NewListener, ln is closed, and Serve stops accepting but goes on serving
// the connections already accepted until its ctx ends; it then returns the
// accept error. Either way, once Serve has returned the Listener is closed
// for good (ln with it), and a later Serve returns ErrClosed.
func NewListenerOn(cfg Config, ln net.Listener, accept AcceptPolicy) (*Listener, error) {
	if ln == nil {
		return nil, fmt.Errorf("%w: nil net.Listener", ErrBadConfig)
	}
	l, err := makeListener(cfg, ln.Addr().Network(), accept)
	if err != nil {
		return nil, err
	}
	l.ln, l.addr = ln, ln.Addr()
	return l, nil
}

func makeListener(cfg Config, network string, accept AcceptPolicy) (*Listener, error) {
	cfgp, guard, err := prepare(cfg)
	if err != nil {
		return nil, err
	}
	if accept == nil {
		return nil, fmt.Errorf("%w: nil AcceptPolicy", ErrBadConfig)
	}
	return &Listener{
		cfg:     cfgp,
		guard:   guard,
		network: network,
		accept:  accept,
		conns:   make(map[*Conn]struct{}),
	}, nil
}

// Addr returns the address the listener is bound to (with the actual port
// when asked for port 0).
func (l *Listener) Addr() net.Addr { return l.addr }

func (l *Listener) String() string {
	return fmt.Sprintf("netconn.Listener(%s %s)", l.network, l.addr)
}

// Conns returns the connections currently held, handshaking or up.
func (l *Listener) Conns() []*Conn {
	l.mu.Lock()
	defer l.mu.Unlock()
	cs := make([]*Conn, 0, len(l.conns))
	for c := range l.conns {
		cs = append(cs, c)
	}
	return cs
}

// Stats returns the Listener's counters.
func (l *Listener) Stats() ListenerStats {
	l.mu.Lock()
	defer l.mu.Unlock()
	s := l.stats
	s.Conns = len(l.conns)
	s.Listening = l.ln != nil
	return s
}

// Serve accepts connections until ctx is cancelled or Close is called, then
// closes the socket and every connection it holds (in order, see Conn.Close)
// and returns nil once they are all gone.
//
// It does not give up while ctx lives: if accepting fails for good, or the
// address cannot be bound (a Serve after an earlier one returned binds it
// again), it retries binding with Config.Backoff, and the connections it
// holds keep serving meanwhile. Only a Listener made by NewListenerOn, which
// cannot bind, stops accepting (see there).
func (l *Listener) Serve(ctx context.Context) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	l.mu.Lock()
	switch {
	case l.closed:
		l.mu.Unlock()
		if l.failed != nil {
			return fmt.Errorf("%w: %w", ErrClosed, l.failed)
		}
		return ErrClosed
	case l.serving:
		l.mu.Unlock()
		return fmt.Errorf("%w: listener already serving", ErrBadConfig)
	}
	l.serving, l.cancel = true, cancel
	l.mu.Unlock()

	var wg sync.WaitGroup
	failures := 0 // consecutive, since the last accepted socket
	var err error
	for ctx.Err() == nil {
		ln := l.bound()
		if ln == nil {
			if ln = l.rebind(ctx, &failures); ln == nil {
				break // ctx ended
			}
		}
		aerr := l.acceptLoop(ctx, ln, &wg, &failures)
		if ctx.Err() != nil {
			break
		}
		l.mu.Lock()
		_ = ln.Close()
		l.ln = nil
		if l.listen == nil {
			l.failed = aerr
		}
		l.mu.Unlock()
		l.failure("accept failed; socket closed", aerr, true)
		failures++
		if l.listen == nil {
			// Nothing to bind again: serve what we hold until told to stop.
			<-ctx.Done()
			err = aerr
		}
	}
	cancel()
	wg.Wait()
	l.mu.Lock()
	if l.ln != nil {
		_ = l.ln.Close()
		l.ln = nil
	}
	if l.listen == nil {
		l.closed = true // its net.Listener is closed and cannot be made again
	}
	l.serving, l.cancel = false, nil
	l.mu.Unlock()
	return err
}

// bound returns the socket, or nil if it must be bound (again).
func (l *Listener) bound() net.Listener {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.ln
}

// rebind binds the Listener's address, waiting Config.Backoff after each
// failure (and before the first attempt if *failures > 0), until it works or
// ctx ends (then it returns nil).
func (l *Listener) rebind(ctx context.Context, failures *int) net.Listener {
	for {
		if *failures > 0 {
			if !l.wait(ctx, l.cfg.Backoff.delay(*failures-1)) {
				return nil
			}
		}
		ln, err := l.listen(l.network, l.addr.String())
		if err == nil {
			l.mu.Lock()
			if ctx.Err() != nil {
				l.mu.Unlock()
				_ = ln.Close()
				return nil
			}
			l.ln = ln
			l.stats.Rebinds++
			l.mu.Unlock()
			l.cfg.Logger.Info().Str("address", l.addr.String()).Msg("listening again")
			return ln
		}
		if ctx.Err() != nil {
			return nil
		}
		l.failure("cannot bind the address", err, false)
		*failures++
	}
}

// acceptLoop accepts sockets from ln and serves each in a Conn, until ctx
// ends or accepting fails for good (it returns that error).
func (l *Listener) acceptLoop(ctx context.Context, ln net.Listener, wg *sync.WaitGroup, failures *int) error {
	stop := context.AfterFunc(ctx, func() { _ = ln.Close() })
	defer stop()
	var delay time.Duration
	for {
		raw, err := ln.Accept()
		if err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			if !isRetryable(err) {
				return err
			}
			// Out of file descriptors and the like: wait and retry, as
			// net/http does.
			delay = min(max(2*delay, 5*time.Millisecond), time.Second)
			l.failure("accept failed; retrying", err, true)
			if !l.wait(ctx, delay) {
				return ctx.Err()
			}
			continue
		}
		delay, *failures = 0, 0
		c := newConn(l.cfg, l.guard, raw)
		c.server, c.accept = true, l.accept
		l.mu.Lock()
		l.conns[c] = struct{}{}
		l.stats.Accepted++
		l.mu.Unlock()
		c.onHandshakeError = l.countHandshakeError
		wg.Go(func() {
			_ = c.Serve(ctx)
			l.mu.Lock()
			delete(l.conns, c)
			l.mu.Unlock()
		})
	}
}

// countHandshakeError counts a connection that failed before it came up
// (before Config.OnHandshakeError hears of it).
func (l *Listener) countHandshakeError(err error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.stats.HandshakeFailures++
	if errors.Is(err, ErrNotAccepted) {
		l.stats.NotAccepted++
	}
}

// failure counts, logs and reports one failure of the socket.
func (l *Listener) failure(msg string, err error, accepting bool) {
	l.mu.Lock()
	if accepting {
		l.stats.AcceptErrors++
	} else {
		l.stats.BindErrors++
	}
	l.mu.Unlock()
	ev := l.cfg.Logger.Error()
	if accepting && isRetryable(err) {
		ev = l.cfg.Logger.Warn() // retried in place; the socket stays
	}
	ev.Err(err).Str("address", l.addr.String()).Msg(msg)
	if l.cfg.OnListenError != nil {
		l.cfg.OnListenError(l.addr.String(), err)
	}
}

// wait waits d, or until ctx ends; it reports whether ctx still lives.
func (l *Listener) wait(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}

// Close stops Serve if it runs and releases the socket; Serve then returns
// once its connections are gone. A closed Listener cannot serve again. Close
// is safe to call twice.
func (l *Listener) Close() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.closed = true
	if l.serving {
		l.cancel() // Serve closes the socket
		return nil
	}
	if l.ln != nil {
		err := l.ln.Close()
		l.ln = nil
		return err
	}
	return nil
}

// isRetryable reports accept errors after which the same socket is tried
// again: timeouts and isTemporary.
func isRetryable(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout() || isTemporary(err)
}

// isTemporary reports accept errors worth retrying: the process or system
// is out of descriptors or buffers, or a connection died before we took it.
func isTemporary(err error) bool {
	for _, e := range []error{syscall.EMFILE, syscall.ENFILE, syscall.ENOBUFS, syscall.ENOMEM, syscall.ECONNABORTED, syscall.ECONNRESET} {
		if errors.Is(err, e) {
			return true
		}
	}
	return false
}
