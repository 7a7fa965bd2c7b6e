package specpeer_test

import (
	"context"
	"crypto/ed25519"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/enginekit/enginekit/examples/echo"
	"github.com/enginekit/enginekit/keyholder"
	"github.com/enginekit/enginekit/netconn"
	"github.com/enginekit/enginekit/node"
	"github.com/enginekit/enginekit/payload"
	"github.com/enginekit/enginekit/test/specpeer"
	"github.com/enginekit/enginekit/transport"
	"github.com/fxamacker/cbor/v2"
)

// wait bounds every wait of the test; nothing normally comes near it.
const wait = 20 * time.Second

// TestAgainstNode runs the spec peer against a real enginekit node with an
// echo engine, in both auth modes: TLS and hellos, the node's learn burst,
// teaching it an engine, a call, casts (with tampered and replayed
// batches) and a clean close.
func TestAgainstNode(t *testing.T) {
	for _, m := range []struct {
		auth netconn.Auth
		mode byte
	}{{netconn.Signatures, specpeer.ModeSignatures}, {netconn.MACs, specpeer.ModeMACs}} {
		t.Run(m.auth.String(), func(t *testing.T) { againstNode(t, m.auth, m.mode) })
	}
}

type events struct {
	learned chan keyholder.Address
	forgot  chan keyholder.Address
	synced  chan keyholder.Address
	downs   chan keyholder.Address
}

func startNode(t *testing.T, auth netconn.Auth) (*node.Node, events) {
	t.Helper()
	ev := events{make(chan keyholder.Address, 16), make(chan keyholder.Address, 16), make(chan keyholder.Address, 16), make(chan keyholder.Address, 16)}
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	n, err := node.Start(ctx, node.Config{
		Name:     "spec",
		Register: []func(*payload.Registry) error{echo.Register},
		Engines:  []node.Engine{{Name: "echo", Factory: echo.New}},
		Listen:   []node.Listener{{Endpoint: "tcp://127.0.0.1:0", Accept: netconn.AcceptAny}},
		Transport: transport.Config{
			Auth:     auth,
			OnLearn:  func(e, _ keyholder.Address) { ev.learned <- e },
			OnForget: func(e keyholder.Address) { ev.forgot <- e },
			OnSynced: func(p keyholder.Address) { ev.synced <- p },
			OnConnection: func(p keyholder.Address, up bool, _ error) {
				if !up {
					ev.downs <- p
				}
			},
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), wait)
		defer cancel()
		if err := n.Stop(ctx); err != nil {
			t.Error(err)
		}
	})
	return n, ev
}

func receive[T any](t *testing.T, ch <-chan T, what string) T {
	t.Helper()
	select {
	case v := <-ch:
		return v
	case <-time.After(wait):
		t.Fatalf("no %s", what)
		panic("unreachable")
	}
}

// peer is the spec peer's side of the test: its keys and sequences.
type peer struct {
	t                 *testing.T
	c                 *specpeer.Conn
	router, engine    ed25519.PrivateKey
	routerSeq, engSeq uint64
	ref               uint64
	replies           map[uint64]reply // by ref, until awaited
}

