package wire_test

import (
	"bytes"
	"testing"

	"github.com/enginekit/enginekit/wire"
)

// AppendRecordTail appends what AppendRecord appends for the payload
// joined with the tail.
func TestAppendRecordTail(t *testing.T) {
	for _, c := range []struct{ head, tail string }{{"", ""}, {"ab", ""}, {"", "cd"}, {"head", "tail"}} {
		env := wire.Envelope{Kind: wire.Cast, Flags: 3, Src: addr(1), Dst: addr(2), Ref: 9, Deadline: 11, Payload: []byte(c.head)}
		got := wire.AppendRecordTail([]byte("pre"), &env, []byte(c.tail))
		joined := env
		joined.Payload = []byte(c.head + c.tail)
		if want := wire.AppendRecord([]byte("pre"), &joined); !bytes.Equal(got, want) {
			t.Fatalf("%q+%q: %x, want %x", c.head, c.tail, got, want)
		}
	}
}
