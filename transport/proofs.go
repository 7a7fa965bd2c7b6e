package transport

import (
	"github.com/enginekit/enginekit/keyholder"
	"github.com/enginekit/enginekit/wire"
)

// Learning a peer's engines is a pipeline per connection, so that a burst
// of 100,000 learns keeps every core on signature checks:
//
//   - the connection's reader decodes each Learn or Learns envelope into a
//     learnJob, looks its proofs up among those verified before, and hands
//     the rest to a verifier goroutine (at most GOMAXPROCS verify at once
//     per Transport: Transport.verifySlots), then queues the job for the
//     route's applier;
//   - the applier (one goroutine per route, started by the first learn
//     that needs it) applies the jobs in arrival order, each once its
//     proofs are checked: it steps the core (routes, the per-peer learn
//     bound) for the engines whose proofs hold and starts their proxies.
//
// Order is kept: any other envelope on the connection (a message from an
// engine, a forget, the end-of-burst marker) is handled only after every
// learn before it is applied (route.learnsApplied), so an engine's
// messages never overtake its learn, and a route or proxy exists only for
// a proof that was checked. The reader waits only for checks and for the
// applier (bounded: learnDepth jobs in flight per connection), never on a
// writer.

// learnJob is one Learn or Learns envelope in a route's learn pipeline.
type learnJob struct {
	ms   []learnMsg
	ok   []bool // ok[i]: ms[i]'s proof holds; final once done is closed
	todo []int  // the indexes whose proofs are checked (not remembered)
	done chan struct{}
}

// learnDepth is how many learn envelopes a connection has in flight
// (being checked or waiting to be applied) before its reader waits.
const learnDepth = 4

// inlineLearns: a learn envelope of at most this many learns, on a
// connection with no learn in flight, is checked and applied by the reader
// itself (a single Learn after the burst costs no goroutine hop); larger
// ones go to the applier even when their proofs are all remembered, so
// that the reader decodes the next envelope meanwhile.
const inlineLearns = 16

func (t *Transport) onLearn(r *route, env *wire.Envelope) {
	if env.Src != r.peer {
		t.count(dropNotRouter)
		return
	}
	var ms []learnMsg
	if env.Kind == wire.Learn {
		var m learnMsg
		if err := decodeControl(env.Payload, &m); err != nil {
			t.count(dropMalformed)
			return
		}
		ms = []learnMsg{m}
	} else {
		var err error
		if ms, err = decodeLearns(env.Payload); err != nil {
			t.count(dropMalformed)
			return
		}
	}
	job := &learnJob{ms: ms, ok: make([]bool, len(ms))}
	t.rememberedProofs(r.peer, job)
	if r.learnBusy.Load() == 0 && len(job.ms) <= inlineLearns {
		t.checkProofs(r.peer, job)
		t.applyLearns(r, job)
		return
	}
	job.done = make(chan struct{})
	if len(job.todo) == 0 {
		close(job.done)
	} else {
		r.learnWG.Add(1)
		go func() {
			defer r.learnWG.Done()
			t.verifySlots <- struct{}{} // checks are pure CPU: GOMAXPROCS at once
			t.checkProofs(r.peer, job)
			<-t.verifySlots
			close(job.done)
		}()
	}
	if !r.applying {
		r.applying = true
		r.learnWG.Add(1)
		go func() {
			defer r.learnWG.Done()
			r.applier()
		}()
	}
	r.learnBusy.Add(1)
	select {
	case r.learnQ <- job:
	case <-r.ctx.Done():
	}
}

// applier applies the route's learn jobs in arrival order until the route
// ends.
func (r *route) applier() {
	for {
		var job *learnJob
		select {
		case job = <-r.learnQ:
		case <-r.ctx.Done():
			return
		}
		select {
		case <-job.done:
		case <-r.ctx.Done():
			return
		}
		r.t.applyLearns(r, job)
		if r.learnBusy.Add(-1) == 0 {
			select {
			case r.learnIdle <- struct{}{}:
			default:
			}
		}
	}
}

// learnsApplied returns once every learn the reader handed to the
// pipeline is applied (or the route ended). The reader calls it before
// any envelope that is not a learn.
func (r *route) learnsApplied() {
	for r.learnBusy.Load() > 0 {
		select {
		case <-r.learnIdle:
		case <-r.ctx.Done():
			return
		}
	}
}

// rememberedProofs sets job.ok for the proofs verified before (for the
// same router) and lists the others in job.todo.
func (t *Transport) rememberedProofs(router keyholder.Address, job *learnJob) {
	ms := job.ms
	job.todo = make([]int, 0, len(ms))
	t.proofMu.Lock()
	for i := range ms {
		if p, hit := t.proofs[ms[i].Engine]; hit && p.router == router && string(p.proof[:]) == string(ms[i].Proof) {
			job.ok[i] = true
		} else {
			job.todo = append(job.todo, i)
		}
	}
	t.proofMu.Unlock()
}

// checkProofs checks the proofs job.todo lists with
// keyholder.VerifyEngineProofs (batch verification: a bad proof is found
// and refused alone, exactly as keyholder.VerifyEngineProof refuses it),
// on the calling goroutine, and remembers those that hold, so that a
// reconnect (which brings the whole burst again) costs no signature
// checks.
func (t *Transport) checkProofs(router keyholder.Address, job *learnJob) {
	n := len(job.todo)
	if n == 0 {
		return
	}
	ms := job.ms
	engines := make([]keyholder.Address, n)
	proofs := make([][]byte, n)
	for k, i := range job.todo {
		engines[k] = ms[i].Engine
		proofs[k] = ms[i].Proof
	}
	res := make([]bool, n)
	keyholder.VerifyEngineProofs(router, engines, proofs, res)
	t.proofChecks.Add(uint64(n))
	t.proofMu.Lock()
	if len(t.proofs)+n > maxCachedProofs {
		clear(t.proofs)
	}
	for k, i := range job.todo {
		job.ok[i] = res[k]
		if res[k] {
			p := cachedProof{router: router}
			copy(p.proof[:], ms[i].Proof)
			t.proofs[ms[i].Engine] = p
		}
	}
	t.proofMu.Unlock()
}

// applyLearns steps the core with the learns of job whose proofs hold,
// counts the others, and carries out what the core decided. It goes by
// chunks of applyChunk learns, reusing one buffer of actions, so that a
// Learns envelope of 1,024 engines allocates no action list of its own.
func (t *Transport) applyLearns(r *route, job *learnJob) {
	var buf [2 * applyChunk]action
	bad := 0
	for lo := 0; lo < len(job.ms); lo += applyChunk {
		hi := min(lo+applyChunk, len(job.ms))
		acts := buf[:0]
		t.mu.Lock()
		for i := lo; i < hi; i++ {
			if !job.ok[i] {
				t.core.drop(dropBadProof)
				bad++
				continue
			}
			acts = t.core.learn(acts, r.id, job.ms[i].Engine, job.ms[i].Filter)
		}
		t.mu.Unlock()
		t.exec(acts)
		clear(acts) // let go of what the actions point to
	}
	if bad > 0 {
		t.log.Debug().Int("learns", bad).Str("remote", r.remote).Stringer("peer", r.peer).Msg("learns dropped: the engine's proof does not verify")
	}
}

// applyChunk is how many learns applyLearns steps under one lock.
const applyChunk = 32

// maxCachedProofs bounds the remembered engine proofs (about 130 bytes
// each); past it the cache starts again.
const maxCachedProofs = 1 << 20

type cachedProof struct {
	router keyholder.Address
	proof  [64]byte
}
