package keyholder

import (
	"fmt"
	mrand "math/rand/v2"
	"testing"

	"filippo.io/edwards25519"
)

// randomMSM makes n random points and scalars: full-size, 128-bit (as the
// batch's weights), tiny, zero, L−1, and points repeated or of small order.
func randomMSM(t testing.TB, rng *mrand.Rand, n int) ([]*edwards25519.Scalar, []*edwards25519.Point) {
	small := smallOrderPoints(t)
	scs := make([]*edwards25519.Scalar, n)
	pts := make([]*edwards25519.Point, n)
	for i := range n {
		var b [64]byte
		for j := range b {
			b[j] = byte(rng.Uint32())
		}
		s, _ := edwards25519.NewScalar().SetUniformBytes(b[:])
		var c [32]byte
		switch rng.IntN(6) {
		case 0: // 128-bit
			copy(c[:16], b[:16])
			s.SetCanonicalBytes(c[:])
		case 1: // tiny
			c[0] = byte(rng.IntN(40))
			s.SetCanonicalBytes(c[:])
		case 2: // zero, or L−1
			if rng.IntN(2) == 0 {
				s = edwards25519.NewScalar()
			} else {
				s.Subtract(edwards25519.NewScalar(), scalarOne())
			}
		}
		scs[i] = s
		switch {
		case i > 0 && rng.IntN(8) == 0:
			pts[i] = pts[rng.IntN(i)] // repeated
		case rng.IntN(16) == 0:
			pts[i] = small[rng.IntN(len(small))]
		default:
			pts[i] = new(edwards25519.Point).ScalarBaseMult(randScalar(t))
		}
	}
	return scs, pts
}

func scalarOne() *edwards25519.Scalar {
	var c [32]byte
	c[0] = 1
	s, _ := edwards25519.NewScalar().SetCanonicalBytes(c[:])
	return s
}

// Pippenger's method agrees with edwards25519's VarTimeMultiScalarMult on
// random inputs, at every window width and at sizes around the switch.
func TestMultiScalarMult(t *testing.T) {
	rng := mrand.New(mrand.NewPCG(5, 6))
	var m msm
	for _, n := range []int{1, 2, 3, 17, pippengerFrom - 1, pippengerFrom, 300, 1000} {
		scs, pts := randomMSM(t, rng, n)
		want := new(edwards25519.Point).VarTimeMultiScalarMult(scs, pts)
		var got edwards25519.Point
		if m.multiScalarMult(&got, scs, pts).Equal(want) != 1 {
			t.Fatalf("n=%d: differs from Straus", n)
		}
		for c := 4; c <= 16; c += 3 {
			if n > 300 && c > 10 {
				break
			}
			if m.pippenger(&got, scs, pts, c).Equal(want) != 1 {
				t.Fatalf("n=%d, c=%d: differs from Straus", n, c)
			}
		}
	}
}

func TestWindowBits(t *testing.T) {
	prev := 0
	for _, n := range []int{1, 100, 1000, 10_000, 100_000, 1 << 22} {
		c := windowBits(n)
		if c < 4 || c > 16 || c < prev {
			t.Fatalf("windowBits(%d) = %d (after %d)", n, c, prev)
		}
		prev = c
	}
}

// BenchmarkMSM compares Straus's and Pippenger's methods by number of
// points (half the scalars 128-bit, as in a batch), to place
// pippengerFrom.
func BenchmarkMSM(b *testing.B) {
	rng := mrand.New(mrand.NewPCG(7, 8))
	for _, n := range []int{129, 193, 257, 513, 2049} {
		scs, pts := randomMSM(b, rng, n)
		var p edwards25519.Point
		var m msm
		b.Run(fmt.Sprintf("straus/%d", n), func(b *testing.B) {
			for b.Loop() {
				p.VarTimeMultiScalarMult(scs, pts)
			}
		})
		b.Run(fmt.Sprintf("pippenger/%d", n), func(b *testing.B) {
			for b.Loop() {
				m.pippenger(&p, scs, pts, windowBits(n))
			}
		})
	}
}
