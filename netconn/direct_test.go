package netconn

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/enginekit/enginekit/wire"
)

// Envelopes sent with SendDirect, TryQueue+Flush, Send and TrySend from
// several goroutines at once arrive, per sender, in the order sent: the
// writes made in the senders' goroutines and the writer's keep the order of
// the queue.
func TestDirectSendsKeepOrder(t *testing.T) {
	forEachAuth(t, func(t *testing.T, auth Auth) {
		const senders, each = 8, 300
		p := startPair(t, connTypes[0], auth, nil)
		errs := make(chan error, senders)
		var wg sync.WaitGroup
		for g := range senders {
			wg.Go(func() {
				ctx := context.Background()
				for i := range each {
					env := cast(p.cli.engine, p.srv.engine, fmt.Sprintf("%d:%d", g, i))
					var err error
					switch (g + i) % 4 {
					case 0:
						err = p.cliConn.SendDirect(ctx, env)
					case 1:
						var flush bool
						if flush, err = p.cliConn.TryQueue(env); errors.Is(err, ErrQueueFull) {
							err = p.cliConn.Send(ctx, env)
						} else if flush {
							err = p.cliConn.Flush()
						}
					case 2:
						err = p.cliConn.Send(ctx, env)
					default:
						if err = p.cliConn.TrySend(env); errors.Is(err, ErrQueueFull) {
							err = p.cliConn.Send(ctx, env)
						}
					}
					if err != nil {
						errs <- err
						return
					}
				}
			})
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Fatal(err)
		}
		next := make([]int, senders)
		for range senders * each {
			e := recv(t, p.srv.delivered, "an envelope")
			gs, is, _ := strings.Cut(string(e.Payload), ":")
			g, _ := strconv.Atoi(gs)
			i, _ := strconv.Atoi(is)
			if i != next[g] {
				t.Fatalf("sender %d: got envelope %d, want %d", g, i, next[g])
			}
			next[g]++
		}
	})
}

// A SendDirect on an idle connection writes in the caller's goroutine:
// its frame is out when it returns (the writer goroutine, if it wrote,
// could not have counted it yet every time).
func TestSendDirectWritesInline(t *testing.T) {
	p := startPair(t, connTypes[0], MACs, nil)
	inline := 0
	for i := range 20 {
		before := p.cliConn.Stats().FramesOut
		want := "d" + strconv.Itoa(i)
		if err := p.cliConn.SendDirect(context.Background(), cast(p.cli.engine, p.srv.engine, want)); err != nil {
			t.Fatal(err)
		}
		if p.cliConn.Stats().FramesOut > before {
			inline++
		}
		expectPayload(t, p.srv, want)
	}
	if inline == 0 {
		t.Fatal("no SendDirect of 20 on an idle connection wrote its frame itself")
	}
}

// While someone else writes (here the test holds the write lock), TrySend,
// TryQueue and Flush return at once, and SendDirect does not wait for the
// lock either: what they queued is written once the lock is free.
func TestDirectNeverWaitsForAWriter(t *testing.T) {
	p := startPair(t, connTypes[0], MACs, nil)
	c := p.cliConn
	c.wmu.Lock()
	if err := c.TrySend(cast(p.cli.engine, p.srv.engine, "a")); err != nil {
		t.Fatal(err)
	}
	// The queue is not empty: no flush is owed for b.
	if flush, err := c.TryQueue(cast(p.cli.engine, p.srv.engine, "b")); err != nil || flush {
		t.Fatalf("TryQueue behind a queued envelope = %v, %v; want false, nil", flush, err)
	}
	if err := c.Flush(); err != nil {
		t.Fatal(err)
	}
	if err := c.SendDirect(context.Background(), cast(p.cli.engine, p.srv.engine, "c")); err != nil {
		t.Fatal(err)
	}
	none(t, p.srv.delivered, "delivery while the write lock is held")
	c.wmu.Unlock()
	for _, want := range []string{"a", "b", "c"} {
		expectPayload(t, p.srv, want)
	}
	// An empty queue: TryQueue owes a flush, and Flush writes it.
	flush, err := c.TryQueue(cast(p.cli.engine, p.srv.engine, "d"))
	if err != nil || !flush {
		t.Fatalf("TryQueue into an empty queue = %v, %v; want true, nil", flush, err)
	}
	if err := c.Flush(); err != nil {
		t.Fatal(err)
	}
	expectPayload(t, p.srv, "d")
}

// When the peer stops reading, a SendDirect that writes in its own
// goroutine blocks like the writer would, but not for ever: the write
// times out after the idle timeout and the connection fails, releasing it
// with an error; a Send waiting for room behind it is released too.
func TestSendDirectPeerStopsReading(t *testing.T) {
	release := make(chan struct{})
	p := startPair(t, connTypes[0], MACs, func(s, c *Config) {
		s.IdleTimeout = 200 * time.Millisecond
		s.MaxQueueBytes = floodQueue
		c.Deliver = func(*Conn, *wire.Envelope) { <-release }
	})
	defer close(release)
	env := &wire.Envelope{Kind: wire.Cast, Src: p.srv.engine, Dst: p.cli.engine, Payload: make([]byte, floodPayload)}
	direct := make(chan error, 1)
	go func() {
		for range floodCount {
			if err := p.srvConn.SendDirect(context.Background(), env); err != nil {
				direct <- err
				return
			}
		}
		direct <- nil
	}()
	queued := make(chan error, 1)
	go func() {
		for range floodCount {
			if err := p.srvConn.Send(context.Background(), env); err != nil {
				queued <- err
				return
			}
		}
		queued <- nil
	}()
	if err := recv(t, direct, "SendDirect released"); err == nil {
		t.Fatal("SendDirect sent 16 MiB to a peer that reads nothing")
	}
	if err := recv(t, queued, "Send released"); !errors.Is(err, ErrClosed) {
		t.Fatalf("Send: %v, want ErrClosed", err)
	}
	ev := recv(t, p.srv.downs, "server down")
	if !errors.Is(ev.err, ErrIdleTimeout) {
		t.Fatalf("server down with %v, want ErrIdleTimeout", ev.err)
	}
}
