package netconn

import (
	"context"
	"testing"

	"github.com/enginekit/enginekit/keyholder"
	"github.com/enginekit/enginekit/wire"
)

// testConn returns a Conn that has not run, set up as if its handshake had
// succeeded, so the queue and the sealing can be tested without I/O.
func testConn(t testing.TB, n *node, peer *node, auth Auth, frameMax int) *Conn {
	t.Helper()
	cfg := n.config(auth)
	cfgp, guard, err := prepare(cfg)
	if err != nil {
		t.Fatal(err)
	}
	a, b := netPipe()
	t.Cleanup(func() { a.Close(); b.Close() })
	c := newConn(cfgp, guard, a)
	c.peer = peer.router()
	c.q.init(1<<20, frameMax, c.tagSize)
	if auth == MACs {
		if c.mac, err = n.kh.NewMACSession(make([]byte, 32), c.peer); err != nil {
			t.Fatal(err)
		}
	}
	close(c.up)
	return c
}

func TestQueueBatchesBySource(t *testing.T) {
	forEachAuth(t, func(t *testing.T, auth Auth) {
		n, peer := newNode(t), newNode(t)
		e2, _ := n.kh.NewEngine("e2")
		gone, _ := n.kh.NewEngine("gone")
		c := testConn(t, n, peer, auth, wire.MinFrameSize)
		ctx := context.Background()
		srcs := []keyholder.Address{n.engine, n.engine, n.engine, e2, gone, gone, n.engine}
		for i, src := range srcs {
			if err := c.Send(ctx, &wire.Envelope{Kind: wire.Cast, Src: src, Dst: peer.engine, Payload: []byte{byte(i)}}); err != nil {
				t.Fatal(err)
			}
		}
		// Records too large to share a frame split a batch of one source.
		big := make([]byte, wire.MinFrameSize/2)
		for range 3 {
			if err := c.Send(ctx, &wire.Envelope{Kind: wire.Info, Src: e2, Dst: peer.engine, Payload: big}); err != nil {
				t.Fatal(err)
			}
		}
		if err := n.kh.RemoveEngine("gone"); err != nil {
			t.Fatal(err)
		}
		buf, batches, _, _ := c.q.take(nil, nil)
		if got := len(batches); got != 7 {
			t.Fatalf("%d batches", got)
		}
		out, _, _ := c.seal(buf, batches, nil)

		// What is left decodes and verifies, as the peer would see it.
		fr := wire.NewFrameReader(bytesReader(out), wire.MinFrameSize)
		var counts []int
		var env wire.Envelope
		var payloads []byte
		peerMAC, err := peer.kh.NewMACSession(make([]byte, 32), n.router()) // the secret testConn used
		if err != nil {
			t.Fatal(err)
		}
		for {
			typ, body, err := fr.ReadFrame()
			if err != nil {
				break
			}
			if typ != wire.FrameBatch {
				t.Fatal(typ)
			}
			b, err := wire.DecodeBatch(body, c.tagSize)
			if err != nil {
				t.Fatal(err)
			}
			var ok bool
			if auth == MACs {
				ok = peerMAC.Verify(b.Src, b.Seq, b.Signed, b.Tag)
			} else {
				router := n.router()
				ok = keyholder.Verify(b.Src, wire.AppendAuthMessage(nil, &router, &c.peer, b.Signed), b.Tag)
			}
			if !ok {
				t.Fatal("bad tag")
			}
			counts = append(counts, b.Count)
			it := b.Envelopes()
			for it.Next(&env) {
				if env.Kind == wire.Cast {
					payloads = append(payloads, env.Payload[0])
				}
			}
		}
		if want := []int{3, 1, 1, 1, 1, 1}; !equalInts(counts, want) {
			t.Fatalf("batch sizes %v, want %v", counts, want)
		}
		if string(payloads) != "\x00\x01\x02\x03\x06" {
			t.Fatalf("payloads %v", payloads)
		}
		if s := c.Stats(); s.DroppedSend != 2 || s.EnvelopesOut != 8 {
			t.Fatalf("stats %+v", s)
		}
	})
}

func equalInts(a, b []int) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// While the reader holds the queue, pushes do not wake the writer; release
// does, and a push that finds the queue full wakes it at once, so holding
// never stalls a sender.
func TestQueueHold(t *testing.T) {
	n, peer := newNode(t), newNode(t)
	c := testConn(t, n, peer, MACs, wire.MinFrameSize)
	c.q.limit = 2 * wire.RecordSize(100)
	env := &wire.Envelope{Kind: wire.Cast, Src: n.engine, Dst: peer.engine, Payload: make([]byte, 100)}
	kicked := func() bool {
		select {
		case <-c.q.kick:
			return true
		default:
			return false
		}
	}
	c.q.hold()
	if err := c.TrySend(env); err != nil {
		t.Fatal(err)
	}
	if kicked() {
		t.Fatal("a held queue woke the writer")
	}
	if err := c.TrySend(env); err != ErrQueueFull {
		t.Fatalf("TrySend on a full queue: %v", err)
	}
	if !kicked() {
		t.Fatal("a full held queue did not wake the writer")
	}
	c.q.release()
	if !kicked() {
		t.Fatal("release did not wake the writer")
	}
	c.q.take(nil, nil)
	c.q.release()
	if kicked() {
		t.Fatal("release of an empty queue woke the writer")
	}
}
