package transport

import (
	"errors"
	"sync/atomic"
	"time"

	"github.com/enginekit/enginekit/callbridge"
	"github.com/enginekit/enginekit/events"
	"github.com/enginekit/enginekit/genserver"
	"github.com/enginekit/enginekit/keyholder"
	"github.com/enginekit/enginekit/netconn"
	"github.com/enginekit/enginekit/wire"
	"go.opentelemetry.io/otel/trace"
)

// deliver is the connection holders' delivery function, on each
// connection's reader goroutine: every envelope that reaches it has passed
// authentication (by its Src's key) and the replay check. It decodes and
// verifies the payload, steps the core, and carries out what the core
// decided. It never waits on a writer: its only sends are error replies,
// made with trySend.
func (t *Transport) deliver(c *netconn.Conn, env *wire.Envelope) {
	r := t.routeOf(c)
	if r == nil {
		t.count(dropNoRoute)
		return
	}
	if env.Kind != wire.Learn && env.Kind != wire.Learns {
		r.learnsApplied() // nothing overtakes a learn (proofs.go)
	}
	switch env.Kind {
	case wire.Learn, wire.Learns:
		t.onLearn(r, env)
	case wire.Forget:
		t.onForget(r, env)
	case wire.Synced:
		if env.Src != r.peer {
			t.count(dropNotRouter)
			return
		}
		r.traces.Store(peerTraces(env.Payload))
		t.mu.Lock()
		acts := t.core.synced(nil, r.id)
		t.mu.Unlock()
		t.exec(acts)
	case wire.Reply, wire.Answer:
		t.onReply(r, env)
	case wire.Cast, wire.Info, wire.Call, wire.Event:
		t.onMessage(r, env)
	case wire.Link, wire.Unlink:
		t.onLink(r, env)
	default:
		t.count(dropKind)
	}
}

func (t *Transport) onForget(r *route, env *wire.Envelope) {
	if env.Src != r.peer {
		t.count(dropNotRouter)
		return
	}
	var m forgetMsg
	if err := decodeControl(env.Payload, &m); err != nil {
		t.count(dropMalformed)
		return
	}
	t.mu.Lock()
	acts := t.core.forget(nil, r.id, m.Engine, decodeReason(m.Reason))
	t.mu.Unlock()
	t.exec(acts)
}

