package wire_test

import (
	"bytes"
	"errors"
	"strings"
	"testing"

	"github.com/enginekit/enginekit/wire"
)

func readOne(t *testing.T, frame []byte) (wire.FrameType, []byte) {
	t.Helper()
	typ, body, err := wire.NewFrameReader(bytes.NewReader(frame), 0).ReadFrame()
	if err != nil {
		t.Fatal(err)
	}
	return typ, body
}

func TestHello(t *testing.T) {
	h := wire.Hello{Version: wire.Version, Auth: wire.AuthMACs, MaxFrameSize: 1 << 20}
	frame := wire.AppendHello(nil, h)
	typ, body := readOne(t, frame)
	if typ != wire.FrameHello || len(body) != wire.HelloSize {
		t.Fatalf("%v %d", typ, len(body))
	}
	got, err := wire.ParseHello(append(body, "future extension"...))
	if err != nil || !equalHello(got, h) {
		t.Fatalf("%+v %v", got, err)
	}
	bad := func(mut func(b []byte) []byte) error {
		b := mut(append([]byte(nil), body...))
		_, err := wire.ParseHello(b)
		return err
	}
	for name, mut := range map[string]func([]byte) []byte{
		"short":      func(b []byte) []byte { return b[:11] },
		"magic":      func(b []byte) []byte { b[0] = 'X'; return b },
		"auth":       func(b []byte) []byte { b[5] = 9; return b },
		"small max":  func(b []byte) []byte { b[8], b[9], b[10], b[11] = 0, 0, 1, 0; return b },
		"huge max":   func(b []byte) []byte { b[8] = 0xff; return b },
		"zero magic": func(b []byte) []byte { copy(b, "\x00\x00\x00\x00"); return b },
	} {
		if err := bad(mut); !errors.Is(err, wire.ErrBadHello) {
			t.Errorf("%s: %v", name, err)
		}
	}
	// Another version parses, so the caller can report the mismatch.
	if h2, err := wire.ParseHello(wire.AppendHello(nil, wire.Hello{Version: 7, Auth: 99, MaxFrameSize: 1 << 20})[5:]); err != nil || h2.Version != 7 {
		t.Fatalf("%+v %v", h2, err)
	}
}

func equalHello(a, b wire.Hello) bool {
	return a.Version == b.Version && a.Auth == b.Auth && a.MaxFrameSize == b.MaxFrameSize && bytes.Equal(a.Credential, b.Credential)
}

// A credential travels in an extension, which a receiver of version 1
// without extensions ignores (it is past the 12th byte, and the flag is
// ignored), and a receiver with them parses strictly.
func TestHelloCredential(t *testing.T) {
	cred := []byte("a cluster certificate")
	h := wire.Hello{Version: wire.Version, Auth: wire.AuthSignatures, MaxFrameSize: 1 << 20, Credential: cred}
	typ, body := readOne(t, wire.AppendHello(nil, h))
	if typ != wire.FrameHello || len(body) != wire.HelloSize+4+len(cred) {
		t.Fatalf("%v %d", typ, len(body))
	}
	got, err := wire.ParseHello(body)
	if err != nil || !equalHello(got, h) {
		t.Fatalf("%+v %v", got, err)
	}
	body[wire.HelloSize+4] = 'A' // the credential was copied out
	if got.Credential[0] != 'a' {
		t.Fatal("credential aliases the frame")
	}
	// An old receiver's view: the first 12 bytes alone are a valid hello.
	old, err := wire.ParseHello(body[:wire.HelloSize])
	if err == nil {
		if old.Credential != nil || old.MaxFrameSize != h.MaxFrameSize {
			t.Fatalf("%+v", old)
		}
	} else {
		t.Fatal(err)
	}
	// Unknown extensions are skipped, before and after the credential.
	ext := func(typ uint16, val []byte) []byte {
		return append([]byte{byte(typ >> 8), byte(typ), byte(len(val) >> 8), byte(len(val))}, val...)
	}
	base := append([]byte(nil), body[:wire.HelloSize]...)
	withExt := func(exts ...[]byte) []byte {
		b := append([]byte(nil), base...)
		for _, e := range exts {
			b = append(b, e...)
		}
		return b
	}
	if got, err := wire.ParseHello(withExt(ext(77, []byte("x")), ext(1, cred), ext(9, nil))); err != nil || !bytes.Equal(got.Credential, cred) {
		t.Fatalf("%+v %v", got, err)
	}
	for name, b := range map[string][]byte{
		"two credentials":  withExt(ext(1, cred), ext(1, cred)),
		"empty credential": withExt(ext(1, nil)),
		"long credential":  withExt(ext(1, make([]byte, wire.MaxCredentialSize+1))),
		"truncated header": withExt([]byte{0, 1, 0}),
		"truncated value":  withExt(ext(1, cred)[:10]),
		"hello over limit": withExt(ext(5, make([]byte, 65535)))[:wire.MaxHelloSize+1],
		"trailing garbage": withExt(ext(1, cred), []byte{0xff}),
	} {
		if _, err := wire.ParseHello(b); !errors.Is(err, wire.ErrBadHello) {
			t.Errorf("%s: %v", name, err)
		}
	}
	if got, err := wire.ParseHello(withExt(ext(1, make([]byte, wire.MaxCredentialSize)))); err != nil || len(got.Credential) != wire.MaxCredentialSize {
		t.Fatalf("largest credential: %v", err)
	}
}

func TestPingGoAway(t *testing.T) {
	typ, body := readOne(t, wire.AppendPing(nil, 42))
	if v, err := wire.ParsePing(body); typ != wire.FramePing || v != 42 || err != nil {
		t.Fatal(typ, v, err)
	}
	typ, body = readOne(t, wire.AppendPong(nil, 43))
	if v, err := wire.ParsePing(body); typ != wire.FramePong || v != 43 || err != nil {
		t.Fatal(typ, v, err)
	}
	if _, err := wire.ParsePing(body[:7]); !errors.Is(err, wire.ErrMalformedFrame) {
		t.Fatal(err)
	}

	long := strings.Repeat("é", 200) // 400 bytes
	typ, body = readOne(t, wire.AppendGoAway(nil, wire.GoAway{Code: wire.GoAwayRefused, Reason: long}))
	g, err := wire.ParseGoAway(body)
	if typ != wire.FrameGoAway || err != nil || g.Code != wire.GoAwayRefused || len(g.Reason) != wire.MaxGoAwayReason || !strings.HasPrefix(long, g.Reason) {
		t.Fatalf("%v %+v %v", typ, g, err)
	}
	g, err = wire.ParseGoAway([]byte{0, 0, 0, 99, 0xff, 'a'})
	if err != nil || g.Code != 99 || g.Reason != "\uFFFDa" || !strings.Contains(g.Error(), "code 99") {
		t.Fatalf("%+v %v", g, err)
	}
	if _, err := wire.ParseGoAway([]byte{1}); !errors.Is(err, wire.ErrMalformedFrame) {
		t.Fatal(err)
	}
}
