package netconn

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/enginekit/enginekit/wire"
)

// Faults around writes made in a sender's goroutine (SendDirect, Flush):
// a peer that stops reading while such a write is blocked, and what Close,
// the peer's close, the reader and the writer's batching do meanwhile.

// stuckPair starts a pair whose client stops reading at its first
// delivery (until release is closed), and a flood of SendDirect from the
// server; it returns once the client is stuck and the server's write lock
// is held (a write, the flood's or the writer's, that the client will not
// read). flood reports how the flood ended.
func stuckPair(t *testing.T, tweak func(srv, cli *Config)) (p *pair, release chan struct{}, flood chan error) {
	t.Helper()
	release = make(chan struct{})
	stuck := make(chan struct{})
	var once sync.Once
	p = startPair(t, connTypes[0], MACs, func(s, c *Config) {
		s.IdleTimeout = time.Hour // only a close may release the write
		c.Deliver = func(*Conn, *wire.Envelope) {
			once.Do(func() { close(stuck) })
			<-release
		}
		if tweak != nil {
			tweak(s, c)
		}
	})
	env := &wire.Envelope{Kind: wire.Cast, Src: p.srv.engine, Dst: p.cli.engine, Payload: make([]byte, floodPayload)}
	flood = make(chan error, 1)
	go func() {
		for range floodCount {
			if err := p.srvConn.SendDirect(context.Background(), env); err != nil {
				flood <- err
				return
			}
		}
		flood <- nil
	}()
	<-stuck
	// The flood goes on until a write blocks, under the write lock.
	for p.srvConn.wmu.TryLock() {
		p.srvConn.wmu.Unlock()
		runtime.Gosched()
	}
	return p, release, flood
}

// Our Close while a direct write is blocked on a peer that does not read
// returns (after HandshakeTimeout, the goodbye's bound), and releases the
// sender with an error.
func TestCloseReleasesBlockedDirectWrite(t *testing.T) {
	p, release, flood := stuckPair(t, func(s, _ *Config) { s.HandshakeTimeout = 100 * time.Millisecond })
	defer close(release)
	closed := make(chan error, 1)
	go func() { closed <- p.srvConn.Close() }()
	if err := recv(t, closed, "Close"); err != nil {
		t.Fatal(err)
	}
	if err := recv(t, flood, "the blocked sender"); err == nil {
		t.Fatal("SendDirect sent 16 MiB to a peer that reads nothing")
	}
	recv(t, p.srv.downs, "server down")
	if err := p.srvConn.SendDirect(context.Background(), cast(p.srv.engine, p.cli.engine, "late")); !errors.Is(err, ErrClosed) {
		t.Fatalf("SendDirect after Close: %v, want ErrClosed", err)
	}
}

// The peer closing (go-away, then its socket) while our direct write is
// blocked on it fails our connection and releases the sender.
func TestPeerCloseReleasesBlockedDirectWrite(t *testing.T) {
	p, release, flood := stuckPair(t, func(_, c *Config) { c.HandshakeTimeout = 100 * time.Millisecond })
	p.cliConn.CloseAsync()
	if err := recv(t, flood, "the blocked sender"); err == nil {
		t.Fatal("SendDirect sent 16 MiB to a peer that closed")
	}
	recv(t, p.srv.downs, "server down")
	close(release) // the client's reader, stuck in Deliver, may end now
	recv(t, p.cli.downs, "client down")
}

// While a direct write is blocked (the peer does not read), our reader
// still delivers what the peer sends: a reader never waits on a writer.
func TestReaderRunsWhileDirectWriteBlocked(t *testing.T) {
	p, release, flood := stuckPair(t, nil)
	for i := range 50 {
		mustSend(t, p.cliConn, cast(p.cli.engine, p.srv.engine, fmt.Sprint(i)))
	}
	for i := range 50 {
		expectPayload(t, p.srv, fmt.Sprint(i))
	}
	select {
	case err := <-flood:
		t.Fatalf("the flood ended (%v) though the peer reads nothing", err)
	default:
	}
	p.srvConn.CloseAsync()
	close(release)
	recv(t, flood, "the sender")
}

// SendDirect from many goroutines while a write is under way queues
// without waiting, and what they queued goes out together (the writer's
// group commit), not a frame per envelope.
func TestDirectSendsBatchBehindAWrite(t *testing.T) {
	p := startPair(t, connTypes[0], MACs, nil)
	c := p.cliConn
	const senders = 64
	c.wmu.Lock() // a write under way
	before := c.stats.framesOut.Load()
	var wg sync.WaitGroup
	errs := make(chan error, senders)
	for g := range senders {
		wg.Go(func() {
			if err := c.SendDirect(context.Background(), cast(p.cli.engine, p.srv.engine, fmt.Sprint(g))); err != nil {
				errs <- err
			}
		})
	}
	wg.Wait() // none waited for the lock
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	c.wmu.Unlock()
	seen := make(map[string]bool)
	for range senders {
		seen[string(recv(t, p.srv.delivered, "a delivery").Payload)] = true
	}
	if len(seen) != senders {
		t.Fatalf("%d distinct envelopes of %d", len(seen), senders)
	}
	// One frame for the batch; a ping or pong may have joined.
	if frames := c.stats.framesOut.Load() - before; frames > 3 {
		t.Fatalf("%d frames for %d envelopes queued together", frames, senders)
	}
}
