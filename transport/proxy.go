package transport

import (
	"context"
	"sync"
	"time"

	"github.com/enginekit/enginekit/events"
	"github.com/enginekit/enginekit/genserver"
	"github.com/enginekit/enginekit/keyholder"
	"github.com/enginekit/enginekit/wire"
)

// proxy stands in for one foreign engine: a process registered in the
// System under the engine's address, so calls, casts and sends to that
// address are the same code as to a local engine. It authenticates nothing
// itself: its envelopes are signed or MACed by the connection's writer with
// the sending engine's key (the router's when the sender is no engine).
type proxy struct {
	t    *Transport
	addr keyholder.Address
	pid  genserver.PID

	buf []byte // encoding buffer, reused: Send copies the payload

	mu      sync.Mutex
	routes  []*route // live routes, in the order they were learned
	gen     uint64   // bumped when the route set changes; voids stale expiries
	removed bool
	sub     events.SubID // the subscription made for the engine, or 0
	filter  events.Filter
}

// Internal info messages of a proxy.
type (
	routeLost  struct{ gen uint64 }
	expireNow  struct{ gen uint64 }
	forgetting struct{}
)

func (px *proxy) live() *route {
	px.mu.Lock()
	defer px.mu.Unlock()
	if len(px.routes) == 0 {
		return nil
	}
	return px.routes[0]
}

func (px *proxy) addRoute(r *route) {
	px.mu.Lock()
	defer px.mu.Unlock()
	for _, have := range px.routes {
		if have == r {
			return
		}
	}
	px.routes = append(px.routes, r)
	px.gen++
}

// dropRoute takes r out of px's routes and reports whether none is left.
func (px *proxy) dropRoute(r *route) (last bool, gen uint64) {
	px.mu.Lock()
	defer px.mu.Unlock()
	for i, have := range px.routes {
		if have == r {
			px.routes = append(px.routes[:i:i], px.routes[i+1:]...)
			px.gen++
			break
		}
	}
	return len(px.routes) == 0, px.gen
}

// removeRoute drops r after its connection went down; when it was the last
// route the proxy starts its grace period.
func (px *proxy) removeRoute(r *route) {
	if last, gen := px.dropRoute(r); last {
		_ = px.t.sys.Send(px.pid, routeLost{gen})
	}
}

func (px *proxy) HandleCall(_ *genserver.Process, from genserver.From, req any) (any, error) {
	t := px.t
	r := px.live()
	if r == nil {
		return nil, ErrNoConnection
	}
	payload, err := t.reg.AppendMarshal(px.buf[:0], req)
	if err != nil {
		return nil, err
	}
	px.buf = payload[:0]
	ref, err := r.pending.Add(from, px.addr)
	if err != nil {
		return nil, err
	}
	env := wire.Envelope{
		Kind:     wire.Call,
		Src:      t.sourceOf(from.PID()),
		Dst:      px.addr,
		Ref:      ref,
		Deadline: from.Deadline().UnixNano(),
		Payload:  payload,
	}
	if err := t.send(r, &env); err != nil {
		r.pending.Fail(ref, ErrNoConnection)
	}
	return genserver.NoReply, nil
}

func (px *proxy) HandleCast(p *genserver.Process, msg any) { px.forward(p, wire.Cast, msg) }

func (px *proxy) HandleInfo(p *genserver.Process, msg any) {
	switch m := msg.(type) {
	case routeLost:
		p.SendAfter(px.t.cfg.ForgetGrace, expireNow(m))
	case expireNow:
		px.mu.Lock()
		expired := m.gen == px.gen && len(px.routes) == 0
		px.mu.Unlock()
		if expired {
			px.t.log.Info().Stringer("engine", px.addr).Msg("no route back within the grace period: forgetting")
			px.t.dropProxy(px)
			p.Stop(nil)
		}
	case forgetting:
		p.Stop(nil)
	case events.Delivery:
		px.forwardEvent(p, m)
	default:
		px.forward(p, wire.Info, msg)
	}
}

// forward sends a cast or info message to the foreign engine. Like a cast
// to a local process that has died, one to an engine without a live route
// is dropped (and counted).
func (px *proxy) forward(p *genserver.Process, kind wire.Kind, msg any) {
	t := px.t
	r := px.live()
	if r == nil {
		t.stats.noRoute.Add(1)
		return
	}
	payload, err := t.reg.AppendMarshal(px.buf[:0], msg)
	if err != nil {
		t.stats.unencodable.Add(1)
		t.log.Warn().Err(err).Stringer("engine", px.addr).Msg("message not sent: its type is not registered")
		return
	}
	px.buf = payload[:0]
	env := wire.Envelope{Kind: kind, Src: t.sourceOf(p.Sender()), Dst: px.addr, Payload: payload}
	_ = t.send(r, &env)
}

