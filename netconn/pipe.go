package netconn

import (
	"context"
	"net"
	"sync"
)

// PipeListener is an in-memory net.Listener: each Dial makes a net.Pipe,
// returns one end and hands the other to Accept. Serve it with
// NewListenerOn and connect to it with NewDialerFunc(cfg, name, pl.Dial,
// peer), for tests and for nodes in one process that need no socket. A zero
// PipeListener is not usable; make one with NewPipeListener.
type PipeListener struct {
	addr    pipeAddr
	pending chan net.Conn
	done    chan struct{}
	once    sync.Once
}

// NewPipeListener returns a PipeListener whose Addr is name.
func NewPipeListener(name string) *PipeListener {
	return &PipeListener{addr: pipeAddr(name), pending: make(chan net.Conn), done: make(chan struct{})}
}

// Accept waits for a Dial and returns the server end of its pipe, or
// net.ErrClosed once the listener is closed.
func (p *PipeListener) Accept() (net.Conn, error) {
	select {
	case c := <-p.pending:
		return c, nil
	case <-p.done:
		return nil, &net.OpError{Op: "accept", Net: "pipe", Addr: p.addr, Err: net.ErrClosed}
	}
}

// Dial connects to the listener: it waits until Accept takes the other end,
// ctx ends (ctx.Err()) or the listener is closed (net.ErrClosed).
func (p *PipeListener) Dial(ctx context.Context) (net.Conn, error) {
	srv, cli := net.Pipe()
	select {
	case p.pending <- srv:
		return cli, nil
	case <-ctx.Done():
		err := ctx.Err()
		srv.Close()
		cli.Close()
		return nil, err
	case <-p.done:
		srv.Close()
		cli.Close()
		return nil, &net.OpError{Op: "dial", Net: "pipe", Addr: p.addr, Err: net.ErrClosed}
	}
}

// Close makes Accept and Dial fail from now on. Pipes already made stay.
func (p *PipeListener) Close() error {
	p.once.Do(func() { close(p.done) })
	return nil
}

// Addr returns the listener's name as a net.Addr of network "pipe".
func (p *PipeListener) Addr() net.Addr { return p.addr }

type pipeAddr string

func (a pipeAddr) Network() string { return "pipe" }
func (a pipeAddr) String() string  { return string(a) }
