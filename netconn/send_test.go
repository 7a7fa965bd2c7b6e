package netconn

import (
	"bytes"
	"context"
	"errors"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/enginekit/enginekit/wire"
)

func TestSizeError(t *testing.T) {
	err := error(&SizeError{Size: 2000000, Limit: 1048000})
	if !errors.Is(err, ErrTooLarge) {
		t.Fatal("SizeError is not ErrTooLarge")
	}
	if msg := err.Error(); !strings.Contains(msg, "2000000") || !strings.Contains(msg, "1048000") {
		t.Fatalf("Error() = %q, want both sizes", msg)
	}
	var se *SizeError
	if !errors.As(wrapped(err), &se) || se.Size != 2000000 {
		t.Fatal("errors.As through a wrap")
	}
}

func wrapped(err error) error { return errors.Join(errors.New("context"), err) }

// An envelope that can never fit fails at once with its size and the limit,
// on Send and TrySend, before and after the connection is up; one that just
// fits goes through.
func TestSendTooLargeAtOnce(t *testing.T) {
	forEachAuth(t, func(t *testing.T, auth Auth) {
		const frameMax = 64 << 10
		p := startPair(t, connTypes[0], auth, func(s, c *Config) { s.MaxFrameSize = frameMax })
		c := p.cliConn
		limit := c.MaxPayload()
		if want := frameMax + 4 - wire.BatchOverhead(auth.mode()) - wire.RecordHeaderSize; limit != want {
			t.Fatalf("MaxPayload %d, want %d", limit, want)
		}
		big := &wire.Envelope{Kind: wire.Cast, Src: p.cli.engine, Dst: p.srv.engine, Payload: make([]byte, limit+1)}
		ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
		defer cancel()
		for name, send := range map[string]func(*wire.Envelope) error{
			"Send":    func(e *wire.Envelope) error { return c.Send(ctx, e) },
			"TrySend": c.TrySend,
		} {
			err := send(big)
			var se *SizeError
			if !errors.As(err, &se) || !errors.Is(err, ErrTooLarge) {
				t.Fatalf("%s: got %v, want a SizeError", name, err)
			}
			if se.Size != limit+1 || se.Limit != limit {
				t.Fatalf("%s: %+v, want size %d limit %d", name, *se, limit+1, limit)
			}
		}
		big.Payload = big.Payload[:limit]
		if err := c.TrySend(big); err != nil {
			t.Fatal(err)
		}
		if e := recv(t, p.srv.delivered, "largest envelope"); len(e.Payload) != limit {
			t.Fatalf("delivered %d bytes", len(e.Payload))
		}
	})
}

// Before the peer's frame size is known, Send refuses at once what no peer
// could take instead of waiting for the handshake.
func TestSendTooLargeBeforeUp(t *testing.T) {
	n, peer := newNode(t), newNode(t)
	a, b := netPipe()
	defer b.Close()
	c, err := NewClientConn(n.config(Signatures), a, peer.router())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	env := &wire.Envelope{Kind: wire.Cast, Src: n.engine, Payload: make([]byte, wire.MaxFrameSizeLimit)}
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()
	expectErr(t, c.Send(ctx, env), ErrTooLarge)
	expectErr(t, c.TrySend(env), ErrTooLarge)
	if c.MaxPayload() >= wire.MaxFrameSizeLimit {
		t.Fatal(c.MaxPayload())
	}
}

