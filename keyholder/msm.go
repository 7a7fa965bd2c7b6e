package keyholder

import (
	"filippo.io/edwards25519"
	"filippo.io/edwards25519/field"
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
	digits     []int16 // window-major: digits[w*n+i] is scalar i's digit in window w
	affine     []affinePoint
	projective []int // the points whose Z is not 1
	buckets    []extPoint
	filled     []bool
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
//
// The points are first made affine and precomputed as (y+x, y−x, 2dxy),
// so that adding one to a bucket takes 7 field multiplications instead of
// the 9 of Point.Add (points from Point.SetBytes are affine already).
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
	if cap(m.affine) < n {
		m.affine = make([]affinePoint, n)
	}
	affine := m.affine[:n]
	m.makeAffine(affine, points)
	if cap(m.buckets) < half {
		m.buckets = make([]extPoint, half)
		m.filled = make([]bool, half)
	}
	buckets, filled := m.buckets[:half], m.filled[:half]
	v.Set(identity)
	var sumPoint edwards25519.Point
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
					buckets[k].addAffine(&affine[i], false)
				} else {
					buckets[k].setAffine(&affine[i], false)
					filled[k] = true
				}
			case d < 0:
				k := -d - 1
				if filled[k] {
					buckets[k].addAffine(&affine[i], true)
				} else {
					buckets[k].setAffine(&affine[i], true)
					filled[k] = true
				}
			}
		}
		// Σ k·bucketₖ = Σₖ (bucketₖ + bucketₖ₊₁ + … ): a running sum of
		// the buckets from the top, added up.
		var run, sum extPoint
		started, summed := false, false
		for k := half - 1; k >= 0; k-- {
			if filled[k] {
				if started {
					run.add(&buckets[k])
				} else {
					run = buckets[k]
					started = true
				}
			}
			if started {
				if summed {
					sum.add(&run)
				} else {
					sum = run
					summed = true
				}
			}
		}
		if summed {
			if _, err := sumPoint.SetExtendedCoordinates(&sum.X, &sum.Y, &sum.Z, &sum.T); err != nil {
				panic("keyholder: multiScalarMult: " + err.Error()) // sums of points are points
			}
			v.Add(v, &sumPoint)
		}
	}
	return v
}

// affinePoint is a point with Z = 1: x, y, t = xy, and its precomputed
// form y+x, y−x, 2d·t for additions.
type affinePoint struct {
	x, y, t, ypx, ymx, t2d field.Element
}

// extPoint is a point in extended coordinates (X:Y:Z:T), x = X/Z,
// y = Y/Z, xy = T/Z.
type extPoint struct {
	X, Y, Z, T field.Element
}

// d2 is 2d, d = −121665/121666 the curve's constant.
var d2 = func() *field.Element {
	var num, den field.Element
	if _, err := num.SetBytes(littleEndian32(121665)); err != nil {
		panic(err)
	}
	if _, err := den.SetBytes(littleEndian32(121666)); err != nil {
		panic(err)
	}
	den.Invert(&den)
	num.Multiply(&num, &den)
	num.Negate(&num)
	return num.Add(&num, &num)
}()

func littleEndian32(x uint32) []byte {
	b := make([]byte, 32)
	b[0], b[1], b[2], b[3] = byte(x), byte(x>>8), byte(x>>16), byte(x>>24)
	return b
}

var fieldOne = new(field.Element).One()

// makeAffine sets affine[i] to points[i]'s affine form. Points whose Z is
// not 1 (none, from Point.SetBytes) are divided by it with one inversion
// for all (Montgomery's trick).
func (m *msm) makeAffine(affine []affinePoint, points []*edwards25519.Point) {
	// First pass: x = X, y = Y; t holds the running product of the Zs ≠ 1
	// up to and including this point's (1 when its Z is 1).
	var acc field.Element
	acc.One()
	m.projective = m.projective[:0]
	for i, p := range points {
		X, Y, Z, _ := p.ExtendedCoordinates()
		a := &affine[i]
		a.x.Set(X)
		a.y.Set(Y)
		if Z.Equal(fieldOne) != 1 {
			a.ymx.Set(&acc) // the product before this Z
			acc.Multiply(&acc, Z)
			a.t2d.Set(Z)
			m.projective = append(m.projective, i)
		}
	}
	if len(m.projective) > 0 {
		var inv, zinv field.Element
		inv.Invert(&acc) // 1 / Π Z
		for k := len(m.projective) - 1; k >= 0; k-- {
			a := &affine[m.projective[k]]
			zinv.Multiply(&inv, &a.ymx) // 1/Z of this point
			inv.Multiply(&inv, &a.t2d)  // 1 / Π of the Zs before it
			a.x.Multiply(&a.x, &zinv)
			a.y.Multiply(&a.y, &zinv)
		}
	}
	for i := range affine {
		a := &affine[i]
		a.t.Multiply(&a.x, &a.y)
		a.ypx.Add(&a.y, &a.x)
		a.ymx.Subtract(&a.y, &a.x)
		a.t2d.Multiply(&a.t, d2)
	}
}

// setAffine sets e = a, or −a with neg.
func (e *extPoint) setAffine(a *affinePoint, neg bool) {
	e.X.Set(&a.x)
	e.Y.Set(&a.y)
	e.Z.One()
	e.T.Set(&a.t)
	if neg {
		e.X.Negate(&e.X)
		e.T.Negate(&e.T)
	}
}

// addAffine sets e = e + a, or e − a with neg (Hisil, Wong, Carter,
// Dawson, "Twisted Edwards curves revisited", §3.1, with a = −1 and
// Z₂ = 1: 7 multiplications).
func (e *extPoint) addAffine(a *affinePoint, neg bool) {
	ypx, ymx := &a.ypx, &a.ymx
	if neg { // −(x, y) = (−x, y)
		ypx, ymx = ymx, ypx
	}
	var A, B, C, D, E, F, G, H field.Element
	A.Subtract(&e.Y, &e.X)
	A.Multiply(&A, ymx)
	B.Add(&e.Y, &e.X)
	B.Multiply(&B, ypx)
	C.Multiply(&e.T, &a.t2d)
	if neg {
		C.Negate(&C)
	}
	D.Add(&e.Z, &e.Z)
	E.Subtract(&B, &A)
	F.Subtract(&D, &C)
	G.Add(&D, &C)
	H.Add(&B, &A)
	e.X.Multiply(&E, &F)
	e.Y.Multiply(&G, &H)
	e.T.Multiply(&E, &H)
	e.Z.Multiply(&F, &G)
}

// add sets e = e + q (the same formulas, Z₂ any: 9 multiplications).
func (e *extPoint) add(q *extPoint) {
	var A, B, C, D, E, F, G, H, t field.Element
	A.Subtract(&e.Y, &e.X)
	t.Subtract(&q.Y, &q.X)
	A.Multiply(&A, &t)
	B.Add(&e.Y, &e.X)
	t.Add(&q.Y, &q.X)
	B.Multiply(&B, &t)
	C.Multiply(&e.T, &q.T)
	C.Multiply(&C, d2)
	D.Multiply(&e.Z, &q.Z)
	D.Add(&D, &D)
	E.Subtract(&B, &A)
	F.Subtract(&D, &C)
	G.Add(&D, &C)
	H.Add(&B, &A)
	e.X.Multiply(&E, &F)
	e.Y.Multiply(&G, &H)
	e.T.Multiply(&E, &H)
	e.Z.Multiply(&F, &G)
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
