package transport

import (
	"context"
	"errors"
	"slices"
	"time"

	"github.com/enginekit/enginekit/callbridge"
	"github.com/enginekit/enginekit/genserver"
	"github.com/enginekit/enginekit/keyholder"
	"github.com/fxamacker/cbor/v2"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"
)

// Tracing (opt-in with Config.Tracer; docs/tracing.md, wire/spec.md
// "Trace context"). Every step here runs only when t.tracer is not nil,
// except cutting a trace block off a flagged envelope, which only a peer
// that saw our "trace/1" feature sends.

const (
	// flagTrace (envelope flags bit 0): a call, cast or info payload
	// starts with a trace block.
	flagTrace = 0x01
	// traceBlockLen is the size of a trace block: version (1), trace-id
	// (16), parent span-id (8), trace-flags (1).
	traceBlockLen     = 26
	traceBlockVersion = 0
	// featureTrace is announced in the synced payload by a node that
	// understands flagTrace.
	featureTrace = "trace/1"
	// spanCall names both spans of a cross-node call.
	spanCall = "enginekit.call"
)

// errBadTraceBlock: a flagged payload too short for its trace block, or
// with a block version other than 0.
var errBadTraceBlock = errors.New("transport: malformed trace block")

// errCallerGone is the status of a client span whose reply came after the
// caller stopped waiting (its ctx ended before its deadline).
var errCallerGone = errors.New("transport: the reply came after the caller stopped waiting")

// syncedMsg is the payload of a synced envelope: the features the sending
// node understands. It is empty (no payload at all) without any.
type syncedMsg struct {
	Features []string `cbor:"1,keyasint,omitempty"`
}

// syncedDec decodes a synced payload leniently: unknown keys are ignored
// (later versions may add some), bounds are those of the other control
// payloads.
var syncedDec cbor.DecMode

func init() {
	var err error
	if syncedDec, err = (cbor.DecOptions{
		MaxNestedLevels:  4,
		MaxArrayElements: 16,
		MaxMapPairs:      16,
		DupMapKey:        cbor.DupMapKeyEnforcedAPF,
	}).DecMode(); err != nil {
		panic(err)
	}
}

// syncedPayload is what our synced envelopes carry: the trace feature with
// a Tracer, else nothing (the payload older versions send).
func syncedPayload(tracing bool) []byte {
	if !tracing {
		return nil
	}
	b, err := ctlEnc.Marshal(syncedMsg{Features: []string{featureTrace}})
	if err != nil {
		panic(err)
	}
	return b
}

// peerTraces reports whether a synced payload announces the trace feature.
// A payload that does not decode announces nothing; the marker still
// counts.
func peerTraces(b []byte) bool {
	if len(b) == 0 {
		return false
	}
	var m syncedMsg
	if syncedDec.Unmarshal(b, &m) != nil {
		return false
	}
	return slices.Contains(m.Features, featureTrace)
}

// appendTraceBlock appends the trace block naming sc as the parent.
func appendTraceBlock(dst []byte, sc trace.SpanContext) []byte {
	tid, sid := sc.TraceID(), sc.SpanID()
	dst = append(dst, traceBlockVersion)
	dst = append(dst, tid[:]...)
	dst = append(dst, sid[:]...)
	return append(dst, byte(sc.TraceFlags()&trace.FlagsSampled))
}

// cutTraceBlock splits a flagged payload into the remote span context of
// its trace block (invalid when the ids are zero: no parent) and the rest.
func cutTraceBlock(p []byte) (trace.SpanContext, []byte, error) {
	if len(p) < traceBlockLen || p[0] != traceBlockVersion {
		return trace.SpanContext{}, nil, errBadTraceBlock
	}
	var tid trace.TraceID
	var sid trace.SpanID
	copy(tid[:], p[1:17])
	copy(sid[:], p[17:25])
	sc := trace.NewSpanContext(trace.SpanContextConfig{
		TraceID:    tid,
		SpanID:     sid,
		TraceFlags: trace.TraceFlags(p[25]) & trace.FlagsSampled,
		Remote:     true,
	})
	return sc, p[traceBlockLen:], nil
}

