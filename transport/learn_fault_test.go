package transport

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/enginekit/enginekit/genserver"
	"github.com/enginekit/enginekit/keyholder"
	"github.com/enginekit/enginekit/netconn"
	"github.com/enginekit/enginekit/payload"
	"github.com/enginekit/enginekit/wire"
)

// The learn pipeline (proofs.go) under faults. Node a connects to node b
// with no engine of its own; the test then plays a's reader on b's side:
// it hands b's deliver crafted Learns envelopes of a's engines (some with
// bad proofs), exactly as b's connection reader would, and cuts, closes or
// follows them with other envelopes while the pipeline is busy. b's real
// reader has nothing to deliver meanwhile (a sends no envelope).

type learnNode struct {
	tr     *Transport
	sys    *genserver.System
	kh     *keyholder.Keyholder
	synced chan keyholder.Address
	downs  chan keyholder.Address
}

func newLearnNode(t *testing.T, name string, opt func(*Config)) *learnNode {
	t.Helper()
	n := &learnNode{synced: make(chan keyholder.Address, 4), downs: make(chan keyholder.Address, 4)}
	n.sys = genserver.NewSystem(genserver.Config{Name: name})
	var err error
	if n.kh, err = keyholder.New(keyholder.Config{}); err != nil {
		t.Fatal(err)
	}
	reg, err := payload.NewRegistry(payload.Limits{})
	if err != nil {
		t.Fatal(err)
	}
	cfg := DefaultConfig()
	cfg.System, cfg.Keyholder, cfg.Registry, cfg.Auth = n.sys, n.kh, reg, netconn.MACs
	cfg.OnSynced = func(p keyholder.Address) { n.synced <- p }
	cfg.OnConnection = func(p keyholder.Address, up bool, _ error) {
		if !up {
			n.downs <- p
		}
	}
	if opt != nil {
		opt(&cfg)
	}
	if n.tr, err = New(cfg); err != nil {
		t.Fatal(err)
	}
	if err := n.tr.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = n.tr.Close()
		_ = n.sys.Stop(context.Background())
	})
	return n
}

// learnsPer is how many learns the tests' Learns envelopes carry.
const learnsPer = 100

func within[T any](t *testing.T, ch <-chan T, what string) T {
	t.Helper()
	select {
	case v := <-ch:
		return v
	case <-time.After(20 * time.Second):
		t.Fatalf("no %s within 20s", what)
		var zero T
		return zero
	}
}

// learnPair connects a to b over an in-memory pipe and returns b's side
// of the connection once b has a's end-of-burst marker.
func learnPair(t *testing.T, optB func(*Config)) (a, b *learnNode, pl *netconn.PipeListener, c *netconn.Conn, r *route) {
	t.Helper()
	a, b = newLearnNode(t, "a", nil), newLearnNode(t, "b", optB)
	pl = netconn.NewPipeListener("b")
	if _, err := b.tr.ListenOn(context.Background(), pl, netconn.AcceptAny); err != nil {
		t.Fatal(err)
	}
	c, r = redial(t, a, b, pl, nil)
	return a, b, pl, c, r
}

// redial connects a to b again and returns b's side of the new connection
// (not old).
func redial(t *testing.T, a, b *learnNode, pl *netconn.PipeListener, old *netconn.Conn) (*netconn.Conn, *route) {
	t.Helper()
	if err := a.tr.ConnectWith(context.Background(), fmt.Sprintf("b%p", old), pl.Dial, b.kh.Router()); err != nil {
		t.Fatal(err)
	}
	if p := within(t, b.synced, "synced"); p != a.kh.Router() {
		t.Fatalf("synced from %v", p)
	}
	var c *netconn.Conn
	var r *route
	b.tr.routes.Range(func(k, v any) bool {
		if k.(*netconn.Conn) != old {
			c, r = k.(*netconn.Conn), v.(*route)
		}
		return true
	})
	if r == nil {
		t.Fatal("no route on b")
	}
	return c, r
}