func (t *Transport) onMessage(r *route, env *wire.Envelope) {
	var v any
	var err error
	var ev *events.Delivery
	var sc trace.SpanContext
	body := env.Payload
	if env.Flags&flagTrace != 0 && env.Kind != wire.Event {
		// Only a peer that saw our trace feature sets the flag.
		sc, body, err = cutTraceBlock(body)
	}
	switch {
	case err != nil:
	case env.Kind == wire.Event:
		ev, err = t.decodeEvent(body)
	default:
		if env.Owned { // handed over by the connection: a large []byte is kept, not copied
			v, err = t.reg.UnmarshalOwned(body)
		} else {
			v, err = t.reg.Unmarshal(body)
		}
		if err == nil {
			t.sys.Relay().BindFroms(v) // a From in it answers through us
		}
	}
	if err == nil && env.Kind != wire.Call {
		if sender, dst, ok := r.in.lookup(&t.core.epoch, env.Src, env.Dst); ok {
			// The core's decision for the previous message from src
			// to dst holds still (core.epoch): no need to step it.
			t.deliverMessage(env.Kind, sender, dst, v, ev)
			return
		}
	}
	var buf [2]action
	var from genserver.From // a call delivered straight into the callee's mailbox
	t.mu.Lock()
	acts := t.core.message(buf[:0], r.id, env.Kind, env.Src, env.Dst, env.Ref)
	if err == nil && env.Kind != wire.Call && len(acts) == 1 && acts[0].kind == actDeliver {
		r.in.store(t.core.epoch.Load(), env.Src, env.Dst, acts[0].pid, acts[0].dst)
	}
	if err == nil && len(acts) == 1 && acts[0].kind == actStartCall && t.tracer == nil && !sc.IsValid() {
		// No dummy caller: the callee's Reply sends the reply envelope
		// (callReplier), and the core ends the call at its deadline, at
		// the callee's exit, or when the peer is gone.
		a := &acts[0]
		deadline := t.callDeadline(env.Deadline)
		name := a.name
		if name == "" {
			name = a.env.Src.String()
		}
		from = t.sys.Relay().RemoteFrom((*callReplier)(t), a.id, a.pid, name, deadline)
		t.core.inDelivered(a.id, from, max(1, t.logical(deadline)))
	}
	if err != nil && len(acts) == 1 && (acts[0].kind == actDeliver || acts[0].kind == actStartCall) {
		// Admitted, but the payload does not decode: drop it, and answer a
		// call at once with a bad-request error.
		t.core.drop(dropMalformed)
		if acts[0].kind == actStartCall {
			t.core.callDone(nil, acts[0].id)
			t.mu.Unlock()
			reply := wire.Envelope{Kind: wire.Reply, Src: env.Dst, Dst: env.Src, Ref: env.Ref}
			t.sendErrorReply(r, &reply, callbridge.ErrBadRequest)
			return
		}
		t.mu.Unlock()
		return
	}
	t.mu.Unlock()
	for i := range acts {
		a := &acts[i]
		switch a.kind {
		case actDeliver:
			t.deliverMessage(env.Kind, a.pid, a.dst, v, ev)
		case actStartCall:
			if from.Pending() {
				if derr := t.sys.Relay().DeliverCall(a.dst, from, v); derr != nil {
					// Answered here, on the reader: never wait for room
					// in the queue (genserver.Reply would, through
					// CallReply).
					t.callDone(a.id, nil, derr, replyNoWait)
				}
			} else {
				t.startCall(r, a, v, env.Deadline, sc)
			}
			t.delivered.Add(1)
		default:
			t.exec(acts[i : i+1])
		}
	}
}

// deliverMessage delivers a cast, info (v) or event (ev) that the core
// admitted into dst's mailbox, from sender (our proxy of its engine, or
// zero).
func (t *Transport) deliverMessage(kind wire.Kind, sender, dst genserver.PID, v any, ev *events.Delivery) {
	switch kind {
	case wire.Cast:
		_ = t.sys.Relay().CastFrom(sender, dst, v)
	case wire.Info:
		_ = t.sys.Relay().SendFrom(sender, dst, v)
	case wire.Event:
		_ = t.sys.Relay().SendFrom(sender, dst, *ev)
	}
	t.delivered.Add(1)
}

// deliverCache is a connection's last delivery decision from the core
// (core.message's actDeliver for a cast, info or event from src to dst),
// kept with the core's epoch at the time: while the epoch is unchanged,
// the core would decide the same for the next such message, so a stream
// of casts to one engine steps the core, and takes its lock, only when
// something changed. Only the connection's reader goroutine uses it.
type deliverCache struct {
	epoch    uint64
	src, dst keyholder.Address
	sender   genserver.PID
	to       genserver.PID
	ok       bool
}

// lookup returns the decision kept for a message from src to dst, if it
// still holds at epoch's current value.
func (d *deliverCache) lookup(epoch *atomic.Uint64, src, dst keyholder.Address) (sender, to genserver.PID, ok bool) {
	if !d.ok || d.src != src || d.dst != dst || epoch.Load() != d.epoch {
		return genserver.PID{}, genserver.PID{}, false
	}
	return d.sender, d.to, true
}

// store keeps the decision the core made at epoch (read under its lock).
func (d *deliverCache) store(epoch uint64, src, dst keyholder.Address, sender, to genserver.PID) {
	*d = deliverCache{epoch: epoch, src: src, dst: dst, sender: sender, to: to, ok: true}
}

