package transport

import (
	"errors"

	"github.com/enginekit/enginekit/events"
	"github.com/enginekit/enginekit/genserver"
	"github.com/enginekit/enginekit/keyholder"
	"github.com/enginekit/enginekit/netconn"
	"github.com/enginekit/enginekit/wire"
)

// proxy stands in for one foreign engine: a process registered in the
// System under the engine's address, so calls, casts and sends to that
// address are the same code as to a local engine. It holds no routing
// state: each message asks the core for a route. It authenticates nothing
// itself: its envelopes are signed or MACed by the connection's writer with
// the sending engine's key (the router's when the sender is no engine).
type proxy struct {
	t    *Transport
	addr keyholder.Address
	buf  []byte // encoding buffer, reused: Send copies the payload
}

// proxySub is the event subscription a foreign engine asked for.
type proxySub struct {
	id     events.SubID
	filter events.Filter
}

// Init makes the proxy trap exits: a local process linked to it that dies
// must not take it down (the exit does not travel to the foreign engine).
func (px *proxy) Init(p *genserver.Process) error {
	p.TrapExits(true)
	return nil
}

func isTooLarge(err error) bool { return errors.Is(err, netconn.ErrTooLarge) }

// HandleCall sends the call and returns at once: the reply answers From
// when it comes (or the call fails when its route goes). A request over
// the frame limit fails at once with a size error (ErrTooLarge).
func (px *proxy) HandleCall(_ *genserver.Process, from genserver.From, req any) (any, error) {
	t := px.t
	payload, err := t.reg.AppendMarshal(px.buf[:0], req)
	if err != nil {
		return nil, err
	}
	px.buf = payload[:0]
	var buf [1]action
	t.mu.Lock()
	acts := t.core.outCall(buf[:0], px.addr, from.PID(), from, t.logical(from.Deadline()))
	t.mu.Unlock()
	a := &acts[0]
	if a.kind == actFailCall {
		return nil, a.err
	}
	env := a.env
	env.Deadline = from.Deadline().UnixNano()
	env.Payload = payload
	if err := a.handle.(*route).send(t.ctx, &env); err != nil {
		if !isTooLarge(err) {
			err = ErrNoConnection
		} else {
			t.count(dropTooLarge)
		}
		t.mu.Lock()
		t.core.sendFailed(nil, env.Ref, err)
		t.mu.Unlock()
		return nil, err
	}
	return genserver.NoReply, nil
}

func (px *proxy) HandleCast(p *genserver.Process, msg any) { px.forward(p, wire.Cast, msg) }

func (px *proxy) HandleInfo(p *genserver.Process, msg any) {
	switch m := msg.(type) {
	case events.Delivery:
		px.forwardEvent(p, m)
	case genserver.Exit:
		// A linked local process exited; links do not cross the wire in
		// that direction.
	default:
		px.forward(p, wire.Info, msg)
	}
}

// forward sends a cast or info message to the foreign engine. Like a cast
// to a local process that has died, one to an engine without a live route
// is dropped (and counted), and so is one over the frame limit (counted as
// too_large and logged: a cast has returned by the time the proxy runs).
func (px *proxy) forward(p *genserver.Process, kind wire.Kind, msg any) {
	t := px.t
	payload, err := t.reg.AppendMarshal(px.buf[:0], msg)
	if err != nil {
		t.count(dropUnencodable)
		t.log.Warn().Err(err).Stringer("engine", px.addr).Msg("message not sent: its type is not registered")
		return
	}
	px.buf = payload[:0]
	px.send(kind, p.Sender(), payload)
}

func (px *proxy) send(kind wire.Kind, sender genserver.PID, payload []byte) {
	t := px.t
	var buf [1]action
	t.mu.Lock()
	acts := t.core.outMessage(buf[:0], kind, px.addr, sender)
	t.mu.Unlock()
	if len(acts) == 0 {
		return
	}
	env := acts[0].env
	env.Payload = payload
	if err := acts[0].handle.(*route).send(t.ctx, &env); err != nil {
		if isTooLarge(err) {
			t.count(dropTooLarge)
			t.log.Warn().Err(err).Stringer("engine", px.addr).Msg("message not sent")
			return
		}
		t.count(dropSendFailed)
	}
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
	px.send(wire.Event, p.Sender(), payload)
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
