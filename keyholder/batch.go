package keyholder

import (
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha512"
	"hash"

	"filippo.io/edwards25519"
)

// ProofBatchSize is how many engine proofs VerifyEngineProofs checks with
// one batch equation. Larger batches cost less per proof but more to redo
// one by one when a batch holds a bad proof.
const ProofBatchSize = 128

// VerifyEngineProofs checks many engine proofs of one router at once and
// sets ok[i] to VerifyEngineProof(router, engines[i], proofs[i]). engines,
// proofs and ok must have the same length (it panics otherwise). It runs on
// the calling goroutine; callers spread large sets over goroutines by
// slicing them.
//
// Proofs are checked in batches of ProofBatchSize with the randomized batch
// equation of Ed25519 (Bernstein et al., "High-speed high-security
// signatures", §5), cofactored:
//
//	[8]( −(Σ zᵢsᵢ)B + Σ zᵢRᵢ + Σ (zᵢhᵢ)Aᵢ ) = 0,   zᵢ random 128-bit
//
// A batch that holds is accepted whole; one that does not is checked again
// proof by proof with crypto/ed25519, so exactly the bad proofs are
// refused. A forged proof passes a batch with probability at most 2⁻¹²⁸.
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
	var b proofBatch
	for start := 0; start < len(proofs); start += ProofBatchSize {
		end := min(start+ProofBatchSize, len(proofs))
		b.verify(router, engines[start:end], proofs[start:end], ok[start:end])
	}
}

// proofBatch holds the scratch space of one batch, reused between batches.
type proofBatch struct {
	scalars []*edwards25519.Scalar
	points  []*edwards25519.Point
	members []int
	z       [ProofBatchSize * 16]byte
	store   []edwards25519.Point
	sstore  []edwards25519.Scalar
	hash    hash.Hash
}

var identity = edwards25519.NewIdentityPoint()

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

func (b *proofBatch) verify(router Address, engines []Address, proofs [][]byte, ok []bool) {
	n := len(proofs)
	if len(b.store) < 2*n {
		b.store = make([]edwards25519.Point, 2*n)
		b.sstore = make([]edwards25519.Scalar, 2*n+1)
	}
	b.scalars = b.scalars[:0]
	b.points = b.points[:0]
	b.members = b.members[:0]
	if _, err := rand.Read(b.z[:16*n]); err != nil {
		panic(err) // crypto/rand.Read never fails (Go ≥ 1.24)
	}
	sum := edwards25519.NewScalar() // Σ zᵢsᵢ
	var s, h, z edwards25519.Scalar
	var zb [32]byte
	var digest [64]byte
	msg := proofMessage(router, Address{})
	for i := range proofs {
		ok[i] = false
		sig := proofs[i]
		if len(sig) != ed25519.SignatureSize || sig[63]&224 != 0 {
			continue // crypto/ed25519 refuses these too
		}
		R := &b.store[2*len(b.members)]
		A := &b.store[2*len(b.members)+1]
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
		if b.hash == nil {
			b.hash = sha512.New()
		}
		hh := b.hash
		hh.Reset()
		hh.Write(sig[:32])
		hh.Write(engines[i][:])
		hh.Write(msg)
		hh.Sum(digest[:0])
		if _, err := h.SetUniformBytes(digest[:]); err != nil {
			panic(err) // 64 bytes always fit
		}
		k := len(b.members)
		copy(zb[:16], b.z[16*k:16*k+16]) // zb[16:] stays zero: z < 2¹²⁸ < L
		if _, err := z.SetCanonicalBytes(zb[:]); err != nil {
			panic(err)
		}
		zs := &b.sstore[2*k]
		zh := &b.sstore[2*k+1]
		zs.Set(&z)
		zh.Multiply(&z, &h)
		sum.MultiplyAdd(&z, &s, sum)
		b.scalars = append(b.scalars, zs, zh)
		b.points = append(b.points, R, A)
		b.members = append(b.members, i)
	}
	if len(b.members) == 0 {
		return
	}
	if len(b.members) == 1 {
		i := b.members[0]
		ok[i] = VerifyEngineProof(router, engines[i], proofs[i])
		return
	}
	negSum := &b.sstore[2*len(b.members)]
	negSum.Negate(sum)
	b.scalars = append(b.scalars, negSum)
	b.points = append(b.points, edwards25519.NewGeneratorPoint())
	var p edwards25519.Point
	p.VarTimeMultiScalarMult(b.scalars, b.points)
	if smallOrder(&p) {
		for _, i := range b.members {
			ok[i] = true
		}
		return
	}
	for _, i := range b.members {
		ok[i] = VerifyEngineProof(router, engines[i], proofs[i])
	}
}
