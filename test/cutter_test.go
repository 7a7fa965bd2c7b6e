package test

import (
	"io"
	"net"
	"path/filepath"
	"sync"
	"testing"
)

// cutter is a loopback relay between a dialer and a listener that can cut
// every connection through it at once, as a pulled cable would, while
// still accepting new ones (so the dialer can reconnect).
type cutter struct {
	ln     net.Listener
	target [2]string // network, address
	wg     sync.WaitGroup

	mu    sync.Mutex
	conns []net.Conn
}

func newCutter(t *testing.T, network, targetNetwork, target string) *cutter {
	t.Helper()
	addr := "127.0.0.1:0"
	if network == "unix" {
		addr = filepath.Join(t.TempDir(), "cutter.sock")
	}
	ln, err := net.Listen(network, addr)
	must(t, err)
	c := &cutter{ln: ln, target: [2]string{targetNetwork, target}}
	c.wg.Add(1)
	go c.accept()
	t.Cleanup(c.close)
	return c
}

func (c *cutter) endpoint() string { return c.ln.Addr().Network() + "://" + c.ln.Addr().String() }

func (c *cutter) accept() {
	defer c.wg.Done()
	for {
		in, err := c.ln.Accept()
		if err != nil {
			return
		}
		out, err := net.Dial(c.target[0], c.target[1])
		if err != nil {
			in.Close()
			continue
		}
		c.mu.Lock()
		c.conns = append(c.conns, in, out)
		c.mu.Unlock()
		c.wg.Add(2)
		go c.pipe(in, out)
		go c.pipe(out, in)
	}
}

func (c *cutter) pipe(dst, src net.Conn) {
	defer c.wg.Done()
	_, _ = io.Copy(dst, src)
	dst.Close()
	src.Close()
}

// cut closes every connection through the relay.
func (c *cutter) cut() {
	c.mu.Lock()
	conns := c.conns
	c.conns = nil
	c.mu.Unlock()
	for _, conn := range conns {
		conn.Close()
	}
}

func (c *cutter) close() {
	c.ln.Close()
	c.cut()
	c.wg.Wait()
}
