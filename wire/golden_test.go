package wire_test

import (
	"bufio"
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"crypto/ed25519"
	"crypto/hkdf"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"flag"
	"fmt"
	"github.com/enginekit/enginekit/payload"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/enginekit/enginekit/keyholder"
	"github.com/enginekit/enginekit/wire"
)

// The golden vectors of spec.md, "Golden vectors": hex of real frames and
// payloads made by this package and the keyholder from keys with fixed
// seeds. TestGoldenVectors checks that the code still makes exactly these
// bytes; TestGoldenFiles checks the files' content on its own terms (parse,
// verify, recompute by hand), as a second implementation would.
var update = flag.Bool("update", false, "rewrite the golden files in testdata/")

const goldenDir = "testdata"

// Fixed seeds of the vector keys.
var (
	seedSenderRouter   = bytes.Repeat([]byte{0x10}, 32)
	seedSenderEngine   = bytes.Repeat([]byte{0x11}, 32)
	seedReceiverRouter = bytes.Repeat([]byte{0x20}, 32)
	seedReceiverEngine = bytes.Repeat([]byte{0x21}, 32)
	channelSecret      = bytes.Repeat([]byte{0x5c}, 32)
)

// Fixed values of the vector batches.
const (
	goldenSeq      = 1767225600000000000 // 2026-01-01T00:00:00Z in Unix ns
	goldenDeadline = 1767225605000000000 // five seconds later
	goldenCred     = "enginekit golden credential"
)

// goldenKeyholder returns a keyholder whose router and one engine come from
// the given seeds (keyholder.New reads the router seed, NewEngine the next).
func goldenKeyholder(t *testing.T, router, engine []byte) (*keyholder.Keyholder, keyholder.Address) {
	t.Helper()
	kh, err := keyholder.New(keyholder.Config{Rand: bytes.NewReader(append(append([]byte(nil), router...), engine...))})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { kh.Close() })
	e, err := kh.NewEngine("golden")
	if err != nil {
		t.Fatal(err)
	}
	return kh, e
}

type goldenFile struct {
	name   string
	header []string
	lines  []string // "key: value"
}

func (g *goldenFile) add(key string, format string, args ...any) {
	g.lines = append(g.lines, key+": "+fmt.Sprintf(format, args...))
}

func (g *goldenFile) hex(key string, b []byte) { g.add(key, "%x", b) }

func (g *goldenFile) String() string {
	var b strings.Builder
	for _, h := range g.header {
		b.WriteString("# " + h + "\n")
	}
	for _, l := range g.lines {
		b.WriteString(l + "\n")
	}
	return b.String()
}

const regenerate = "Checked by TestGoldenVectors and TestGoldenFiles in wire/; regenerate with go test ./wire -run Golden -update."

