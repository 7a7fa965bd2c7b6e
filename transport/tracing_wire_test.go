package transport_test

import (
	"bytes"
	"context"
	"testing"
	"time"

	"github.com/enginekit/enginekit/genserver"
	"github.com/enginekit/enginekit/keyholder"
	"github.com/enginekit/enginekit/netconn"
	"github.com/enginekit/enginekit/payload"
	"github.com/enginekit/enginekit/transport"
	"github.com/enginekit/enginekit/wire"
	"github.com/fxamacker/cbor/v2"
	"go.opentelemetry.io/otel/trace"
)

// barePeer is a netconn client with one engine, speaking the control
// payloads of wire/spec.md by hand: it learns its engine to the node,
// sends its synced marker with the payload given, and hands over the call
// envelopes and the synced marker it gets.
type barePeer struct {
	engine  keyholder.Address
	router  keyholder.Address
	conn    *netconn.Conn
	calls   chan wire.Envelope
	replies chan wire.Envelope
	synced  chan wire.Envelope
}

func dialBare(t *testing.T, n *tnode, endpoint string, syncedPayload []byte) *barePeer {
	t.Helper()
	kh, err := keyholder.New(keyholder.Config{})
	if err != nil {
		t.Fatal(err)
	}
	engine, err := kh.EnsureEngine("bare")
	if err != nil {
		t.Fatal(err)
	}
	proof, err := kh.EngineProof(engine)
	if err != nil {
		t.Fatal(err)
	}
	learn, err := cbor.Marshal(struct {
		Engine [32]byte `cbor:"1,keyasint"`
		Proof  []byte   `cbor:"2,keyasint"`
	}{engine, proof})
	if err != nil {
		t.Fatal(err)
	}
	p := &barePeer{engine: engine, router: kh.Router(), calls: make(chan wire.Envelope, 4), replies: make(chan wire.Envelope, 4), synced: make(chan wire.Envelope, 1)}
	up := make(chan *netconn.Conn, 1)
	cfg := netconn.DefaultConfig()
	cfg.Keyholder, cfg.Auth = kh, netconn.MACs
	cfg.OnUp = func(c *netconn.Conn) { up <- c }
	cfg.Deliver = func(_ *netconn.Conn, env *wire.Envelope) {
		switch env.Kind {
		case wire.Call:
			p.calls <- *env.Clone()
		case wire.Synced:
			p.synced <- *env.Clone()
		case wire.Reply:
			p.replies <- *env.Clone()
		}
	}
	_, address, _ := transport.ParseEndpoint(endpoint)
	d, err := netconn.NewDialer(cfg, "tcp", address, n.kh.Router())
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- d.Serve(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
	c := <-up
	p.conn = c
	for _, env := range []wire.Envelope{
		{Kind: wire.Learn, Src: kh.Router(), Dst: n.kh.Router(), Payload: learn},
		{Kind: wire.Synced, Src: kh.Router(), Dst: n.kh.Router(), Payload: syncedPayload},
	} {
		if err := c.Send(ctxT(t), &env); err != nil {
			t.Fatal(err)
		}
	}
	n.waitSynced(t, &tnode{kh: kh})
	return p
}

// The bytes on the wire: without the peer's trace/1 a call envelope is
// exactly what it was before tracing existed (flags 0, the §9 payload
// alone), Tracer or not; with it and a Tracer, flag bit 0 and a trace
// block naming the client span come first; without a Tracer a node's
// synced payload is empty and it flags nothing, whatever the peer says.
func TestTraceOnTheWire(t *testing.T) {
	reg, err := payload.NewRegistry(payload.Limits{})
	if err != nil {
		t.Fatal(err)
	}
	if err := payload.Register[Ping](reg, "test.Ping"); err != nil {
		t.Fatal(err)
	}
	plain, err := reg.Marshal(Ping{"hi"})
	if err != nil {
		t.Fatal(err)
	}
	traceOne := []byte{0xa1, 0x01, 0x81, 0x67, 't', 'r', 'a', 'c', 'e', '/', '1'}
	for _, c := range []struct {
		name      string
		tracer    bool
		announce  []byte
		wantBlock bool
	}{
		{"tracer, peer without the feature", true, nil, false},
		{"tracer, peer with it", true, traceOne, true},
		{"no tracer, peer with it", false, traceOne, false},
		{"no tracer, peer without it", false, nil, false},
	} {
		t.Run(c.name, func(t *testing.T) {
			sp := newSpans(t)
			var tr trace.Tracer
			if c.tracer {
				tr = sp.tracer()
			}
			a := newTNode(t, "a", withTracer(tr))
			peer := dialBare(t, a, a.listen(t), c.announce)
			syn := <-peer.synced
			if c.tracer != bytes.Equal(syn.Payload, traceOne) || !c.tracer && len(syn.Payload) != 0 {
				t.Fatalf("a's synced payload %x", syn.Payload)
			}
			ctx, root := sp.tracer().Start(ctxT(t), "caller")
			defer root.End()
			ctx, cancel := context.WithTimeout(ctx, 50*time.Millisecond)
			defer cancel()
			_, _ = a.sys.Call(ctx, genserver.Name(peer.engine.String()), Ping{"hi"}) // unanswered
			env := <-peer.calls
			if !c.wantBlock {
				if env.Flags != 0 || !bytes.Equal(env.Payload, plain) {
					t.Fatalf("flags %#x, payload %x; want 0, %x", env.Flags, env.Payload, plain)
				}
				return
			}
			if env.Flags != 0x01 || len(env.Payload) != 26+len(plain) || env.Payload[0] != 0 || !bytes.Equal(env.Payload[26:], plain) {
				t.Fatalf("flags %#x, payload %x", env.Flags, env.Payload)
			}
			client := sp.wait(t, trace.SpanKindClient) // ends at the deadline
			tid, sid := client.SpanContext().TraceID(), client.SpanContext().SpanID()
			if !bytes.Equal(env.Payload[1:17], tid[:]) || !bytes.Equal(env.Payload[17:25], sid[:]) || env.Payload[25] != 1 {
				t.Fatalf("block %x, client span %v", env.Payload[:26], client.SpanContext())
			}
			if tid != root.SpanContext().TraceID() {
				t.Fatal("the client span is not in the caller's trace")
			}
		})
	}
}

// A flagged call whose payload is too short for its trace block, or whose
// block has another version, is dropped and counted as malformed, and the
// caller is answered at once with bad request (code 9); a good block is
// cut and the call served.
func TestTraceBlockMalformedRefused(t *testing.T) {
	a := newTNode(t, "a", withTracer(newSpans(t).tracer()))
	e, _, err := a.tr.SpawnEngine("srv", func() genserver.Server { return server{} })
	if err != nil {
		t.Fatal(err)
	}
	peer := dialBare(t, a, a.listen(t), nil)
	reg, err := payload.NewRegistry(payload.Limits{})
	if err != nil {
		t.Fatal(err)
	}
	if err := payload.Register[Ping](reg, "test.Ping"); err != nil {
		t.Fatal(err)
	}
	plain, err := reg.Marshal(Ping{"hi"})
	if err != nil {
		t.Fatal(err)
	}
	good := append(append([]byte{0}, bytes.Repeat([]byte{7}, 25)...), plain...)
	v1 := append([]byte{1}, good[1:]...)
	for i, c := range []struct {
		payload []byte
		ok      bool
	}{{good[:25], false}, {v1, false}, {good, true}} {
		env := wire.Envelope{Kind: wire.Call, Flags: 0x01, Src: peer.router, Dst: e, Ref: uint64(i + 1),
			Deadline: time.Now().Add(time.Minute).UnixNano(), Payload: c.payload}
		if err := peer.conn.Send(ctxT(t), &env); err != nil {
			t.Fatal(err)
		}
		r := <-peer.replies
		var m struct {
			Value []byte      `cbor:"1,keyasint,omitempty"`
			Err   map[int]any `cbor:"2,keyasint,omitempty"`
		}
		if err := cbor.Unmarshal(r.Payload, &m); err != nil || r.Ref != uint64(i+1) {
			t.Fatalf("reply %d: %x, %v", i, r.Payload, err)
		}
		if c.ok != (m.Err == nil) || !c.ok && m.Err[1] != uint64(9) {
			t.Fatalf("call %d: reply %x", i, r.Payload)
		}
	}
	if st := a.tr.Stats(); st.DroppedMalformed != 2 {
		t.Fatalf("malformed drops %d, want 2", st.DroppedMalformed)
	}
}
