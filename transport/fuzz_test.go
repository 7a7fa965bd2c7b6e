package transport

import (
	"testing"

	"github.com/enginekit/enginekit/callbridge"
)

// FuzzControlPayloads feeds peer-controlled bytes to every decoder of the
// transport's own payloads (learn, learns, forget, reply, event). None may panic;
// whatever decodes must encode again and decode to the same thing.
func FuzzControlPayloads(f *testing.F) {
	for _, v := range []any{
		learnMsg{Engine: [32]byte{1}, Proof: make([]byte, 64), Name: "vault", Filter: []byte{0x81, 0x01}},
		forgetMsg{Engine: [32]byte{2}},
		forgetMsg{Engine: [32]byte{2}, Reason: &callbridge.WireError{Code: callbridge.CodeExited, Message: "boom"}},
		replyMsg{Value: []byte{0x82, 0x63, 'i', 'n', 't', 0x01}},
		replyMsg{Err: &callbridge.WireError{Code: callbridge.CodeExited, Message: "boom"}},
		eventMsg{Topic: "orders.created", Attrs: []string{"region", "eu"}, Payload: []byte{0xf6}, Dropped: 3},
	} {
		b, err := ctlEnc.Marshal(v)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	one, err := ctlEnc.Marshal(learnMsg{Engine: [32]byte{1}, Proof: make([]byte, 64)})
	if err != nil {
		f.Fatal(err)
	}
	f.Add(appendLearns(nil, [][]byte{one, one}))
	f.Add([]byte{0x99, 0xff, 0xff}) // a learns array claiming 65535 elements
	f.Add([]byte{})
	f.Add([]byte{0xbf, 0xff})                   // indefinite-length map
	f.Add([]byte{0xa1, 0x01, 0x5a, 0xff, 0xff}) // byte string claiming 4 GiB
	f.Fuzz(func(t *testing.T, b []byte) {
		var l learnMsg
		if decodeControl(b, &l) == nil {
			roundTrip(t, l, func(v *learnMsg) error { return decodeControl(mustEncode(t, l), v) })
		}
		if ls, err := decodeLearns(b); err == nil {
			if len(ls) > maxLearnsPerEnvelope {
				t.Fatalf("%d learns decoded, limit %d", len(ls), maxLearnsPerEnvelope)
			}
			for _, l := range ls {
				roundTrip(t, l, func(v *learnMsg) error { return decodeControl(mustEncode(t, l), v) })
			}
		}
		var fm forgetMsg
		if decodeControl(b, &fm) == nil {
			_ = decodeReason(fm.Reason)
		}
		var r replyMsg
		if decodeControl(b, &r) == nil {
			_ = r.Err.Err() // any code, known or not, gives an error value
		}
		var e eventMsg
		_ = eventDec.Unmarshal(b, &e)
	})
}

func mustEncode(t *testing.T, v any) []byte {
	b, err := ctlEnc.Marshal(v)
	if err != nil {
		t.Fatalf("re-encoding %#v: %v", v, err)
	}
	return b
}

func roundTrip(t *testing.T, want learnMsg, decode func(*learnMsg) error) {
	var got learnMsg
	if err := decode(&got); err != nil {
		t.Fatalf("a decoded learn does not decode again: %v", err)
	}
	if got.Engine != want.Engine || string(got.Proof) != string(want.Proof) || got.Name != want.Name || string(got.Filter) != string(want.Filter) {
		t.Fatalf("round trip changed the learn: %#v -> %#v", want, got)
	}
}