// onLink links (or unlinks) one of our engines with our proxy of the
// engine that linked itself to our engine's proxy on its node. The payload
// is empty.
func (t *Transport) onLink(r *route, env *wire.Envelope) {
	var buf [1]action
	t.mu.Lock()
	if len(env.Payload) != 0 {
		t.core.drop(dropMalformed)
		t.mu.Unlock()
		return
	}
	acts := t.core.message(buf[:0], r.id, env.Kind, env.Src, env.Dst, 0)
	t.mu.Unlock()
	if len(acts) != 1 || acts[0].kind != actDeliver {
		return
	}
	a := &acts[0]
	if env.Kind == wire.Unlink {
		t.sys.Relay().Unlink(a.pid, a.dst)
	} else if t.sys.Relay().Link(a.pid, a.dst) != nil {
		// Our engine or the proxy exited meanwhile: its forget, or the
		// proxy's exit, tells the other side.
		t.count(dropNoEngine)
	}
	t.delivered.Add(1)
}

// startCall runs a dummy caller for an admitted call. sc is the caller's
// client span from the call's trace block, if it had one.
func (t *Transport) startCall(r *route, a *action, req any, wireDeadline int64, sc trace.SpanContext) {
	deadline := t.callDeadline(wireDeadline)
	id := a.id
	call := callbridge.Call{
		Proxy:    a.pid,
		From:     a.env.Src.String(),
		Dest:     a.dst,
		Req:      req,
		Deadline: deadline,
	}
	done := func(v any, err error) { t.callDone(id, v, err, replyMayWait) }
	if t.tracer != nil || sc.IsValid() {
		var span trace.Span
		call.Ctx, span = t.serverContext(sc, r, &envAddrs{src: a.env.Src, dst: a.env.Dst})
		if span != nil {
			done = func(v any, err error) {
				endSpan(span, err, time.Time{}) // before the reply is queued
				t.callDone(id, v, err, replyMayWait)
			}
		}
	}
	t.mu.Lock()
	cancel := t.incoming.StartCancelable(call, done)
	t.inCancel[id] = cancel
	t.mu.Unlock()
}

// callDeadline is when an incoming call with the caller's deadline
// wireDeadline (unix nanoseconds; zero: none) ends: at the latest
// MaxCallDeadline from now.
func (t *Transport) callDeadline(wireDeadline int64) time.Time {
	deadline := time.Now().Add(t.cfg.MaxCallDeadline)
	if wireDeadline > 0 && wireDeadline < deadline.UnixNano() {
		deadline = time.Unix(0, wireDeadline)
	}
	return deadline
}

// callReplier answers the calls delivered straight into an engine's
// mailbox (genserver.Relay.RemoteFrom): the engine's Reply sends the
// reply envelope, in the replying goroutine.
type callReplier Transport

func (cr *callReplier) CallReply(id uint64, v any, err error) {
	(*Transport)(cr).callDone(id, v, err, replyMayWait)
}

// CallReplyDirect is CallReply from the callee's own goroutine, with
// nothing else to do in the batch it took from its mailbox: the reply may
// be written in that goroutine (netconn's SendDirect).
func (cr *callReplier) CallReplyDirect(id uint64, v any, err error) {
	(*Transport)(cr).callDone(id, v, err, replyDirect)
}

// replyHow says how callDone may send a reply.
type replyHow uint8

const (
	// replyMayWait waits for room in the connection's queue when there is
	// none: the replier is an engine or a dummy caller.
	replyMayWait replyHow = iota
	// replyDirect is replyMayWait from the callee's own goroutine with
	// nothing else to do: the reply may be written in that goroutine.
	replyDirect
	// replyNoWait never waits: the replier is the connection's reader,
	// which must not wait on a writer; with the queue full the reply is
	// dropped and counted (the caller's deadline ends its call).
	replyNoWait
)