func newKey(t *testing.T) ed25519.PrivateKey {
	_, k, err := ed25519.GenerateKey(nil)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func addrOf(k ed25519.PrivateKey) specpeer.Address {
	var a specpeer.Address
	copy(a[:], k.Public().(ed25519.PublicKey))
	return a
}

// seal seals envs from src at the next seqs of src (§7: one strictly
// increasing sequence per src).
func (p *peer) seal(fromEngine bool, envs ...specpeer.Envelope) []byte {
	p.t.Helper()
	key, seq := p.router, &p.routerSeq
	if fromEngine {
		key, seq = p.engine, &p.engSeq
	}
	b, err := p.c.Seal(key, *seq, envs)
	if err != nil {
		p.t.Fatal(err)
	}
	*seq += uint64(len(envs))
	return b
}

func (p *peer) send(body []byte) {
	p.t.Helper()
	if err := p.c.WriteFrame(specpeer.FrameBatch, body); err != nil {
		p.t.Fatal(err)
	}
}

func payloadOf(t *testing.T, name string, v any) []byte {
	t.Helper()
	b, err := specpeer.EncodePayload(name, v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// reply is a reply envelope received.
type reply struct {
	src specpeer.Address
	specpeer.Reply
}

// startCall sends a call from the peer's engine to dst and returns its ref.
func (p *peer) startCall(dst specpeer.Address, deadline time.Time, name string, v any) uint64 {
	p.t.Helper()
	p.ref++
	var dl int64 // 0: none (§4)
	if !deadline.IsZero() {
		dl = deadline.UnixNano()
	}
	p.send(p.seal(true, specpeer.Envelope{Kind: specpeer.KindCall, Dst: dst, Ref: p.ref, Deadline: dl, Payload: payloadOf(p.t, name, v)}))
	return p.ref
}

// stash keeps a reply envelope of b for await; it reports whether e was one.
func (p *peer) stash(b specpeer.Batch, e specpeer.Envelope) bool {
	p.t.Helper()
	if e.Kind != specpeer.KindReply {
		return false
	}
	if e.Dst != addrOf(p.engine) {
		p.t.Fatalf("reply to %v, not to our engine", e.Dst)
	}
	r := reply{src: b.Src}
	if err := specpeer.DecodeControl(e.Payload, &r.Reply); err != nil {
		p.t.Fatalf("reply %x: %v", e.Payload, err)
	}
	if _, dup := p.replies[e.Ref]; dup {
		p.t.Fatalf("two replies with ref %d", e.Ref)
	}
	p.replies[e.Ref] = r
	return true
}

// await reads until the reply with ref has come; Recv checked its tag and
// seq.
func (p *peer) await(ref uint64) reply {
	p.t.Helper()
	for {
		if r, ok := p.replies[ref]; ok {
			return r
		}
		b, err := p.c.Recv()
		if err != nil {
			p.t.Fatalf("waiting for the reply to %d: %v", ref, err)
		}
		for _, e := range b.Envelopes {
			if !p.stash(b, e) {
				p.t.Fatalf("unexpected kind %d from %v", e.Kind, b.Src)
			}
		}
	}
}

// call is a call to dst answered by dst itself.
func (p *peer) call(dst specpeer.Address, name string, v any) specpeer.Reply {
	p.t.Helper()
	r := p.await(p.startCall(dst, time.Now().Add(wait), name, v))
	if r.src != dst {
		p.t.Fatalf("reply from %v, want %v", r.src, dst)
	}
	return r.Reply
}

// value decodes a reply's §9 payload of the given name into v.
func value(t *testing.T, r specpeer.Reply, name string, v any) {
	t.Helper()
	if r.Error != nil {
		t.Fatalf("reply error %d %q", r.Error.Code, r.Error.Message)
	}
	got, raw, err := specpeer.DecodePayload(r.Value)
	if err != nil || got != name {
		t.Fatalf("reply payload %x: name %q, %v", r.Value, got, err)
	}
	if err := cbor.Unmarshal(raw, v); err != nil {
		t.Fatal(err)
	}
}

func (p *peer) count(echoEngine specpeer.Address) int64 {
	p.t.Helper()
	var n int64
	r := p.await(p.startCall(echoEngine, time.Time{}, "echo.Count", map[string]any{}))
	if r.src != echoEngine {
		p.t.Fatalf("count reply from %v", r.src)
	}
	value(p.t, r.Reply, "int64", &n)
	return n
}

func againstNode(t *testing.T, auth netconn.Auth, mode byte) {
	n, ev := startNode(t, auth)
	nodeRouter := specpeer.Address(n.Router())
	ea, ok := n.Engine("echo")
	if !ok {
		t.Fatal("no echo engine")
	}
	echoEngine := specpeer.Address(ea)

	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	p := &peer{t: t, router: newKey(t), engine: newKey(t), replies: map[uint64]reply{}}
	now := uint64(time.Now().UnixNano())
	p.routerSeq, p.engSeq = now, now

	// 1. A dial pinning another router key is refused (§1).
	if c, err := specpeer.Dial(ctx, hostPort(t, n), addrOf(newKey(t)), specpeer.Config{Router: p.router, Mode: mode}); err == nil {
		_ = c.Close()
		t.Fatal("connected to a node whose router is not the pinned one")
	}
	// ... and one in the other auth mode gets GOAWAY code 2 (§3).
	_, err := specpeer.Dial(ctx, hostPort(t, n), nodeRouter, specpeer.Config{Router: p.router, Mode: 3 - mode})
	var ga *specpeer.GoawayError
	if !errors.As(err, &ga) || ga.Code != 2 {
		t.Fatalf("hello in the other mode: %v, want GOAWAY 2", err)
	}

	// 1. TLS 1.3, ALPN, pinned router, hellos, channel secret.
	c, err := specpeer.Dial(ctx, hostPort(t, n), nodeRouter, specpeer.Config{Router: p.router, Mode: mode})
	if err != nil {
		t.Fatal(err)
	}
	p.c = c
	defer func() {
		_ = c.SetDeadline(time.Now()) // a failed test does not wait for a clean close
		_ = c.Close()
	}()
	_ = c.SetDeadline(time.Now().Add(wait))
	if mode == specpeer.ModeMACs && len(c.Secret()) != 32 {
		t.Fatalf("channel secret of %d bytes", len(c.Secret()))
	}

	// 3. Teach the node our engine, then our end-of-burst marker, both from
	// our router in one batch.
	me := addrOf(p.engine)
	learn, err := specpeer.EncodeControl(specpeer.Learn{Engine: me[:], Proof: specpeer.Prove(p.engine, c.Me()), Name: "specpeer"})
	if err != nil {
		t.Fatal(err)
	}
	p.send(p.seal(false,
		specpeer.Envelope{Kind: specpeer.KindLearn, Dst: nodeRouter, Payload: learn},
		specpeer.Envelope{Kind: specpeer.KindSynced, Dst: nodeRouter},
	))

	// A call from our engine right after its learn, before the node's burst
	// is read: the node handles a connection's envelopes in order, so the
	// call does not overtake the learn ("Control payloads").
	early := p.startCall(echoEngine, time.Time{}, "echo.Echo", map[string]string{"Text": "early"})

	// 2. The node's burst: learn/learns from its router, each proof checked,
	// until synced. Recv has checked every tag and seq. The early call's
	// reply may come meanwhile.
	learned := map[specpeer.Address]bool{}
	for synced := false; !synced; {
		b, err := c.Recv()
		if err != nil {
			t.Fatalf("burst: %v", err)
		}
		for _, e := range b.Envelopes {
			if p.stash(b, e) {
				continue
			}
			var ls []specpeer.Learn
			switch e.Kind {
			case specpeer.KindLearn:
				l, err := specpeer.DecodeLearn(e.Payload)
				if err != nil {
					t.Fatal(err)
				}
				ls = []specpeer.Learn{l}
			case specpeer.KindLearns:
				if ls, err = specpeer.DecodeLearns(e.Payload); err != nil {
					t.Fatal(err)
				}
			case specpeer.KindSynced:
				synced = true
				if len(e.Payload) > 0 {
					var s specpeer.Synced
					if err := specpeer.DecodeControl(e.Payload, &s); err != nil {
						t.Errorf("synced payload %x: %v", e.Payload, err)
					}
				}
			default:
				t.Fatalf("kind %d in the burst", e.Kind)
			}
			if b.Src != nodeRouter {
				t.Fatalf("kind %d from %v, not the node's router", e.Kind, b.Src)
			}
			for _, l := range ls {
				a := specpeer.Address(l.Engine)
				if !specpeer.VerifyProof(nodeRouter, a, l.Proof) {
					t.Fatalf("bad proof for %v", a)
				}
				learned[a] = true
			}
		}
	}
	if !learned[echoEngine] {
		t.Fatalf("the burst did not teach the echo engine %v: %v", echoEngine, learned)
	}
	if got := receive(t, ev.learned, "learn of our engine"); got != keyholder.Address(me) {
		t.Fatalf("node learned %v, want %v", got, me)
	}
	if got := receive(t, ev.synced, "our synced"); got != keyholder.Address(c.Me()) {
		t.Fatalf("synced from %v, want %v", got, c.Me())
	}

	// 4. Calls to the echo engine with a §9 payload; the reply's tag and seq
	// are checked by Recv.
	var echoed struct{ Text string }
	if r := p.await(early); r.src != echoEngine {
		t.Fatalf("early reply from %v", r.src)
	} else if value(t, r.Reply, "echo.Echo", &echoed); echoed.Text != "early" {
		t.Fatalf("early call echoed %q", echoed.Text)
	}
	value(t, p.call(echoEngine, "echo.Echo", map[string]string{"Text": "hello from the spec"}), "echo.Echo", &echoed)
	if echoed.Text != "hello from the spec" {
		t.Fatalf("echoed %q", echoed.Text)
	}
	// An unknown name is an error for that envelope only (§9): code 9, bad
	// request, from the engine called ("reply").
	if r := p.call(echoEngine, "specpeer.Unknown", 1); r.Error == nil || r.Error.Code != 9 {
		t.Fatalf("unknown name: %+v, want error code 9", r)
	}
	// A call to an engine the node does not run is answered by its router
	// with code 1, no such process ("reply").
	if r := p.await(p.startCall(addrOf(newKey(t)), time.Now().Add(wait), "echo.Count", map[string]any{})); r.src != nodeRouter || r.Error == nil || r.Error.Code != 1 {
		t.Fatalf("call to no engine: from %v, %+v; want code 1 from the router", r.src, r.Reply)
	}

	// 5. Casts: one good one, delivered once even when replayed; tampered
	// ones dropped; the node stays up and a later cast counts.
	cast := func() specpeer.Envelope {
		return specpeer.Envelope{Kind: specpeer.KindCast, Dst: echoEngine, Payload: payloadOf(t, "echo.Echo", map[string]string{"Text": "cast"})}
	}
	good := p.seal(true, cast())
	p.send(good)
	if got := p.count(echoEngine); got != 1 {
		t.Fatalf("count %d after one cast, want 1", got)
	}
	p.send(good) // replay
	flipBody := p.seal(true, cast())
	flipBody[len(flipBody)-specpeer.TagSize(mode)-2] ^= 0x01 // in the payload: still well-formed
	p.send(flipBody)
	flipTag := p.seal(true, cast())
	flipTag[len(flipTag)-1] ^= 0x80
	p.send(flipTag)
	if got := p.count(echoEngine); got != 1 {
		t.Fatalf("count %d after a replayed and two tampered casts, want 1", got)
	}
	if mode == specpeer.ModeMACs {
		// In MAC mode anyone on the connection can tag for any src (§6), but
		// no peer may speak for the node's router or engines: such batches
		// are dropped like ones whose tag fails (§6, Receiving 1).
		for _, src := range []specpeer.Address{echoEngine, nodeRouter} {
			forged, err := c.SealAs(src, nil, uint64(time.Now().UnixNano())+1<<40, []specpeer.Envelope{cast()})
			if err != nil {
				t.Fatal(err)
			}
			p.send(forged)
		}
	}
	// A cast from an engine the node did not learn on this connection is
	// dropped too ("Control payloads", learn).
	stranger := newKey(t)
	p.send(must(c.Seal(stranger, uint64(time.Now().UnixNano()), []specpeer.Envelope{cast()})))
	p.send(p.seal(true, cast(), cast()))
	if got := p.count(echoEngine); got != 3 {
		t.Fatalf("count %d after two more casts, want 3", got)
	}
	if d := n.Transport().Stats().DroppedUnknownSrc; d != 1 {
		t.Errorf("node dropped %d envelopes as unknown_src, want 1 (the stranger's)", d)
	}
	select {
	case <-n.Done():
		t.Fatalf("node ended: %v", n.Err())
	default:
	}

	// A learn whose proof is for another router is dropped (bad_proof); a
	// forget of our engine removes its proxy ("Control payloads").
	other := newKey(t)
	oa := addrOf(other)
	badLearn, err := specpeer.EncodeControl(specpeer.Learn{Engine: oa[:], Proof: specpeer.Prove(other, nodeRouter)})
	if err != nil {
		t.Fatal(err)
	}
	forget, err := specpeer.EncodeControl(specpeer.Forget{Engine: me[:]})
	if err != nil {
		t.Fatal(err)
	}
	p.send(p.seal(false,
		specpeer.Envelope{Kind: specpeer.KindLearn, Dst: nodeRouter, Payload: badLearn},
		specpeer.Envelope{Kind: specpeer.KindForget, Dst: nodeRouter, Payload: forget},
	))
	if got := receive(t, ev.forgot, "forget of our engine"); got != keyholder.Address(me) {
		t.Fatalf("node forgot %v, want %v", got, me)
	}
	if st := n.Transport().Stats(); st.DroppedBadProof != 1 {
		t.Errorf("node dropped %d learns for bad proofs, want 1", st.DroppedBadProof)
	}
	select {
	case e := <-ev.learned:
		t.Fatalf("node learned %v", e)
	default:
	}

	// 6. Close with GOAWAY code 0; the node sees the connection go.
	if err := c.Close(); err != nil {
		t.Errorf("close: %v", err)
	}
	if got := receive(t, ev.downs, "connection down"); got != keyholder.Address(c.Me()) {
		t.Fatalf("down: %v, want %v", got, c.Me())
	}
}

func must(b []byte, err error) []byte {
	if err != nil {
		panic(err)
	}
	return b
}

func hostPort(t *testing.T, n *node.Node) string {
	t.Helper()
	for _, ep := range n.ListenAddrs() {
		if h, ok := strings.CutPrefix(ep, "tcp://"); ok {
			return h
		}
	}
	t.Fatalf("no tcp listener in %v", n.ListenAddrs())
	return ""
}
