package testkit

import (
	"context"
	"errors"
	"io"
	"net"
	"sync"
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
// cable that can be pulled (cut) and plugged back (heal).
type link struct {
	ln      net.Listener
	network string
	target  string
	wg      sync.WaitGroup

	mu    sync.Mutex
	cut   bool
	conns []net.Conn
}

func newLink(network, address, targetNetwork, target string) (*link, error) {
	ln, err := net.Listen(network, address)
	if err != nil {
		return nil, err
	}
	l := &link{ln: ln, network: targetNetwork, target: target}
	l.wg.Add(1)
	go l.accept()
	return l, nil
}

func (l *link) accept() {
	defer l.wg.Done()
	for {
		in, err := l.ln.Accept()
		if err != nil {
			return
		}
		l.mu.Lock()
		cut := l.cut
		l.mu.Unlock()
		if cut { // the cable is out: the dialler sees its connection fail
			in.Close()
			continue
		}
		out, err := net.Dial(l.network, l.target)
		if err != nil {
			in.Close()
			continue
		}
		l.mu.Lock()
		if l.cut { // cut while we dialled
			l.mu.Unlock()
			in.Close()
			out.Close()
			continue
		}
		l.conns = append(l.conns, in, out)
		l.wg.Add(2)
		l.mu.Unlock()
		go l.pipe(in, out)
		go l.pipe(out, in)
	}
}

func (l *link) pipe(dst, src net.Conn) {
	defer l.wg.Done()
	_, _ = io.Copy(dst, src)
	dst.Close()
	src.Close()
}

func (l *link) dialer() func(ctx context.Context) (net.Conn, error) {
	network, address := l.ln.Addr().Network(), l.ln.Addr().String()
	return func(ctx context.Context) (net.Conn, error) {
		var d net.Dialer
		return d.DialContext(ctx, network, address)
	}
}

func (l *link) setCut(cut bool) {
	l.mu.Lock()
	l.cut = cut
	var conns []net.Conn
	if cut {
		conns, l.conns = l.conns, nil
	}
	l.mu.Unlock()
	for _, c := range conns {
		c.Close()
	}
}

func (l *link) close() {
	l.ln.Close()
	l.setCut(true)
	l.wg.Wait()
}
