package wire_test

import (
	"bytes"
	"encoding/binary"
	"errors"
	"github.com/enginekit/enginekit/payload"
	"io"
	"strings"
	"testing"
	"testing/iotest"

	"github.com/enginekit/enginekit/wire"
)

func TestFrameRoundTrip(t *testing.T) {
	var stream []byte
	bodies := [][]byte{{}, []byte("x"), bytes.Repeat([]byte("a"), 5000), bytes.Repeat([]byte("b"), 200_000)}
	for i, b := range bodies {
		stream = wire.AppendFrame(stream, wire.FrameType(1+i%5), b)
	}
	for name, r := range map[string]io.Reader{
		"whole":    bytes.NewReader(stream),
		"one-byte": iotest.OneByteReader(bytes.NewReader(stream)),
		"half":     iotest.HalfReader(bytes.NewReader(stream)),
	} {
		t.Run(name, func(t *testing.T) {
			fr := wire.NewFrameReader(r, 1<<20)
			for i, want := range bodies {
				typ, body, err := fr.ReadFrame()
				if err != nil {
					t.Fatalf("frame %d: %v", i, err)
				}
				if typ != wire.FrameType(1+i%5) || !bytes.Equal(body, want) {
					t.Fatalf("frame %d: got type %v, %d bytes", i, typ, len(body))
				}
			}
			if _, _, err := fr.ReadFrame(); err != io.EOF {
				t.Fatalf("at end: %v, want io.EOF", err)
			}
		})
	}
}

func TestFrameReaderErrors(t *testing.T) {
	hdr := func(n uint32, rest ...byte) []byte {
		return append(binary.BigEndian.AppendUint32(nil, n), rest...)
	}
	for _, tc := range []struct {
		name  string
		in    []byte
		want  error
		typ   wire.FrameType
		again bool // the stream stays usable
	}{
		{name: "zero length", in: hdr(0), want: wire.ErrMalformedFrame},
		{name: "over max", in: hdr(wire.MinFrameSize+1, 2), want: wire.ErrFrameTooLarge},
		{name: "huge", in: hdr(0xffffffff), want: wire.ErrFrameTooLarge},
		{name: "truncated header", in: []byte{0, 0}, want: io.ErrUnexpectedEOF},
		{name: "truncated body", in: hdr(10, 2, 1, 2), want: io.ErrUnexpectedEOF},
		{name: "unknown type", in: wire.AppendFrame(nil, 9, []byte("zz")), want: wire.ErrUnknownFrame, typ: 9, again: true},
		{name: "type zero", in: wire.AppendFrame(nil, 0, nil), want: wire.ErrUnknownFrame, again: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			in := append(tc.in, wire.AppendFrame(nil, wire.FramePing, make([]byte, 8))...)
			if !tc.again {
				in = tc.in
			}
			fr := wire.NewFrameReader(bytes.NewReader(in), wire.MinFrameSize)
			typ, _, err := fr.ReadFrame()
			if !errors.Is(err, tc.want) {
				t.Fatalf("got %v, want %v", err, tc.want)
			}
			if typ != tc.typ {
				t.Fatalf("type %v, want %v", typ, tc.typ)
			}
			if tc.again {
				if typ, _, err := fr.ReadFrame(); err != nil || typ != wire.FramePing {
					t.Fatalf("next frame: %v %v", typ, err)
				}
			}
		})
	}
}

func TestFrameReaderClampsAndChecksBeforeReading(t *testing.T) {
	// The length is refused before any body byte is read: the reader would
	// fail if asked for more.
	in := io.MultiReader(bytes.NewReader(binary.BigEndian.AppendUint32(nil, 1<<30)), iotest.ErrReader(errors.New("read past header")))
	fr := wire.NewFrameReader(in, 1<<40)
	if fr.MaxFrameSize() != wire.MaxFrameSizeLimit {
		t.Fatalf("max %d not clamped", fr.MaxFrameSize())
	}
	if _, _, err := fr.ReadFrame(); !errors.Is(err, wire.ErrFrameTooLarge) {
		t.Fatalf("got %v", err)
	}
}

func TestFrameReaderPropagatesReadErrors(t *testing.T) {
	boom := errors.New("boom")
	fr := wire.NewFrameReader(iotest.ErrReader(boom), 0)
	if _, _, err := fr.ReadFrame(); !errors.Is(err, boom) {
		t.Fatalf("got %v", err)
	}
	fr = wire.NewFrameReader(zeroReader{}, 0)
	if _, _, err := fr.ReadFrame(); !errors.Is(err, io.ErrNoProgress) {
		t.Fatalf("got %v", err)
	}
}

type zeroReader struct{}