// goldenEnvelopes are the envelopes of the vector batches: a cast with the
// int 5, a call with a ref and a deadline carrying the string "hi", and an
// info with flags 1 carrying nil.
func goldenEnvelopes(t *testing.T, dst keyholder.Address) []wire.Envelope {
	reg, err := payload.NewRegistry(payload.Limits{})
	if err != nil {
		t.Fatal(err)
	}
	p := func(v any) []byte {
		b, err := reg.Marshal(v)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	return []wire.Envelope{
		{Kind: wire.Cast, Dst: dst, Payload: p(5)},
		{Kind: wire.Call, Dst: dst, Ref: 7, Deadline: goldenDeadline, Payload: p("hi")},
		{Kind: wire.Info, Flags: 1, Dst: dst, Payload: p(nil)},
	}
}

// Inc and Point are the registered types of the payload vectors.
type goldenInc struct {
	By   int
	Note string `cbor:",omitempty"`
}

type goldenPoint struct {
	_    struct{} `cbor:",toarray"`
	X, Y int64
}

// makeGolden builds every golden file from the code.
func makeGolden(t *testing.T) []*goldenFile {
	skh, se := goldenKeyholder(t, seedSenderRouter, seedSenderEngine)
	rkh, re := goldenKeyholder(t, seedReceiverRouter, seedReceiverEngine)
	sr, rr := skh.Router(), rkh.Router()

	keys := &goldenFile{name: "keys.txt", header: []string{
		"The keys of the golden vectors (spec.md, \"Golden vectors\"): ed25519 (RFC 8032) from 32-byte seeds.",
		"Each address is the public key; -text is its text form (spec.md, \"Addresses\").",
		regenerate,
	}}
	for _, k := range []struct {
		name string
		seed []byte
		addr keyholder.Address
	}{{"sender-router", seedSenderRouter, sr}, {"sender-engine", seedSenderEngine, se}, {"receiver-router", seedReceiverRouter, rr}, {"receiver-engine", seedReceiverEngine, re}} {
		keys.hex(k.name+"-seed", k.seed)
		keys.hex(k.name, k.addr[:])
		keys.add(k.name+"-text", "%s", k.addr)
	}

	addrs := &goldenFile{name: "addresses.txt", header: []string{
		"Address text forms (spec.md, \"Addresses\").",
		"valid: 32-byte address in hex, then its only text form.",
		"refuse: a text a parser MUST refuse, then why (for people).",
		regenerate,
	}}
	var seq keyholder.Address
	for i := range seq {
		seq[i] = byte(i)
	}
	for _, a := range []keyholder.Address{{}, addr(0xff), seq, sr, se, rr, re} {
		addrs.add("valid", "%x %s", a[:], a)
	}
	text := se.String()
	body := text[len(keyholder.AddressPrefix):]
	for _, r := range []struct{ text, why string }{
		{strings.ToUpper(text), "upper case"},
		{"EK1" + body, "upper-case prefix"},
		{"ek2" + body, "unknown prefix"},
		{body, "no prefix"},
		{text + "====", "padding"},
		{text[:len(text)-1], "54 characters"},
		{text + "a", "56 characters"},
		{text[:len(text)-1] + "b", "last character not a or q: non-zero unused bits"},
		{text[:10] + "1" + text[11:], "1 is not in the alphabet"},
		{text[:10] + "8" + text[11:], "8 is not in the alphabet"},
	} {
		addrs.add("refuse", "%s %s", r.text, r.why)
	}

	proof, err := skh.EngineProof(se)
	if err != nil {
		t.Fatal(err)
	}
	pf := &goldenFile{name: "engine_proof.txt", header: []string{
		"An engine proof (spec.md, \"Engine proofs\"): the sender engine's statement that it belongs to the sender router.",
		"Keys in keys.txt.",
		regenerate,
	}}
	pf.hex("router", sr[:])
	pf.hex("engine", se[:])
	msg := append([]byte("enginekit keyholder engine proof v1\x00"), sr[:]...)
	pf.hex("message", append(msg, se[:]...))
	pf.hex("proof", proof)

	hello := &goldenFile{name: "hello.txt", header: []string{
		"HELLO frames (spec.md §3), whole frames: length, type 1, body.",
		regenerate,
	}}
	hello.hex("signatures-1mib", wire.AppendHello(nil, wire.Hello{Version: 1, Auth: wire.AuthSignatures, MaxFrameSize: 1 << 20}))
	hello.hex("macs-4096", wire.AppendHello(nil, wire.Hello{Version: 1, Auth: wire.AuthMACs, MaxFrameSize: 4096}))
	hello.hex("credential", []byte(goldenCred))
	hello.hex("signatures-1mib-credential", wire.AppendHello(nil, wire.Hello{Version: 1, Auth: wire.AuthSignatures, MaxFrameSize: 1 << 20, Credential: []byte(goldenCred)}))

	envs := goldenEnvelopes(t, re)
	batch := func(name string, mode wire.AuthMode) *goldenFile {
		g := &goldenFile{name: name, header: []string{
			fmt.Sprintf("A BATCH frame in %v mode (spec.md §4-§6) from the sender engine, sent by the sender router to the receiver router", mode),
			"(keys in keys.txt): a cast of the int 5, a call (ref 7, deadline 5 s after seq's instant) of the string \"hi\",",
			"and an info with flags 1 of nil, all to the receiver engine.",
			regenerate,
		}}
		if mode == wire.AuthMACs {
			g.header = append(g.header[:len(g.header)-1],
				"MAC mode (spec.md §6): prk = HKDF-Extract(SHA-256, salt \"enginekit keyholder gmac v1\", channel-secret);",
				"src-mac-key = HKDF-Expand(SHA-256, prk, hkdf-info, 32) with hkdf-info = label 0x00 || sender-router || receiver-router || src;",
				"tag = AES-256-GCM Seal under src-mac-key with nonce = 00000000 || seq, empty plaintext, additional data signed-body.",
				regenerate)
		}
		ts := mode.TagSize()
		frame := wire.AppendBatch(nil, se, goldenSeq, envs, ts)
		signed := wire.BatchSigned(frame, ts)
		g.hex("sender-router", sr[:])
		g.hex("receiver-router", rr[:])
		g.hex("src", se[:])
		g.add("seq", "%d", uint64(goldenSeq))
		g.hex("signed-body", signed)
		var tag []byte
		if mode == wire.AuthMACs {
			g.hex("channel-secret", channelSecret)
			prk, info, key := macKey(t, channelSecret, sr, rr, se)
			g.hex("prk", prk)
			g.hex("hkdf-info", info)
			g.hex("src-mac-key", key)
			g.hex("nonce", gmacNonce(goldenSeq))
			s, err := skh.NewMACSession(channelSecret, rr)
			if err != nil {
				t.Fatal(err)
			}
			if tag, err = s.MAC(se, goldenSeq, nil, signed); err != nil {
				t.Fatal(err)
			}
			// The receiver's session agrees.
			r, err := rkh.NewMACSession(channelSecret, sr)
			if err != nil {
				t.Fatal(err)
			}
			if !r.Verify(se, goldenSeq, signed, tag) {
				t.Fatal("the receiver rejects the golden MAC")
			}
		} else {
			auth := wire.AppendAuthMessage(nil, &sr, &rr, signed)
			d := sha256.Sum256(signed)
			g.hex("digest", d[:])
			g.hex("auth-message", auth)
			if tag, err = skh.Sign(se, auth); err != nil {
				t.Fatal(err)
			}
		}
		copy(wire.BatchTag(frame, ts), tag)
		g.hex("tag", tag)
		g.hex("frame", frame)
		return g
	}

	payloads := &goldenFile{name: "payloads.txt", header: []string{
		"Payloads (spec.md §9): the deterministic CBOR of [name, value].",
		"counter.Inc is a Go struct {By int; Note string `cbor:\",omitempty\"`}, a map keyed by field name;",
		"geo.Point is a Go struct {X, Y int64} with toarray, an array.",
		regenerate,
	}}
	reg, err := payload.NewRegistry(payload.Limits{})
	if err != nil {
		t.Fatal(err)
	}
	if err := payload.Register[goldenInc](reg, "counter.Inc"); err != nil {
		t.Fatal(err)
	}
	if err := payload.Register[goldenPoint](reg, "geo.Point"); err != nil {
		t.Fatal(err)
	}
	for _, p := range []struct {
		key string
		v   any
	}{
		{"nil", nil}, {"bool-true", true}, {"int-5", 5}, {"int-minus-1000", -1000},
		{"int64-min", int64(-1 << 63)}, {"uint64-max", uint64(1<<64 - 1)},
		{"float64-1.5", 1.5}, {"float64-0.1", 0.1}, {"string-héllo", "héllo"}, {"bytes-010203", []byte{1, 2, 3}},
		{"counter.Inc-by-2-note-x", goldenInc{By: 2, Note: "x"}}, {"counter.Inc-by-1", goldenInc{By: 1}},
		{"geo.Point-3-minus-4", goldenPoint{X: 3, Y: -4}},
	} {
		b, err := reg.Marshal(p.v)
		if err != nil {
			t.Fatal(err)
		}
		payloads.hex(p.key, b)
	}

	frames := &goldenFile{name: "frames.txt", header: []string{
		"PING, PONG and GOAWAY frames (spec.md §2, §8), whole frames.",
		regenerate,
	}}
	frames.hex("ping-0102030405060708", wire.AppendPing(nil, 0x0102030405060708))
	frames.hex("pong-0102030405060708", wire.AppendPong(nil, 0x0102030405060708))
	frames.hex("goaway-normal", wire.AppendGoAway(nil, wire.GoAway{Code: wire.GoAwayNormal}))
	frames.hex("goaway-refused-version", wire.AppendGoAway(nil, wire.GoAway{Code: wire.GoAwayRefused, Reason: "peer speaks version 2, we speak 1"}))

	return []*goldenFile{keys, addrs, pf, hello, batch("batch_signed.txt", wire.AuthSignatures), batch("batch_mac.txt", wire.AuthMACs), payloads, frames}
}

// macKey derives src's MAC key from sender to receiver on a channel by
// hand, from spec.md §6.
func macKey(t *testing.T, secret []byte, sender, receiver, src keyholder.Address) (prk, info, key []byte) {
	prk, err := hkdf.Extract(sha256.New, secret, []byte("enginekit keyholder gmac v1"))
	if err != nil {
		t.Fatal(err)
	}
	info = append([]byte("enginekit keyholder gmac v1 engine key\x00"), sender[:]...)
	info = append(append(info, receiver[:]...), src[:]...)
	key, err = hkdf.Expand(sha256.New, prk, string(info), 32)
	if err != nil {
		t.Fatal(err)
	}
	return prk, info, key
}

// gmacNonce is the nonce of a batch whose first seq is seq (spec.md §6).
func gmacNonce(seq uint64) []byte {
	return binary.BigEndian.AppendUint64([]byte{0, 0, 0, 0}, seq)
}

func TestGoldenVectors(t *testing.T) {
	for _, g := range makeGolden(t) {
		path := filepath.Join(goldenDir, g.name)
		if *update {
			if err := os.WriteFile(path, []byte(g.String()), 0o644); err != nil {
				t.Fatal(err)
			}
			continue
		}
		got, err := os.ReadFile(path)
		if err != nil {
			t.Fatalf("%v (run with -update to create it)", err)
		}
		if string(got) != g.String() {
			t.Errorf("%s: the code no longer makes these bytes:\n%s", path, diffLines(string(got), g.String()))
		}
	}
}

func diffLines(old, new string) string {
	a, b := strings.Split(old, "\n"), strings.Split(new, "\n")
	for i := range max(len(a), len(b)) {
		var x, y string
		if i < len(a) {
			x = a[i]
		}
		if i < len(b) {
			y = b[i]
		}
		if x != y {
			return fmt.Sprintf("line %d\nfile: %s\ncode: %s", i+1, x, y)
		}
	}
	return ""
}

// golden reads a golden file as ordered key: value pairs.
type golden struct {
	t     *testing.T
	name  string
	pairs [][2]string
}

func readGolden(t *testing.T, name string) *golden {
	t.Helper()
	f, err := os.Open(filepath.Join(goldenDir, name))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	g := &golden{t: t, name: name}
	sc := bufio.NewScanner(f)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		k, v, ok := strings.Cut(line, ": ")
		if !ok {
			t.Fatalf("%s: bad line %q", name, line)
		}
		g.pairs = append(g.pairs, [2]string{k, v})
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return g
}

func (g *golden) str(key string) string {
	g.t.Helper()
	for _, p := range g.pairs {
		if p[0] == key {
			return p[1]
		}
	}
	g.t.Fatalf("%s: no %q", g.name, key)
	return ""
}

func (g *golden) hex(key string) []byte {
	g.t.Helper()
	b, err := hex.DecodeString(g.str(key))
	if err != nil {
		g.t.Fatalf("%s: %s: %v", g.name, key, err)
	}
	return b
}

func (g *golden) addr(key string) keyholder.Address {
	g.t.Helper()
	var a keyholder.Address
	if b := g.hex(key); len(b) != len(a) {
		g.t.Fatalf("%s: %s: %d bytes", g.name, key, len(b))
	} else {
		copy(a[:], b)
	}
	return a
}

func (g *golden) all(key string) []string {
	var vs []string
	for _, p := range g.pairs {
		if p[0] == key {
			vs = append(vs, p[1])
		}
	}
	return vs
}

// TestGoldenFiles checks the vectors as another implementation would: from
// the files alone, with the standard library's ed25519, SHA-256, HKDF and
// AES-GCM, and this package's parsers.
func TestGoldenFiles(t *testing.T) {
	keys := readGolden(t, "keys.txt")
	for _, k := range []string{"sender-router", "sender-engine", "receiver-router", "receiver-engine"} {
		pub := ed25519.NewKeyFromSeed(keys.hex(k + "-seed")).Public().(ed25519.PublicKey)
		if !bytes.Equal(pub, keys.hex(k)) {
			t.Errorf("%s: public key of the seed differs", k)
		}
		if a, err := keyholder.ParseAddress(keys.str(k + "-text")); err != nil || a != keys.addr(k) {
			t.Errorf("%s-text: %v", k, err)
		}
	}

	addrs := readGolden(t, "addresses.txt")
	for _, v := range addrs.all("valid") {
		h, text, _ := strings.Cut(v, " ")
		a, err := keyholder.ParseAddress(text)
		if err != nil || hex.EncodeToString(a[:]) != h || a.String() != text {
			t.Errorf("valid %s: %x %v", v, a, err)
		}
	}
	if n := len(addrs.all("refuse")); n < 5 {
		t.Fatalf("%d refused forms", n)
	}
	for _, v := range addrs.all("refuse") {
		text, _, _ := strings.Cut(v, " ")
		if _, err := keyholder.ParseAddress(text); err == nil {
			t.Errorf("refuse %s: parsed", v)
		}
	}

	pf := readGolden(t, "engine_proof.txt")
	router, engine := pf.addr("router"), pf.addr("engine")
	msg := pf.hex("message")
	want := append(append([]byte("enginekit keyholder engine proof v1\x00"), router[:]...), engine[:]...)
	if !bytes.Equal(msg, want) {
		t.Error("proof message is not label || router || engine")
	}
	if !ed25519.Verify(engine[:], msg, pf.hex("proof")) || !keyholder.VerifyEngineProof(router, engine, pf.hex("proof")) {
		t.Error("proof does not verify")
	}
	if engine != keys.addr("sender-engine") || router != keys.addr("sender-router") {
		t.Error("proof keys are not those of keys.txt")
	}

	hello := readGolden(t, "hello.txt")
	for key, want := range map[string]wire.Hello{
		"signatures-1mib":            {Version: 1, Auth: wire.AuthSignatures, MaxFrameSize: 1 << 20},
		"macs-4096":                  {Version: 1, Auth: wire.AuthMACs, MaxFrameSize: 4096},
		"signatures-1mib-credential": {Version: 1, Auth: wire.AuthSignatures, MaxFrameSize: 1 << 20, Credential: hello.hex("credential")},
	} {
		typ, body := readOne(t, hello.hex(key))
		h, err := wire.ParseHello(body)
		if typ != wire.FrameHello || err != nil || !equalHello(h, want) {
			t.Errorf("%s: %v %+v %v", key, typ, h, err)
		}
	}

	for _, name := range []string{"batch_signed.txt", "batch_mac.txt"} {
		g := readGolden(t, name)
		frame := g.hex("frame")
		mode, ts := wire.AuthSignatures, wire.SignatureSize
		if name == "batch_mac.txt" {
			mode, ts = wire.AuthMACs, wire.MACSize
		}
		typ, body := readOne(t, frame)
		b, err := wire.DecodeBatch(body, ts)
		if typ != wire.FrameBatch || err != nil {
			t.Fatalf("%s: %v %v", name, typ, err)
		}
		if b.Src != g.addr("src") || fmt.Sprint(b.Seq) != g.str("seq") || b.Count != 3 {
			t.Errorf("%s: src, seq or count differ", name)
		}
		if !bytes.Equal(b.Signed, g.hex("signed-body")) || !bytes.Equal(b.Tag, g.hex("tag")) {
			t.Errorf("%s: signed body or tag differ", name)
		}
		sr, rr := g.addr("sender-router"), g.addr("receiver-router")
		if sr != keys.addr("sender-router") || rr != keys.addr("receiver-router") || b.Src != keys.addr("sender-engine") {
			t.Errorf("%s: keys are not those of keys.txt", name)
		}
		if mode == wire.AuthSignatures {
			d := sha256.Sum256(b.Signed)
			auth := append([]byte("enginekit/wire batch v1\x00"), byte(mode))
			auth = append(append(append(auth, sr[:]...), rr[:]...), d[:]...)
			if !bytes.Equal(d[:], g.hex("digest")) || !bytes.Equal(auth, g.hex("auth-message")) {
				t.Errorf("%s: digest or auth message differ", name)
			}
			if !ed25519.Verify(b.Src[:], auth, b.Tag) {
				t.Errorf("%s: signature does not verify", name)
			}
		} else {
			prk, info, key := macKey(t, g.hex("channel-secret"), sr, rr, b.Src)
			if !bytes.Equal(prk, g.hex("prk")) || !bytes.Equal(info, g.hex("hkdf-info")) || !bytes.Equal(key, g.hex("src-mac-key")) {
				t.Errorf("%s: MAC key derivation differs", name)
			}
			nonce := gmacNonce(b.Seq)
			if !bytes.Equal(nonce, g.hex("nonce")) {
				t.Errorf("%s: nonce differs", name)
			}
			block, err := aes.NewCipher(key)
			if err != nil {
				t.Fatal(err)
			}
			gcm, err := cipher.NewGCM(block)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(gcm.Seal(nil, nonce, nil, b.Signed), b.Tag) {
				t.Errorf("%s: GMAC differs", name)
			}
			// The key of the other direction does not make this tag.
			_, _, back := macKey(t, g.hex("channel-secret"), rr, sr, b.Src)
			block, _ = aes.NewCipher(back)
			gcm, _ = cipher.NewGCM(block)
			if _, err := gcm.Open(nil, nonce, b.Tag, b.Signed); err == nil {
				t.Errorf("%s: the tag verifies in the other direction", name)
			}
		}
		var env wire.Envelope
		it := b.Envelopes()
		kinds := ""
		for it.Next(&env) {
			kinds += env.Kind.String() + " "
		}
		if kinds != "cast call info " {
			t.Errorf("%s: kinds %q", name, kinds)
		}
	}

	payloads := readGolden(t, "payloads.txt")
	reg, err := payload.NewRegistry(payload.Limits{})
	if err != nil {
		t.Fatal(err)
	}
	_ = payload.Register[goldenInc](reg, "counter.Inc")
	_ = payload.Register[goldenPoint](reg, "geo.Point")
	for _, p := range payloads.pairs {
		b := payloads.hex(p[0])
		v, err := reg.Unmarshal(b)
		if err != nil {
			t.Errorf("%s: %v", p[0], err)
			continue
		}
		if again, err := reg.Marshal(v); err != nil || !bytes.Equal(again, b) {
			t.Errorf("%s: re-encodes to %x", p[0], again)
		}
	}

	frames := readGolden(t, "frames.txt")
	for _, p := range frames.pairs {
		typ, body := readOne(t, frames.hex(p[0]))
		switch {
		case strings.HasPrefix(p[0], "ping"), strings.HasPrefix(p[0], "pong"):
			if v, err := wire.ParsePing(body); err != nil || v != 0x0102030405060708 {
				t.Errorf("%s: %v %x %v", p[0], typ, v, err)
			}
		default:
			if _, err := wire.ParseGoAway(body); typ != wire.FrameGoAway || err != nil {
				t.Errorf("%s: %v %v", p[0], typ, err)
			}
		}
	}
}
