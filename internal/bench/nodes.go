package bench

import (
	"context"
	"fmt"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/enginekit/enginekit/keyholder"
	"github.com/enginekit/enginekit/netconn"
	"github.com/enginekit/enginekit/node"
	"github.com/enginekit/enginekit/transport"
)

// The figures of many engines and nodes: how long a node takes to learn a
// peer's engines, and a set of nodes to learn everyone's. Both use the
// default authentication (signatures; engine proofs are signatures in both
// modes) over loopback TCP, and time from the first Connect to the last
// end-of-burst (transport.Config.OnSynced). Nodes and engines are started
// before the clock and stopped after it. The learn burst is compared with
// limit.learn_verify_ms: the same number of engine proofs batch-verified
// on every core with nothing else, its bound on this machine.

// nodesWorkloads returns the rows of several nodes, with the targets of
// issue 13.
func nodesWorkloads() []workload {
	return []workload{
		{name: "nodes.learn_burst_ms", unit: "ms", target: 1000, limit: "limit.learn_verify_ms", run: plain(learnBurst)},
		{name: "nodes.relearn_burst_ms", unit: "ms", run: plain(relearnBurst)},
		{name: "nodes.full_mesh_ms", unit: "ms", run: plain(fullMesh)},
		// The learn burst's bound: the proofs of its engines, checked
		// as the receiver checks them, on every core, with nothing else.
		{name: "limit.learn_verify_ms", unit: "ms", run: plain(learnVerify)},
	}
}

// learnVerify makes o.learn engine proofs of one router (100,000, as in
// the learn burst) and times their batch verification with
// keyholder.VerifyEngineProofs, the function the transport uses, in
// contiguous shares over GOMAXPROCS goroutines.
func learnVerify(ctx context.Context, o benchOpts) (float64, error) {
	kh, err := keyholder.New(keyholder.Config{})
	if err != nil {
		return 0, err
	}
	defer kh.Close()
	engines := make([]keyholder.Address, o.learn)
	proofs := make([][]byte, o.learn)
	for i := range engines {
		if engines[i], err = kh.NewEngine("e" + strconv.Itoa(i)); err != nil {
			return 0, err
		}
		if proofs[i], err = kh.EngineProof(engines[i]); err != nil {
			return 0, err
		}
	}
	ok := make([]bool, o.learn)
	return o.heavy(ctx, func() (time.Duration, error) {
		clear(ok)
		workers := runtime.GOMAXPROCS(0)
		share := (o.learn + workers - 1) / workers
		start := time.Now()
		var wg sync.WaitGroup
		for lo := 0; lo < o.learn; lo += share {
			hi := min(lo+share, o.learn)
			wg.Go(func() { keyholder.VerifyEngineProofs(kh.Router(), engines[lo:hi], proofs[lo:hi], ok[lo:hi]) })
		}
		wg.Wait()
		d := time.Since(start)
		if i := slices.Index(ok, false); i >= 0 {
			return 0, fmt.Errorf("engine proof %d of %d refused", i+1, o.learn)
		}
		return d, nil
	})
}

// learnPeer starts node b with o.learn idle engines, listening on loopback
// TCP, and returns it with its endpoint: the peer whose engines the learn
// figures learn.
func learnPeer(ctx context.Context, o benchOpts) (*node.Node, string, error) {
	b, err := newBenchNode(ctx, "b", netconn.Signatures, nil)
	if err != nil {
		return nil, "", err
	}
	for i := range o.learn {
		if _, _, err := b.Transport().SpawnEngine("e"+strconv.Itoa(i), newIdle); err != nil {
			closeNode(b)
			return nil, "", fmt.Errorf("engine %d of %d: %w", i+1, o.learn, err)
		}
	}
	bound, err := b.Transport().Listen(ctx, "tcp://127.0.0.1:0", netconn.AcceptAny)
	if err != nil {
		closeNode(b)
		return nil, "", err
	}
	return b, transport.Endpoint(bound.Network(), bound.String()), nil
}

// learnBurst starts node b with o.learn engines (100,000) and, each round,
// a fresh node a (which has verified none of their proofs before), and
// times a's Connect to b until a has learned all of b's engines.
func learnBurst(ctx context.Context, o benchOpts) (float64, error) {
	b, endpoint, err := learnPeer(ctx, o)
	if err != nil {
		return 0, err
	}
	defer closeNode(b)
	return o.heavy(ctx, func() (time.Duration, error) {
		synced := make(chan struct{}, 1)
		a, err := newBenchNode(ctx, "a", netconn.Signatures, func(peer keyholder.Address) {
			if peer == b.Router() {
				select {
				case synced <- struct{}{}:
				default:
				}
			}
		})
		if err != nil {
			return 0, err
		}
		defer closeNode(a)
		return timeLearn(ctx, a, b, endpoint, synced, o.learn)
	})
}

// timeLearn times a's Connect to b at endpoint until synced says b's
// burst has ended, and checks that a then knows all want of b's engines.
func timeLearn(ctx context.Context, a, b *node.Node, endpoint string, synced <-chan struct{}, want int) (time.Duration, error) {
	start := time.Now()
	if err := a.Transport().Connect(ctx, endpoint, b.Router()); err != nil {
		return 0, err
	}
	select {
	case <-synced:
	case <-ctx.Done():
		return 0, fmt.Errorf("%w, after learning %d of %d engines", ctx.Err(), len(a.Transport().Learned()[b.Router()]), want)
	}
	d := time.Since(start)
	if got := len(a.Transport().Learned()[b.Router()]); got != want {
		return 0, fmt.Errorf("learned %d of %d engines by the end of the burst%s", got, want, nonZero(a.Transport().Stats().Drops))
	}
	return d, nil
}

