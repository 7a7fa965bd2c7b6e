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
type Listener struct {
	cfg     *Config
	guard   *ReplayGuard
	network string
	accept  AcceptPolicy

	mu      sync.Mutex
	ln      net.Listener
	addr    net.Addr
	conns   map[*Conn]struct{}
	serving bool
	closed  bool
}

// NewListener validates cfg, binds network ("tcp", "tcp4", "tcp6" or
// "unix") and address, and returns a Listener that admits the peer routers
// accept allows (AcceptAny, AllowOnly or your own). Connections share
// cfg.Replay, or one guard made here if it is nil.
func NewListener(cfg Config, network, address string, accept AcceptPolicy) (*Listener, error) {
	cfgp, guard, err := prepare(cfg)
	if err != nil {
		return nil, err
	}
	if err := checkNetwork(network); err != nil {
		return nil, err
	}
	if accept == nil {
		return nil, fmt.Errorf("%w: nil AcceptPolicy", ErrBadConfig)
	}
	ln, err := net.Listen(network, address)
	if err != nil {
		return nil, err
	}
	return &Listener{
		cfg:     cfgp,
		guard:   guard,
		network: network,
		accept:  accept,
		ln:      ln,
		addr:    ln.Addr(),
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

// Serve accepts connections until ctx is cancelled or Close is called, then
// closes the socket and every connection it holds (in order, see Conn.Close)
// and returns nil once they are all gone. If accepting fails for good it
// closes them the same way and returns the error; a supervisor restarting it
// re-binds the same address.
func (l *Listener) Serve(ctx context.Context) error {
	l.mu.Lock()
	switch {
	case l.closed:
		l.mu.Unlock()
		return ErrClosed
	case l.serving:
		l.mu.Unlock()
		return fmt.Errorf("%w: listener already serving", ErrBadConfig)
	}
	if l.ln == nil {
		ln, err := net.Listen(l.network, l.addr.String())
		if err != nil {
			l.mu.Unlock()
			return err
		}
		l.ln = ln
	}
	ln := l.ln
	l.serving = true
	l.mu.Unlock()

	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	stop := context.AfterFunc(ctx, func() { _ = ln.Close() })
	defer stop()

	var (
		wg    sync.WaitGroup
		err   error
		delay time.Duration
	)
	for {
		raw, aerr := ln.Accept()
		if aerr != nil {
			if ctx.Err() != nil || l.isClosed() {
				break
			}
			var ne net.Error
			if errors.As(aerr, &ne) && ne.Timeout() || isTemporary(aerr) {
				// Out of file descriptors and the like: wait and retry, as
				// net/http does.
				delay = min(max(2*delay, 5*time.Millisecond), time.Second)
				l.cfg.Logger.Warn().Err(aerr).Dur("retry_in", delay).Msg("accept failed")
				t := time.NewTimer(delay)
				select {
				case <-t.C:
				case <-ctx.Done():
				}
				t.Stop()
				continue
			}
			err = aerr
			break
		}
		delay = 0
		c := newConn(l.cfg, l.guard, raw)
		c.server, c.accept = true, l.accept
		l.mu.Lock()
		l.conns[c] = struct{}{}
		l.mu.Unlock()
		wg.Go(func() {
			_ = c.Serve(ctx)
			l.mu.Lock()
			delete(l.conns, c)
			l.mu.Unlock()
		})
	}
	cancel()
	_ = ln.Close()
	wg.Wait()
	l.mu.Lock()
	l.ln = nil
	l.serving = false
	l.mu.Unlock()
	return err
}

func (l *Listener) isClosed() bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.closed
}

// Close stops Serve if it runs and releases the socket; Serve then returns
// once its connections are gone. A closed Listener cannot serve again. Close
// is safe to call twice.
func (l *Listener) Close() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.closed = true
	if l.ln != nil {
		err := l.ln.Close()
		if !l.serving {
			l.ln = nil
			return err
		}
	}
	return nil
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
