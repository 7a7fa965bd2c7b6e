package wire_test

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"testing"

	"github.com/enginekit/enginekit/wire"
)

// The seed corpora below run as ordinary tests with go test; go test -fuzz
// explores from them.

func FuzzReadFrame(f *testing.F) {
	f.Add(wire.AppendHello(nil, wire.Hello{Version: 1, Auth: wire.AuthMACs, MaxFrameSize: 1 << 20}))
	f.Add(wire.AppendHello(nil, wire.Hello{Version: 1, Auth: wire.AuthSignatures, MaxFrameSize: 1 << 20, Credential: []byte("credential")}))
	f.Add(wire.AppendPing(wire.AppendPong(nil, 1), 2))
	f.Add(wire.AppendGoAway(nil, wire.GoAway{Code: wire.GoAwayNormal, Reason: "bye"}))
	f.Add(wire.AppendBatch(nil, addr(1), 1, sampleEnvelopes(), wire.SignatureSize))
	f.Add([]byte{0, 0, 0, 0})
	f.Add([]byte{0xff, 0xff, 0xff, 0xff, 2})
	f.Add([]byte{0, 0, 0, 3, 9, 1, 2})
	f.Add(binary.BigEndian.AppendUint32(nil, wire.MinFrameSize))
	f.Add(wire.AppendBatch(nil, addr(1), 1, []wire.Envelope{{Kind: wire.Cast, Payload: make([]byte, 100)}}, wire.MACSize))
	f.Fuzz(func(t *testing.T, in []byte) {
		fr := wire.NewFrameReader(bytes.NewReader(in), wire.MinFrameSize)
		// The same stream read with detaching gives the same frames.
		dr := wire.NewFrameReader(bytes.NewReader(in), wire.MinFrameSize)
		dr.SetDetach(64)
		consumed := 0
		for {
			typ, body, err := fr.ReadFrame()
			dtyp, dbody, derr := dr.ReadFrame()
			if typ != dtyp || !bytes.Equal(body, dbody) || (err == nil) != (derr == nil) {
				t.Fatalf("with detaching: %v %d bytes %v, without: %v %d bytes %v", dtyp, len(dbody), derr, typ, len(body), err)
			}
			if err != nil {
				if errors.Is(err, wire.ErrUnknownFrame) {
					continue
				}
				if err == io.EOF && fr.Buffered() != 0 {
					t.Fatal("EOF with bytes left")
				}
				return
			}
			consumed += wire.FrameHeaderSize + len(body)
			if consumed > len(in) || len(body)+1 > wire.MinFrameSize || !typ.Valid() {
				t.Fatalf("frame %v of %d bytes out of %d", typ, len(body), len(in))
			}
			// Every parser of a frame body must cope with anything.
			switch typ {
			case wire.FrameHello:
				_, _ = wire.ParseHello(body)
			case wire.FramePing, wire.FramePong:
				_, _ = wire.ParsePing(body)
			case wire.FrameGoAway:
				_, _ = wire.ParseGoAway(body)
			case wire.FrameBatch:
				decodeAll(t, body, wire.MACSize)
			}
		}
	})
}

// FuzzParseHello: any body parses or fails with ErrBadHello; what parses
// re-encodes to a hello that parses the same.
func FuzzParseHello(f *testing.F) {
	plain := wire.AppendHello(nil, wire.Hello{Version: 1, Auth: wire.AuthMACs, MaxFrameSize: 1 << 20})[wire.FrameHeaderSize:]
	cred := wire.AppendHello(nil, wire.Hello{Version: 1, Auth: wire.AuthSignatures, MaxFrameSize: 4096, Credential: []byte("cert")})[wire.FrameHeaderSize:]
	f.Add(plain)
	f.Add(cred)
	f.Add(append(append([]byte(nil), cred...), 0, 9, 0, 2, 'x', 'y'))
	f.Add(append(append([]byte(nil), cred...), 0, 1, 0, 1, 'z'))
	f.Add(append(append([]byte(nil), cred[:wire.HelloSize]...), 0, 1, 0xff, 0xff))
	f.Add(append(append([]byte(nil), plain...), "ignored"...))
	f.Fuzz(func(t *testing.T, body []byte) {
		h, err := wire.ParseHello(body)
		if err != nil {
			if !errors.Is(err, wire.ErrBadHello) {
				t.Fatalf("unexpected error class: %v", err)
			}
			return
		}
		if len(h.Credential) > wire.MaxCredentialSize {
			t.Fatalf("credential of %d bytes", len(h.Credential))
		}
		again, err := wire.ParseHello(wire.AppendHello(nil, h)[wire.FrameHeaderSize:])
		if err != nil || again.Version != h.Version || again.Auth != h.Auth || again.MaxFrameSize != h.MaxFrameSize || !bytes.Equal(again.Credential, h.Credential) {
			t.Fatalf("round trip: %+v -> %+v, %v", h, again, err)
		}
	})
}

func FuzzDecodeEnvelope(f *testing.F) {
	for _, tag := range []int{wire.SignatureSize, wire.MACSize} {
		f.Add(wire.AppendBatch(nil, addr(1), 1, sampleEnvelopes(), tag)[wire.FrameHeaderSize:], tag)
		f.Add(wire.AppendBatch(nil, addr(2), 1<<63, []wire.Envelope{{Kind: 99}}, tag)[wire.FrameHeaderSize:], tag)
	}
	f.Add(make([]byte, 200), 32)
	f.Add([]byte{}, 64)
	f.Fuzz(func(t *testing.T, body []byte, tag int) {
		if tag != wire.SignatureSize {
			tag = wire.MACSize
		}
		decodeAll(t, body, tag)
	})
}

// decodeAll decodes a batch body and checks what it got against the layout.
func decodeAll(t *testing.T, body []byte, tag int) {
	b, err := wire.DecodeBatch(body, tag)
	if err != nil {
		if !errors.Is(err, wire.ErrMalformedFrame) {
			t.Fatalf("unexpected error class: %v", err)
		}
		return
	}
	it := b.Envelopes()
	var e wire.Envelope
	n, size := 0, wire.BatchHeaderSize+tag
	envs := []wire.Envelope{}
	for it.Next(&e) {
		if e.Src != b.Src || e.Seq != b.Seq+uint64(n) {
			t.Fatalf("envelope %d: src/seq %v/%d", n, e.Src, e.Seq)
		}
		_ = e.Kind.String()
		size += wire.RecordSize(len(e.Payload))
		envs = append(envs, *e.Clone())
		n++
	}
	if n != b.Count || size != len(body) {
		t.Fatalf("%d envelopes of %d bytes, batch says %d in %d", n, size, b.Count, len(body))
	}
	// Re-encoding gives the same bytes: the layout has one encoding.
	again := wire.AppendBatch(nil, b.Src, b.Seq, envs, tag)
	copy(wire.BatchTag(again, tag), b.Tag)
	if !bytes.Equal(again[wire.FrameHeaderSize:], body) {
		t.Fatal("re-encoding differs")
	}
}
