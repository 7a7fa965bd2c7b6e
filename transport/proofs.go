package transport

import (
	"runtime"
	"sync"

	"github.com/enginekit/enginekit/keyholder"
)

// checkProofs sets ok[i], for each i in todo, to whether ms[i].Proof is
// ms[i].Engine's proof that it belongs to router. It checks them with
// keyholder.VerifyEngineProofs (batch verification: a bad proof is found
// and refused alone, exactly as keyholder.VerifyEngineProof refuses it),
// in contiguous shares over up to GOMAXPROCS goroutines, and returns when
// all are checked: the caller (the reader of the connection the learns
// came on) applies them, in order, after.
func checkProofs(router keyholder.Address, ms []learnMsg, todo []int, ok []bool) {
	n := len(todo)
	if n == 0 {
		return
	}
	engines := make([]keyholder.Address, n)
	proofs := make([][]byte, n)
	for k, i := range todo {
		engines[k] = ms[i].Engine
		proofs[k] = ms[i].Proof
	}
	res := make([]bool, n)
	// A share of at least one batch per goroutine; fewer goroutines when
	// the learns are few.
	workers := min(runtime.GOMAXPROCS(0), (n+keyholder.ProofBatchSize-1)/keyholder.ProofBatchSize)
	if workers <= 1 {
		keyholder.VerifyEngineProofs(router, engines, proofs, res)
	} else {
		share := (n + workers - 1) / workers
		var wg sync.WaitGroup
		for lo := share; lo < n; lo += share {
			hi := min(lo+share, n)
			wg.Go(func() {
				keyholder.VerifyEngineProofs(router, engines[lo:hi], proofs[lo:hi], res[lo:hi])
			})
		}
		keyholder.VerifyEngineProofs(router, engines[:share], proofs[:share], res[:share])
		wg.Wait()
	}
	for k, i := range todo {
		ok[i] = res[k]
	}
}