// callDone sends a call's result back to the caller's node. It is called
// by a dummy caller, or by whoever answers a call delivered into a
// mailbox (the engine itself, mostly), or by the reader when delivery
// failed: it waits for room in the connection's queue only when there is
// none and how allows it. replyDirect (the callee answering from its
// goroutine, with nothing else to do) lets it write the reply itself when
// the connection's writer is idle (SendDirect), if it is the peer's only
// call in service here: under load the writer's batching is worth more
// than the hand-off it saves.
func (t *Transport) callDone(id uint64, v any, err error, how replyHow) {
	var buf [1]action
	t.mu.Lock()
	delete(t.inCancel, id)
	direct := how == replyDirect && t.core.callsInWith(id) == 1
	acts := t.core.callDone(buf[:0], id)
	t.mu.Unlock()
	if len(acts) == 0 {
		return
	}
	a := &acts[0]
	r := a.handle.(*route)
	var payload []byte
	if err == nil && v != nil {
		// The common case, without allocating: the value and the reply
		// around it in pooled buffers (Send copies the payload).
		if vb, merr := t.marshal(v); merr == nil {
			rb, _ := t.bufs.Get().(*encBuf)
			if rb == nil {
				rb = new(encBuf)
			}
			rb.b = appendValueReply(rb.b[:0], vb.b)
			t.bufs.Put(vb)
			defer t.bufs.Put(rb)
			payload = rb.b
		}
	}
	if payload == nil {
		var merr error
		if payload, merr = t.encodeReply(v, err); merr != nil {
			t.count(dropUnencodable)
			payload = t.encodeError(callbridge.EncodeError(merr))
		}
	}
	env := a.env
	env.Payload = payload
	var serr error
	if direct {
		serr = r.conn.SendDirect(t.ctx, &env)
	} else if serr = r.conn.TrySend(&env); errors.Is(serr, netconn.ErrQueueFull) && how != replyNoWait {
		serr = r.conn.Send(t.ctx, &env)
	}
	if serr != nil {
		if isTooLarge(serr) {
			// The reply does not fit: the caller gets the size error now
			// instead of waiting out its deadline.
			t.count(dropTooLarge)
			env.Payload = t.encodeError(&callbridge.WireError{Code: callbridge.CodeTooLarge, Message: serr.Error()})
			if how == replyNoWait {
				serr = r.conn.TrySend(&env)
			} else {
				serr = r.conn.Send(t.ctx, &env)
			}
			if serr == nil {
				return
			}
		}
		t.count(dropSendFailed)
	}
}

// appendValueReply appends the reply payload of a value already encoded
// (val): replyMsg{Value: val} as ctlEnc writes it, a map of one entry
// {1: val}.
func appendValueReply(b, val []byte) []byte {
	b = append(b, 0xa1, 0x01)
	n := uint64(len(val))
	switch {
	case n < 24:
		b = append(b, 0x40|byte(n))
	case n <= 0xff:
		b = append(b, 0x58, byte(n))
	case n <= 0xffff:
		b = append(b, 0x59, byte(n>>8), byte(n))
	case n <= 0xffffffff:
		b = append(b, 0x5a, byte(n>>24), byte(n>>16), byte(n>>8), byte(n))
	default:
		b = append(b, 0x5b, byte(n>>56), byte(n>>48), byte(n>>40), byte(n>>32), byte(n>>24), byte(n>>16), byte(n>>8), byte(n))
	}
	return append(b, val...)
}

// cutValueReply returns the value of a reply payload that is exactly
// what appendValueReply writes (without copying it); ok false for any
// other payload, which decodeControl then decodes (or refuses).
func cutValueReply(b []byte) (val []byte, ok bool) {
	if len(b) < 3 || b[0] != 0xa1 || b[1] != 0x01 || b[2]&0xe0 != 0x40 {
		return nil, false
	}
	var n uint64
	h := 3
	switch ai := b[2] & 0x1f; {
	case ai < 24:
		n = uint64(ai)
	case ai >= 24 && ai <= 27:
		w := 1 << (ai - 24)
		if len(b) < 3+w {
			return nil, false
		}
		for _, c := range b[3 : 3+w] {
			n = n<<8 | uint64(c)
		}
		h += w
		if n < 24 || (w > 1 && n < 1<<(4*w)) {
			return nil, false // not the shortest head: not what we write
		}
	default:
		return nil, false
	}
	if uint64(len(b)-h) != n || n == 0 {
		return nil, false
	}
	return b[h:], true
}

