package transport

import (
	"bytes"
	"testing"
)

// The hand-written value reply is byte for byte what ctlEnc writes for
// replyMsg{Value: v}, at every length class of the CBOR head, and
// cutValueReply takes back exactly those payloads (others go to the CBOR
// decoder, which decides).
func TestValueReplyEncoding(t *testing.T) {
	for _, n := range []int{1, 23, 24, 255, 256, 65535, 65536, 70000} {
		val := bytes.Repeat([]byte{0x5a}, n)
		want, err := ctlEnc.Marshal(replyMsg{Value: val})
		if err != nil {
			t.Fatal(err)
		}
		got := appendValueReply(nil, val)
		if !bytes.Equal(got, want) {
			t.Fatalf("%d bytes: % x..., want % x...", n, got[:min(8, len(got))], want[:min(8, len(want))])
		}
		back, ok := cutValueReply(got)
		if !ok || !bytes.Equal(back, val) {
			t.Fatalf("%d bytes: not cut back (ok %v)", n, ok)
		}
		var m replyMsg
		if err := decodeControl(got, &m); err != nil || !bytes.Equal(m.Value, val) {
			t.Fatalf("%d bytes: decodeControl: %v", n, err)
		}
		// Truncated or padded: not a value reply.
		if _, ok := cutValueReply(got[:len(got)-1]); ok {
			t.Fatalf("%d bytes: a truncated payload was cut", n)
		}
		if _, ok := cutValueReply(append(got[:len(got):len(got)], 0)); ok {
			t.Fatalf("%d bytes: a padded payload was cut", n)
		}
	}
	for _, b := range [][]byte{
		nil, {0xa0}, {0xa1, 0x01, 0x40}, // empty value: ctlEnc omits it
		{0xa1, 0x01, 0x58, 0x01, 0x00}, // not the shortest head
		{0xa1, 0x02, 0x41, 0x00},       // an error, not a value
		{0xa2, 0x01, 0x41, 0x00, 0x02, 0xf6},
	} {
		if _, ok := cutValueReply(b); ok {
			t.Fatalf("% x was cut as a value reply", b)
		}
	}
}
