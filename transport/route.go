package transport

import (
	"context"
	"errors"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"

	"github.com/enginekit/enginekit/genserver"
	"github.com/enginekit/enginekit/keyholder"
	"github.com/enginekit/enginekit/netconn"
	"github.com/enginekit/enginekit/wire"
)

// route is the runtime side of one live connection: the connection and
// the goroutine that announces our engines on it. Which engines are
// reachable over it is the core's business.
//
// The route's goroutine streams the learn burst with blocking Sends, then
// the end-of-burst marker, then every later learn and forget in the order
// the core produced them. It is the only goroutine that waits on the
// connection's writer for control messages, so the connection's reader
// (and OnUp) never does: a burst of any size on both sides cannot deadlock.
type route struct {
	t    *Transport
	id   connID
	conn *netconn.Conn
	peer keyholder.Address
	// remote is the peer's endpoint, as Endpoint writes it: every
	// connection log line names it.
	remote string

	ctx    context.Context
	cancel context.CancelFunc
	done   chan struct{}
	// burstDone is closed once every engine of ours the burst announces
	// is queued on the connection (or the route ended): a message from one
	// of our engines must not overtake its learn.
	burstDone chan struct{}

	mu   sync.Mutex
	ctl  []ctlItem
	wake chan struct{} // capacity 1

	// in is the last delivery decision the core made for a message on
	// this connection (deliver.go); only the connection's reader uses it.
	in deliverCache

	// traces: the peer announced the trace feature in its synced
	// envelope on this connection, so its calls may carry trace blocks.
	traces atomic.Bool

	// The learn pipeline (proofs.go): jobs queued for the applier, how
	// many are queued and not yet applied, a signal when that falls to
	// zero, the pipeline's goroutines (verifiers and the applier, which
	// the reader starts: applying), all ended before connDown returns.
	learnQ    chan *learnJob
	learnBusy atomic.Int32
	learnIdle chan struct{} // capacity 1
	learnWG   sync.WaitGroup
	applying  bool // the reader's own
}

// ctlItem is one learn or forget waiting for the route's goroutine; sent
// is closed once it is queued on the connection (or the route ended).
type ctlItem struct {
	env  wire.Envelope
	sent chan struct{}
}

// push queues a control envelope. Called with t.mu held, so control
// messages keep the order in which the core produced them.
func (r *route) push(env wire.Envelope, sent chan struct{}) {
	r.mu.Lock()
	r.ctl = append(r.ctl, ctlItem{env, sent})
	r.mu.Unlock()
	select {
	case r.wake <- struct{}{}:
	default:
	}
}

func (r *route) run(learns [][]byte) {
	defer close(r.done)
	defer r.drain()
	ok := r.burst(learns)
	close(r.burstDone)
	if !ok {
		return
	}
	for {
		r.mu.Lock()
		items := r.ctl
		r.ctl = nil
		r.mu.Unlock()
		for i, it := range items {
			if it.env.Kind == 0 { // a mark: everything before it is sent
			} else if err := r.conn.Send(r.ctx, &it.env); err != nil {
				r.mu.Lock()
				r.ctl = append(items[i:], r.ctl...)
				r.mu.Unlock()
				return
			}
			if it.sent != nil {
				close(it.sent)
			}
		}
		select {
		case <-r.wake:
		case <-r.ctx.Done():
			return
		}
	}
}

// drain releases whoever waits for control messages that will never be
// sent: the connection is gone.
func (r *route) drain() {
	r.mu.Lock()
	items := r.ctl
	r.ctl = nil
	r.mu.Unlock()
	for _, it := range items {
		if it.sent != nil {
			close(it.sent)
		}
	}
}

// send sends env for a proxy (a sender, which may wait): a message from
// one of our engines waits until the burst has announced it on this
// connection.
func (r *route) send(ctx context.Context, env *wire.Envelope) error {
	return r.sendTail(ctx, env, nil)
}

// sendTail is send for an envelope whose payload is env.Payload followed
// by tail (netconn.Conn.SendTail).
func (r *route) sendTail(ctx context.Context, env *wire.Envelope, tail []byte) error {
	if env.Src != r.t.router {
		select {
		case <-r.burstDone:
		default:
			select {
			case <-r.burstDone:
			case <-ctx.Done():
				return ctx.Err()
			}
		}
	}
	if tail != nil {
		return r.conn.SendTail(ctx, env, tail)
	}
	return r.conn.Send(ctx, env)
}