// learnBatch makes n of a's engines, every badEvery-th one (if not 0) with
// a proof that does not verify, and returns the Learns envelopes (of
// learnsPer learns: more than inlineLearns, so they go through the
// pipeline), which engines are good, and the engines in order.
func learnBatch(t *testing.T, a *learnNode, n, badEvery int) (envs []wire.Envelope, good map[keyholder.Address]bool, order []keyholder.Address) {
	t.Helper()
	good = make(map[keyholder.Address]bool, n)
	var learns [][]byte
	for i := range n {
		e, err := a.kh.NewEngine(fmt.Sprintf("e%d", i))
		if err != nil {
			t.Fatal(err)
		}
		proof, err := a.kh.EngineProof(e)
		if err != nil {
			t.Fatal(err)
		}
		ok := badEvery == 0 || i%badEvery != badEvery-1
		if !ok {
			proof[7] ^= 0x40
		}
		good[e] = ok
		order = append(order, e)
		b, err := ctlEnc.Marshal(learnMsg{Engine: e, Proof: proof, Name: fmt.Sprintf("e%d", i)})
		if err != nil {
			t.Fatal(err)
		}
		learns = append(learns, b)
	}
	for len(learns) > 0 {
		k := min(len(learns), learnsPer)
		envs = append(envs, wire.Envelope{Kind: wire.Learns, Src: a.kh.Router(), Dst: a.kh.Router(),
			Payload: appendLearns(nil, learns[:k])})
		learns = learns[k:]
	}
	return envs, good, order
}

// feed delivers envs on b's connection c, as its reader would.
func feed(b *learnNode, c *netconn.Conn, envs []wire.Envelope) {
	for i := range envs {
		env := envs[i]
		env.Dst = b.kh.Router()
		b.tr.deliver(c, &env)
	}
}

// coreState returns, under b's lock, the engines b has a proxy for and
// how many routes each has.
func coreState(b *learnNode) map[keyholder.Address]int {
	b.tr.mu.Lock()
	defer b.tr.mu.Unlock()
	m := make(map[keyholder.Address]int, len(b.tr.core.proxies))
	for e, px := range b.tr.core.proxies {
		m[e] = len(px.routes)
	}
	return m
}

// A burst with bad proofs mixed in: the bad ones are counted and get no
// proxy, every good one is learned; a forget and a message that follow
// the burst at once are handled after it (not refused as unknown).
func TestLearnBurstBadProofsThenForgetAndMessage(t *testing.T) {
	a, b, _, c, _ := learnPair(t, nil)
	const n, badEvery = 700, 37
	envs, good, order := learnBatch(t, a, n, badEvery)
	feed(b, c, envs)
	// Right behind the burst: a forget of the last good engine, and a cast
	// from it (to no engine of b's) before that.
	var last keyholder.Address
	for i := n - 1; !good[last]; i-- {
		last = order[i]
	}
	cast := wire.Envelope{Kind: wire.Cast, Src: last, Dst: keyholder.Address{9}, Payload: []byte{0xf6}}
	b.tr.deliver(c, &cast)
	fb, _ := ctlEnc.Marshal(forgetMsg{Engine: last})
	forget := wire.Envelope{Kind: wire.Forget, Src: a.kh.Router(), Dst: b.kh.Router(), Payload: fb}
	b.tr.deliver(c, &forget)

	bad := 0
	for _, ok := range good {
		if !ok {
			bad++
		}
	}
	st := b.tr.Stats()
	if st.DroppedBadProof != uint64(bad) {
		t.Fatalf("bad_proof %d, want %d", st.DroppedBadProof, bad)
	}
	if st.DroppedUnknownSrc != 0 || st.Drops["forget_unknown"] != 0 {
		t.Fatalf("a message or forget overtook its learn: unknown_src %d, forget_unknown %d", st.DroppedUnknownSrc, st.Drops["forget_unknown"])
	}
	if st.DroppedNoEngine != 1 {
		t.Fatalf("the cast after the burst: no_engine %d, want 1 (%v)", st.DroppedNoEngine, st.Drops)
	}
	procs := coreState(b)
	for e, ok := range good {
		_, has := procs[e]
		if e == last {
			continue
		}
		if has != ok {
			t.Fatalf("engine %v (proof good %v): proxy %v", e, ok, has)
		}
	}
	if routes, has := procs[last]; has && routes != 0 {
		t.Fatalf("forgotten engine still has %d routes", routes)
	}
}

// The per-peer learn bound reached in the middle of the pipeline: exactly
// the learns past it are counted learn_limit.
func TestLearnLimitMidPipeline(t *testing.T) {
	const limit = 550 // in the middle of the 6th envelope
	a, b, _, c, _ := learnPair(t, func(cfg *Config) { cfg.MaxLearnedPerPeer = limit })
	envs, _, _ := learnBatch(t, a, 800, 0)
	feed(b, c, envs)
	b.tr.routeOf(c).learnsApplied()
	if got := b.tr.Stats().Drops["learn_limit"]; got != 800-limit {
		t.Fatalf("learn_limit %d, want %d", got, 800-limit)
	}
	if got := len(coreState(b)); got != limit {
		t.Fatalf("%d proxies, want %d", got, limit)
	}
}

