package transport

import (
	"errors"
	"sync/atomic"
	"time"

	"github.com/enginekit/enginekit/events"
	"github.com/enginekit/enginekit/genserver"
	"github.com/enginekit/enginekit/keyholder"
	"github.com/enginekit/enginekit/netconn"
	"github.com/enginekit/enginekit/wire"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/trace"
)

// proxy stands in for one foreign engine: a process registered in the
// System under the engine's address, so calls, casts and sends to that
// address are the same code as to a local engine. It holds no routing
// state: each message asks the core for a route. It authenticates nothing
// itself: its envelopes are signed or MACed by the connection's writer with
// the sending engine's key (the router's when the sender is no engine).
//
// It is a genserver.Forwarder: calls, casts, sends, links and unlinks are
// handed on in the sender's goroutine (Forward), so a sender's messages
// keep their order, calls included, and an error (too large, not
// encodable, no route) is the sender's at once. Only event deliveries and
// the transport's own stop go through its mailbox.
type proxy struct {
	t    *Transport
	addr keyholder.Address
	// out is the core's last decision for a message through the proxy
	// (outMessage), reused while the core's epoch keeps its value.
	out atomic.Pointer[outDecision]
}

// outDecision is what core.outMessage decided, at epoch, for a message
// from caller through a proxy: its source address and the route to send it
// on.
type outDecision struct {
	epoch  uint64
	caller genserver.PID
	src    keyholder.Address
	route  *route
}

// proxySub is the event subscription a foreign engine asked for.
type proxySub struct {
	id     events.SubID
	filter events.Filter
}

// proxyStop makes a proxy exit normally: its engine exited normally.
type proxyStop struct{}

// Init makes the proxy trap exits: a local process linked to it that dies
// must not take it down (the exit reaches the foreign engine by other
// means: see linkTo).
func (px *proxy) Init(p *genserver.Process) error {
	p.TrapExits(true)
	return nil
}

// Exited tells the transport the proxy's process ended, however it ended
// (genserver.ExitNotifier): a proxy the core still counts on was killed,
// and its engine is forgotten.
func (px *proxy) Exited(pid genserver.PID, _ error) { px.t.proxyDied(px.addr, pid) }

func isTooLarge(err error) bool { return errors.Is(err, netconn.ErrTooLarge) }

// Forward hands a message, a call or a link on to the foreign engine, in
// the sender's goroutine.
func (px *proxy) Forward(m genserver.Forwarded) error {
	switch m.Kind {
	case genserver.ForwardCall:
		return px.call(m.Sender, m.From, m.Msg)
	case genserver.ForwardCast:
		return px.forward(wire.Cast, m.Sender, m.Msg)
	case genserver.ForwardInfo:
		switch m.Msg.(type) {
		case events.Delivery, proxyStop:
			// The broker must never wait on a connection: events go through
			// the mailbox, bounded by the broker's pending window.
			return genserver.ErrNotForwarded
		}
		return px.forward(wire.Info, m.Sender, m.Msg)
	case genserver.ForwardLink:
		return px.linkTo(wire.Link, m.Sender)
	case genserver.ForwardUnlink:
		return px.linkTo(wire.Unlink, m.Sender)
	}
	return genserver.ErrNotForwarded
}

// KeepsCalls: the transport answers every call it forwards, whatever
// becomes of the proxy: with the reply, or at once with an error when the
// connection is lost (the core fails the calls waiting on it) or when the
// engine exits (its node answers the calls it has in service with the
// exit, and refuses later ones), or at the caller's deadline. So callers
// need not watch the proxy's exit (genserver.CallKeeper).
func (px *proxy) KeepsCalls() {}

// HandleCall and HandleCast are not used: Forward takes calls and casts.
func (px *proxy) HandleCall(*genserver.Process, genserver.From, any) (any, error) {
	return nil, genserver.ErrNoProcess
}

func (px *proxy) HandleCast(*genserver.Process, any) {}

func (px *proxy) HandleInfo(p *genserver.Process, msg any) {
	switch m := msg.(type) {
	case events.Delivery:
		px.forwardEvent(p, m)
	case proxyStop:
		p.Stop(nil)
	case genserver.Exit:
		// A linked local process exited: an engine's exit reaches the
		// other node in its forget message, where the engine's proxy exits
		// with its reason; no one else's can (see linkTo).
	}
}

// encBuf is an encoding buffer: Send copies the payload, so it is reused.
type encBuf struct{ b []byte }

