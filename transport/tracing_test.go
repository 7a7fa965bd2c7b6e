package transport_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/enginekit/enginekit/genserver"
	"github.com/enginekit/enginekit/transport"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"
)

// spans records the spans a node's tracer ends, synchronously, and tells
// each end on a channel so a test can wait for one.
type spans struct {
	*tracetest.SpanRecorder
	ended chan sdktrace.ReadOnlySpan
	tp    *sdktrace.TracerProvider
}

func (s *spans) OnEnd(sp sdktrace.ReadOnlySpan) {
	s.SpanRecorder.OnEnd(sp)
	s.ended <- sp
}

func newSpans(t *testing.T) *spans {
	s := &spans{SpanRecorder: tracetest.NewSpanRecorder(), ended: make(chan sdktrace.ReadOnlySpan, 64)}
	s.tp = sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(s), sdktrace.WithSampler(sdktrace.AlwaysSample()))
	t.Cleanup(func() { _ = s.tp.Shutdown(context.Background()) })
	return s
}

func (s *spans) tracer() trace.Tracer { return s.tp.Tracer("test") }

func withTracer(tr trace.Tracer) func(*transport.Config) {
	return func(c *transport.Config) { c.Tracer = tr }
}

// wait returns the next ended span of kind k (others are skipped).
func (s *spans) wait(t *testing.T, k trace.SpanKind) sdktrace.ReadOnlySpan {
	t.Helper()
	timeout := time.After(30 * time.Second)
	for {
		select {
		case sp := <-s.ended:
			if sp.SpanKind() == k {
				return sp
			}
		case <-timeout:
			t.Fatalf("no %v span ended", k)
			return nil
		}
	}
}

func attr(sp sdktrace.ReadOnlySpan, key string) string {
	for _, a := range sp.Attributes() {
		if string(a.Key) == key {
			return a.Value.String()
		}
	}
	return ""
}

// tracedServer answers Ping with itself, after a span of its own under
// the call's (From.Context); "fail" with an error; "hold" never (it hands
// the From to held).
type tracedServer struct {
	tr   trace.Tracer
	seen chan trace.SpanContext
	held chan genserver.From
}

func (s tracedServer) HandleCall(_ *genserver.Process, from genserver.From, req any) (any, error) {
	s.seen <- trace.SpanContextFromContext(from.Context())
	p, _ := req.(Ping)
	switch p.Text {
	case "fail":
		return nil, errors.New("no such thing")
	case "hold":
		s.held <- from
		return genserver.NoReply, nil
	}
	if s.tr != nil {
		_, sp := s.tr.Start(from.Context(), "engine.work")
		sp.End()
	}
	return p, nil
}

func (tracedServer) HandleCast(*genserver.Process, any) {}

// tracedPair starts node a (tracer ta, may be nil) connected to node b
// (tracer tb) with a tracedServer engine, and returns its name.
func tracedPair(t *testing.T, ta, tb trace.Tracer, srv tracedServer) (a, b *tnode, dest genserver.Name) {
	a, b = newTNode(t, "a", withTracer(ta)), newTNode(t, "b", withTracer(tb))
	e, _, err := b.tr.SpawnEngine("srv", func() genserver.Server { return srv })
	if err != nil {
		t.Fatal(err)
	}
	a.connect(t, b, b.listen(t))
	a.waitSynced(t, b)
	return a, b, genserver.Name(e.String())
}

func newTracedServer(tr trace.Tracer) tracedServer {
	return tracedServer{tr: tr, seen: make(chan trace.SpanContext, 16), held: make(chan genserver.From, 16)}
}

