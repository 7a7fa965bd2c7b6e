package transport

import (
	"time"

	"github.com/enginekit/enginekit/callbridge"
	"github.com/enginekit/enginekit/events"
	"github.com/enginekit/enginekit/genserver"
	"github.com/enginekit/enginekit/keyholder"
	"github.com/enginekit/enginekit/netconn"
	"github.com/enginekit/enginekit/wire"
)

// deliver is the connection holders' delivery function: every envelope
// that reaches it has passed authentication (by its Src's key) and the
// replay check. What remains is the transport's rule: only the router
// authenticated on this connection may teach or forget engines, and a
// message must come from an engine learned on this connection (or from the
// peer router itself) and go to one of ours. Anything else is dropped and
// counted.
func (t *Transport) deliver(c *netconn.Conn, env *wire.Envelope) {
	r := t.route(c)
	if r == nil {
		t.stats.dropped(dropNoRoute)
		return
	}
	switch env.Kind {
	case wire.Learn:
		t.onLearn(r, env)
	case wire.Forget:
		t.onForget(r, env)
	case wire.Reply:
		t.onReply(r, env)
	case wire.Cast, wire.Info, wire.Call, wire.Event:
		t.onMessage(r, env)
	default:
		t.stats.dropped(dropKind)
	}
}

func (t *Transport) onLearn(r *route, env *wire.Envelope) {
	if env.Src != r.peer {
		t.stats.dropped(dropNotRouter)
		return
	}
	var m learnMsg
	if err := decodeControl(env.Payload, &m); err != nil {
		t.stats.dropped(dropMalformed)
		return
	}
	engine := keyholder.Address(m.Engine)
	if !keyholder.VerifyEngineProof(r.peer, engine, m.Proof) {
		t.stats.dropped(dropBadProof)
		t.log.Debug().Stringer("engine", engine).Stringer("peer", r.peer).Msg("learn dropped: the engine's proof does not verify")
		return
	}
	if t.kh.Owns(engine) {
		t.stats.dropped(dropBadProof) // our own engine or router, reflected back
		return
	}
	t.learn(r, engine, m.Filter)
}

func (t *Transport) onForget(r *route, env *wire.Envelope) {
	if env.Src != r.peer {
		t.stats.dropped(dropNotRouter)
		return
	}
	var m forgetMsg
	if err := decodeControl(env.Payload, &m); err != nil {
		t.stats.dropped(dropMalformed)
		return
	}
	t.forget(r, keyholder.Address(m.Engine))
}

// sender is the PID a message from src appears to come from: the proxy of
// an engine learned on r, or the zero PID for the peer router itself.
func (r *route) sender(src keyholder.Address) (genserver.PID, bool) {
	if src == r.peer {
		return genserver.PID{}, true
	}
	r.mu.Lock()
	px, ok := r.learned[src]
	r.mu.Unlock()
	if !ok {
		return genserver.PID{}, false
	}
	return px.pid, true
}

func (t *Transport) onMessage(r *route, env *wire.Envelope) {
	sender, ok := r.sender(env.Src)
	if !ok {
		t.stats.dropped(dropUnknownSrc)
		t.log.Debug().Stringer("src", env.Src).Stringer("peer", r.peer).Msg("message dropped: its source is not an engine learned on this connection")
		return
	}
	dst, ok := t.localEngine(env.Dst)
	if !ok {
		if env.Kind == wire.Call {
			t.sendReply(r, env.Dst, env.Src, env.Ref, nil, genserver.ErrNoProcess)
		}
		t.stats.dropped(dropNoEngine)
		return
	}
	if env.Kind == wire.Event {
		t.onEvent(sender, dst, env)
		return
	}
	v, err := t.reg.Unmarshal(env.Payload)
	if err != nil {
		if env.Kind == wire.Call {
			t.sendReply(r, env.Dst, env.Src, env.Ref, nil, callbridge.ErrBadRequest)
		}
		t.stats.dropped(dropMalformed)
		t.log.Debug().Err(err).Stringer("src", env.Src).Msg("message dropped: payload does not decode")
		return
	}
	switch env.Kind {
	case wire.Cast:
		_ = t.sys.CastFrom(sender, dst, v)
	case wire.Info:
		_ = t.sys.SendFrom(sender, dst, v)
	case wire.Call:
		callee, caller, ref := env.Dst, env.Src, env.Ref // env is reused after we return
		if r.inflight.Add(1) > int64(t.cfg.MaxIncomingCalls) {
			r.inflight.Add(-1)
			t.sendReply(r, callee, caller, ref, nil, ErrTooManyCalls)
			return
		}
		deadline := time.Now().Add(t.cfg.MaxCallDeadline)
		if env.Deadline > 0 && env.Deadline < deadline.UnixNano() {
			deadline = time.Unix(0, env.Deadline)
		}
		t.incoming.Start(callbridge.Call{
			Proxy:    sender,
			From:     caller.String(),
			Dest:     dst,
			Req:      v,
			Deadline: deadline,
		}, func(v any, err error) {
			r.inflight.Add(-1)
			t.sendReply(r, callee, caller, ref, v, err)
		})
	}
	t.stats.delivered.Add(1)
}

// sendReply answers a call from caller to callee on r.
func (t *Transport) sendReply(r *route, callee, caller keyholder.Address, ref uint64, v any, err error) {
	var m replyMsg
	if err == nil && v != nil {
		b, merr := t.reg.Marshal(v)
		if merr != nil {
			err = merr // an unregistered reply type: the caller learns why
		} else {
			m.Value = b
		}
	}
	m.Err = callbridge.EncodeError(err)
	payload, merr := ctlEnc.Marshal(m)
	if merr != nil {
		t.log.Error().Err(merr).Msg("encoding a reply")
		return
	}
	env := wire.Envelope{Kind: wire.Reply, Src: callee, Dst: caller, Ref: ref, Payload: payload}
	_ = t.send(r, &env)
}

func (t *Transport) onReply(r *route, env *wire.Envelope) {
	var m replyMsg
	if err := decodeControl(env.Payload, &m); err != nil {
		t.stats.dropped(dropMalformed)
		return
	}
	var v any
	err := m.Err.Err()
	if err == nil && m.Value != nil {
		if v, err = t.reg.Unmarshal(m.Value); err != nil {
			err = callbridge.ErrBadRequest
		}
	}
	if !r.pending.Resolve(env.Ref, env.Src, v, err) {
		t.stats.dropped(dropLateReply)
	}
}

// onEvent delivers an event a foreign engine's broker forwarded to one of
// our engines, as the same Delivery info message a local subscription gives
// (with no subscription of ours behind it: Done does nothing).
func (t *Transport) onEvent(sender, dst genserver.PID, env *wire.Envelope) {
	var m eventMsg
	if err := eventDec.Unmarshal(env.Payload, &m); err != nil || len(m.Attrs)%2 != 0 {
		t.stats.dropped(dropMalformed)
		return
	}
	ev := &events.Event{Topic: m.Topic}
	for i := 0; i < len(m.Attrs); i += 2 {
		ev.Attrs = append(ev.Attrs, events.Attr{Key: m.Attrs[i], Value: m.Attrs[i+1]})
	}
	if m.Payload != nil {
		v, err := t.reg.Unmarshal(m.Payload)
		if err != nil {
			t.stats.dropped(dropMalformed)
			return
		}
		ev.Payload = v
	}
	_ = t.sys.SendFrom(sender, dst, events.Delivery{Event: ev, Dropped: m.Dropped})
	t.stats.delivered.Add(1)
}
