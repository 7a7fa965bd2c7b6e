package netconn

import (
	"context"
	"io"
	"net"
	"os"
	"sync"
	"time"
)

// PipeListener is an in-memory net.Listener: each Dial makes a connected
// pair of in-memory stream sockets, returns one end and hands the other to
// Accept. Serve it with NewListenerOn and connect to it with
// NewDialerFunc(cfg, name, pl.Dial, peer), for tests and for nodes in one
// process that need no socket. A zero PipeListener is not usable; make one
// with NewPipeListener.
//
// Its connections buffer PipeBufferSize bytes each way, as a socket does,
// rather than being synchronous like net.Pipe: over net.Pipe a TLS side that
// refuses its peer blocks writing its alert while the peer blocks writing its
// own handshake flight, so a refusal shows only at the handshake timeout.
// They support deadlines and CloseWrite.
type PipeListener struct {
	addr    pipeAddr
	pending chan net.Conn
	done    chan struct{}
	once    sync.Once
}

// PipeBufferSize is how many bytes a PipeListener connection holds in each
// direction before a Write waits for the reader.
const PipeBufferSize = 256 << 10

// NewPipeListener returns a PipeListener whose Addr is name.
func NewPipeListener(name string) *PipeListener {
	return &PipeListener{addr: pipeAddr(name), pending: make(chan net.Conn), done: make(chan struct{})}
}

// Accept waits for a Dial and returns the server end of its connection, or
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
	srv, cli := newBufferedPipe(p.addr, PipeBufferSize)
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

// Close makes Accept and Dial fail from now on. Connections already made
// stay.
func (p *PipeListener) Close() error {
	p.once.Do(func() { close(p.done) })
	return nil
}

// Addr returns the listener's name as a net.Addr of network "pipe".
func (p *PipeListener) Addr() net.Addr { return p.addr }

type pipeAddr string

func (a pipeAddr) Network() string { return "pipe" }
func (a pipeAddr) String() string  { return string(a) }

// pipeBuffer is one direction of a buffered pipe: bytes written and not yet
// read, at most limit of them.
type pipeBuffer struct {
	mu      sync.Mutex
	data    []byte
	limit   int
	eof     bool          // the writer closed: reads end once data is drained
	broken  bool          // the reader closed: writes fail
	changed chan struct{} // closed and replaced on every change of the above
}

func newPipeBuffer(limit int) *pipeBuffer {
	return &pipeBuffer{limit: limit, changed: make(chan struct{})}
}

// signal wakes everyone waiting on b. b.mu must be held.
func (b *pipeBuffer) signal() {
	close(b.changed)
	b.changed = make(chan struct{})
}

// pipeEnd is one end of a buffered pipe: it reads from in and writes to out.
type pipeEnd struct {
	in, out       *pipeBuffer
	local, remote net.Addr

	mu          sync.Mutex
	closed      bool
	closedCh    chan struct{}
	rdl, wdl    time.Time
	deadlineSet chan struct{} // closed and replaced when a deadline changes
}

// newBufferedPipe returns the two ends of an in-memory stream connection
// holding up to limit bytes each way.
func newBufferedPipe(addr net.Addr, limit int) (server, client net.Conn) {
	a, b := newPipeBuffer(limit), newPipeBuffer(limit)
	remote := pipeAddr(addr.String() + "/client")
	server = &pipeEnd{in: a, out: b, local: addr, remote: remote, closedCh: make(chan struct{}), deadlineSet: make(chan struct{})}
	client = &pipeEnd{in: b, out: a, local: remote, remote: addr, closedCh: make(chan struct{}), deadlineSet: make(chan struct{})}
	return server, client
}

// waitFor blocks until changed is closed, the deadline (read or write)
// passes or changes, or the end is closed. It returns an error for the last
// two that end the operation.
func (e *pipeEnd) waitFor(changed <-chan struct{}, read bool) error {
	e.mu.Lock()
	dl, dlSet, closed := e.wdl, e.deadlineSet, e.closed
	if read {
		dl = e.rdl
	}
	e.mu.Unlock()
	if closed {
		return net.ErrClosed
	}
	var timeout <-chan time.Time
	if !dl.IsZero() {
		d := time.Until(dl)
		if d <= 0 {
			return os.ErrDeadlineExceeded
		}
		t := time.NewTimer(d)
		defer t.Stop()
		timeout = t.C
	}
	select {
	case <-changed:
	case <-dlSet: // look at the new deadline
	case <-timeout:
		return os.ErrDeadlineExceeded
	case <-e.closedCh:
		return net.ErrClosed
	}
	return nil
}

