package netconn

import (
	"context"
	"testing"

	"github.com/enginekit/enginekit/wire"
)

// TestLargeEnvelopesAlone: with MACs an envelope with a payload of
// detachPayload bytes or more goes alone in its batch, and nothing joins
// it; with signatures envelopes of one source share batches up to the
// frame size.
func TestLargeEnvelopesAlone(t *testing.T) {
	forEachAuth(t, func(t *testing.T, auth Auth) {
		n, peer := newNode(t), newNode(t)
		c := testConn(t, n, peer, auth, wire.DefaultMaxFrameSize)
		sizes := []int{10, 10, detachPayload, 10, detachPayload, detachPayload - 1, 10, detachPayload + 5}
		for _, s := range sizes {
			if err := c.Send(context.Background(), &wire.Envelope{Kind: wire.Cast, Src: n.engine, Dst: peer.engine, Payload: make([]byte, s)}); err != nil {
				t.Fatal(err)
			}
		}
		_, batches, _, _ := c.q.take(nil, nil)
		var counts []int
		for _, b := range batches {
			counts = append(counts, b.count)
		}
		want := []int{2, 1, 1, 1, 2, 1}
		if auth == Signatures {
			want = []int{len(sizes)}
		}
		if len(counts) != len(want) {
			t.Fatalf("batches of %v, want %v", counts, want)
		}
		for i := range want {
			if counts[i] != want[i] {
				t.Fatalf("batches of %v, want %v", counts, want)
			}
		}
	})
}