// Issue 14, tracing: one call makes a client span on the caller's node, a
// child of the caller's span, and a server span on the engine's node, a
// child of the client span; the engine's own span nests under the server
// span; all of one trace.
func TestTraceFollowsCallAcrossNodes(t *testing.T) {
	sa, sb := newSpans(t), newSpans(t)
	srv := newTracedServer(sb.tracer())
	a, b, dest := tracedPair(t, sa.tracer(), sb.tracer(), srv)

	ctx, root := sa.tracer().Start(ctxT(t), "caller")
	if v, err := a.sys.Call(ctx, dest, Ping{"hi"}); err != nil || v != (Ping{"hi"}) {
		t.Fatalf("call: %v, %v", v, err)
	}
	root.End()
	client := sa.wait(t, trace.SpanKindClient)
	server := sb.wait(t, trace.SpanKindServer)
	seen := <-srv.seen

	tid := root.SpanContext().TraceID()
	if client.SpanContext().TraceID() != tid || client.Parent().SpanID() != root.SpanContext().SpanID() {
		t.Fatalf("client span %v, parent %v: not a child of the caller's span %v", client.SpanContext(), client.Parent(), root.SpanContext())
	}
	if client.Name() != "enginekit.call" || attr(client, "enginekit.engine") != string(dest) ||
		attr(client, "enginekit.peer") != b.kh.Router().String() || attr(client, "enginekit.outcome") != "ok" {
		t.Fatalf("client span %s %v", client.Name(), client.Attributes())
	}
	if server.SpanContext().TraceID() != tid || !server.Parent().IsRemote() || server.Parent().SpanID() != client.SpanContext().SpanID() {
		t.Fatalf("server span %v, parent %v: not a child of the client span %v", server.SpanContext(), server.Parent(), client.SpanContext())
	}
	if attr(server, "enginekit.engine") != string(dest) || attr(server, "enginekit.peer") != a.kh.Router().String() {
		t.Fatalf("server span attributes %v", server.Attributes())
	}
	if seen.SpanID() != server.SpanContext().SpanID() {
		t.Fatalf("the engine's From.Context has span %v, want the server span %v", seen, server.SpanContext())
	}
	var work sdktrace.ReadOnlySpan
	for _, sp := range sb.Ended() {
		if sp.Name() == "engine.work" {
			work = sp
		}
	}
	if work == nil || work.Parent().SpanID() != server.SpanContext().SpanID() || work.SpanContext().TraceID() != tid {
		t.Fatalf("the engine's span does not nest under the server span: %v", work)
	}
	if client.EndTime().Before(server.EndTime()) || server.StartTime().Before(client.StartTime()) {
		t.Logf("clocks: client %v–%v, server %v–%v", client.StartTime(), client.EndTime(), server.StartTime(), server.EndTime())
	}
}