// marshal encodes msg with the Registry into a pooled buffer; put it back
// with t.bufs.Put once sent.
func (t *Transport) marshal(msg any) (*encBuf, error) {
	eb, _ := t.bufs.Get().(*encBuf)
	if eb == nil {
		eb = new(encBuf)
	}
	b, err := t.reg.AppendMarshal(eb.b[:0], msg)
	if err != nil {
		t.bufs.Put(eb)
		return nil, err
	}
	eb.b = b
	return eb, nil
}

// call sends a call and returns: the reply answers from when it comes (or
// the call fails when its route goes). A request over the frame limit
// fails at once with a size error (ErrTooLarge); so does one that cannot
// be encoded. Without tracing, the call goes through the combiner, which
// answers from with any error at once (the caller's Call returns it as
// its result, as if Forward had).
func (px *proxy) call(sender genserver.PID, from genserver.From, req any) error {
	t := px.t
	eb, err := t.marshal(req)
	if err != nil {
		t.count(dropUnencodable)
		return err
	}
	if t.tracer == nil {
		cr, _ := t.callReqs.Get().(*callReq)
		if cr == nil {
			cr = new(callReq)
		}
		*cr = callReq{px: px, sender: sender, from: from, eb: eb}
		for {
			old := t.callq.Load()
			cr.next = old
			if t.callq.CompareAndSwap(old, cr) {
				break
			}
		}
		t.combineCalls()
		return nil
	}
	return px.callTraced(sender, from, eb)
}

// callTraced is call with tracing: registered under mu by itself, with
// its client span. (Apart from call, whose frame stays small: a caller's
// stack, shrunk by the GC while it waits for its reply, grows back to
// what its next call needs, and the locals here are 2 KiB.)
func (px *proxy) callTraced(sender genserver.PID, from genserver.From, eb *encBuf) error {
	t := px.t
	defer t.bufs.Put(eb)
	var span trace.Span
	if t.tracer != nil {
		span = t.startClient(from, px.addr)
	}
	var buf [1]action
	t.mu.Lock()
	acts := t.core.outCall(buf[:0], px.addr, sender, from, t.logical(from.Deadline()))
	if span != nil && acts[0].kind != actFailCall {
		t.spans[acts[0].env.Ref] = clientCall{span, from.Deadline()}
	}
	t.mu.Unlock()
	a := &acts[0]
	if a.kind == actFailCall {
		if span != nil {
			endSpan(span, a.err, time.Time{})
		}
		return a.err
	}
	r := a.handle.(*route)
	env := a.env
	env.Deadline = from.Deadline().UnixNano()
	env.Payload = eb.b
	if span != nil {
		span.SetAttributes(attribute.String("enginekit.peer", r.peer.String()))
		if r.traces.Load() {
			// The peer understands trace blocks: the client span is the
			// parent of its server span.
			env.Flags |= flagTrace
			env.Payload = append(appendTraceBlock(make([]byte, 0, traceBlockLen+len(eb.b)), span.SpanContext()), eb.b...)
		}
	}
	if err := r.send(t.ctx, &env); err != nil {
		if !isTooLarge(err) {
			err = ErrNoConnection
		} else {
			t.count(dropTooLarge)
		}
		t.mu.Lock()
		t.core.sendFailed(nil, env.Ref, err) // the error is the caller's, not a Reply
		t.mu.Unlock()
		if span != nil {
			t.endClient(env.Ref, err, time.Time{})
		}
		return err
	}
	return nil
}

// callReq is an outgoing call waiting for the combiner.
type callReq struct {
	px     *proxy
	sender genserver.PID
	from   genserver.From
	eb     *encBuf
	next   *callReq
}

// combineCalls registers and sends the outgoing calls queued in callq,
// unless another caller is doing it (it will see ours): one goroutine at a
// time steps the core for a whole batch of calls under one lock, so
// callers never wait on mu (thousands of callers queued on a mutex hand
// it on one at a time, each waiting to be scheduled: a convoy). Calls of
// one sender keep their order: a sender waits for its call's reply before
// it sends anything else.
//
// A lone call (the only one of the batch, and the only one waiting on its
// connection) is queued without waking the connection's writer
// (TryQueue), and the combiner, once it has let another combiner in,
// writes it itself (Flush) if the writer is idle: one goroutine hand-off
// less per round trip. Under load the writer's batching is kept: a call
// written alone per write costs far more than a hand-off. A flush that
// blocks (a peer that stops reading) holds back only this caller, which
// is about to wait for its reply anyway.
func (t *Transport) combineCalls() {
	var local [2]*netconn.Conn
	flush := local[:0] // connections owed a Flush (a lone call each)
	for t.callq.Load() != nil && t.combining.CompareAndSwap(false, true) {
		for {
			list := t.callq.Swap(nil)
			if list == nil {
				break
			}
			var fifo *callReq // the stack, in the order pushed
			for list != nil {
				next := list.next
				list.next = fifo
				fifo, list = list, next
			}
			if c := t.sendCalls(fifo); c != nil {
				flush = append(flush, c)
			}
		}
		t.combining.Store(false)
	}
	for _, c := range flush {
		_ = c.Flush() // a failed write takes the connection down, and its calls
	}
}