// clientCall is the client span of one outgoing call, until its reply.
type clientCall struct {
	span     trace.Span
	deadline time.Time
}

// startClient starts the client span of a call from the caller's context.
func (t *Transport) startClient(from genserver.From, engine keyholder.Address) trace.Span {
	_, span := t.tracer.Start(from.Context(), spanCall,
		trace.WithSpanKind(trace.SpanKindClient),
		trace.WithAttributes(attribute.String("enginekit.engine", engine.String())))
	return span
}

// endClient ends the client span of call ref, if it has one.
func (t *Transport) endClient(ref uint64, err error, at time.Time) {
	t.mu.Lock()
	c, ok := t.spans[ref]
	delete(t.spans, ref)
	t.mu.Unlock()
	if ok {
		endSpan(c.span, err, at)
	}
}

// sweepClients ends the client spans of the calls whose caller's deadline
// has passed with no reply: timeouts, ended at the deadline.
func (t *Transport) sweepClients(now time.Time) {
	var late []clientCall
	t.mu.Lock()
	for ref, c := range t.spans {
		if now.After(c.deadline) {
			late = append(late, c)
			delete(t.spans, ref)
		}
	}
	t.mu.Unlock()
	for _, c := range late {
		endSpan(c.span, genserver.ErrTimeout, c.deadline)
	}
}

// endClients ends every client span left, with err (the transport stops).
func (t *Transport) endClients(err error) {
	t.mu.Lock()
	spans := t.spans
	t.spans = make(map[uint64]clientCall)
	t.mu.Unlock()
	for _, c := range spans {
		endSpan(c.span, err, time.Time{})
	}
}

// serverContext is the context of an incoming call's dummy caller: the
// server span, child of the caller's client span sc when valid, built on
// context.Background() (callbridge.Call.Ctx lends its values only). With
// no Tracer it only carries sc, so the engine's own spans still nest.
func (t *Transport) serverContext(sc trace.SpanContext, r *route, env *envAddrs) (context.Context, trace.Span) {
	ctx := context.Background()
	if sc.IsValid() {
		ctx = trace.ContextWithRemoteSpanContext(ctx, sc)
	}
	if t.tracer == nil {
		return ctx, nil
	}
	return t.tracer.Start(ctx, spanCall,
		trace.WithSpanKind(trace.SpanKindServer),
		trace.WithAttributes(
			attribute.String("enginekit.engine", env.dst.String()),
			attribute.String("enginekit.caller", env.src.String()),
			attribute.String("enginekit.peer", r.peer.String())))
}

// envAddrs are the addresses of an incoming call.
type envAddrs struct{ src, dst keyholder.Address }

// outcome names how a call ended, for the enginekit.outcome attribute.
func outcome(err error) string {
	var re *callbridge.RemoteError
	switch {
	case err == nil:
		return "ok"
	case errors.Is(err, genserver.ErrTimeout), errors.Is(err, context.DeadlineExceeded):
		return "timeout"
	case errors.Is(err, ErrNoConnection):
		return "no_connection"
	case errors.Is(err, genserver.ErrNoProcess):
		return "no_process"
	case isTooLarge(err):
		return "too_large"
	case errors.Is(err, ErrTooManyCalls):
		return "too_many_calls"
	case errors.Is(err, context.Canceled):
		return "canceled"
	case errors.As(err, &re):
		return "remote_error"
	}
	return "error"
}

// endSpan records err (if any) as the span's status and ends it, at at
// when not zero.
func endSpan(span trace.Span, err error, at time.Time) {
	span.SetAttributes(attribute.String("enginekit.outcome", outcome(err)))
	if err != nil {
		span.RecordError(err)
		span.SetStatus(codes.Error, err.Error())
	}
	if at.IsZero() {
		span.End()
	} else {
		span.End(trace.WithTimestamp(at))
	}
}