func (e *pipeEnd) Read(p []byte) (int, error) {
	b := e.in
	for {
		b.mu.Lock()
		if e.isClosed() {
			b.mu.Unlock()
			return 0, e.opError("read", net.ErrClosed)
		}
		if len(b.data) > 0 {
			n := copy(p, b.data)
			b.data = b.data[n:]
			if len(b.data) == 0 {
				b.data = nil // let the buffer go
			}
			b.signal()
			b.mu.Unlock()
			return n, nil
		}
		if b.eof {
			b.mu.Unlock()
			return 0, io.EOF
		}
		changed := b.changed
		b.mu.Unlock()
		if len(p) == 0 {
			return 0, nil
		}
		if err := e.waitFor(changed, true); err != nil {
			return 0, e.opError("read", err)
		}
	}
}

func (e *pipeEnd) Write(p []byte) (int, error) {
	b := e.out
	written := 0
	for {
		b.mu.Lock()
		switch {
		case e.isClosed():
			b.mu.Unlock()
			return written, e.opError("write", net.ErrClosed)
		case b.eof:
			b.mu.Unlock()
			return written, e.opError("write", io.ErrClosedPipe) // after CloseWrite
		case b.broken:
			b.mu.Unlock()
			return written, e.opError("write", io.ErrClosedPipe)
		}
		if room := b.limit - len(b.data); room > 0 && written < len(p) {
			n := min(room, len(p)-written)
			b.data = append(b.data, p[written:written+n]...)
			written += n
			b.signal()
		}
		if written == len(p) {
			b.mu.Unlock()
			return written, nil
		}
		changed := b.changed
		b.mu.Unlock()
		if err := e.waitFor(changed, false); err != nil {
			return written, e.opError("write", err)
		}
	}
}

func (e *pipeEnd) isClosed() bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.closed
}

func (e *pipeEnd) opError(op string, err error) error {
	if err == io.EOF {
		return err
	}
	return &net.OpError{Op: op, Net: "pipe", Source: e.local, Addr: e.remote, Err: err}
}

// Close closes this end: the peer reads what was written before, then EOF,
// and its writes fail.
func (e *pipeEnd) Close() error {
	e.mu.Lock()
	if e.closed {
		e.mu.Unlock()
		return nil
	}
	e.closed = true
	close(e.closedCh)
	e.mu.Unlock()
	for _, b := range []*pipeBuffer{e.in, e.out} {
		b.mu.Lock()
		if b == e.in {
			b.broken = true
			b.data = nil
		} else {
			b.eof = true
		}
		b.signal()
		b.mu.Unlock()
	}
	return nil
}

// CloseWrite half-closes the connection: the peer reads EOF after what was
// written, and this end can still read.
func (e *pipeEnd) CloseWrite() error {
	b := e.out
	b.mu.Lock()
	b.eof = true
	b.signal()
	b.mu.Unlock()
	return nil
}

func (e *pipeEnd) LocalAddr() net.Addr  { return e.local }
func (e *pipeEnd) RemoteAddr() net.Addr { return e.remote }

func (e *pipeEnd) SetDeadline(t time.Time) error { return e.setDeadlines(t, true, true) }

func (e *pipeEnd) SetReadDeadline(t time.Time) error { return e.setDeadlines(t, true, false) }

func (e *pipeEnd) SetWriteDeadline(t time.Time) error { return e.setDeadlines(t, false, true) }

func (e *pipeEnd) setDeadlines(t time.Time, read, write bool) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.closed {
		return e.opError("set deadline", net.ErrClosed)
	}
	if read {
		e.rdl = t
	}
	if write {
		e.wdl = t
	}
	close(e.deadlineSet)
	e.deadlineSet = make(chan struct{})
	return nil
}
