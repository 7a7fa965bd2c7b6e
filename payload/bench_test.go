package payload_test

import (
	"testing"

	"github.com/enginekit/enginekit/payload"
)

func BenchmarkMarshal(b *testing.B) {
	r := newRegistry(b, payload.Limits{})
	_ = payload.Register[Inc](r, "inc")
	v := Inc{By: 5, Note: "hello"}
	var buf []byte
	b.ReportAllocs()
	for b.Loop() {
		buf, _ = r.AppendMarshal(buf[:0], v)
	}
}

func BenchmarkUnmarshal(b *testing.B) {
	r := newRegistry(b, payload.Limits{})
	_ = payload.Register[Inc](r, "inc")
	p, _ := r.Marshal(Inc{By: 5, Note: "hello"})
	b.ReportAllocs()
	for b.Loop() {
		if _, err := r.Unmarshal(p); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkUnmarshalBytes decodes a 128-byte []byte, the payload of the
// cross-node call benchmarks.
func BenchmarkUnmarshalBytes(b *testing.B) {
	r := newRegistry(b, payload.Limits{})
	p, _ := r.Marshal(make([]byte, 128))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := r.Unmarshal(p); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkMarshalBytes encodes a 128-byte []byte, the payload of the
// cross-node cast benchmark.
func BenchmarkMarshalBytes(b *testing.B) {
	r := newRegistry(b, payload.Limits{})
	v := any(make([]byte, 128))
	var buf []byte
	b.ReportAllocs()
	for b.Loop() {
		buf, _ = r.AppendMarshal(buf[:0], v)
	}
}
