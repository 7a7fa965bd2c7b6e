package netconn

import (
	"context"
	"testing"

	"github.com/enginekit/enginekit/wire"
)

// TestSealVerify has one node's connection seal batches and the other's
// verify them, as the reader does, and checks that every flipped bit of the
// body or the tag makes a batch fail (or no longer decode), that the sender
// itself refuses its own batch back (another direction), and that a
// connection with another channel secret refuses it (another connection).
func TestSealVerify(t *testing.T) {
	forEachAuth(t, func(t *testing.T, auth Auth) {
		n, peer := newNode(t), newNode(t)
		c := testConn(t, n, peer, auth, wire.DefaultMaxFrameSize)
		back := testConn(t, peer, n, auth, wire.DefaultMaxFrameSize) // same secret, other end
		for i := range 3 {
			if err := c.Send(context.Background(), &wire.Envelope{Kind: wire.Cast, Src: n.engine, Dst: peer.engine, Payload: []byte{byte(i), 1, 2, 3}}); err != nil {
				t.Fatal(err)
			}
		}
		buf, batches, _, _ := c.q.take(nil, nil)
		out, kept, _ := c.seal(buf, batches, nil)
		if kept != 1 {
			t.Fatalf("%d batches", kept)
		}
		body := out[wire.FrameHeaderSize:]
		var rs readState
		check := func(body []byte, on *Conn) bool {
			b, err := wire.DecodeBatch(body, on.tagSize)
			return err == nil && on.verify(&b, &rs)
		}
		if !check(body, back) {
			t.Fatal("the peer refuses a good batch")
		}
		for i := range 8 * len(body) {
			bad := append([]byte(nil), body...)
			bad[i/8] ^= 1 << (i % 8)
			if check(bad, back) {
				t.Fatalf("bit %d of %d flipped, still verifies", i, 8*len(body))
			}
		}
		if check(body, c) {
			t.Error("the sender accepts its own batch back")
		}
		other := testConn(t, peer, n, auth, wire.DefaultMaxFrameSize)
		if auth == MACs {
			secret := make([]byte, 32)
			secret[0] = 1
			var err error
			if other.mac, err = peer.kh.NewMACSession(secret, n.router()); err != nil {
				t.Fatal(err)
			}
			if check(body, other) {
				t.Error("a connection with another channel secret accepts the batch")
			}
		} else if !check(body, other) { // signatures hold anywhere; the replay window stops repeats
			t.Error("another connection refuses a signed batch")
		}
	})
}