// sendCalls steps the core for a batch of calls, then queues them: at once
// when the connection has room, else from a goroutine of its own, so that
// a slow link does not hold back calls to others. It returns the
// connection the caller must Flush, if it queued a lone call without
// waking the writer.
func (t *Transport) sendCalls(list *callReq) (flush *netconn.Conn) {
	acts := t.combActs[:0]
	t.mu.Lock()
	for cr := list; cr != nil; cr = cr.next {
		acts = t.core.outCall(acts, cr.px.addr, cr.sender, cr.from, t.logical(cr.from.Deadline()))
	}
	lone := len(acts) == 1 && acts[0].kind == actSend && t.core.callsOn(acts[0].conn) == 1
	t.mu.Unlock()
	i := 0
	for cr := list; cr != nil; i++ {
		next := cr.next
		a := &acts[i]
		if a.kind == actFailCall {
			genserver.Reply(cr.from, nil, a.err)
			t.bufs.Put(cr.eb)
		} else {
			r := a.handle.(*route)
			env := a.env
			env.Deadline = cr.from.Deadline().UnixNano()
			env.Payload = cr.eb.b
			err := netconn.ErrQueueFull
			select {
			case <-r.burstDone:
				err = t.queueCall(r, &env, lone, &flush)
			default: // a message from one of our engines waits for its learn
				if env.Src == t.router {
					err = t.queueCall(r, &env, lone, &flush)
				}
			}
			if errors.Is(err, netconn.ErrQueueFull) {
				t.sendCallWaiting(r, env, cr.eb)
			} else {
				t.callSent(err, env.Ref)
				t.bufs.Put(cr.eb)
			}
		}
		*cr = callReq{}
		t.callReqs.Put(cr)
		cr = next
	}
	clear(acts)
	t.combActs = acts[:0]
	return flush
}

// queueCall queues a call envelope without waiting: a lone one without
// waking the writer, setting *flush to the connection to Flush.
func (t *Transport) queueCall(r *route, env *wire.Envelope, lone bool, flush **netconn.Conn) error {
	if !lone {
		return r.conn.TrySend(env)
	}
	must, err := r.conn.TryQueue(env)
	if must {
		*flush = r.conn
	}
	return err
}

// sendCallWaiting sends a call that must wait (for room in the queue, or
// for the burst that announces its sender) from a goroutine of its own.
// (Apart from sendCalls, so that env escapes to the heap only here.)
func (t *Transport) sendCallWaiting(r *route, env wire.Envelope, eb *encBuf) {
	t.wg.Add(1)
	go func() {
		defer t.wg.Done()
		t.callSent(r.send(t.ctx, &env), env.Ref)
		t.bufs.Put(eb)
	}()
}

// callSent fails the call ref at once when its send failed.
func (t *Transport) callSent(err error, ref uint64) {
	if err == nil {
		return
	}
	if isTooLarge(err) {
		t.count(dropTooLarge)
	} else {
		err = ErrNoConnection
	}
	t.mu.Lock()
	acts := t.core.sendFailed(nil, ref, err)
	t.mu.Unlock()
	t.exec(acts)
}

// forward sends a cast or info message to the foreign engine and returns
// why it could not: not encodable (ErrFromNotPortable for a From), over the
// frame limit (*netconn.SizeError, matching ErrTooLarge), no live route
// (ErrNoConnection). Each is counted too. The send may wait for room in
// the connection's queue (Net.MaxQueueBytes): a sender to a slow link is
// held back, as a busy distribution port holds back an Erlang sender.
func (px *proxy) forward(kind wire.Kind, sender genserver.PID, msg any) error {
	t := px.t
	eb, _ := t.bufs.Get().(*encBuf)
	if eb == nil {
		eb = new(encBuf)
	}
	// A []byte's bytes (tail) go from msg into the connection's queue
	// with one copy, not through eb.
	b, tail, err := t.reg.AppendMarshalTail(eb.b[:0], msg)
	if err != nil {
		t.bufs.Put(eb)
		t.count(dropUnencodable)
		return err
	}
	eb.b = b
	err = px.sendTail(kind, sender, b, tail)
	t.bufs.Put(eb)
	return err
}

func (px *proxy) send(kind wire.Kind, sender genserver.PID, payload []byte) error {
	return px.sendTail(kind, sender, payload, nil)
}

