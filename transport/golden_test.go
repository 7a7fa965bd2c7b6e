package transport

import (
	"bytes"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/enginekit/enginekit/callbridge"
	"github.com/enginekit/enginekit/events"
	"github.com/enginekit/enginekit/genserver"
	"github.com/enginekit/enginekit/keyholder"
	"github.com/enginekit/enginekit/payload"
)

var update = flag.Bool("update", false, "rewrite wire/testdata/control.txt")

const controlGolden = "../wire/testdata/control.txt"

// TestControlGolden checks the control payloads of wire/spec.md ("Control
// payloads") against wire/testdata/control.txt, made with the keys of
// wire/testdata/keys.txt (seeds 32×10 for the sender router, 32×11 for the
// sender engine), and decodes each back.
func TestControlGolden(t *testing.T) {
	seeds := append(bytes.Repeat([]byte{0x10}, 32), bytes.Repeat([]byte{0x11}, 32)...)
	kh, err := keyholder.New(keyholder.Config{Rand: bytes.NewReader(seeds)})
	if err != nil {
		t.Fatal(err)
	}
	engine, err := kh.EnsureEngine("counter")
	if err != nil {
		t.Fatal(err)
	}
	if got := hex.EncodeToString(kh.Router().PublicKey()); got != "5c9c6df261c9cb840475776aaefcd944b405328fab28f9b3a95ef40490d3de84" {
		t.Fatalf("sender router %s: not the key of keys.txt", got)
	}
	proof, err := kh.EngineProof(engine)
	if err != nil {
		t.Fatal(err)
	}
	reg, err := payload.NewRegistry(payload.Limits{})
	if err != nil {
		t.Fatal(err)
	}
	filter, err := events.TopicPrefix("orders.").MarshalCBOR()
	if err != nil {
		t.Fatal(err)
	}
	must := func(b []byte, err error) []byte {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	int5 := must(reg.Marshal(5))
	learn := must(ctlEnc.Marshal(learnMsg{Engine: engine, Proof: proof, Name: "counter"}))
	type vec struct {
		name, comment string
		b             []byte
	}
	vecs := []vec{
		{"learn", "an engine named counter, no events", learn},
		{"learn-filter", "asking for the events whose topic starts with orders.", must(ctlEnc.Marshal(learnMsg{Engine: engine, Proof: proof, Filter: filter}))},
		{"learns", "the learn above, alone in a learns array", appendLearns(nil, [][]byte{learn})},
		{"forget", "", must(ctlEnc.Marshal(forgetMsg{Engine: engine}))},
		{"forget-reason", "with the exit reason boom", must(ctlEnc.Marshal(forgetMsg{Engine: engine, Reason: &callbridge.WireError{Code: callbridge.CodeExited, Message: "boom"}}))},
		{"reply-nil", "", must(ctlEnc.Marshal(replyMsg{}))},
		{"reply-int-5", "", must(ctlEnc.Marshal(replyMsg{Value: int5}))},
		{"event", "topic orders.created, region=eu, payload int 5, 2 dropped before", must(ctlEnc.Marshal(eventMsg{Topic: "orders.created", Attrs: []string{"region", "eu"}, Payload: int5, Dropped: 2}))},
		{"remote-from", "held by the sender router, token 0x0123456789abcdef, no deadline (transport.RemoteFrom)", must(ctlEnc.Marshal(RemoteFrom{Router: kh.Router(), Token: 0x0123456789abcdef}))},
		{"from", "a genserver.From in a payload: as remote-from, with the caller's deadline 2023-11-14T22:13:20Z", must(ctlEnc.Marshal(fromWire{Router: kh.Router(), Token: 0x0123456789abcdef, Deadline: 1_700_000_000_000_000_000}))},
	}
	codes := []struct {
		name string
		err  any
	}{
		{"error", errors.New("no such key")},
		{"no-process", genserver.ErrNoProcess},
		{"timeout", genserver.ErrTimeout},
		{"exited", &genserver.ExitError{Reason: errors.New("boom")}},
		{"exited-normal", &genserver.ExitError{}},
		{"calling-self", genserver.ErrCallingSelf},
		{"mailbox-full", genserver.ErrMailboxFull},
		{"no-connection", ErrNoConnection},
		{"canceled", &callbridge.WireError{Code: callbridge.CodeCanceled}},
		{"bad-request", callbridge.ErrBadRequest},
		{"too-large", &callbridge.WireError{Code: callbridge.CodeTooLarge, Message: "2000000-byte reply, limit 1048531 bytes"}},
		{"too-many-calls", ErrTooManyCalls},
	}
	for i, c := range codes {
		w, ok := c.err.(*callbridge.WireError)
		if !ok {
			w = callbridge.EncodeError(c.err.(error))
		}
		if int(w.Code) != i {
			t.Fatalf("%s encodes as code %d, want %d", c.name, w.Code, i)
		}
		vecs = append(vecs, vec{"reply-error-" + c.name, fmt.Sprintf("code %d", i), must(ctlEnc.Marshal(replyMsg{Err: w}))})
	}

	var out strings.Builder
	out.WriteString("# Control payloads (spec.md, \"Control payloads\"), deterministic CBOR, hex.\n")
	out.WriteString("# Keys in keys.txt: the engine is the sender engine, its proof is for the sender router.\n")
	out.WriteString("# Checked by TestControlGolden in transport/; regenerate with go test ./transport -run ControlGolden -update.\n")
	out.WriteString("# synced (8), link (11) and unlink (12) have empty payloads: no vectors.\n")
	for _, v := range vecs {
		if v.comment != "" {
			fmt.Fprintf(&out, "# %s: %s\n", v.name, v.comment)
		}
		fmt.Fprintf(&out, "%s: %x\n", v.name, v.b)
	}
	if *update {
		if err := os.WriteFile(controlGolden, []byte(out.String()), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(filepath.Clean(controlGolden))
	if err != nil {
		t.Fatalf("%v (run with -update to make it)", err)
	}
	if string(want) != out.String() {
		t.Fatalf("%s differs from what the code makes:\n%s", controlGolden, out.String())
	}

	// Each decodes back, under the receiver's limits.
	var l learnMsg
	if err := decodeControl(vecs[0].b, &l); err != nil || l.Engine != engine || !keyholder.VerifyEngineProof(kh.Router(), engine, l.Proof) {
		t.Fatalf("learn: %v", err)
	}
	if ls, err := decodeLearns(vecs[2].b); err != nil || len(ls) != 1 || ls[0].Engine != engine {
		t.Fatalf("learns: %v", err)
	}
	var f forgetMsg
	if err := decodeControl(vecs[4].b, &f); err != nil || f.Reason.Message != "boom" {
		t.Fatalf("forget: %v", err)
	}
	var r replyMsg
	if err := decodeControl(vecs[6].b, &r); err != nil {
		t.Fatal(err)
	}
	if v, err := reg.Unmarshal(r.Value); err != nil || v != 5 {
		t.Fatalf("reply value %v, %v", v, err)
	}
	if _, err := (&Transport{reg: reg}).decodeEvent(vecs[7].b); err != nil {
		t.Fatalf("event: %v", err)
	}
	if d, ok := (fromCodec{}).DecodeFrom(vecs[9].b); !ok || d.UnixNano() != 1_700_000_000_000_000_000 {
		t.Fatalf("from: %v, %v", d, ok)
	}
}
