package test

import (
	"context"
	"fmt"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/enginekit/enginekit/genserver"
	"github.com/enginekit/enginekit/keyholder"
	"github.com/enginekit/enginekit/netconn"
	"github.com/enginekit/enginekit/payload"
	"github.com/enginekit/enginekit/transport"
)

// The request and reply types the test engines exchange, registered on
// every node under the same names.
type (
	Echo     struct{ Text string }
	Hold     struct{ Key string }        // deferred: answered when Release comes
	Release  struct{ Key, Value string } // cast
	HandOff  struct{ Key string }        // deferred; the From goes to a helper engine
	WhoCalls struct{}                    // replies From.Address()
	Note     struct{ N int }             // casts and sends, recorded in order
	Notes    struct{}                    // returns the recorded notes
	Crash    struct{}
)

func registry(t testing.TB) *payload.Registry {
	reg, err := payload.NewRegistry(payload.Limits{})
	if err != nil {
		t.Fatal(err)
	}
	must(t, payload.Register[Echo](reg, "test.Echo"))
	must(t, payload.Register[Hold](reg, "test.Hold"))
	must(t, payload.Register[Release](reg, "test.Release"))
	must(t, payload.Register[HandOff](reg, "test.HandOff"))
	must(t, payload.Register[WhoCalls](reg, "test.WhoCalls"))
	must(t, payload.Register[Note](reg, "test.Note"))
	must(t, payload.Register[Notes](reg, "test.Notes"))
	must(t, payload.Register[Crash](reg, "test.Crash"))
	must(t, payload.Register[[]int](reg, "test.ints"))
	return reg
}

