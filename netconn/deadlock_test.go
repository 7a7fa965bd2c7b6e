package netconn

import (
	"context"
	"sync/atomic"
	"testing"

	"github.com/enginekit/enginekit/wire"
)

// flood is how much each side sends in the tests below: far more than both
// send queues and both sockets' kernel buffers hold while nobody reads
// (about 4 MiB on Linux loopback: tcp_wmem's maximum plus the initial
// receive window, which autotuning grows only as the application reads).
const (
	floodPayload = 16 << 10
	floodCount   = 1024 // 16 MiB
	floodQueue   = 64 << 10
)

// counting returns a Deliver that never blocks and closes done once it has
// seen n envelopes.
func counting(n int64, done chan struct{}) func(*Conn, *wire.Envelope) {
	var got atomic.Int64
	return func(*Conn, *wire.Envelope) {
		if got.Add(1) == n {
			close(done)
		}
	}
}

// Both sides send, each from its own goroutine, much more than their queues
// and the socket buffers hold, while both readers keep reading: nobody waits
// for a reader that waits for a writer, so both complete. (The transport's
// learn burst of issue 10 deadlocked because OnUp sent it before the reader
// started; OnUp must not block, see Config.OnUp.)
func TestNoDeadlockBothQueuesFull(t *testing.T) {
	forEachAuth(t, func(t *testing.T, auth Auth) {
		srvDone, cliDone := make(chan struct{}), make(chan struct{})
		p := startPair(t, connTypes[0], auth, func(s, c *Config) {
			s.MaxQueueBytes, c.MaxQueueBytes = floodQueue, floodQueue
			s.Deliver = counting(floodCount, srvDone)
			c.Deliver = counting(floodCount, cliDone)
		})
		sent := make(chan error, 2)
		flood := func(c *Conn, src, dst [32]byte) {
			env := &wire.Envelope{Kind: wire.Cast, Src: src, Dst: dst, Payload: make([]byte, floodPayload)}
			for range floodCount {
				if err := c.Send(context.Background(), env); err != nil {
					sent <- err
					return
				}
			}
			sent <- nil
		}
		go flood(p.srvConn, p.srv.engine, p.cli.engine)
		go flood(p.cliConn, p.cli.engine, p.srv.engine)
		for range 2 {
			if err := recv(t, sent, "a side's sends"); err != nil {
				t.Fatal(err)
			}
		}
		recv(t, srvDone, "server received everything")
		recv(t, cliDone, "client received everything")
	})
}

// OnUp starts the burst without blocking: it queues what fits with TrySend
// and streams the rest from a goroutine, on both sides at once.
func TestBurstFromOnUp(t *testing.T) {
	srv, cli := newNode(t), newNode(t)
	srvDone, cliDone := make(chan struct{}), make(chan struct{})
	streamed := make(chan error, 2)
	burst := func(self *node) func(*Conn) {
		return func(c *Conn) {
			env := &wire.Envelope{Kind: wire.Cast, Src: self.engine, Payload: make([]byte, floodPayload)}
			i := 0
			for ; i < floodCount; i++ {
				if err := c.TrySend(env); err != nil {
					break // ErrQueueFull: the rest from a goroutine
				}
			}
			if i == floodCount {
				t.Error("the whole burst fit in the queue; the test proves nothing")
			}
			go func() {
				for ; i < floodCount; i++ {
					if err := c.Send(context.Background(), env); err != nil {
						streamed <- err
						return
					}
				}
				streamed <- nil
			}()
		}
	}
	scfg, ccfg := srv.config(MACs), cli.config(MACs)
	scfg.MaxQueueBytes, ccfg.MaxQueueBytes = floodQueue, floodQueue
	scfg.Deliver, ccfg.Deliver = counting(floodCount, srvDone), counting(floodCount, cliDone)
	scfg.OnUp, ccfg.OnUp = burst(srv), burst(cli)
	l, _ := startListener(t, connTypes[0], srv, scfg, AcceptAny)
	startDialer(t, connTypes[0], ccfg, l.Addr(), srv.router())
	recv(t, srvDone, "server received the client's burst")
	recv(t, cliDone, "client received the server's burst")
	for range 2 {
		if err := recv(t, streamed, "streaming"); err != nil {
			t.Fatal(err)
		}
	}
}

// A reader never waits for its writer: while our writer is stuck (the peer
// reads nothing) and our queue is full, we still receive all the peer sends.
func TestReaderIndependentOfWriter(t *testing.T) {
	release := make(chan struct{})
	srvDone := make(chan struct{})
	const fromCli = 256 // 4 MiB
	p := startPair(t, connTypes[0], MACs, func(s, c *Config) {
		s.MaxQueueBytes = floodQueue
		s.Deliver = counting(fromCli, srvDone)
		c.Deliver = func(*Conn, *wire.Envelope) { <-release }
	})
	defer close(release)
	flooded := make(chan error, 1)
	go func() {
		env := &wire.Envelope{Kind: wire.Cast, Src: p.srv.engine, Dst: p.cli.engine, Payload: make([]byte, floodPayload)}
		for range floodCount {
			if err := p.srvConn.Send(context.Background(), env); err != nil {
				flooded <- err
				return
			}
		}
		flooded <- nil
	}()
	env := &wire.Envelope{Kind: wire.Cast, Src: p.cli.engine, Dst: p.srv.engine, Payload: make([]byte, floodPayload)}
	for range fromCli {
		mustSend(t, p.cliConn, env)
	}
	recv(t, srvDone, "server received everything while its writer is stuck")
	select {
	case err := <-flooded:
		t.Fatalf("the server's flood ended (%v) though the client reads nothing", err)
	default:
	}
}