// burst announces learns in Learns envelopes of up to maxLearnsPerEnvelope
// engines, then the end-of-burst marker.
func (r *route) burst(learns [][]byte) bool {
	var buf []byte
	for len(learns) > 0 {
		n, size := 0, 0
		for n < len(learns) && n < maxLearnsPerEnvelope && (n == 0 || size+len(learns[n]) <= maxLearnsBytes) {
			size += len(learns[n])
			n++
		}
		buf = appendLearns(buf[:0], learns[:n])
		learns = learns[n:]
		env := wire.Envelope{Kind: wire.Learns, Src: r.t.router, Dst: r.peer, Payload: buf}
		if r.conn.Send(r.ctx, &env) != nil {
			return false
		}
	}
	env := wire.Envelope{Kind: wire.Synced, Src: r.t.router, Dst: r.peer, Payload: r.t.synced}
	return r.conn.Send(r.ctx, &env) == nil
}

func (t *Transport) routeOf(c *netconn.Conn) *route {
	if r, ok := t.routes.Load(c); ok {
		return r.(*route)
	}
	return nil
}

// connUp registers the connection with the core and starts its route's
// goroutine. It returns at once: the connection's reader starts after it.
func (t *Transport) connUp(c *netconn.Conn) {
	ra := c.RemoteAddr()
	r := &route{t: t, conn: c, peer: c.PeerRouter(), remote: Endpoint(ra.Network(), ra.String()),
		done: make(chan struct{}), burstDone: make(chan struct{}), wake: make(chan struct{}, 1),
		learnQ: make(chan *learnJob, learnDepth), learnIdle: make(chan struct{}, 1)}
	r.ctx, r.cancel = context.WithCancel(t.ctx)
	t.mu.Lock()
	t.nextConn++
	r.id = t.nextConn
	t.routes.Store(c, r)
	acts := t.core.connUp(nil, r.id, r.peer, r)
	t.mu.Unlock()
	for _, a := range acts {
		switch a.kind {
		case actBurst:
			t.log.Info().Str("remote", r.remote).Stringer("peer", r.peer).Int("engines", len(a.learns)).Msg("connection up: announcing our engines")
			go r.run(a.learns)
		case actRefuse:
			t.refused(a)
		case actClose:
			t.routes.Delete(c)
			close(r.done)
			c.CloseAsync()
			return
		}
	}
	if t.cfg.OnConnection != nil {
		t.cfg.OnConnection(r.peer, true, nil)
	}
	if t.cfg.OnConnectionEvent != nil {
		t.cfg.OnConnectionEvent(ConnectionEvent{Peer: r.peer, Remote: r.remote, Inbound: c.Inbound(), Up: true})
	}
}

// connDown stops the route's goroutine and tells the core, which fails
// the calls pending on the connection at once and starts the grace
// periods.
func (t *Transport) connDown(c *netconn.Conn, err error) {
	r := t.routeOf(c)
	if r == nil {
		return
	}
	r.cancel()
	<-r.done
	r.learnWG.Wait() // the reader is gone: no new learn goroutine starts
	t.mu.Lock()
	t.routes.Delete(c)
	learned := t.core.connTaught(r.id)
	acts := t.core.connDown(nil, r.id, t.now())
	t.mu.Unlock()
	t.exec(acts)
	t.connDowns.Add(1)
	t.log.Info().Str("remote", r.remote).Stringer("peer", r.peer).AnErr("reason", err).Int("calls_failed", len(acts)).Msg("connection down")
	if t.cfg.OnConnection != nil {
		t.cfg.OnConnection(r.peer, false, err)
	}
	if t.cfg.OnConnectionEvent != nil {
		var lived time.Duration
		if up := c.UpSince(); !up.IsZero() {
			lived = time.Since(up)
		}
		t.cfg.OnConnectionEvent(ConnectionEvent{Peer: r.peer, Remote: r.remote, Inbound: c.Inbound(),
			Err: err, Lived: lived, Learned: learned})
	}
}

// trySend sends env without waiting: a connection reader must never wait
// on a writer. With no room in the queue the envelope is dropped and
// counted.
func (t *Transport) trySend(r *route, env *wire.Envelope) {
	if err := r.conn.TrySend(env); err != nil {
		switch {
		case errors.Is(err, netconn.ErrQueueFull):
			t.count(dropQueueFull)
		case isTooLarge(err):
			t.count(dropTooLarge)
		default:
			t.count(dropSendFailed)
		}
	}
}

func (t *Transport) count(cause dropCause) {
	t.mu.Lock()
	t.core.drop(cause)
	t.mu.Unlock()
}

