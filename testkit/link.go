package testkit

import (
	"context"
	"errors"
	"net"
	"sync"

	"github.com/enginekit/enginekit/internal/relay"
)

// cable is a link between two nodes that a test can pull and plug back.
type cable interface {
	// dialer is how the dialling node connects through the cable.
	dialer() func(ctx context.Context) (net.Conn, error)
	// setCut cuts (closing every connection through the cable and refusing
	// new ones) or heals it.
	setCut(cut bool)
	// close cuts the cable for good and waits for its goroutines.
	close()
}

// errCut is what dialling a cut pipe link returns.
var errCut = errors.New("testkit: link cut")

// pipeLink is a cable of in-memory pipes: it wraps the listener's Dial.
type pipeLink struct {
	dial func(ctx context.Context) (net.Conn, error)

	mu    sync.Mutex
	cut   bool
	conns []net.Conn
}

func (p *pipeLink) dialer() func(ctx context.Context) (net.Conn, error) {
	return func(ctx context.Context) (net.Conn, error) {
		p.mu.Lock()
		cut := p.cut
		p.mu.Unlock()
		if cut {
			return nil, errCut
		}
		c, err := p.dial(ctx)
		if err != nil {
			return nil, err
		}
		p.mu.Lock()
		defer p.mu.Unlock()
		if p.cut { // cut while we dialled
			c.Close()
			return nil, errCut
		}
		p.conns = append(p.conns, c)
		return c, nil
	}
}

func (p *pipeLink) setCut(cut bool) {
	p.mu.Lock()
	p.cut = cut
	var conns []net.Conn
	if cut {
		conns, p.conns = p.conns, nil
	}
	p.mu.Unlock()
	for _, c := range conns {
		c.Close()
	}
}

func (p *pipeLink) close() { p.setCut(true) }

// link relays connections from its own endpoint to a target, like a network
// cable that can be pulled (cut) and plugged back (heal): a relay.Relay.
type link struct{ r *relay.Relay }

func newLink(network, address, targetNetwork, target string) (*link, error) {
	r, err := relay.New(network, address, targetNetwork, target)
	if err != nil {
		return nil, err
	}
	return &link{r: r}, nil
}

func (l *link) dialer() func(ctx context.Context) (net.Conn, error) {
	network, address := l.r.Addr().Network(), l.r.Addr().String()
	return func(ctx context.Context) (net.Conn, error) {
		var d net.Dialer
		return d.DialContext(ctx, network, address)
	}
}

func (l *link) setCut(cut bool) {
	if cut {
		l.r.Unplug()
	} else {
		l.r.Plug()
	}
}

func (l *link) close() { _ = l.r.Close() }
