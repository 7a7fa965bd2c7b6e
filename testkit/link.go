package testkit

import (
	"io"
	"net"
	"sync"
)

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

// setCut cuts (closing every connection through the link and refusing new
// ones) or heals the link.
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

// close stops the link and waits for its goroutines.
func (l *link) close() {
	l.ln.Close()
	l.setCut(true)
	l.wg.Wait()
}