// forwardEvent sends an event the engine subscribed to. The delivery is
// acknowledged once the envelope is queued, so the broker's pending window
// bounds what a slow link holds up.
func (px *proxy) forwardEvent(p *genserver.Process, d events.Delivery) {
	defer d.Done()
	t := px.t
	r := px.live()
	if r == nil {
		t.stats.noRoute.Add(1)
		return
	}
	m := eventMsg{Topic: d.Event.Topic, Dropped: d.Dropped}
	for _, a := range d.Event.Attrs {
		m.Attrs = append(m.Attrs, a.Key, a.Value)
	}
	if d.Event.Payload != nil {
		b, err := t.reg.Marshal(d.Event.Payload)
		if err != nil {
			t.stats.unencodable.Add(1)
			return
		}
		m.Payload = b
	}
	payload, err := ctlEnc.Marshal(m)
	if err != nil {
		t.stats.unencodable.Add(1)
		return
	}
	env := wire.Envelope{Kind: wire.Event, Src: t.sourceOf(p.Sender()), Dst: px.addr, Payload: payload}
	_ = t.send(r, &env)
}

// subscribe makes px's subscription follow the filter spec in the engine's
// latest learn message: none when empty, refused when hostile.
func (t *Transport) subscribe(px *proxy, spec []byte) {
	b := t.cfg.Broker
	var f events.Filter
	if len(spec) > 0 {
		var err error
		if f, err = events.DecodeFilter(spec); err != nil {
			t.stats.filterRefused.Add(1)
			t.log.Warn().Err(err).Stringer("engine", px.addr).Msg("event filter refused; the engine gets no events")
			f = events.Filter{}
		}
	}
	px.mu.Lock()
	defer px.mu.Unlock()
	if b == nil || px.removed {
		return
	}
	switch {
	case f.IsZero() && px.sub != 0:
		_ = b.Unsubscribe(px.sub)
		px.sub, px.filter = 0, events.Filter{}
	case f.IsZero():
	case px.sub == 0:
		id, err := b.Subscribe(px.pid, f)
		if err != nil {
			t.log.Warn().Err(err).Stringer("engine", px.addr).Msg("subscribing for a foreign engine")
			return
		}
		px.sub, px.filter = id, f
	case !f.Equal(px.filter):
		if err := b.Update(px.sub, f); err == nil {
			px.filter = f
		}
	}
}

// learn registers the proxy of engine on route r, creating it if needed,
// and its event subscription.
func (t *Transport) learn(r *route, engine keyholder.Address, filter []byte) {
	r.mu.Lock()
	if r.down {
		r.mu.Unlock()
		return
	}
	if px, known := r.learned[engine]; known { // a new learn: the filter may have changed
		r.mu.Unlock()
		t.subscribe(px, filter)
		if t.cfg.OnLearn != nil {
			t.cfg.OnLearn(engine, r.peer)
		}
		return
	}
	r.mu.Unlock()

	t.mu.Lock()
	px, ok := t.proxies[engine]
	created := false
	if !ok {
		px = &proxy{t: t, addr: engine}
		pid, err := t.sys.Spawn(func() genserver.Server { return px }, genserver.WithName(engine.String()))
		if err != nil {
			// The name is taken: a local engine, or a proxy still on its
			// way out. Either way we cannot stand in for it now.
			t.mu.Unlock()
			t.stats.learnRefused.Add(1)
			t.log.Warn().Err(err).Stringer("engine", engine).Msg("learn refused")
			return
		}
		px.pid = pid
		t.proxies[engine] = px
		created = true
	}
	t.mu.Unlock()

	px.addRoute(r)
	r.mu.Lock()
	if r.down { // the connection died meanwhile: undo
		r.mu.Unlock()
		px.removeRoute(r)
		return
	}
	r.learned[engine] = px
	r.mu.Unlock()
	t.subscribe(px, filter)
	if created {
		_ = t.sys.Cast(t.watcher, watchProxy{px})
	}
	t.log.Info().Stringer("engine", engine).Stringer("peer", r.peer).Bool("new", created).Msg("learned engine")
	if t.cfg.OnLearn != nil {
		t.cfg.OnLearn(engine, r.peer)
	}
}

// forget removes engine's route r after the peer said to forget it; a proxy
// left without routes goes at once.
func (t *Transport) forget(r *route, engine keyholder.Address) {
	r.mu.Lock()
	px, ok := r.learned[engine]
	delete(r.learned, engine)
	r.mu.Unlock()
	if !ok {
		return
	}
	if last, _ := px.dropRoute(r); last {
		t.log.Info().Stringer("engine", engine).Stringer("peer", r.peer).Msg("forgetting engine")
		t.dropProxy(px)
		_ = t.sys.Send(px.pid, forgetting{})
	}
}

// dropProxy takes px out of the table so a new learn makes a fresh proxy.
func (t *Transport) dropProxy(px *proxy) {
	t.mu.Lock()
	if t.proxies[px.addr] == px {
		delete(t.proxies, px.addr)
	}
	t.mu.Unlock()
	px.mu.Lock()
	px.removed = true
	px.mu.Unlock()
}

// stopProxies stops every proxy at shutdown and waits for them.
func (t *Transport) stopProxies() {
	t.mu.Lock()
	pxs := make([]*proxy, 0, len(t.proxies))
	for _, px := range t.proxies {
		pxs = append(pxs, px)
	}
	clear(t.proxies)
	t.mu.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	for _, px := range pxs {
		_ = t.sys.StopProcess(ctx, px.pid, nil)
	}
}