// encodeReply encodes a reply payload: the value, or the error.
func (t *Transport) encodeReply(v any, err error) ([]byte, error) {
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
	return ctlEnc.Marshal(m)
}

func (t *Transport) encodeError(w *callbridge.WireError) []byte {
	b, _ := ctlEnc.Marshal(replyMsg{Err: w})
	return b
}

// sendErrorReply answers a call at once on the reader path.
func (t *Transport) sendErrorReply(r *route, env *wire.Envelope, err error) {
	env.Payload = t.encodeError(callbridge.EncodeError(err))
	t.trySend(r, env)
}

func codeErr(code uint64) error {
	switch code {
	case errNoProcessCode:
		return genserver.ErrNoProcess
	case errTooManyCallsCode:
		return ErrTooManyCalls
	}
	return callbridge.ErrBadRequest
}

func (t *Transport) onReply(r *route, env *wire.Envelope) {
	m, ok := replyMsg{}, false
	if m.Value, ok = cutValueReply(env.Payload); !ok {
		// Not the common case (a value, decoded without a copy): the
		// CBOR decoder decides. Only this path allocates the message.
		pm := new(replyMsg)
		if err := decodeControl(env.Payload, pm); err != nil {
			t.count(dropMalformed)
			return
		}
		m = *pm
	}
	var v any
	err := m.Err.Err()
	if m.Err != nil && m.Err.Code == callbridge.CodeTooLarge {
		err = &remoteTooLarge{m.Err.Message}
	}
	if err == nil && m.Value != nil {
		if v, err = t.reg.Unmarshal(m.Value); err != nil {
			err = callbridge.ErrBadRequest
		} else {
			t.sys.Relay().BindFroms(v)
		}
	}
	var buf [1]action
	t.mu.Lock()
	var acts []action
	if env.Kind == wire.Answer {
		if env.Src != r.peer {
			t.core.drop(dropNotRouter)
		} else {
			acts = t.core.answer(buf[:0], r.id, env.Ref)
		}
	} else {
		acts = t.core.reply(buf[:0], r.id, env.Src, env.Ref)
	}
	t.mu.Unlock()
	if len(acts) == 1 {
		taken := genserver.Reply(acts[0].from, v, err)
		if t.tracer != nil && env.Kind == wire.Reply {
			if !taken && err == nil {
				err = errCallerGone
			}
			t.endClient(acts[0].id, err, time.Time{})
		}
	}
}

// decodeEvent decodes an event a foreign engine's broker forwarded to one
// of our engines, as the same Delivery info message a local subscription
// gives (with no subscription of ours behind it: Done does nothing).
func (t *Transport) decodeEvent(b []byte) (*events.Delivery, error) {
	var m eventMsg
	if err := eventDec.Unmarshal(b, &m); err != nil {
		return nil, err
	}
	if len(m.Attrs)%2 != 0 {
		return nil, errBadControl
	}
	ev := &events.Event{Topic: m.Topic}
	for i := 0; i < len(m.Attrs); i += 2 {
		ev.Attrs = append(ev.Attrs, events.Attr{Key: m.Attrs[i], Value: m.Attrs[i+1]})
	}
	if m.Payload != nil {
		v, err := t.reg.Unmarshal(m.Payload)
		if err != nil {
			return nil, err
		}
		if t.sys != nil {
			t.sys.Relay().BindFroms(v)
		}
		ev.Payload = v
	}
	return &events.Delivery{Event: ev, Dropped: m.Dropped}, nil
}

// encodeReason is how an engine's exit reason travels in a forget: absent
// for a normal exit, else its text (code 3, "exited").
func encodeReason(reason error) *callbridge.WireError {
	if reason == nil {
		return nil
	}
	return &callbridge.WireError{Code: callbridge.CodeExited, Message: reason.Error()}
}

func decodeReason(w *callbridge.WireError) error {
	switch {
	case w == nil:
		return nil
	case w.Code == callbridge.CodeExited:
		return &callbridge.RemoteError{Message: w.Message}
	}
	return w.Err()
}