// nonZero lists the non-zero drop counters of a transport, for an error.
func nonZero(drops map[string]uint64) string {
	var s []string
	for cause, n := range drops {
		if n > 0 {
			s = append(s, fmt.Sprintf("%s=%d", cause, n))
		}
	}
	if len(s) == 0 {
		return " (no drops counted)"
	}
	slices.Sort(s)
	return " (drops: " + strings.Join(s, ", ") + ")"
}

// relearnBurst is the learn burst of a node that has learned and forgotten
// the same engines before: node a connects to b (o.learn engines) once,
// then each round disconnects, waits until it has forgotten every engine
// (ForgetGrace is 1 ms here), and times a new Connect until it has learned
// them all again, with the engine proofs it verified before remembered
// (transport Stats.ProofsVerified does not grow).
func relearnBurst(ctx context.Context, o benchOpts) (float64, error) {
	b, endpoint, err := learnPeer(ctx, o)
	if err != nil {
		return 0, err
	}
	defer closeNode(b)
	synced := make(chan struct{}, 1)
	var forgotten atomic.Int64
	allForgotten := make(chan struct{}, 1)
	a, err := node.Start(ctx, node.Config{Name: "a", Transport: transport.Config{
		ForgetGrace: time.Millisecond,
		OnSynced: func(peer keyholder.Address) {
			if peer == b.Router() {
				select {
				case synced <- struct{}{}:
				default:
				}
			}
		},
		OnForget: func(keyholder.Address) {
			if forgotten.Add(1) == int64(o.learn) {
				allForgotten <- struct{}{}
			}
		},
	}})
	if err != nil {
		return 0, err
	}
	defer closeNode(a)
	connect := func() (time.Duration, error) {
		// An end of burst of an earlier connection (one that dropped and
		// was re-dialled during the burst) must not end this one.
		select {
		case <-synced:
		default:
		}
		return timeLearn(ctx, a, b, endpoint, synced, o.learn)
	}
	if _, err := connect(); err != nil {
		return 0, err
	}
	verified := a.Transport().Stats().ProofsVerified
	ms, err := o.heavy(ctx, func() (time.Duration, error) {
		forgotten.Store(0)
		if err := a.Transport().Disconnect(endpoint, b.Router()); err != nil {
			return 0, err
		}
		select {
		case <-allForgotten:
		case <-ctx.Done():
			return 0, fmt.Errorf("%w, after forgetting %d of %d engines", ctx.Err(), forgotten.Load(), o.learn)
		}
		return connect()
	})
	if err == nil && a.Transport().Stats().ProofsVerified != verified {
		err = fmt.Errorf("proofs verified again: %d, then %d", verified, a.Transport().Stats().ProofsVerified)
	}
	return ms, err
}

// fullMesh starts o.mesh nodes (16) of o.meshEng engines each, every one
// listening, and times from the first Connect (node j dials node i for
// every i < j, one connection per pair) until every node has learned the
// engines of every other node.
func fullMesh(ctx context.Context, o benchOpts) (float64, error) {
	return o.heavy(ctx, func() (time.Duration, error) {
		n := o.mesh
		var (
			mu     sync.Mutex
			index  = make(map[keyholder.Address]int, n)
			seen   = make(map[[2]int]bool, n*(n-1))
			all    = make(chan struct{})
			nodes  = make([]*node.Node, n)
			bounds = make([]string, n)
		)
		defer func() {
			var wg sync.WaitGroup
			for _, nd := range nodes {
				if nd != nil {
					wg.Go(func() { closeNode(nd) })
				}
			}
			wg.Wait()
		}()
		for i := range n {
			nd, err := newBenchNode(ctx, "n"+strconv.Itoa(i), netconn.Signatures, func(peer keyholder.Address) {
				mu.Lock()
				defer mu.Unlock()
				j, ok := index[peer]
				if !ok || seen[[2]int{i, j}] {
					return
				}
				seen[[2]int{i, j}] = true
				if len(seen) == n*(n-1) {
					close(all)
				}
			})
			if err != nil {
				return 0, err
			}
			nodes[i] = nd
			for e := range o.meshEng {
				if _, _, err := nd.Transport().SpawnEngine("e"+strconv.Itoa(e), newIdle); err != nil {
					return 0, err
				}
			}
			bound, err := nd.Transport().Listen(ctx, "tcp://127.0.0.1:0", netconn.AcceptAny)
			if err != nil {
				return 0, err
			}
			bounds[i] = transport.Endpoint(bound.Network(), bound.String())
			mu.Lock()
			index[nd.Router()] = i
			mu.Unlock()
		}
		start := time.Now()
		for j := range n {
			for i := range j {
				if err := nodes[j].Transport().Connect(ctx, bounds[i], nodes[i].Router()); err != nil {
					return 0, err
				}
			}
		}
		select {
		case <-all:
		case <-ctx.Done():
			mu.Lock()
			got := len(seen)
			mu.Unlock()
			return 0, fmt.Errorf("%w, with %d of %d node pairs synced", ctx.Err(), got, n*(n-1))
		}
		d := time.Since(start)
		for i, nd := range nodes {
			learned := nd.Transport().Learned()
			for j, peer := range nodes {
				if i != j && len(learned[peer.Router()]) != o.meshEng {
					return 0, fmt.Errorf("node %d learned %d of node %d's %d engines", i, len(learned[peer.Router()]), j, o.meshEng)
				}
			}
		}
		return d, nil
	})
}