// A connection cut while the pipeline has jobs in flight: connDown waits
// for them, the core keeps no route of the dead connection and no proxy of
// a bad proof, and a new connection relearns everything (from remembered
// proofs). goleak (TestMain) checks that no goroutine is left.
func TestLearnPipelineCutAndRelearn(t *testing.T) {
	a, b, pl, c, r := learnPair(t, func(cfg *Config) { cfg.ForgetGrace = time.Hour })
	const n, badEvery = 1000, 41
	envs, good, order := learnBatch(t, a, n, badEvery)
	feed(b, c, envs[:7]) // the pipeline is busy: no barrier after it
	c.CloseAsync()
	if p := within(t, b.downs, "connection down"); p != a.kh.Router() {
		t.Fatalf("down: %v", p)
	}
	if busy := r.learnBusy.Load(); busy < 0 {
		t.Fatalf("learnBusy %d", busy)
	}
	b.tr.mu.Lock()
	_, live := b.tr.core.conns[r.id]
	b.tr.mu.Unlock()
	if live {
		t.Fatal("the core keeps the dead connection")
	}
	for e, routes := range coreState(b) {
		if !good[e] {
			t.Fatalf("proxy for %v, whose proof is bad", e)
		}
		if routes != 0 {
			t.Fatalf("%v keeps %d routes after the cut", e, routes)
		}
	}
	checks := b.tr.Stats().ProofsVerified

	c2, _ := redial(t, a, b, pl, c)
	feed(b, c2, envs)
	b.tr.routeOf(c2).learnsApplied()
	procs := coreState(b)
	nGood := 0
	for e, ok := range good {
		if ok {
			nGood++
			if procs[e] != 1 {
				t.Fatalf("after relearn %v has %d routes", e, procs[e])
			}
		} else if _, has := procs[e]; has {
			t.Fatalf("after relearn, a proxy for bad %v", e)
		}
	}
	if len(procs) != nGood {
		t.Fatalf("%d proxies, want %d", len(procs), nGood)
	}
	// Proofs checked before the cut are remembered (connDown waits for the
	// verifiers): the relearn checks only the bad ones and those never fed.
	want := 0
	for i, e := range order {
		if i >= 7*learnsPer || !good[e] {
			want++
		}
	}
	if again := b.tr.Stats().ProofsVerified - checks; again != uint64(want) {
		t.Fatalf("relearn checked %d proofs again, want %d", again, want)
	}
}

// Transport.Close while the pipeline has jobs in flight returns (goleak in
// TestMain checks nothing is left).
func TestCloseDuringLearnBurst(t *testing.T) {
	a, b, _, c, _ := learnPair(t, nil)
	envs, _, _ := learnBatch(t, a, 800, 50)
	feed(b, c, envs)
	done := make(chan error, 1)
	go func() { done <- b.tr.Close() }()
	if err := within(t, done, "Close"); err != nil {
		t.Fatal(err)
	}
}

// Two connections to the same peer learning the same engines at once:
// each engine ends with one proxy and a route on each connection, and no
// learn is refused.
func TestTwoConnectionsLearnAtOnce(t *testing.T) {
	a, b, pl, c1, _ := learnPair(t, nil)
	c2, _ := redial(t, a, b, pl, c1)
	envs, good, _ := learnBatch(t, a, 650, 0)
	var wg sync.WaitGroup
	for _, c := range []*netconn.Conn{c1, c2} {
		wg.Go(func() {
			feed(b, c, envs)
			b.tr.routeOf(c).learnsApplied()
		})
	}
	wg.Wait()
	procs := coreState(b)
	if len(procs) != len(good) {
		t.Fatalf("%d proxies, want %d", len(procs), len(good))
	}
	for e, routes := range procs {
		if routes != 2 {
			t.Fatalf("%v has %d routes, want 2", e, routes)
		}
	}
	if st := b.tr.Stats(); st.DroppedBadProof != 0 || st.LearnRefused != 0 {
		t.Fatalf("bad_proof %d, refused %d", st.DroppedBadProof, st.LearnRefused)
	}
}
