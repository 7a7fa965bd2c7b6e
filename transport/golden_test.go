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
	"go.opentelemetry.io/otel/trace"
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
		{"synced-trace", "synced (8) of a node that traces: features [\"trace/1\"] (without a Tracer the payload is empty, as before)", syncedPayload(true)},
		{"call-traced", "the payload of a call (or cast, info) with flag bit 0 (trace): trace block (version 0, trace-id 0102…10, parent span-id 1112…18, flags 01 sampled), then the payload int 5", append(appendTraceBlock(nil, goldenSpan), int5...)},
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
	out.WriteString("# link (11) and unlink (12) have empty payloads, and so has synced (8) of a node that does not trace: no vectors.\n")
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
	if !peerTraces(vecs[10].b) || peerTraces(nil) || syncedPayload(false) != nil {
		t.Fatal("synced: the trace feature does not decode, or is sent without a Tracer")
	}
	sc, rest, err := cutTraceBlock(vecs[11].b)
	if err != nil || !sc.Equal(goldenSpan.WithRemote(true)) || string(rest) != string(int5) {
		t.Fatalf("call-traced: %v %v %x", err, sc, rest)
	}
}

// goldenSpan is the parent span of the call-traced vector.
var goldenSpan = trace.NewSpanContext(trace.SpanContextConfig{
	TraceID:    trace.TraceID{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16},
	SpanID:     trace.SpanID{0x11, 0x12, 0x13, 0x14, 0x15, 0x16, 0x17, 0x18},
	TraceFlags: trace.FlagsSampled,
})

// A flagged payload shorter than its trace block or with another block
// version is refused; the flags' other bits are not part of the block;
// zero ids give no parent.
func TestTraceBlock(t *testing.T) {
	b := appendTraceBlock(nil, goldenSpan)
	if len(b) != traceBlockLen {
		t.Fatalf("block of %d bytes", len(b))
	}
	for _, bad := range [][]byte{nil, b[:traceBlockLen-1], append([]byte{1}, b[1:]...)} {
		if _, _, err := cutTraceBlock(bad); err == nil {
			t.Fatalf("%x: accepted", bad)
		}
	}
	odd := append([]byte(nil), b...)
	odd[25] = 0xfe // not sampled; bits 1-7 ignored
	if sc, _, err := cutTraceBlock(odd); err != nil || sc.IsSampled() || sc.TraceFlags() != 0 {
		t.Fatalf("flags 0xfe: %v %v", sc, err)
	}
	if sc, rest, err := cutTraceBlock(make([]byte, traceBlockLen+1)); err != nil || sc.IsValid() || len(rest) != 1 {
		t.Fatalf("zero ids: %v %v", sc, err)
	}
	if peerTraces([]byte{0xa1, 0x01, 0x81, 0x63, 'x', 'y', 'z'}) || !peerTraces([]byte{0xa2, 0x01, 0x81, 0x67, 't', 'r', 'a', 'c', 'e', '/', '1', 0x02, 0x00}) {
		t.Fatal("features: an unknown feature counts, or an unknown key hides the trace feature")
	}
	if peerTraces([]byte{0xff}) {
		t.Fatal("a synced payload that does not decode announces the trace feature")
	}
}
