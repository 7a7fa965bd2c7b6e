package wire

import (
	"fmt"

	"github.com/enginekit/enginekit/keyholder"
)

// Kind says what an envelope is for. The zero Kind is invalid.
type Kind uint8

// The kinds of envelope. Values are fixed by spec.md; new kinds get new values.
const (
	Cast   Kind = 1 // asynchronous message to a server (GenServer cast)
	Call   Kind = 2 // request expecting a Reply with the same Ref
	Reply  Kind = 3 // answer to the Call whose Ref it carries
	Info   Kind = 4 // plain message (Erlang send, handle_info)
	Learn  Kind = 5 // "learn this engine", from the router (Src is the router)
	Forget Kind = 6 // "forget this engine", from the router
	Event  Kind = 7 // a broker event forwarded to a subscriber
	// Synced marks the end of the learn burst, from the router: every
	// engine the sender had when the connection came up has been announced.
	Synced Kind = 8
	// Learns is "learn these engines", from the router: many learns in one
	// envelope (spec.md, "Control payloads").
	Learns Kind = 9
	// Answer replies to a call held on the receiving node, through a From
	// that node exported (transport.ExportFrom): Ref is the From's token,
	// the payload is a reply's (spec.md, "Control payloads").
	Answer Kind = 10
	// Link links Dst with Src (an engine), Unlink undoes it: the receiving
	// node links Dst with its proxy of Src (spec.md, "Control payloads").
	Link   Kind = 11
	Unlink Kind = 12
)

var kindNames = [...]string{"invalid", "cast", "call", "reply", "info", "learn", "forget", "event", "synced", "learns", "answer", "link", "unlink"}

// Valid reports whether k is one of the kinds this version defines.
func (k Kind) Valid() bool { return k >= Cast && k <= Unlink }

func (k Kind) String() string {
	if int(k) < len(kindNames) {
		return kindNames[k]
	}
	return fmt.Sprintf("kind(%d)", uint8(k))
}

// Envelope is one message between engines on different nodes.
//
// On the wire an envelope travels inside a batch frame, which carries Src and
// the Seq of its first envelope once for all of them (spec.md, "Batch"). The
// payload is opaque here; it is normally a value encoded by a Registry.
type Envelope struct {
	Kind  Kind
	Flags uint8             // meaning defined by the layer above; carried as is
	Src   keyholder.Address // sending engine, or the router for Learn/Forget
	Dst   keyholder.Address // receiving engine (or router)
	// Ref pairs a Call with its Reply; zero when unused.
	Ref uint64
	// Deadline is when the sender stops caring, in Unix nanoseconds; zero for
	// none.
	Deadline int64
	// Seq is the per-Src sequence number used against replays. Senders do not
	// choose it: the connection assigns it when it authenticates the batch.
	Seq     uint64
	Payload []byte
	// Owned is set by a receiving connection when Payload lies in a buffer
	// it has handed over (a large envelope alone in its frame, see
	// FrameReader.SetDetach): whoever handles the envelope may keep Payload,
	// or values aliasing it, instead of copying. Otherwise Payload is valid
	// only during the delivery. Not part of the encoding.
	Owned bool
}

// Clone returns a copy of e that shares no memory with it.
func (e *Envelope) Clone() *Envelope {
	c := *e
	if e.Payload != nil {
		c.Payload = append(make([]byte, 0, len(e.Payload)), e.Payload...)
	}
	return &c
}

// String describes e without its payload, for logs.
func (e *Envelope) String() string {
	return fmt.Sprintf("%v %v->%v ref=%d seq=%d len=%d", e.Kind, e.Src, e.Dst, e.Ref, e.Seq, len(e.Payload))
}
