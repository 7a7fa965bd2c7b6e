package keyholder

import (
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha512"
	"hash"
	"sync"

	"filippo.io/edwards25519"
)

// ProofBatchSize is the most engine proofs VerifyEngineProofs checks with
// one batch equation. Larger batches cost less per proof (the
// multi-scalar multiplication is a Pippenger bucket method, whose cost per
// point falls as the points grow in number) but more to search when a
// batch holds a bad proof. A Learns envelope carries at most 1,024.
const ProofBatchSize = 2048

// singleBelow: a failed batch of fewer proofs than this is checked proof
// by proof; a larger one is split in halves, each checked as a batch.
const singleBelow = 16

// VerifyEngineProofs checks many engine proofs of one router at once and
// sets ok[i] to VerifyEngineProof(router, engines[i], proofs[i]). engines,
// proofs and ok must have the same length (it panics otherwise). It runs on
// the calling goroutine; callers spread large sets over goroutines by
// slicing them.
//
// Proofs are checked in batches of up to ProofBatchSize with the randomized
// batch equation of Ed25519 (Bernstein et al., "High-speed high-security
// signatures", §5), cofactored:
//
//	[8]( −(Σ zᵢsᵢ)B + Σ zᵢRᵢ + Σ (zᵢhᵢ)Aᵢ ) = 0,   zᵢ random 128-bit
//
// A batch that holds is accepted whole. One that does not is split in two
// halves, each checked again with the same equation (over its own proofs),
// and so on down to batches of fewer than 16 proofs, which are checked
// proof by proof with crypto/ed25519: so exactly the bad proofs are
// refused. A forged proof passes any one batch equation with probability
// at most 2⁻¹²⁸.
//
// The batch accepts nothing that crypto/ed25519 refuses on encoding
// grounds: a proof enters a batch only if its s is reduced (< L) with the
// three top bits clear, its R is the canonical encoding of a curve point,
// and its engine address decodes as crypto/ed25519 decodes it; and neither
// R nor the engine key may be of small order. Every other proof is checked
// with crypto/ed25519 alone.
//
// One difference remains, as in every cofactored verifier: crypto/ed25519
// checks the equation without the cofactor, so a proof whose R or engine
// key has a small-order component added to it (which only the holder of the
// engine's key can make, and which honest keyholders never make) may pass
// a batch while crypto/ed25519 refuses it. Such a proof is the engine's
// own statement all the same: no one else can produce one.
func VerifyEngineProofs(router Address, engines []Address, proofs [][]byte, ok []bool) {
	if len(engines) != len(proofs) || len(ok) != len(proofs) {
		panic("keyholder: VerifyEngineProofs: lengths differ")
	}
	if len(proofs) == 0 {
		return
	}
	b := batchPool.Get().(*proofBatch)
	defer batchPool.Put(b)
	// Batches of even size: 2,500 proofs are checked as 1,250 and 1,250,
	// not 2,048 and 452.
	batches := (len(proofs) + ProofBatchSize - 1) / ProofBatchSize
	size := (len(proofs) + batches - 1) / batches
	for start := 0; start < len(proofs); start += size {
		end := min(start+size, len(proofs))
		b.verify(router, engines[start:end], proofs[start:end], ok[start:end])
	}
}

// batchPool keeps the scratch space of batches (about 1 MB each at full
// size) for the next call.
var batchPool = sync.Pool{New: func() any { return new(proofBatch) }}

// proofBatch holds the scratch space of one batch, reused between batches.
// Member k (the k-th proof that entered the batch) is proof members[k],
// with R and A at points[2k] and points[2k+1], and z, zs = z·s and
// zh = z·h in scalars.
type proofBatch struct {
	members []int
	points  []edwards25519.Point
	z       []edwards25519.Scalar
	zs      []edwards25519.Scalar
	zh      []edwards25519.Scalar
	random  []byte
	hash    hash.Hash
	// The multi-scalar multiplication's inputs and scratch.
	pts []*edwards25519.Point
	scs []*edwards25519.Scalar
	msm msm
}

var identity = edwards25519.NewIdentityPoint()

var generator = edwards25519.NewGeneratorPoint()

// smallOrder reports whether p is of small order (8p is the identity).
func smallOrder(p *edwards25519.Point) bool {
	var q edwards25519.Point
	return q.MultByCofactor(p).Equal(identity) == 1
}