// TrySend fills the queue up to MaxQueueBytes, then fails with ErrQueueFull
// without queueing; QueueBytes shows the depth; the writer's take makes room.
func TestTrySendQueueFull(t *testing.T) {
	n, peer := newNode(t), newNode(t)
	c := testConn(t, n, peer, MACs, wire.DefaultMaxFrameSize)
	const limit = 8 << 10
	c.q.init(limit, wire.DefaultMaxFrameSize, c.tagSize)
	if c.QueueBytes() != 0 {
		t.Fatal(c.QueueBytes())
	}
	env := cast(n.engine, peer.engine, strings.Repeat("x", 100))
	sent := 0
	for ; sent < 1000; sent++ {
		err := c.TrySend(env)
		if errors.Is(err, ErrQueueFull) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	if sent == 1000 || sent == 0 {
		t.Fatalf("queue full after %d envelopes", sent)
	}
	depth := c.QueueBytes()
	if depth > limit || depth < limit-wire.RecordSize(100) {
		t.Fatalf("QueueBytes %d, limit %d", depth, limit)
	}
	expectErr(t, c.TrySend(env), ErrQueueFull)
	if c.QueueBytes() != depth {
		t.Fatal("a refused TrySend queued something")
	}
	buf, batches, _, _ := c.q.take(nil, nil)
	if c.QueueBytes() != 0 || len(buf) < depth {
		t.Fatalf("after take: QueueBytes %d, took %d", c.QueueBytes(), len(buf))
	}
	count := 0
	for _, b := range batches {
		count += b.count
	}
	if count != sent {
		t.Fatalf("queued %d envelopes, want %d", count, sent)
	}
	if err := c.TrySend(env); err != nil {
		t.Fatalf("after take: %v", err)
	}
	c.q.close()
	expectErr(t, c.TrySend(env), ErrClosed)
}

// TrySend never waits for the handshake: before it, the queue is "full";
// on a closed connection it is ErrClosed.
func TestTrySendNotUp(t *testing.T) {
	n, peer := newNode(t), newNode(t)
	a, b := netPipe()
	defer b.Close()
	c, err := NewClientConn(n.config(Signatures), a, peer.router())
	if err != nil {
		t.Fatal(err)
	}
	env := cast(n.engine, peer.engine, "x")
	expectErr(t, c.TrySend(env), ErrQueueFull)
	c.Close()
	expectErr(t, c.TrySend(env), ErrClosed)
	if !c.UpSince().IsZero() {
		t.Fatal("UpSince set on a connection that never came up")
	}
}

// TrySend end to end: what it queued arrives in order, interleaved with Send.
func TestTrySendDelivers(t *testing.T) {
	p := startPair(t, connTypes[0], Signatures, nil)
	ctx := context.Background()
	for i := range 100 {
		env := cast(p.cli.engine, p.srv.engine, strconv.Itoa(i))
		var err error
		if i%2 == 0 {
			err = p.cliConn.TrySend(env)
		} else {
			err = p.cliConn.Send(ctx, env)
		}
		for errors.Is(err, ErrQueueFull) {
			err = p.cliConn.Send(ctx, env)
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	for i := range 100 {
		expectPayload(t, p.srv, strconv.Itoa(i))
	}
	p.cliConn.Close()
	expectErr(t, p.cliConn.TrySend(cast(p.cli.engine, p.srv.engine, "late")), ErrClosed)
}

func TestUpSince(t *testing.T) {
	before := time.Now()
	p := startPair(t, connTypes[0], MACs, nil)
	after := time.Now()
	for _, c := range []*Conn{p.srvConn, p.cliConn} {
		u := c.UpSince()
		if u.Before(before) || u.After(after) {
			t.Fatalf("UpSince %v not within [%v, %v]", u, before, after)
		}
	}
	u := p.cliConn.UpSince()
	p.cliConn.Close()
	if !p.cliConn.UpSince().Equal(u) {
		t.Fatal("UpSince changed after close")
	}
}

// CloseWith tells the peer why: its connection goes down with our go-away.
func TestCloseWith(t *testing.T) {
	p := startPair(t, connTypes[0], MACs, nil)
	p.srvConn.CloseWith(wire.GoAway{Code: wire.GoAwayOverLimit, Reason: "engines learned: 10000"})
	<-p.srvConn.Done()
	if d := recv(t, p.srv.downs, "server down"); d.err != nil {
		t.Fatalf("server: %v", d.err)
	}
	d := recv(t, p.cli.downs, "client down")
	var g wire.GoAway
	if !errors.As(d.err, &g) || g.Code != wire.GoAwayOverLimit || g.Reason != "engines learned: 10000" {
		t.Fatalf("client: %v", d.err)
	}
	if !strings.Contains(d.err.Error(), "over limit") {
		t.Fatal(d.err)
	}
}

// A 1 MiB payload crosses with the default limits, in both modes.
func TestOneMiBWithDefaults(t *testing.T) {
	forEachAuth(t, func(t *testing.T, auth Auth) {
		p := startPair(t, pipeType, auth, nil)
		payload := bytes.Repeat([]byte("0123456789abcdef"), 1<<16)
		mustSend(t, p.cliConn, &wire.Envelope{Kind: wire.Cast, Src: p.cli.engine, Dst: p.srv.engine, Payload: payload})
		e := recv(t, p.srv.delivered, "1 MiB cast")
		if !bytes.Equal(e.Payload, payload) {
			t.Fatalf("payload of %d bytes differs", len(e.Payload))
		}
	})
}

// A take larger than writeChunk is written in stretches as it is sealed;
// a batch the keyholder refuses in the middle is dropped and the frames
// after it close the gap, in order.
func TestSealWriteInStretches(t *testing.T) {
	forEachAuth(t, func(t *testing.T, auth Auth) {
		p := startPair(t, pipeType, auth, nil)
		gone, err := p.cli.kh.NewEngine("gone")
		if err != nil {
			t.Fatal(err)
		}
		const n = 40
		payload := func(i int) []byte { return bytes.Repeat([]byte{byte(i)}, 8<<10) }
		p.cliConn.q.hold() // nothing wakes the writer until release
		for i := range 2 * n {
			mustSend(t, p.cliConn, &wire.Envelope{Kind: wire.Cast, Src: p.cli.engine, Dst: p.srv.engine, Payload: payload(i)})
			if i == n {
				mustSend(t, p.cliConn, &wire.Envelope{Kind: wire.Cast, Src: gone, Dst: p.srv.engine, Payload: []byte("lost")})
			}
		}
		if err := p.cli.kh.RemoveEngine("gone"); err != nil {
			t.Fatal(err)
		}
		p.cliConn.q.release()
		for i := range 2 * n {
			e := recv(t, p.srv.delivered, "cast")
			if !bytes.Equal(e.Payload, payload(i)) {
				t.Fatalf("envelope %d: payload of %d bytes starting %d", i, len(e.Payload), e.Payload[0])
			}
		}
		if s := p.cliConn.Stats(); s.DroppedSend != 1 {
			t.Fatalf("DroppedSend = %d, want 1", s.DroppedSend)
		}
		none(t, p.srv.delivered, "delivery")
	})
}

// A payload of detachPayload bytes or more, alone in its frame, is handed
// over (Owned): kept as delivered, without a copy, it stays intact while
// the connection reads on. Smaller ones and those sharing a frame are not;
// with MACs a large one always goes alone.
func TestOwnedPayloads(t *testing.T) {
	forEachAuth(t, func(t *testing.T, auth Auth) {
		type got struct {
			payload []byte // as delivered, not copied, when Owned
			owned   bool
		}
		ch := make(chan got, 100)
		p := startPair(t, pipeType, auth, func(srv, _ *Config) {
			srv.Deliver = func(c *Conn, env *wire.Envelope) {
				if env.Owned {
					ch <- got{env.Payload, true}
				} else {
					ch <- got{bytes.Clone(env.Payload), false}
				}
			}
		})
		payload := func(i, n int) []byte { return bytes.Repeat([]byte{byte(i)}, n) }
		sizes := []int{detachPayload, detachPayload - 1, 10, 3 * detachPayload, detachPayload}
		var all []got
		for i, n := range sizes { // one at a time: each alone in its frame
			mustSend(t, p.cliConn, &wire.Envelope{Kind: wire.Cast, Src: p.cli.engine, Dst: p.srv.engine, Payload: payload(i, n)})
			all = append(all, recv(t, ch, "cast"))
		}
		// Two queued together: they share a frame with signatures; with
		// MACs each goes alone (aloneRecord).
		p.cliConn.q.hold()
		for i := range 2 {
			mustSend(t, p.cliConn, &wire.Envelope{Kind: wire.Cast, Src: p.cli.engine, Dst: p.srv.engine, Payload: payload(10+i, detachPayload)})
		}
		p.cliConn.q.release()
		for range 2 {
			all = append(all, recv(t, ch, "cast"))
		}
		alone := auth == MACs
		want := []bool{true, false, false, true, true, alone, alone}
		for i, g := range all {
			n, b := detachPayload, byte(10+i-len(sizes))
			if i < len(sizes) {
				n, b = sizes[i], byte(i)
			}
			if g.owned != want[i] || !bytes.Equal(g.payload, payload(int(b), n)) {
				t.Fatalf("envelope %d: owned %v (want %v), %d bytes", i, g.owned, want[i], len(g.payload))
			}
		}
	})
}
