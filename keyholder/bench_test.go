package keyholder

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/hmac"
	"crypto/sha256"
	"fmt"
	"hash"
	"testing"

	"golang.org/x/crypto/blake2b"
)

var benchSizes = []int{128, 256, 512, 2048, 65536}

func BenchmarkSign(b *testing.B) {
	k := newKH(b)
	e := mustEngine(b, k, "e")
	msg := make([]byte, 128)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := k.Sign(e, msg); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkVerify(b *testing.B) {
	k := newKH(b)
	e := mustEngine(b, k, "e")
	msg := make([]byte, 128)
	sig, _ := k.Sign(e, msg)
	b.ReportAllocs()
	for b.Loop() {
		if !Verify(e, msg, sig) {
			b.Fatal("bad signature")
		}
	}
}

func macPair(b *testing.B) (*MACSession, *MACSession, Address) {
	alice, bob := newKH(b), newKH(b)
	sa, sb := macPeers(b, alice, bob, newSecret())
	// A few engines, so the cache is a real map.
	for i := range 16 {
		mustEngine(b, alice, fmt.Sprint("other", i))
	}
	return sa, sb, mustEngine(b, alice, "e")
}

func BenchmarkMAC(b *testing.B) {
	for _, n := range benchSizes {
		b.Run(fmt.Sprint(n), func(b *testing.B) {
			sa, _, e := macPair(b)
			msg := make([]byte, n)
			dst := make([]byte, 0, MACSize)
			b.SetBytes(int64(n))
			b.ReportAllocs()
			var seq uint64
			for b.Loop() {
				seq++
				dst, _ = sa.MAC(e, seq, dst[:0], msg)
			}
		})
	}
}

func BenchmarkMACVerify(b *testing.B) {
	for _, n := range benchSizes {
		b.Run(fmt.Sprint(n), func(b *testing.B) {
			sa, sb, e := macPair(b)
			msg := make([]byte, n)
			tag, _ := sa.MAC(e, 1, nil, msg)
			b.SetBytes(int64(n))
			b.ReportAllocs()
			for b.Loop() {
				if !sb.Verify(e, 1, msg, tag) {
					b.Fatal("bad tag")
				}
			}
		})
	}
}

// BenchmarkMACParallel has all Ps MAC for the same engine on one session: the
// worst case for the session's locks. A connection has one writer.
func BenchmarkMACParallel(b *testing.B) {
	sa, _, e := macPair(b)
	msg := make([]byte, 128)
	b.SetBytes(128)
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		dst := make([]byte, 0, MACSize)
		var seq uint64 // repeats across goroutines: fine for a benchmark, never on a connection
		for pb.Next() {
			seq++
			dst, _ = sa.MAC(e, seq, dst[:0], msg)
		}
	})
}

// BenchmarkMACPrimitive compares candidate MACs on reused keyed states, as
// a MACSession uses them; see the MACSession doc for the choice. The hashes
// (HMAC-SHA256, BLAKE2b-256) are what a digest-then-MAC scheme costs; GMAC
// is AES-256-GCM sealing an empty plaintext with the message as additional
// data, what MACSession does.
func BenchmarkMACPrimitive(b *testing.B) {
	key := make([]byte, 32)
	prims := []struct {
		name string
		new  func() hash.Hash
	}{
		{"HMAC-SHA256", func() hash.Hash { return hmac.New(sha256.New, key) }},
		{"BLAKE2b-256", func() hash.Hash { h, _ := blake2b.New256(key); return h }},
	}
	for _, p := range prims {
		for _, n := range benchSizes {
			b.Run(fmt.Sprint(p.name, "/", n), func(b *testing.B) {
				h := p.new()
				msg := make([]byte, n)
				sum := make([]byte, 0, 32)
				b.SetBytes(int64(n))
				b.ReportAllocs()
				for b.Loop() {
					h.Reset()
					h.Write(msg)
					sum = h.Sum(sum[:0])
				}
			})
		}
	}
	for _, n := range benchSizes {
		b.Run(fmt.Sprint("GMAC/", n), func(b *testing.B) {
			block, _ := aes.NewCipher(key)
			gcm, _ := cipher.NewGCM(block)
			msg := make([]byte, n)
			nonce := make([]byte, gcm.NonceSize())
			tag := make([]byte, 0, gcm.Overhead())
			b.SetBytes(int64(n))
			b.ReportAllocs()
			for b.Loop() {
				tag = gcm.Seal(tag[:0], nonce, nil, msg)
			}
		})
	}
}