func must(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// engine is the test engine: echo, deferred replies, hand-offs, notes.
type engine struct {
	held    map[string][]genserver.From
	helper  genserver.Dest
	notes   []int
	holding chan<- struct{} // gets a token per Hold, when set
}

func newEngine(helper genserver.Dest) func() genserver.Server {
	return func() genserver.Server { return &engine{held: map[string][]genserver.From{}, helper: helper} }
}

// newHoldingEngine is newEngine that tells each Hold it receives.
func newHoldingEngine(holding chan<- struct{}) func() genserver.Server {
	return func() genserver.Server { return &engine{held: map[string][]genserver.From{}, holding: holding} }
}

func (e *engine) HandleCall(p *genserver.Process, from genserver.From, req any) (any, error) {
	switch r := req.(type) {
	case Echo:
		return r, nil
	case Hold:
		e.held[r.Key] = append(e.held[r.Key], from)
		if e.holding != nil {
			e.holding <- struct{}{}
		}
		return genserver.NoReply, nil
	case HandOff:
		_ = p.Cast(e.helper, handOff{r.Key, from})
		return genserver.NoReply, nil
	case WhoCalls:
		return from.Address(), nil
	case Notes:
		return e.notes, nil
	case Crash:
		panic("asked to crash")
	}
	return nil, fmt.Errorf("unknown request %T", req)
}

type handOff struct {
	key  string
	from genserver.From
}

func (e *engine) HandleCast(p *genserver.Process, msg any) {
	switch m := msg.(type) {
	case Release:
		for _, f := range e.held[m.Key] {
			genserver.Reply(f, m.Value, nil)
		}
		delete(e.held, m.Key)
	case handOff: // we are the helper: answer someone else's call
		genserver.Reply(m.from, "answered by the helper for "+m.key, nil)
	case Note:
		e.notes = append(e.notes, m.N)
	}
}

func (e *engine) HandleInfo(p *genserver.Process, msg any) {
	if n, ok := msg.(Note); ok {
		e.notes = append(e.notes, -n.N) // infos recorded negated, to tell them from casts
	}
}

// node is one enginekit node: a System, a keyholder and a transport.
type node struct {
	t    testing.TB
	name string
	sys  *genserver.System
	kh   *keyholder.Keyholder
	tr   *transport.Transport

	mu      sync.Mutex
	learned map[keyholder.Address]chan struct{}
	forgot  map[keyholder.Address]chan struct{}
	forgets map[keyholder.Address]int // OnForget calls per engine
	ups     chan keyholder.Address
	downs   chan keyholder.Address
}

type setup struct {
	network string // "tcp" or "unix"
	auth    netconn.Auth
}

func setups() []setup {
	return []setup{{"tcp", netconn.Signatures}, {"tcp", netconn.MACs}, {"unix", netconn.Signatures}, {"unix", netconn.MACs}}
}

func (s setup) String() string { return s.network + "/" + s.auth.String() }

func eachSetup(t *testing.T, f func(t *testing.T, s setup)) {
	for _, s := range setups() {
		t.Run(s.String(), func(t *testing.T) { f(t, s) })
	}
}

func newNode(t testing.TB, name string, s setup, tweak ...func(*transport.Config)) *node {
	t.Helper()
	kh, err := keyholder.New(keyholder.Config{})
	must(t, err)
	n := &node{
		t: t, name: name, kh: kh,
		sys:     genserver.NewSystem(genserver.Config{Name: name}),
		learned: map[keyholder.Address]chan struct{}{},
		forgot:  map[keyholder.Address]chan struct{}{},
		forgets: map[keyholder.Address]int{},
		ups:     make(chan keyholder.Address, 100),
		downs:   make(chan keyholder.Address, 100),
	}
	cfg := transport.Config{
		System: n.sys, Keyholder: kh, Registry: registry(t), Auth: s.auth,
		ForgetGrace: 200 * time.Millisecond,
		OnLearn:     func(e, _ keyholder.Address) { close(n.event(n.learned, e)) },
		OnForget: func(e keyholder.Address) {
			n.mu.Lock()
			n.forgets[e]++
			n.mu.Unlock()
			close(n.event(n.forgot, e))
		},
		OnConnection: func(peer keyholder.Address, up bool, _ error) {
			if up {
				n.ups <- peer
			} else {
				n.downs <- peer
			}
		},
	}
	cfg.Net.Backoff = netconn.Backoff{Min: 5 * time.Millisecond, Max: 50 * time.Millisecond}
	for _, f := range tweak {
		f(&cfg)
	}
	n.tr, err = transport.New(cfg)
	must(t, err)
	must(t, n.tr.Start())
	t.Cleanup(func() {
		must(t, n.tr.Close())
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		must(t, n.sys.Stop(ctx))
	})
	return n
}

// event returns the channel for a's next learn (or forget), creating it;
// receivers wait on it, the callback closes it and a later event gets a
// fresh one.
func (n *node) event(m map[keyholder.Address]chan struct{}, a keyholder.Address) chan struct{} {
	n.mu.Lock()
	defer n.mu.Unlock()
	ch, ok := m[a]
	if !ok {
		ch = make(chan struct{})
		m[a] = ch
	} else {
		delete(m, a) // the caller closes this one; the next event gets a new channel
	}
	return ch
}

// waitLearn waits until n has learned engine a.
func (n *node) waitLearn(a keyholder.Address) { n.wait(n.learned, a, "learn") }

// waitForget waits until n's proxy of a is gone.
func (n *node) waitForget(a keyholder.Address) { n.wait(n.forgot, a, "forget") }

func (n *node) wait(m map[keyholder.Address]chan struct{}, a keyholder.Address, what string) {
	n.t.Helper()
	n.mu.Lock()
	ch, ok := m[a]
	if !ok {
		ch = make(chan struct{})
		m[a] = ch
	}
	n.mu.Unlock()
	select {
	case <-ch:
	case <-time.After(20 * time.Second):
		n.t.Fatalf("%s: no %s of %v", n.name, what, a)
	}
}

// listen makes n accept connections on a fresh endpoint of s's network.
func (n *node) listen(s setup) string {
	n.t.Helper()
	ep := "tcp://127.0.0.1:0"
	if s.network == "unix" {
		ep = "unix://" + filepath.Join(n.t.TempDir(), n.name+".sock")
	}
	addr, err := n.tr.Listen(context.Background(), ep, netconn.AcceptAny)
	must(n.t, err)
	return transport.Endpoint(addr.Network(), addr.String())
}

// connect makes a dial b over s's network.
func connect(t testing.TB, a, b *node, s setup) {
	t.Helper()
	must(t, a.tr.Connect(context.Background(), b.listen(s), b.kh.Router()))
}

// spawnEngine starts an engine on n.
func (n *node) spawnEngine(name string, helper genserver.Dest) keyholder.Address {
	n.t.Helper()
	addr, _, err := n.tr.SpawnEngine(name, newEngine(helper))
	must(n.t, err)
	return addr
}

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func dest(a keyholder.Address) genserver.Dest { return genserver.Name(a.String()) }

// forgetCount returns how many times OnForget fired for e.
func (n *node) forgetCount(e keyholder.Address) int {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.forgets[e]
}
