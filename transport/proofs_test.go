package transport

import (
	"fmt"
	"testing"

	"github.com/enginekit/enginekit/keyholder"
)

// checkProofs, over several batches, refuses exactly the proofs that
// keyholder.VerifyEngineProof refuses, touches only the indexes it is
// given, and remembers exactly those that hold.
func TestCheckProofsMixed(t *testing.T) {
	kh, err := keyholder.New(keyholder.Config{})
	if err != nil {
		t.Fatal(err)
	}
	other, err := keyholder.New(keyholder.Config{})
	if err != nil {
		t.Fatal(err)
	}
	n := 700 // batches of Straus's and of Pippenger's size (keyholder tests the rest)
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
	tr := &Transport{proofs: make(map[keyholder.Address]cachedProof)}
	for _, every := range []int{1, 2, 5} {
		job := &learnJob{ms: ms, ok: make([]bool, n)}
		for i := 0; i < n; i += every {
			job.todo = append(job.todo, i)
		}
		for i := range job.ok {
			job.ok[i] = i%every != 0 // left alone: stays true
		}
		tr.checkProofs(kh.Router(), job)
		for i := range ms {
			want := i%every != 0 || keyholder.VerifyEngineProof(kh.Router(), ms[i].Engine, ms[i].Proof)
			if job.ok[i] != want {
				t.Fatalf("every %d: learn %d: ok %v, want %v", every, i, job.ok[i], want)
			}
		}
	}
	// Those that hold are remembered, and found again; no others.
	job := &learnJob{ms: ms, ok: make([]bool, n)}
	tr.rememberedProofs(kh.Router(), job)
	bad := 0
	for i := range ms {
		holds := keyholder.VerifyEngineProof(kh.Router(), ms[i].Engine, ms[i].Proof)
		if job.ok[i] != holds {
			t.Fatalf("learn %d: remembered %v", i, job.ok[i])
		}
		if !holds {
			bad++
		}
	}
	if bad == 0 || len(job.todo) != bad {
		t.Fatalf("%d to check again, want the %d bad ones", len(job.todo), bad)
	}
	// Another router's learns of the same engines are checked again.
	job = &learnJob{ms: ms, ok: make([]bool, n)}
	tr.rememberedProofs(keyholder.Address{1}, job)
	if len(job.todo) != n {
		t.Fatalf("another router: %d to check, want %d", len(job.todo), n)
	}
	tr.checkProofs(kh.Router(), &learnJob{}) // nothing to do
}
