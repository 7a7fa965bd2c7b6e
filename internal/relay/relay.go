// Package relay is a loopback relay that can be cut: it stands in for the
// network link between two nodes in the demo and in fault tests. Every
// connection accepted is piped to a fresh connection to the target; Cut
// closes all of them at once, as a pulled cable would, while the relay keeps
// accepting (so a redialling node comes back through it). Unplug also
// refuses new connections until Plug, as a cable left out would.
package relay

import (
	"io"
	"net"
	"sync"
)

// Relay forwards connections from its own address to a target address.
type Relay struct {
	ln      net.Listener
	network string
	target  string
	wg      sync.WaitGroup

	mu        sync.Mutex
	conns     []net.Conn
	closed    bool
	unplugged bool
}

// New listens on network/address (a loopback TCP address or a Unix socket
// path) and relays to targetNetwork/target.
func New(network, address, targetNetwork, target string) (*Relay, error) {
	ln, err := net.Listen(network, address)
	if err != nil {
		return nil, err
	}
	r := &Relay{ln: ln, network: targetNetwork, target: target}
	r.wg.Add(1)
	go r.accept()
	return r, nil
}

// Addr returns the relay's own address, to dial instead of the target.
func (r *Relay) Addr() net.Addr { return r.ln.Addr() }

func (r *Relay) accept() {
	defer r.wg.Done()
	for {
		in, err := r.ln.Accept()
		if err != nil {
			return
		}
		r.mu.Lock()
		unplugged := r.unplugged
		r.mu.Unlock()
		if unplugged { // the cable is out: the dialler sees its connection fail
			in.Close()
			continue
		}
		out, err := net.Dial(r.network, r.target)
		if err != nil {
			in.Close()
			continue
		}
		r.mu.Lock()
		if r.closed || r.unplugged { // closed or unplugged while we dialled: Cut did not see these
			closed := r.closed
			r.mu.Unlock()
			in.Close()
			out.Close()
			if closed {
				return
			}
			continue
		}
		r.conns = append(r.conns, in, out)
		r.wg.Add(2)
		r.mu.Unlock()
		go r.pipe(in, out)
		go r.pipe(out, in)
	}
}

func (r *Relay) pipe(dst, src net.Conn) {
	defer r.wg.Done()
	_, _ = io.Copy(dst, src)
	dst.Close()
	src.Close()
}

// Cut closes every connection through the relay.
func (r *Relay) Cut() {
	r.mu.Lock()
	conns := r.conns
	r.conns = nil
	r.mu.Unlock()
	for _, c := range conns {
		c.Close()
	}
}

// Unplug cuts every connection and refuses new ones until Plug: the
// dialler's connections fail at once, as with a cable left out.
func (r *Relay) Unplug() {
	r.mu.Lock()
	r.unplugged = true
	r.mu.Unlock()
	r.Cut()
}

// Plug accepts and relays new connections again after Unplug.
func (r *Relay) Plug() {
	r.mu.Lock()
	r.unplugged = false
	r.mu.Unlock()
}

// Close stops accepting, cuts every connection and waits for the relay's
// goroutines. It is safe to call more than once and from several
// goroutines: every call waits the same way, and calls after the first
// return nil.
func (r *Relay) Close() error {
	r.mu.Lock()
	first := !r.closed
	r.closed = true
	r.mu.Unlock()
	var err error
	if first {
		err = r.ln.Close()
	}
	r.Cut()
	r.wg.Wait()
	return err
}
