package wire_test

import (
	"bytes"
	"testing"

	"github.com/enginekit/enginekit/wire"
)

// BenchmarkEncodeBatch measures encoding 128-byte casts into batches of 64,
// per envelope, without authentication (see netconn for that).
func BenchmarkEncodeBatch(b *testing.B) {
	env := wire.Envelope{Kind: wire.Cast, Dst: addr(2), Payload: make([]byte, 128)}
	src := addr(1)
	buf := make([]byte, 0, 64<<10)
	b.ReportAllocs()
	b.SetBytes(int64(wire.RecordSize(128)))
	for i := 0; b.Loop(); i++ {
		if i%64 == 0 {
			buf = wire.AppendBatchStart(buf[:0], &src)
		}
		buf = wire.AppendRecord(buf, &env)
		if i%64 == 63 {
			buf = wire.FinishBatch(buf, 0, 64, wire.MACSize)
		}
	}
}

func BenchmarkDecodeBatch(b *testing.B) {
	envs := make([]wire.Envelope, 64)
	for i := range envs {
		envs[i] = wire.Envelope{Kind: wire.Cast, Dst: addr(2), Payload: make([]byte, 128)}
	}
	body := wire.AppendBatch(nil, addr(1), 1, envs, wire.MACSize)[wire.FrameHeaderSize:]
	b.ReportAllocs()
	b.SetBytes(int64(len(body)))
	var e wire.Envelope
	for b.Loop() {
		batch, err := wire.DecodeBatch(body, wire.MACSize)
		if err != nil {
			b.Fatal(err)
		}
		it := batch.Envelopes()
		for it.Next(&e) {
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*64), "ns/envelope")
}

func BenchmarkReadFrame(b *testing.B) {
	frame := wire.AppendFrame(nil, wire.FrameBatch, make([]byte, 4000))
	stream := bytes.Repeat(frame, 256)
	r := bytes.NewReader(stream)
	fr := wire.NewFrameReader(r, 0)
	b.ReportAllocs()
	b.SetBytes(int64(len(frame)))
	for b.Loop() {
		if _, _, err := fr.ReadFrame(); err != nil {
			r.Reset(stream)
			fr = wire.NewFrameReader(r, 0)
		}
	}
}
