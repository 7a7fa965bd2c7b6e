package transport

import (
	"fmt"
	"runtime"
	"testing"

	"github.com/enginekit/enginekit/keyholder"
)

// checkProofs, over several goroutines and batches, refuses exactly the
// proofs that keyholder.VerifyEngineProof refuses, and touches only the
// indexes it is given.
func TestCheckProofsMixed(t *testing.T) {
	kh, err := keyholder.New(keyholder.Config{})
	if err != nil {
		t.Fatal(err)
	}
	other, err := keyholder.New(keyholder.Config{})
	if err != nil {
		t.Fatal(err)
	}
	n := 3*keyholder.ProofBatchSize*runtime.GOMAXPROCS(0) + 5
	ms := make([]learnMsg, n)
	for i := range ms {
		e, err := kh.NewEngine(fmt.Sprintf("e%d", i))
		if err != nil {
			t.Fatal(err)
		}
		p, err := kh.EngineProof(e)
		if err != nil {
			t.Fatal(err)
		}
		ms[i] = learnMsg{Engine: e, Proof: p}
		switch i % 97 {
		case 3: // a flipped bit
			ms[i].Proof[10] ^= 1
		case 50: // another router's engine proof
			oe, _ := other.NewEngine(fmt.Sprintf("o%d", i))
			ms[i].Engine = oe
			ms[i].Proof, _ = other.EngineProof(oe)
		case 70: // truncated
			ms[i].Proof = ms[i].Proof[:40]
		}
	}
	for _, every := range []int{1, 2, 5} {
		var todo []int
		for i := 0; i < n; i += every {
			todo = append(todo, i)
		}
		ok := make([]bool, n)
		for i := range ok {
			ok[i] = i%every != 0 // left alone: stays true
		}
		checkProofs(kh.Router(), ms, todo, ok)
		for i := range ms {
			want := i%every != 0 || keyholder.VerifyEngineProof(kh.Router(), ms[i].Engine, ms[i].Proof)
			if ok[i] != want {
				t.Fatalf("every %d: learn %d: ok %v, want %v", every, i, ok[i], want)
			}
		}
	}
	checkProofs(kh.Router(), ms, nil, nil) // nothing to do
}