// Errors are recorded on both spans: an error the engine returns (remote
// error), a peer gone while the call waits (no connection on the caller's
// side, cancelled on the engine's), and a caller that times out.
func TestTraceRecordsErrors(t *testing.T) {
	sa, sb := newSpans(t), newSpans(t)
	srv := newTracedServer(nil)
	a, b, dest := tracedPair(t, sa.tracer(), sb.tracer(), srv)

	if _, err := a.sys.Call(ctxT(t), dest, Ping{"fail"}); err == nil {
		t.Fatal("no error")
	}
	client, server := sa.wait(t, trace.SpanKindClient), sb.wait(t, trace.SpanKindServer)
	if client.Status().Code != 1 || attr(client, "enginekit.outcome") != "remote_error" || client.Status().Description != "no such thing" {
		t.Fatalf("client span status %v, outcome %s", client.Status(), attr(client, "enginekit.outcome"))
	}
	if server.Status().Code != 1 || attr(server, "enginekit.outcome") != "remote_error" && attr(server, "enginekit.outcome") != "error" {
		t.Fatalf("server span status %v, outcome %s", server.Status(), attr(server, "enginekit.outcome"))
	}
	<-srv.seen

	// Timeout: the engine holds the call; the caller gives up at its
	// deadline; the client span ends then, as a timeout.
	ctx, cancel := context.WithTimeout(ctxT(t), 100*time.Millisecond)
	_, err := a.sys.Call(ctx, dest, Ping{"hold"})
	cancel()
	if !errors.Is(err, genserver.ErrTimeout) {
		t.Fatalf("held call: %v", err)
	}
	client = sa.wait(t, trace.SpanKindClient)
	if attr(client, "enginekit.outcome") != "timeout" || client.Status().Code != 1 {
		t.Fatalf("timed-out client span: outcome %s, status %v", attr(client, "enginekit.outcome"), client.Status())
	}
	<-srv.seen
	genserver.Reply(<-srv.held, nil, nil) // the dummy caller gave up: the reply goes nowhere
	if sp := sb.wait(t, trace.SpanKindServer); attr(sp, "enginekit.outcome") != "timeout" {
		t.Fatalf("timed-out server span: outcome %s, status %v", attr(sp, "enginekit.outcome"), sp.Status())
	}

	// No connection: the engine's node stops while the call waits.
	done := make(chan error, 1)
	go func() {
		_, err := a.sys.Call(ctxT(t), dest, Ping{"hold"})
		done <- err
	}()
	<-srv.seen
	<-srv.held
	_ = b.tr.Close()
	// The caller gets ErrNoConnection, or the proxy's normal exit when
	// b's forget of the engine comes first; the call's span ends when
	// the connection goes, either way.
	var exit *genserver.ExitError
	if err := <-done; !errors.Is(err, transport.ErrNoConnection) && !errors.As(err, &exit) {
		t.Fatalf("call to a stopped node: %v", err)
	}
	client = sa.wait(t, trace.SpanKindClient)
	if attr(client, "enginekit.outcome") != "no_connection" || client.Status().Code != 1 {
		t.Fatalf("client span of a lost call: outcome %s, status %v", attr(client, "enginekit.outcome"), client.Status())
	}
	if sp := sb.wait(t, trace.SpanKindServer); sp.Status().Code != 1 {
		t.Fatalf("server span of a cancelled call: outcome %s, status %v", attr(sp, "enginekit.outcome"), sp.Status())
	}
}

// A peer that does not trace (no Tracer: it does not announce the
// feature) never gets a trace block: its engine sees no trace context and
// nothing is dropped; the caller's node still has its client span. With
// tracing off on both sides, no span exists anywhere.
func TestTraceNeverSentToPeersWithoutTheFeature(t *testing.T) {
	sa := newSpans(t)
	srv := newTracedServer(nil)
	a, b, dest := tracedPair(t, sa.tracer(), nil, srv)
	ctx, root := sa.tracer().Start(ctxT(t), "caller")
	if _, err := a.sys.Call(ctx, dest, Ping{"hi"}); err != nil {
		t.Fatal(err)
	}
	root.End()
	if sc := <-srv.seen; sc.IsValid() {
		t.Fatalf("an untraced peer's engine got trace context %v", sc)
	}
	if client := sa.wait(t, trace.SpanKindClient); client.Parent().SpanID() != root.SpanContext().SpanID() {
		t.Fatalf("client span parent %v", client.Parent())
	}
	if st := b.tr.Stats(); st.DroppedMalformed != 0 {
		t.Fatalf("stats %+v", st)
	}

	// Off on both sides: the caller's span context does not travel.
	before := len(sa.Ended())
	off := newTracedServer(nil)
	c, _, dest2 := tracedPair(t, nil, nil, off)
	ctx, root = sa.tracer().Start(ctxT(t), "caller")
	if _, err := c.sys.Call(ctx, dest2, Ping{"hi"}); err != nil {
		t.Fatal(err)
	}
	root.End()
	if sc := <-off.seen; sc.IsValid() {
		t.Fatalf("tracing off, yet the engine got trace context %v", sc)
	}
	for _, sp := range sa.Ended()[before:] {
		if sp.SpanKind() != trace.SpanKindInternal {
			t.Fatalf("tracing off made span %s (%v)", sp.Name(), sp.SpanKind())
		}
	}
}