func (zeroReader) Read([]byte) (int, error) { return 0, nil }

func TestFrameTypeNames(t *testing.T) {
	if wire.FrameBatch.String() != "batch" || !strings.Contains(wire.FrameType(77).String(), "77") {
		t.Fatal(wire.FrameBatch.String(), wire.FrameType(77).String())
	}
}

func TestDefaultMaxPayloadFitsOneMiB(t *testing.T) {
	// A 1 MiB value, plus the CBOR a Registry puts around it, crosses with
	// the default limits in either mode.
	for _, mode := range []wire.AuthMode{wire.AuthSignatures, wire.AuthMACs} {
		limit := wire.DefaultMaxFrameSize + 4 - wire.BatchOverhead(mode) - wire.RecordHeaderSize
		if wire.DefaultMaxPayload > limit || wire.DefaultMaxPayload < 1<<20+1024 {
			t.Errorf("%v: DefaultMaxPayload %d, frame limit %d", mode, wire.DefaultMaxPayload, limit)
		}
	}
	if got := payload.DefaultLimits().MaxSize; got != wire.DefaultMaxPayload {
		t.Errorf("DefaultLimits().MaxSize = %d, want %d", got, wire.DefaultMaxPayload)
	}
}

// TestFrameReaderDetach reads a stream with and without detaching: the
// frames are the same, exactly the batches of one envelope with a payload
// of at least the threshold come detached, and a detached body stays
// intact while later frames are read.
func TestFrameReaderDetach(t *testing.T) {
	const min = 1000
	env := func(n int) wire.Envelope {
		return wire.Envelope{Kind: wire.Cast, Dst: addr(2), Payload: bytes.Repeat([]byte{byte(n)}, n)}
	}
	type frame struct {
		raw    []byte
		detach bool
	}
	frames := []frame{
		{wire.AppendBatch(nil, addr(1), 1, []wire.Envelope{env(10)}, wire.MACSize), false},
		{wire.AppendBatch(nil, addr(1), 2, []wire.Envelope{env(min)}, wire.MACSize), true},
		{wire.AppendBatch(nil, addr(1), 3, []wire.Envelope{env(min - 1)}, wire.MACSize), false},
		{wire.AppendBatch(nil, addr(1), 4, []wire.Envelope{env(3000), env(3000)}, wire.MACSize), false},
		{wire.AppendFrame(nil, wire.FrameGoAway, bytes.Repeat([]byte{0}, 5000)), false},
		{wire.AppendBatch(nil, addr(1), 5, []wire.Envelope{env(200_000)}, wire.SignatureSize), true},
		{wire.AppendPing(nil, 7), false},
		{wire.AppendBatch(nil, addr(1), 6, []wire.Envelope{env(5000)}, wire.MACSize), true},
	}
	var stream []byte
	for _, f := range frames {
		stream = append(stream, f.raw...)
	}
	for name, r := range map[string]func() io.Reader{
		"whole":    func() io.Reader { return bytes.NewReader(stream) },
		"one-byte": func() io.Reader { return iotest.OneByteReader(bytes.NewReader(stream)) },
		"half":     func() io.Reader { return iotest.HalfReader(bytes.NewReader(stream)) },
	} {
		t.Run(name, func(t *testing.T) {
			fr := wire.NewFrameReader(r(), 1<<20)
			fr.SetDetach(min)
			var kept [][]byte
			for i, f := range frames {
				typ, body, err := fr.ReadFrame()
				if err != nil {
					t.Fatalf("frame %d: %v", i, err)
				}
				if byte(typ) != f.raw[4] || !bytes.Equal(body, f.raw[wire.FrameHeaderSize:]) {
					t.Fatalf("frame %d differs", i)
				}
				if fr.Detached() != f.detach {
					t.Fatalf("frame %d: detached %v", i, fr.Detached())
				}
				if fr.Detached() {
					kept = append(kept, body)
				}
			}
			if _, _, err := fr.ReadFrame(); err != io.EOF || fr.Detached() {
				t.Fatalf("at end: %v", err)
			}
			j := 0
			for _, f := range frames {
				if f.detach {
					if !bytes.Equal(kept[j], f.raw[wire.FrameHeaderSize:]) {
						t.Fatalf("detached body %d overwritten", j)
					}
					j++
				}
			}
		})
	}
	// A detached frame cut short.
	big := frames[5].raw
	fr := wire.NewFrameReader(bytes.NewReader(big[:len(big)-1]), 1<<20)
	fr.SetDetach(min)
	if _, _, err := fr.ReadFrame(); err != io.ErrUnexpectedEOF {
		t.Fatalf("truncated: %v", err)
	}
}