// refused logs a bound that refused a peer (the core counted it): the
// 1st, 2nd, 4th, 8th... refusal of each cause, so that a peer pushing
// against a bound cannot flood the log.
func (t *Transport) refused(a action) {
	if n := t.refusals[a.cause].Add(1); n&(n-1) == 0 {
		t.log.Warn().Str("remote", t.remoteOf(a.conn)).Stringer("peer", a.peer).Str("cause", a.cause.String()).Uint64("refusals", n).
			Msg("peer refused: a per-peer bound is reached")
	}
}

// exec carries out the actions of a step that need no context from the
// event: failing calls, proxies, subscriptions, notifications, dummy
// caller cancellations, sends of error replies.
func (t *Transport) exec(acts []action) {
	for i := range acts {
		a := &acts[i]
		switch a.kind {
		case actFailCall:
			genserver.Reply(a.from, nil, a.err)
			if t.tracer != nil && a.id != 0 {
				t.endClient(a.id, a.err, time.Time{})
			}
		case actStartProxy:
			t.startProxy(a.engine, a.name, a.filter)
		case actStopProxy:
			t.stopProxy(a.engine, a.pid, false, a.err)
		case actSubscribe:
			t.subscribe(a.engine, a.filter)
		case actLearned:
			t.log.Debug().Stringer("engine", a.engine).Stringer("peer", a.peer).Msg("learned engine")
			if t.cfg.OnLearn != nil {
				t.cfg.OnLearn(a.engine, a.peer)
			}
		case actSynced:
			t.log.Info().Str("remote", t.remoteOf(a.conn)).Stringer("peer", a.peer).Msg("peer's engines all learned")
			if t.cfg.OnSynced != nil {
				t.cfg.OnSynced(a.peer)
			}
		case actCancelCall:
			t.mu.Lock()
			cancel := t.inCancel[a.id]
			delete(t.inCancel, a.id)
			t.mu.Unlock()
			if cancel != nil {
				cancel()
			}
			// A call delivered into a mailbox: a later Reply is dropped
			// (the core has forgotten the call, so nothing is sent).
			genserver.Reply(a.from, nil, context.Canceled)
		case actEndCall:
			genserver.Reply(a.from, nil, a.err) // sent by CallReply, as the callee's reply would be
		case actSend:
			if a.mode == sendTry && a.env.Kind == wire.Reply {
				t.sendErrorReply(a.handle.(*route), &a.env, codeErr(a.id))
			}
		case actRefuse:
			t.refused(*a)
		}
	}
}

// startProxy spawns the proxy of engine, registered as name (engine's
// address as a string, made once by the core). When the name is still held by a
// proxy on its way out (a forget and a new learn back to back), the spawn
// is retried once that one is gone, off the reader.
func (t *Transport) startProxy(engine keyholder.Address, name string, filter []byte) {
	pid, err := t.spawnProxy(engine, name, filter)
	if err != nil {
		t.mu.Lock()
		wait := t.stopping[engine]
		t.mu.Unlock()
		if wait != nil {
			t.wg.Add(1)
			go func() {
				defer t.wg.Done()
				select {
				case <-wait:
				case <-t.ctx.Done():
					return
				}
				pid, err := t.spawnProxy(engine, name, filter)
				t.proxyStarted(engine, pid, err)
			}()
			return
		}
	}
	t.proxyStarted(engine, pid, err)
}

func (t *Transport) spawnProxy(engine keyholder.Address, name string, filter []byte) (genserver.PID, error) {
	px := &proxy{t: t, addr: engine}
	pid, err := t.sys.Spawn(func() genserver.Server { return px }, genserver.WithName(name))
	if err == nil {
		t.subscribe(engine, filter)
	}
	return pid, err
}

func (t *Transport) proxyStarted(engine keyholder.Address, pid genserver.PID, err error) {
	if err != nil {
		t.log.Warn().Err(err).Stringer("engine", engine).Msg("learn refused")
	}
	var buf [2]action // one actLearned per peer: mostly one
	t.mu.Lock()
	acts, orphan := t.core.proxyStarted(buf[:0], engine, pid, err == nil)
	t.mu.Unlock()
	if orphan {
		t.stopProxy(engine, pid, true, nil)
	}
	t.exec(acts)
	if err == nil && !orphan && !pid.Alive() {
		// It died before the core counted it as started, so its Exited
		// found nothing to forget: forget it now (a second report of the
		// same death is ignored by the core).
		t.proxyDied(engine, pid)
	}
}

