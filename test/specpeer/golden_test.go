package specpeer_test

import (
	"bufio"
	"bytes"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/enginekit/enginekit/test/specpeer"
)

// vectors reads a testdata file of §15: "key: value" lines, # comments. A
// key that repeats (addresses.txt) keeps all its values in order.
func vectors(t *testing.T, name string) map[string][]string {
	t.Helper()
	f, err := os.Open(filepath.Join("..", "..", "wire", "testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	m := map[string][]string{}
	s := bufio.NewScanner(f)
	for s.Scan() {
		line := s.Text()
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		k, v, ok := strings.Cut(line, ": ")
		if !ok {
			t.Fatalf("%s: line %q", name, line)
		}
		m[k] = append(m[k], v)
	}
	if err := s.Err(); err != nil {
		t.Fatal(err)
	}
	return m
}

func one(t *testing.T, m map[string][]string, k string) []byte {
	t.Helper()
	v, ok := m[k]
	if !ok || len(v) != 1 {
		t.Fatalf("vector %q missing or repeated", k)
	}
	b, err := hex.DecodeString(v[0])
	if err != nil {
		t.Fatalf("vector %q: %v", k, err)
	}
	return b
}

func addr(t *testing.T, b []byte) specpeer.Address {
	t.Helper()
	var a specpeer.Address
	if len(b) != 32 {
		t.Fatalf("address of %d bytes", len(b))
	}
	copy(a[:], b)
	return a
}

func same(t *testing.T, what string, got, want []byte) {
	t.Helper()
	if !bytes.Equal(got, want) {
		t.Errorf("%s:\n got %x\nwant %x", what, got, want)
	}
}

type goldenKeys struct {
	senderRouter, senderEngine, receiverRouter, receiverEngine ed25519.PrivateKey
}

func keysOf(t *testing.T) goldenKeys {
	t.Helper()
	v := vectors(t, "keys.txt")
	key := func(name string) ed25519.PrivateKey {
		k := ed25519.NewKeyFromSeed(one(t, v, name+"-seed"))
		same(t, name, k.Public().(ed25519.PublicKey), one(t, v, name))
		if got, want := pub(k).String(), v[name+"-text"][0]; got != want {
			t.Errorf("%s text %s, want %s", name, got, want)
		}
		return k
	}
	return goldenKeys{key("sender-router"), key("sender-engine"), key("receiver-router"), key("receiver-engine")}
}

func pub(k ed25519.PrivateKey) specpeer.Address {
	var a specpeer.Address
	copy(a[:], k.Public().(ed25519.PublicKey))
	return a
}

func TestGoldenAddresses(t *testing.T) {
	v := vectors(t, "addresses.txt")
	for _, line := range v["valid"] {
		h, text, _ := strings.Cut(line, " ")
		b, _ := hex.DecodeString(h)
		a := addr(t, b)
		if a.String() != text {
			t.Errorf("%x: text %s, want %s", b, a, text)
		}
		p, err := specpeer.ParseAddress(text)
		if err != nil || p != a {
			t.Errorf("parse %s: %x, %v", text, p, err)
		}
	}
	for _, line := range v["refuse"] {
		text, why, _ := strings.Cut(line, " ")
		if _, err := specpeer.ParseAddress(text); err == nil {
			t.Errorf("parsed %q (%s)", text, why)
		}
	}
	if len(v["valid"]) == 0 || len(v["refuse"]) == 0 {
		t.Fatal("no address vectors")
	}
}

func TestGoldenEngineProof(t *testing.T) {
	k := keysOf(t)
	v := vectors(t, "engine_proof.txt")
	router, engine := addr(t, one(t, v, "router")), addr(t, one(t, v, "engine"))
	if router != pub(k.senderRouter) || engine != pub(k.senderEngine) {
		t.Fatal("engine_proof.txt names other keys than keys.txt")
	}
	same(t, "message", specpeer.ProofMessage(router, engine), one(t, v, "message"))
	same(t, "proof", specpeer.Prove(k.senderEngine, router), one(t, v, "proof"))
	if !specpeer.VerifyProof(router, engine, one(t, v, "proof")) {
		t.Error("the proof does not verify")
	}
	if specpeer.VerifyProof(pub(k.receiverRouter), engine, one(t, v, "proof")) {
		t.Error("the proof verifies for another router")
	}
}

func TestGoldenHello(t *testing.T) {
	v := vectors(t, "hello.txt")
	cred := one(t, v, "credential")
	for _, c := range []struct {
		name string
		h    specpeer.Hello
	}{
		{"signatures-1mib", specpeer.Hello{Mode: specpeer.ModeSignatures, MaxFrame: 1 << 20}},
		{"macs-4096", specpeer.Hello{Mode: specpeer.ModeMACs, MaxFrame: 4096}},
		{"signatures-1mib-credential", specpeer.Hello{Mode: specpeer.ModeSignatures, MaxFrame: 1 << 20, Credential: cred}},
	} {
		frame := one(t, v, c.name)
		var b bytes.Buffer
		if err := specpeer.WriteFrame(&b, specpeer.FrameHello, c.h.Marshal()); err != nil {
			t.Fatal(err)
		}
		same(t, c.name, b.Bytes(), frame)
		typ, body, err := specpeer.ReadFrame(bytes.NewReader(frame), specpeer.MinFrameSize)
		if err != nil || typ != specpeer.FrameHello {
			t.Fatalf("%s: type %d, %v", c.name, typ, err)
		}
		h, err := specpeer.ParseHello(body, c.h.Mode)
		if err != nil || h.MaxFrame != c.h.MaxFrame || !bytes.Equal(h.Credential, c.h.Credential) {
			t.Errorf("%s: parsed %+v, %v", c.name, h, err)
		}
		if _, err := specpeer.ParseHello(body, 3-c.h.Mode); err == nil {
			t.Errorf("%s: accepted for the other auth mode", c.name)
		}
	}
}

func TestGoldenFrames(t *testing.T) {
	v := vectors(t, "frames.txt")
	for _, c := range []struct {
		name string
		typ  byte
		body []byte
	}{
		{"ping-0102030405060708", specpeer.FramePing, []byte{1, 2, 3, 4, 5, 6, 7, 8}},
		{"pong-0102030405060708", specpeer.FramePong, []byte{1, 2, 3, 4, 5, 6, 7, 8}},
		{"goaway-normal", specpeer.FrameGoaway, specpeer.Goaway(0, "")},
		{"goaway-refused-version", specpeer.FrameGoaway, specpeer.Goaway(2, "peer speaks version 2, we speak 1")},
	} {
		var b bytes.Buffer
		if err := specpeer.WriteFrame(&b, c.typ, c.body); err != nil {
			t.Fatal(err)
		}
		same(t, c.name, b.Bytes(), one(t, v, c.name))
	}
}

// goldenEnvelopes are the envelopes of batch_signed.txt and batch_mac.txt,
// as their comments describe them.
func goldenEnvelopes(t *testing.T, dst specpeer.Address, seq uint64) []specpeer.Envelope {
	t.Helper()
	p := func(name string, v any) []byte {
		b, err := specpeer.EncodePayload(name, v)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	return []specpeer.Envelope{
		{Kind: specpeer.KindCast, Dst: dst, Payload: p("int", 5)},
		{Kind: specpeer.KindCall, Dst: dst, Ref: 7, Deadline: int64(seq) + int64(5*time.Second), Payload: p("string", "hi")},
		{Kind: specpeer.KindInfo, Flags: 1, Dst: dst, Payload: p("nil", nil)},
	}
}

func checkGoldenBatch(t *testing.T, v map[string][]string, mode byte, k goldenKeys) (body []byte, seq uint64) {
	t.Helper()
	if addr(t, one(t, v, "sender-router")) != pub(k.senderRouter) || addr(t, one(t, v, "receiver-router")) != pub(k.receiverRouter) || addr(t, one(t, v, "src")) != pub(k.senderEngine) {
		t.Fatal("the batch names other keys than keys.txt")
	}
	seq = 1767225600000000000
	if v["seq"][0] != "1767225600000000000" {
		t.Fatalf("seq %s", v["seq"][0])
	}
	body = specpeer.SignedBody(pub(k.senderEngine), seq, goldenEnvelopes(t, pub(k.receiverEngine), seq))
	same(t, "signed-body", body, one(t, v, "signed-body"))
	frame := one(t, v, "frame")
	typ, fb, err := specpeer.ReadFrame(bytes.NewReader(frame), specpeer.MinFrameSize)
	if err != nil || typ != specpeer.FrameBatch {
		t.Fatalf("frame: type %d, %v", typ, err)
	}
	b, err := specpeer.ParseBatch(fb, specpeer.TagSize(mode))
	if err != nil {
		t.Fatal(err)
	}
	same(t, "parsed signed body", b.SignedBody, body)
	same(t, "parsed tag", b.Tag, one(t, v, "tag"))
	if b.Src != pub(k.senderEngine) || b.Seq != seq || len(b.Envelopes) != 3 {
		t.Errorf("parsed %v seq %d, %d envelopes", b.Src, b.Seq, len(b.Envelopes))
	}
	name, _, err := specpeer.DecodePayload(b.Envelopes[1].Payload)
	if err != nil || name != "string" {
		t.Errorf("call payload: %q, %v", name, err)
	}
	return body, seq
}

func TestGoldenBatchSigned(t *testing.T) {
	k := keysOf(t)
	v := vectors(t, "batch_signed.txt")
	body, _ := checkGoldenBatch(t, v, specpeer.ModeSignatures, k)
	d := sha256.Sum256(body)
	same(t, "digest", d[:], one(t, v, "digest"))
	msg := specpeer.AuthMessage(pub(k.senderRouter), pub(k.receiverRouter), body)
	same(t, "auth-message", msg, one(t, v, "auth-message"))
	tag := ed25519.Sign(k.senderEngine, msg)
	same(t, "tag", tag, one(t, v, "tag"))
	var f bytes.Buffer
	_ = specpeer.WriteFrame(&f, specpeer.FrameBatch, append(body, tag...))
	same(t, "frame", f.Bytes(), one(t, v, "frame"))
}

func TestGoldenBatchMAC(t *testing.T) {
	k := keysOf(t)
	v := vectors(t, "batch_mac.txt")
	body, seq := checkGoldenBatch(t, v, specpeer.ModeMACs, k)
	secret := one(t, v, "channel-secret")
	sr, rr, src := pub(k.senderRouter), pub(k.receiverRouter), pub(k.senderEngine)
	prk, err := specpeer.MACPRK(secret)
	if err != nil {
		t.Fatal(err)
	}
	same(t, "prk", prk, one(t, v, "prk"))
	same(t, "hkdf-info", specpeer.MACInfo(sr, rr, src), one(t, v, "hkdf-info"))
	key, err := specpeer.MACKey(secret, sr, rr, src)
	if err != nil {
		t.Fatal(err)
	}
	same(t, "src-mac-key", key, one(t, v, "src-mac-key"))
	same(t, "nonce", specpeer.Nonce(seq), one(t, v, "nonce"))
	tag, err := specpeer.GMAC(key, seq, body)
	if err != nil {
		t.Fatal(err)
	}
	same(t, "tag", tag, one(t, v, "tag"))
	var f bytes.Buffer
	_ = specpeer.WriteFrame(&f, specpeer.FrameBatch, append(body, tag...))
	same(t, "frame", f.Bytes(), one(t, v, "frame"))
	// The other direction gets another key.
	if other, _ := specpeer.MACKey(secret, rr, sr, src); bytes.Equal(other, key) {
		t.Error("both directions have the same key")
	}
}

// TestWorkedExample is §12.
func TestWorkedExample(t *testing.T) {
	var src, dst, a0, b0 specpeer.Address
	for i := range src {
		src[i], dst[i], a0[i], b0[i] = 0x11, 0x22, 0xa0, 0xb0
	}
	const seq = 0x0102030405060708
	p, _ := specpeer.EncodePayload("int", 5)
	body := specpeer.SignedBody(src, seq, []specpeer.Envelope{{Kind: specpeer.KindCast, Dst: dst, Payload: p}})
	if len(body) != 104 {
		t.Fatalf("signed body of %d bytes", len(body))
	}
	var f bytes.Buffer
	_ = specpeer.WriteFrame(&f, specpeer.FrameBatch, append(body, make([]byte, 16)...))
	if got := binary.BigEndian.Uint32(f.Bytes()); got != 121 {
		t.Errorf("length %d", got)
	}
	key, _ := specpeer.MACKey(bytes.Repeat([]byte{0x5c}, 32), a0, b0, src)
	same(t, "key", key, hexb(t, "4694aa0e229211843606d8b644e70fdffc9a70a80508ab1039de453daa819bea"))
	same(t, "nonce", specpeer.Nonce(seq), hexb(t, "000000000102030405060708"))
	tag, _ := specpeer.GMAC(key, seq, body)
	same(t, "tag", tag, hexb(t, "2539ea0722d436ca8f095351b1bf6379"))
	d := sha256.Sum256(body)
	same(t, "digest", d[:], hexb(t, "eec67a7f9e987d15d1f310282577398482847eab604e59d5d2162ec57b1a78c1"))
}

func hexb(t *testing.T, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(s)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestGoldenPayloads(t *testing.T) {
	v := vectors(t, "payloads.txt")
	type inc struct {
		By   int
		Note string `cbor:",omitempty"`
	}
	type point struct {
		_    struct{} `cbor:",toarray"`
		X, Y int64
	}
	for _, c := range []struct {
		key, name string
		value     any
	}{
		{"nil", "nil", nil},
		{"bool-true", "bool", true},
		{"int-5", "int", 5},
		{"int-minus-1000", "int", -1000},
		{"int64-min", "int64", int64(math.MinInt64)},
		{"uint64-max", "uint64", uint64(math.MaxUint64)},
		{"float64-1.5", "float64", 1.5},
		{"float64-0.1", "float64", 0.1},
		{"string-héllo", "string", "héllo"},
		{"bytes-010203", "bytes", []byte{1, 2, 3}},
		{"counter.Inc-by-2-note-x", "counter.Inc", inc{By: 2, Note: "x"}},
		{"counter.Inc-by-1", "counter.Inc", inc{By: 1}},
		{"geo.Point-3-minus-4", "geo.Point", point{X: 3, Y: -4}},
	} {
		want := one(t, v, c.key)
		got, err := specpeer.EncodePayload(c.name, c.value)
		if err != nil {
			t.Fatal(err)
		}
		same(t, c.key, got, want)
		name, _, err := specpeer.DecodePayload(want)
		if err != nil || name != c.name {
			t.Errorf("%s: decoded name %q, %v", c.key, name, err)
		}
	}
	if len(v) != 13 {
		t.Errorf("payloads.txt has %d vectors; this test knows 13", len(v))
	}
}

func TestGoldenControl(t *testing.T) {
	k := keysOf(t)
	v := vectors(t, "control.txt")
	enc := func(x any) []byte {
		b, err := specpeer.EncodeControl(x)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	e := pub(k.senderEngine)
	learn := specpeer.Learn{Engine: e[:], Proof: specpeer.Prove(k.senderEngine, pub(k.senderRouter)), Name: "counter"}
	same(t, "learn", enc(learn), one(t, v, "learn"))
	l, err := specpeer.DecodeLearn(one(t, v, "learn"))
	if err != nil || !specpeer.VerifyProof(pub(k.senderRouter), e, l.Proof) || l.Name != "counter" {
		t.Errorf("learn decoded %+v, %v", l, err)
	}
	same(t, "learns", enc([]specpeer.Learn{learn}), one(t, v, "learns"))
	ls, err := specpeer.DecodeLearns(one(t, v, "learns"))
	if err != nil || len(ls) != 1 || ls[0].Name != "counter" {
		t.Errorf("learns decoded %+v, %v", ls, err)
	}
	same(t, "forget", enc(specpeer.Forget{Engine: e[:]}), one(t, v, "forget"))
	same(t, "forget-reason", enc(specpeer.Forget{Engine: e[:], Reason: &specpeer.ErrorMap{Code: 3, Message: "boom"}}), one(t, v, "forget-reason"))
	same(t, "synced-trace", enc(specpeer.Synced{Features: []string{"trace/1"}}), one(t, v, "synced-trace"))
	same(t, "reply-nil", enc(specpeer.Reply{}), one(t, v, "reply-nil"))
	five, _ := specpeer.EncodePayload("int", 5)
	same(t, "reply-int-5", enc(specpeer.Reply{Value: five}), one(t, v, "reply-int-5"))
	same(t, "reply-error-exited", enc(specpeer.Reply{Error: &specpeer.ErrorMap{Code: 3, Message: "boom"}}), one(t, v, "reply-error-exited"))
	same(t, "reply-error-no-process", enc(specpeer.Reply{Error: &specpeer.ErrorMap{Code: 1}}), one(t, v, "reply-error-no-process"))
	var r specpeer.Reply
	if err := specpeer.DecodeControl(one(t, v, "reply-error-too-many-calls"), &r); err != nil || r.Error == nil || r.Error.Code != 11 {
		t.Errorf("reply-error-too-many-calls decoded %+v, %v", r, err)
	}
	// The traced call: a 26-byte block, then the payload.
	tr := one(t, v, "call-traced")
	if len(tr) < 26 || tr[0] != 0 || !bytes.Equal(tr[26:], five) {
		t.Errorf("call-traced %x", tr)
	}
}