// canonicalY reports whether the y of the point encoding enc is reduced
// (y < p = 2²⁵⁵ − 19). With R of large order this makes enc R's canonical
// encoding, as crypto/ed25519 requires (it compares R's bytes with those
// it computes): the only points with x = 0, where a set sign bit would
// also be non-canonical, are of small order.
func canonicalY(enc []byte) bool {
	if enc[31]&0x7f != 0x7f || enc[0] < 0xed {
		return true
	}
	for _, c := range enc[1:31] {
		if c != 0xff {
			return true
		}
	}
	return false
}

func (b *proofBatch) grow(n int) {
	if cap(b.members) < n {
		b.members = make([]int, 0, n)
		b.points = make([]edwards25519.Point, 2*n)
		b.z = make([]edwards25519.Scalar, n)
		b.zs = make([]edwards25519.Scalar, n)
		b.zh = make([]edwards25519.Scalar, n)
		b.random = make([]byte, 16*n)
		b.pts = make([]*edwards25519.Point, 0, 2*n+1)
		b.scs = make([]*edwards25519.Scalar, 0, 2*n+1)
	}
	if b.hash == nil {
		b.hash = sha512.New()
	}
}

func (b *proofBatch) verify(router Address, engines []Address, proofs [][]byte, ok []bool) {
	n := len(proofs)
	b.grow(n)
	b.members = b.members[:0]
	if _, err := rand.Read(b.random[:16*n]); err != nil {
		panic(err) // crypto/rand.Read never fails (Go ≥ 1.24)
	}
	var s, h edwards25519.Scalar
	var zb [32]byte
	var digest [64]byte
	msg := proofMessage(router, Address{})
	for i := range proofs {
		ok[i] = false
		sig := proofs[i]
		if len(sig) != ed25519.SignatureSize || sig[63]&224 != 0 {
			continue // crypto/ed25519 refuses these too
		}
		k := len(b.members)
		R := &b.points[2*k]
		A := &b.points[2*k+1]
		_, errS := s.SetCanonicalBytes(sig[32:])
		_, errA := A.SetBytes(engines[i][:])
		_, errR := R.SetBytes(sig[:32])
		if errS != nil || errA != nil || errR != nil || !canonicalY(sig[:32]) ||
			smallOrder(A) || smallOrder(R) {
			// Not for a batch: crypto/ed25519 has the last word.
			ok[i] = VerifyEngineProof(router, engines[i], sig)
			continue
		}
		copy(msg[len(msg)-len(Address{}):], engines[i][:])
		hh := b.hash
		hh.Reset()
		hh.Write(sig[:32])
		hh.Write(engines[i][:])
		hh.Write(msg)
		hh.Sum(digest[:0])
		if _, err := h.SetUniformBytes(digest[:]); err != nil {
			panic(err) // 64 bytes always fit
		}
		copy(zb[:16], b.random[16*k:16*k+16]) // zb[16:] stays zero: z < 2¹²⁸ < L
		z := &b.z[k]
		if _, err := z.SetCanonicalBytes(zb[:]); err != nil {
			panic(err)
		}
		b.zs[k].Multiply(z, &s)
		b.zh[k].Multiply(z, &h)
		b.members = append(b.members, i)
	}
	b.check(router, engines, proofs, ok, 0, len(b.members))
}

// check settles members lo to hi: accepted whole if their batch equation
// holds; otherwise halved, or checked one by one when few.
func (b *proofBatch) check(router Address, engines []Address, proofs [][]byte, ok []bool, lo, hi int) {
	if hi-lo == 0 {
		return
	}
	if hi-lo > 1 && b.holds(lo, hi) {
		for _, i := range b.members[lo:hi] {
			ok[i] = true
		}
		return
	}
	if hi-lo < singleBelow {
		for _, i := range b.members[lo:hi] {
			ok[i] = VerifyEngineProof(router, engines[i], proofs[i])
		}
		return
	}
	mid := lo + (hi-lo)/2
	b.check(router, engines, proofs, ok, lo, mid)
	b.check(router, engines, proofs, ok, mid, hi)
}

// holds reports whether the batch equation of members lo to hi holds.
func (b *proofBatch) holds(lo, hi int) bool {
	var negSum edwards25519.Scalar // −Σ zᵢsᵢ
	b.pts = b.pts[:0]
	b.scs = b.scs[:0]
	for k := lo; k < hi; k++ {
		negSum.Add(&negSum, &b.zs[k])
		b.pts = append(b.pts, &b.points[2*k], &b.points[2*k+1])
		b.scs = append(b.scs, &b.z[k], &b.zh[k])
	}
	negSum.Negate(&negSum)
	b.pts = append(b.pts, generator)
	b.scs = append(b.scs, &negSum)
	var p edwards25519.Point
	b.msm.multiScalarMult(&p, b.scs, b.pts)
	return smallOrder(&p)
}
