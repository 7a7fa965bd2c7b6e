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
