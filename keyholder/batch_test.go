package keyholder

import (
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha512"
	"fmt"
	"math/big"
	mrand "math/rand/v2"
	"runtime"
	"sync"
	"testing"

	"filippo.io/edwards25519"
)

// rawKey is an Ed25519 key as a bare scalar, so tests can make keys and
// signatures that no keyholder would (small-order parts, unreduced s).
type rawKey struct {
	a *edwards25519.Scalar
	A *edwards25519.Point
}

func randScalar(t testing.TB) *edwards25519.Scalar {
	var b [64]byte
	rand.Read(b[:])
	s, err := edwards25519.NewScalar().SetUniformBytes(b[:])
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func newRawKey(t testing.TB) rawKey {
	a := randScalar(t)
	return rawKey{a: a, A: new(edwards25519.Point).ScalarBaseMult(a)}
}

// signRaw signs msg with secret a for the public encoding pub and nonce
// point R = [r]B + extraR, returning R's encoding and s = r + H(R‖pub‖msg)·a.
func signRaw(t testing.TB, a *edwards25519.Scalar, pub []byte, msg []byte, extraR *edwards25519.Point) []byte {
	r := randScalar(t)
	R := new(edwards25519.Point).ScalarBaseMult(r)
	if extraR != nil {
		R.Add(R, extraR)
	}
	h := sha512.New()
	h.Write(R.Bytes())
	h.Write(pub)
	h.Write(msg)
	k, _ := edwards25519.NewScalar().SetUniformBytes(h.Sum(nil))
	s := edwards25519.NewScalar().MultiplyAdd(k, a, r)
	return append(R.Bytes(), s.Bytes()...)
}

// smallOrderPoints are the eight points of order dividing 8.
func smallOrderPoints(t testing.TB) []*edwards25519.Point {
	// A point of order 8: its y (RFC 8032 / libsodium blocklist).
	enc := []byte{0x26, 0xe8, 0x95, 0x8f, 0xc2, 0xb2, 0x27, 0xb0, 0x45, 0xc3, 0xf4, 0x89, 0xf2, 0xef, 0x98, 0xf0, 0xd5, 0xdf, 0xac, 0x05, 0xd3, 0xc6, 0x33, 0x39, 0xb1, 0x38, 0x02, 0x88, 0x6d, 0x53, 0xfc, 0x05}
	g, err := new(edwards25519.Point).SetBytes(enc)
	if err != nil {
		t.Fatal(err)
	}
	pts := []*edwards25519.Point{edwards25519.NewIdentityPoint()}
	for i := 1; i < 8; i++ {
		pts = append(pts, new(edwards25519.Point).Add(pts[i-1], g))
	}
	if !smallOrder(g) || pts[4].Equal(identity) == 1 || new(edwards25519.Point).Add(pts[7], g).Equal(identity) != 1 {
		t.Fatal("not a point of order 8")
	}
	return pts
}

type proofCase struct {
	name   string
	engine Address
	proof  []byte
}

// checkBatch verifies cases in one batch, among good proofs on both sides
// (so a batch that holds would accept them), and compares each verdict
// with crypto/ed25519's.
func checkBatch(t *testing.T, router Address, good []proofCase, cases []proofCase) {
	t.Helper()
	var all []proofCase
	all = append(all, good[:len(good)/2]...)
	all = append(all, cases...)
	all = append(all, good[len(good)/2:]...)
	engines := make([]Address, len(all))
	proofs := make([][]byte, len(all))
	for i, c := range all {
		engines[i], proofs[i] = c.engine, c.proof
	}
	ok := make([]bool, len(all))
	VerifyEngineProofs(router, engines, proofs, ok)
	for i, c := range all {
		want := len(c.proof) == 64 && ed25519.Verify(c.engine[:], proofMessage(router, c.engine), c.proof)
		if ok[i] != want {
			t.Errorf("%s: batch says %v, crypto/ed25519 says %v", c.name, ok[i], want)
		}
	}
}

func goodProofs(t *testing.T, k *Keyholder, n int) []proofCase {
	var cs []proofCase
	for i := range n {
		e := mustEngine(t, k, fmt.Sprintf("g%d", i))
		p, err := k.EngineProof(e)
		if err != nil {
			t.Fatal(err)
		}
		cs = append(cs, proofCase{fmt.Sprintf("good %d", i), e, p})
	}
	return cs
}

func TestVerifyEngineProofsAllGood(t *testing.T) {
	k := newKH(t)
	all := goodProofs(t, k, 2*ProofBatchSize+7)
	for _, n := range []int{0, 1, 2, 3, pippengerFrom / 2, ProofBatchSize - 1, ProofBatchSize, ProofBatchSize + 1, 2*ProofBatchSize + 7} {
		good := all[:n]
		engines := make([]Address, n)
		proofs := make([][]byte, n)
		for i, c := range good {
			engines[i], proofs[i] = c.engine, c.proof
		}
		ok := make([]bool, n)
		VerifyEngineProofs(k.Router(), engines, proofs, ok)
		for i := range ok {
			if !ok[i] {
				t.Fatalf("n=%d: good proof %d refused", n, i)
			}
		}
		// The same proofs for another router are all refused.
		VerifyEngineProofs(Address{1}, engines, proofs, ok)
		for i := range ok {
			if ok[i] {
				t.Fatalf("n=%d: proof %d accepted for the wrong router", n, i)
			}
		}
	}
}

func TestVerifyEngineProofsLengths(t *testing.T) {
	defer func() {
		if recover() == nil {
			t.Fatal("no panic for slices of different lengths")
		}
	}()
	VerifyEngineProofs(Address{}, make([]Address, 2), make([][]byte, 2), make([]bool, 1))
}

// Crafted edge cases: each must get exactly crypto/ed25519's verdict, in a
// batch with good proofs around it.
func TestVerifyEngineProofsEdgeCases(t *testing.T) {
	k := newKH(t)
	router := k.Router()
	good := goodProofs(t, k, 6)
	small := smallOrderPoints(t)
	key := newRawKey(t)
	var A Address
	copy(A[:], key.A.Bytes())
	msgA := proofMessage(router, A)
	L, _ := new(big.Int).SetString("7237005577332262213973186563042994240857116359379907606001950938285454250989", 10)
	var cases []proofCase
	add := func(name string, e Address, p []byte) { cases = append(cases, proofCase{name, e, p}) }

	valid := signRaw(t, key.a, A[:], msgA, nil)
	add("raw valid", A, valid)

	// s + L: the same point, unreduced; crypto/ed25519 refuses it.
	sBig := new(big.Int).SetBytes(reverse(valid[32:]))
	sBig.Add(sBig, L)
	unreduced := append(append([]byte{}, valid[:32]...), reverse(pad32(sBig.Bytes()))...)
	add("s+L", A, unreduced)
	// s with a top bit set.
	topBit := append([]byte{}, valid...)
	topBit[63] |= 0x80
	add("s top bit", A, topBit)
	// Wrong lengths.
	add("short", A, valid[:63])
	add("long", A, append(append([]byte{}, valid...), 0))
	add("empty", A, nil)
	// Flipped bits in R, s and the engine.
	for _, bit := range []int{0, 100, 255, 256, 400, 503} {
		p := append([]byte{}, valid...)
		p[bit/8] ^= 1 << (bit % 8)
		add(fmt.Sprintf("flip %d", bit), A, p)
	}
	e2 := A
	e2[3] ^= 4
	add("other engine", e2, valid)

	for i, T := range small {
		var Ti Address
		copy(Ti[:], T.Bytes())
		// Small-order engine key with a "signature" that holds without the
		// cofactor: s = r, R = [r]B (so [s]B − [k]A = R when kA = 0 or not).
		r := randScalar(t)
		R := new(edwards25519.Point).ScalarBaseMult(r)
		add(fmt.Sprintf("small-order A %d, R=[s]B", i), Ti, append(R.Bytes(), r.Bytes()...))
		// Same with R = [r]B + T and with R = T.
		add(fmt.Sprintf("small-order A %d, R=[s]B+T", i), Ti, append(new(edwards25519.Point).Add(R, T).Bytes(), r.Bytes()...))
		add(fmt.Sprintf("small-order A %d, R=T, s=0", i), Ti, append(T.Bytes(), make([]byte, 32)...))
		// Small-order R under a good key, s random.
		add(fmt.Sprintf("small-order R %d", i), A, append(T.Bytes(), randScalar(t).Bytes()...))
		// Small-order R with the right s for R = T (s = k·a): holds only
		// with the cofactor, for T ≠ 0.
		add(fmt.Sprintf("small-order R %d, s=ka", i), A, signSmallR(t, key, A[:], msgA, T))
	}
	// Non-canonical encodings: y ≥ p, and x = 0 with the sign bit set.
	for y := range 19 {
		enc := make([]byte, 32)
		enc[0] = 0xed + byte(y) // p = 2²⁵⁵ − 19: low byte 0xed
		for j := 1; j < 31; j++ {
			enc[j] = 0xff
		}
		enc[31] = 0x7f
		for _, sign := range []byte{0, 0x80} {
			e := enc
			e[31] |= sign
			var ea Address
			copy(ea[:], e)
			add(fmt.Sprintf("non-canonical A y=p+%d sign=%d", y, sign>>7), ea, append(valid[:32:32], valid[32:]...))
			add(fmt.Sprintf("non-canonical R y=p+%d sign=%d", y, sign>>7), A, append(append([]byte{}, e...), valid[32:]...))
		}
	}
	negZero := identity.Bytes()
	negZero[31] |= 0x80
	var nz Address
	copy(nz[:], negZero)
	add("A = -0", nz, valid)
	add("R = -0", A, append(negZero, valid[32:]...))

	// Each case alone among good proofs, and all together.
	for _, c := range cases {
		checkBatch(t, router, good, []proofCase{c})
	}
	checkBatch(t, router, good, cases)
}

// signSmallR makes a proof whose R is the small-order point T and whose s
// is k·a: [s]B − [k]A = 0 ≠ T, so it holds only with the cofactor.
func signSmallR(t testing.TB, key rawKey, pub, msg []byte, T *edwards25519.Point) []byte {
	h := sha512.New()
	h.Write(T.Bytes())
	h.Write(pub)
	h.Write(msg)
	k, _ := edwards25519.NewScalar().SetUniformBytes(h.Sum(nil))
	s := edwards25519.NewScalar().Multiply(k, key.a)
	return append(T.Bytes(), s.Bytes()...)
}

// Documented difference: a proof whose R carries a small-order component,
// made by the engine key's holder, holds in a batch of good proofs (the
// cofactored equation) while crypto/ed25519 refuses it; in a batch that
// fails it is refused, as crypto/ed25519 refuses it.
func TestVerifyEngineProofsMixedOrderR(t *testing.T) {
	k := newKH(t)
	router := k.Router()
	good := goodProofs(t, k, 6)
	key := newRawKey(t)
	var A Address
	copy(A[:], key.A.Bytes())
	T := smallOrderPoints(t)[4] // order 2
	p := signRaw(t, key.a, A[:], proofMessage(router, A), T)
	if ed25519.Verify(A[:], proofMessage(router, A), p) {
		t.Fatal("crypto/ed25519 accepts a mixed-order R")
	}
	engines := []Address{good[0].engine, A, good[1].engine}
	proofs := [][]byte{good[0].proof, p, good[1].proof}
	ok := make([]bool, 3)
	VerifyEngineProofs(router, engines, proofs, ok)
	if !ok[0] || !ok[1] || !ok[2] {
		t.Fatalf("cofactored batch: %v, want all true", ok)
	}
	bad := append([]byte{}, good[1].proof...)
	bad[40] ^= 1
	proofs[2] = bad
	VerifyEngineProofs(router, engines, proofs, ok)
	if !ok[0] || ok[1] || ok[2] {
		t.Fatalf("failed batch: %v, want [true false false]", ok)
	}
}

// Property: on random inputs (valid proofs, mutated proofs, random bytes)
// in random batches, large and small, with few or many bad proofs, the
// verdicts are crypto/ed25519's.
func TestVerifyEngineProofsRandom(t *testing.T) {
	k := newKH(t)
	router := k.Router()
	pool := goodProofs(t, k, 64)
	rounds := 100
	if testing.Short() || raceEnabled {
		rounds = 25
	}
	rng := mrand.New(mrand.NewPCG(1, 2))
	for range rounds {
		// Up to 600 proofs: batches checked with Straus's method and with
		// Pippenger's; none, one in hundreds, one in tens, or a third bad.
		n := 1 + rng.IntN(600)
		bad := []float64{0, 0.003, 0.03, 0.3}[rng.IntN(4)]
		var cs []proofCase
		for i := range n {
			c := pool[rng.IntN(len(pool))]
			c.proof = append([]byte{}, c.proof...)
			if rng.Float64() < bad {
				switch rng.IntN(4) {
				case 0: // a flipped bit
					bit := rng.IntN(512)
					c.proof[bit/8] ^= 1 << (bit % 8)
				case 1: // random bytes
					rand.Read(c.proof)
				case 2: // random engine
					rand.Read(c.engine[:])
				case 3: // another engine's proof
					c.proof = pool[rng.IntN(len(pool))].proof
				}
			}
			c.name = fmt.Sprintf("case %d", i)
			cs = append(cs, c)
		}
		checkBatch(t, router, pool[:2], cs)
	}
}

// One bad proof among thousands (more than one batch) is found and
// refused alone, wherever it is, and so are a few.
func TestVerifyEngineProofsFewBadInMany(t *testing.T) {
	k := newKH(t)
	router := k.Router()
	n := 2*ProofBatchSize + 5
	if raceEnabled {
		n = ProofBatchSize + 5
	}
	good := goodProofs(t, k, n)
	engines := make([]Address, n)
	proofs := make([][]byte, n)
	ok := make([]bool, n)
	rng := mrand.New(mrand.NewPCG(3, 4))
	for _, nbad := range []int{1, 1, 3} {
		for i, c := range good {
			engines[i], proofs[i] = c.engine, c.proof
		}
		bad := map[int]bool{}
		for len(bad) < nbad {
			i := rng.IntN(n)
			bad[i] = true
			proofs[i] = good[(i+1)%n].proof // well formed, but another engine's
		}
		VerifyEngineProofs(router, engines, proofs, ok)
		for i := range ok {
			if ok[i] == bad[i] {
				t.Fatalf("%d bad of %d: proof %d: ok %v, bad %v", nbad, n, i, ok[i], bad[i])
			}
		}
	}
}

// VerifyEngineProofs is safe to run on many goroutines at once.
func TestVerifyEngineProofsConcurrent(t *testing.T) {
	k := newKH(t)
	good := goodProofs(t, k, 2*ProofBatchSize)
	var wg sync.WaitGroup
	for range runtime.GOMAXPROCS(0) + 1 {
		wg.Go(func() {
			engines := make([]Address, len(good))
			proofs := make([][]byte, len(good))
			for i, c := range good {
				engines[i], proofs[i] = c.engine, c.proof
			}
			ok := make([]bool, len(good))
			VerifyEngineProofs(k.Router(), engines, proofs, ok)
			for i := range ok {
				if !ok[i] {
					t.Errorf("proof %d refused", i)
				}
			}
		})
	}
	wg.Wait()
}

func reverse(b []byte) []byte {
	r := make([]byte, len(b))
	for i := range b {
		r[len(b)-1-i] = b[i]
	}
	return r
}

func pad32(b []byte) []byte {
	return append(make([]byte, 32-len(b)), b...)
}

func benchProofs(b *testing.B, n int) (Address, []Address, [][]byte) {
	k := newKH(b)
	engines := make([]Address, n)
	proofs := make([][]byte, n)
	for i := range n {
		engines[i] = mustEngine(b, k, fmt.Sprintf("e%d", i))
		proofs[i], _ = k.EngineProof(engines[i])
	}
	return k.Router(), engines, proofs
}

// BenchmarkEngineProofs verifies 100,000 engine proofs (one learn burst)
// one by one with crypto/ed25519 and in batches, on one goroutine and on
// GOMAXPROCS goroutines. ns/op is for all 100,000.
func BenchmarkEngineProofs(b *testing.B) {
	n := 100_000
	router, engines, proofs := benchProofs(b, n)
	ok := make([]bool, n)
	workers := runtime.GOMAXPROCS(0)
	run := func(b *testing.B, par int, f func(lo, hi int)) {
		for b.Loop() {
			var wg sync.WaitGroup
			chunk := (n + par - 1) / par
			for w := range par {
				wg.Go(func() { f(w*chunk, min((w+1)*chunk, n)) })
			}
			wg.Wait()
		}
	}
	single := func(lo, hi int) {
		for i := lo; i < hi; i++ {
			ok[i] = VerifyEngineProof(router, engines[i], proofs[i])
		}
	}
	batch := func(lo, hi int) {
		VerifyEngineProofs(router, engines[lo:hi], proofs[lo:hi], ok[lo:hi])
	}
	b.Run("single/1", func(b *testing.B) { run(b, 1, single) })
	b.Run(fmt.Sprintf("single/%d", workers), func(b *testing.B) { run(b, workers, single) })
	b.Run("batch/1", func(b *testing.B) { run(b, 1, batch) })
	b.Run(fmt.Sprintf("batch/%d", workers), func(b *testing.B) { run(b, workers, batch) })
}
