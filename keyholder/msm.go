package keyholder

import (
	"filippo.io/edwards25519"
)

// msm computes multi-scalar multiplications Σ sᵢPᵢ in variable time (the
// inputs are public: signatures, keys, and the batch's random weights,
// which are used once), for batch verification. Below pippengerFrom
// points it uses edwards25519's VarTimeMultiScalarMult (Straus); from there
// on Pippenger's bucket method, whose additions per point fall with the
// number of points: about 255/c per full-size scalar plus 2^c per window of
// c bits, with c chosen for the number of points (c = 8 at 2,000 points,
// where Straus takes about 255/6 + 8 per point). Its scratch space is
// kept for the next call.
type msm struct {
	digits  []int16 // window-major: digits[w*n+i] is scalar i's digit in window w
	buckets []edwards25519.Point
	filled  []bool
}

// pippengerFrom is the number of points from which Pippenger's method
// beats Straus's (measured with BenchmarkMSM).
const pippengerFrom = 192

// scalarBits bounds the scalars' size: canonical scalars are < L < 2²⁵³.
const scalarBits = 253

// windowBits chooses the window width c for n points: the c that
// minimizes the additions n·⌈254/c⌉ (at most; digits that are zero cost
// nothing) plus ⌈254/c⌉·2^c (summing the 2^(c−1) buckets of each window).
func windowBits(n int) int {
	best, bestCost := 4, -1
	for c := 4; c <= 16; c++ {
		w := (scalarBits + 1 + c - 1) / c
		cost := w * (n + 1<<c)
		if bestCost < 0 || cost < bestCost {
			best, bestCost = c, cost
		}
	}
	return best
}

// multiScalarMult sets v = Σ scalars[i]·points[i] and returns v.
func (m *msm) multiScalarMult(v *edwards25519.Point, scalars []*edwards25519.Scalar, points []*edwards25519.Point) *edwards25519.Point {
	if len(scalars) != len(points) {
		panic("keyholder: multiScalarMult: lengths differ")
	}
	if len(points) < pippengerFrom {
		return v.VarTimeMultiScalarMult(scalars, points)
	}
	return m.pippenger(v, scalars, points, windowBits(len(points)))
}

// pippenger is the bucket method with signed digits of c bits: each scalar
// is written Σ dⱼ2^(cj) with −2^(c−1) < dⱼ ≤ 2^(c−1); for each window j
// from the top, the points go into the bucket of |dⱼ| (negated when dⱼ is
// negative), the window's sum Σ k·bucketₖ is taken with two running sums,
// and the total is doubled c times and added to.
func (m *msm) pippenger(v *edwards25519.Point, scalars []*edwards25519.Scalar, points []*edwards25519.Point, c int) *edwards25519.Point {
	n := len(points)
	windows := (scalarBits + 1 + c - 1) / c // Wc ≥ 254: the top digit takes the last carry
	if need := windows * n; cap(m.digits) < need {
		m.digits = make([]int16, need)
	}
	digits := m.digits[:windows*n]
	half := 1 << (c - 1)
	for i, s := range scalars {
		b := s.Bytes()
		carry := 0
		for w := range windows {
			d := bitsAt(b, w*c, c) + carry
			carry = 0
			if d > half {
				d -= 1 << c
				carry = 1
			}
			digits[w*n+i] = int16(d)
		}
		if carry != 0 {
			panic("keyholder: multiScalarMult: scalar not canonical")
		}
	}
	if cap(m.buckets) < half {
		m.buckets = make([]edwards25519.Point, half)
		m.filled = make([]bool, half)
	}
	buckets, filled := m.buckets[:half], m.filled[:half]
	v.Set(identity)
	for w := windows - 1; w >= 0; w-- {
		if w != windows-1 {
			for range c {
				v.Add(v, v)
			}
		}
		clear(filled)
		for i, d := range digits[w*n : (w+1)*n] {
			switch {
			case d > 0:
				k := d - 1
				if filled[k] {
					buckets[k].Add(&buckets[k], points[i])
				} else {
					buckets[k].Set(points[i])
					filled[k] = true
				}
			case d < 0:
				k := -d - 1
				if filled[k] {
					buckets[k].Subtract(&buckets[k], points[i])
				} else {
					buckets[k].Negate(points[i])
					filled[k] = true
				}
			}
		}
		// Σ k·bucketₖ = Σₖ (bucketₖ + bucketₖ₊₁ + … ): a running sum of
		// the buckets from the top, added up.
		var run, sum edwards25519.Point
		started, summed := false, false
		for k := half - 1; k >= 0; k-- {
			if filled[k] {
				if started {
					run.Add(&run, &buckets[k])
				} else {
					run.Set(&buckets[k])
					started = true
				}
			}
			if started {
				if summed {
					sum.Add(&sum, &run)
				} else {
					sum.Set(&run)
					summed = true
				}
			}
		}
		if summed {
			v.Add(v, &sum)
		}
	}
	return v
}

// bitsAt returns the c ≤ 16 bits of the little-endian b from bit pos on.
func bitsAt(b []byte, pos, c int) int {
	i := pos >> 3
	var x uint32
	for k := 0; k < 3 && i+k < len(b); k++ {
		x |= uint32(b[i+k]) << (8 * k)
	}
	return int(x>>(pos&7)) & (1<<c - 1)
}