// sendTail is send for a payload in two pieces, payload then tail
// (netconn.Conn.SendTail).
func (px *proxy) sendTail(kind wire.Kind, sender genserver.PID, payload, tail []byte) error {
	t := px.t
	d := px.out.Load()
	if d == nil || d.caller != sender || t.core.epoch.Load() != d.epoch {
		// Step the core: its decision for an earlier message from
		// sender may no longer hold (core.epoch).
		var buf [1]action
		t.mu.Lock()
		acts := t.core.outMessage(buf[:0], kind, px.addr, sender)
		epoch := t.core.epoch.Load()
		t.mu.Unlock()
		if len(acts) == 0 {
			return ErrNoConnection
		}
		d = &outDecision{epoch: epoch, caller: sender, src: acts[0].env.Src, route: acts[0].handle.(*route)}
		px.out.Store(d)
	}
	env := wire.Envelope{Kind: kind, Src: d.src, Dst: px.addr, Payload: payload}
	if err := d.route.sendTail(t.ctx, &env, tail); err != nil {
		if isTooLarge(err) {
			t.count(dropTooLarge)
			return err
		}
		t.count(dropSendFailed)
		return ErrNoConnection
	}
	return nil
}

// linkTo makes (or removes) on the engine's node the link that sender made
// (or removed) here with the proxy: a link envelope from sender's engine
// address, which the other node turns into a link between the engine and
// its proxy of sender's engine. The two proxies stand for the remote side
// of the link on each node, and exits travel as forgets do: when either
// engine exits, the other node's proxy of it exits with its reason (or
// with ErrNoConnection when the route is lost past ForgetGrace), and its
// links fire.
//
// Only an engine is represented on other nodes: a link made by a process
// that is no engine stays on this node (ErrNotForwarded): it gets the
// foreign engine's exit, but its own exit does not travel.
func (px *proxy) linkTo(kind wire.Kind, sender genserver.PID) error {
	t := px.t
	var buf [1]action
	t.mu.Lock()
	acts, engine := t.core.outLink(buf[:0], kind, px.addr, sender)
	t.mu.Unlock()
	if !engine {
		return genserver.ErrNotForwarded
	}
	if len(acts) == 0 {
		if kind == wire.Unlink {
			return nil
		}
		return ErrNoConnection
	}
	env := acts[0].env
	if err := acts[0].handle.(*route).send(t.ctx, &env); err != nil {
		t.count(dropSendFailed)
		return ErrNoConnection
	}
	return nil
}

// forwardEvent sends an event the engine subscribed to. The delivery is
// acknowledged once the envelope is queued, so the broker's pending window
// bounds what a slow link holds up.
func (px *proxy) forwardEvent(p *genserver.Process, d events.Delivery) {
	defer d.Done()
	t := px.t
	m := eventMsg{Topic: d.Event.Topic, Dropped: d.Dropped}
	for _, a := range d.Event.Attrs {
		m.Attrs = append(m.Attrs, a.Key, a.Value)
	}
	if d.Event.Payload != nil {
		b, err := t.reg.Marshal(d.Event.Payload)
		if err != nil {
			t.count(dropUnencodable)
			return
		}
		m.Payload = b
	}
	payload, err := ctlEnc.Marshal(m)
	if err != nil {
		t.count(dropUnencodable)
		return
	}
	_ = px.send(wire.Event, p.Sender(), payload) // counted there
}

// subscribe makes the subscription of engine's proxy follow the filter
// spec in the engine's latest learn message: none when empty, refused when
// hostile.
func (t *Transport) subscribe(engine keyholder.Address, spec []byte) {
	b := t.cfg.Broker
	if b == nil {
		return
	}
	var f events.Filter
	if len(spec) > 0 {
		var err error
		if f, err = events.DecodeFilter(spec); err != nil {
			t.count(dropFilter)
			t.log.Warn().Err(err).Stringer("engine", engine).Msg("event filter refused; the engine gets no events")
			f = events.Filter{}
		}
	}
	pid, ok := t.sys.Whereis(engine.String())
	if !ok {
		return
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	sub := t.subs[engine]
	switch {
	case f.IsZero() && sub != nil:
		_ = b.Unsubscribe(sub.id)
		delete(t.subs, engine)
	case f.IsZero():
	case sub == nil:
		id, err := b.Subscribe(pid, f)
		if err != nil {
			t.log.Warn().Err(err).Stringer("engine", engine).Msg("subscribing for a foreign engine")
			return
		}
		t.subs[engine] = &proxySub{id: id, filter: f}
	case !f.Equal(sub.filter):
		if err := b.Update(sub.id, f); err == nil {
			sub.filter = f
		}
	}
}