// proxyDied: a proxy's process ended (proxy.Exited). When the core still
// counts on it (it was killed, not stopped by us), the engine is
// forgotten, so that a new learn makes a new proxy. Once the transport
// stops, stopProxies has forgotten every proxy: nothing is left to do.
func (t *Transport) proxyDied(engine keyholder.Address, pid genserver.PID) {
	if !t.running.Load() {
		return
	}
	t.mu.Lock()
	acts := t.core.proxyDied(nil, engine, pid)
	t.mu.Unlock()
	t.exec(acts)
}

// stopProxy stops a proxy off the caller's goroutine, then tells
// OnForget (unless quiet: a proxy nobody learned).
func (t *Transport) stopProxy(engine keyholder.Address, pid genserver.PID, quiet bool, reason error) {
	finish := t.prepareStop(engine)
	t.wg.Add(1)
	go func() {
		defer t.wg.Done()
		finish(pid, quiet, reason)
	}()
}

// prepareStop marks engine's proxy as on its way out and drops its
// subscription; the function it returns stops the process and notifies.
func (t *Transport) prepareStop(engine keyholder.Address) func(pid genserver.PID, quiet bool, reason error) {
	gone := make(chan struct{})
	t.mu.Lock()
	t.stopping[engine] = gone
	sub := t.subs[engine]
	delete(t.subs, engine)
	t.mu.Unlock()
	if sub != nil && t.cfg.Broker != nil {
		_ = t.cfg.Broker.Unsubscribe(sub.id)
	}
	return func(pid genserver.PID, quiet bool, reason error) {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		if reason == nil {
			// The engine exited normally: so does its proxy, and a process
			// linked to it lives on, as with a local process (OTP's normal).
			if t.sys.Send(pid, proxyStop{}) == nil {
				select {
				case <-pid.Done():
				case <-ctx.Done():
				}
			}
		} else {
			_ = t.sys.StopProcess(ctx, pid, &ForeignExit{Engine: engine, Reason: reason})
		}
		cancel()
		t.mu.Lock()
		if t.stopping[engine] == gone {
			delete(t.stopping, engine)
		}
		t.mu.Unlock()
		close(gone)
		if !quiet {
			t.log.Debug().Stringer("engine", engine).Msg("forgot engine")
			if t.cfg.OnForget != nil {
				t.cfg.OnForget(engine)
			}
		}
	}
}

// stopProxies stops every proxy at shutdown and waits for them: a few
// workers, not a goroutine per proxy (a node may have 100,000).
func (t *Transport) stopProxies() {
	t.mu.Lock()
	var acts []action
	for e, px := range t.core.proxies {
		acts = t.core.removeProxy(acts, e, px, ErrNoConnection)
	}
	t.mu.Unlock()
	work := make(chan *action)
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			for a := range work {
				t.prepareStop(a.engine)(a.pid, false, a.err)
			}
		})
	}
	for i := range acts {
		if acts[i].kind == actStopProxy {
			work <- &acts[i]
		}
	}
	close(work)
	wg.Wait()
	t.wg.Wait()
}

// farewell tells every peer to forget our engines, before the connections
// close at shutdown.
func (t *Transport) farewell() {
	t.mu.Lock()
	forgets := make([][]byte, 0, len(t.core.local))
	for a := range t.core.local {
		f, _ := ctlEnc.Marshal(forgetMsg{Engine: a})
		forgets = append(forgets, f)
	}
	t.mu.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	// First let every route send the forgets it has queued.
	var flushed []chan struct{}
	t.mu.Lock()
	t.routes.Range(func(_, v any) bool {
		sent := make(chan struct{})
		v.(*route).push(wire.Envelope{}, sent) // a mark only: nothing is sent
		flushed = append(flushed, sent)
		return true
	})
	t.mu.Unlock()
	for _, f := range flushed {
		select {
		case <-f:
		case <-ctx.Done():
		}
	}
	t.routes.Range(func(_, v any) bool {
		r := v.(*route)
		for _, f := range forgets {
			env := wire.Envelope{Kind: wire.Forget, Src: t.router, Dst: r.peer, Payload: f}
			if r.conn.Send(ctx, &env) != nil {
				break
			}
		}
		return true
	})
}

// backoffDelay is netconn's exponential backoff with jitter, for
// re-binding listeners and restarting dialers.
func backoffDelay(b netconn.Backoff, n int) time.Duration {
	if b.Min <= 0 {
		b.Min = netconn.DefaultBackoffMin
	}
	if b.Max < b.Min {
		b.Max = max(netconn.DefaultBackoffMax, b.Min)
	}
	d := b.Min
	for i := 0; i < n && d < b.Max; i++ {
		d *= 2
	}
	d = min(d, b.Max)
	return d/2 + rand.N(d/2+1)
}
