package transport

import (
	"slices"
	"sync/atomic"

	"github.com/enginekit/enginekit/genserver"
	"github.com/enginekit/enginekit/keyholder"
	"github.com/enginekit/enginekit/wire"
)

// core is the transport's state: which foreign engine is reachable over
// which connection, the proxies standing in for them, the learned sets per
// connection and per peer router, the calls we wait for and the calls we
// serve, the per-peer budgets and the grace timers. It is a plain state
// machine, as supervisor's core is: no goroutines, no clock, no locks, no
// sockets. Each method takes one event (with the logical time, where time
// matters), updates the state and appends to the caller's buffer the
// actions the goroutines around it must carry out: send an envelope, deliver
// to a local engine, start or stop a proxy, fail a call, start or cancel a
// dummy caller, notify. The Transport guards it with one mutex and executes
// the actions after unlocking; the scenario tests drive it on a simulated
// network (core_sim_test.go).
//
// Payloads are the driver's business: it decodes and verifies them (proofs
// included) before stepping the core, and encodes what the actions send.
type core struct {
	lim    coreLimits
	router keyholder.Address

	conns   map[connID]*coreConn
	peers   map[keyholder.Address]*corePeer
	proxies map[keyholder.Address]*coreProxy
	grace   map[keyholder.Address]struct{} // proxies without routes, waiting for one
	local   map[keyholder.Address]*coreLocal
	byPID   map[genserver.PID]keyholder.Address

	out     map[uint64]outCall // calls we wait for, by Ref
	nextRef uint64
	in      map[uint64]inCall         // calls we serve, by id
	inFrom  map[uint64]genserver.From // the From of each delivered into a mailbox (inDelivered)
	nextIn  uint64
	exports map[uint64]exportedFrom // Froms handed to other nodes, by token

	drops   [numDrops]uint64
	lastNow int64 // the latest time an event brought

	// epoch changes with every step that may change what message decides
	// for a cast, info or event (the connections, what each learned, the
	// proxies and their pids, our engines) or what outMessage decides (a
	// proxy's routes, our engines' pids). While it keeps a value, those
	// decisions stay what they were: a driver may reuse one it got at that
	// value instead of stepping the core again for the same message, and
	// may read epoch without holding the core's lock (a step that changes
	// it holds the lock, so a read that sees the old value comes before
	// the step). It is the only field read that way.
	epoch atomic.Uint64
}

// changed marks a step that may change message's or outMessage's
// decisions (see epoch).
func (c *core) changed() { c.epoch.Add(1) }

// coreLimits are the bounds the core enforces, per peer router.
type coreLimits struct {
	Grace      int64 // nanoseconds
	MaxLearned int
	MaxCallsIn int
	MaxCalls   int // outgoing, pending
	MaxConns   int
}

// connID names one live connection inside the core.
type connID uint64

type coreConn struct {
	id       connID
	peer     keyholder.Address
	peerName string // peer.String(), once
	handle   any    // the driver's route, carried in actions
	learned  map[keyholder.Address]struct{}
	taught   int                 // engines ever learned on it, forgotten ones included
	calls    map[uint64]struct{} // outgoing calls sent on it
}

type corePeer struct {
	conns   []*coreConn
	learned map[keyholder.Address]int32 // engine → connections that taught it
	callsIn map[uint64]struct{}         // incoming calls in service
	calls   int                         // outgoing calls pending
	downAt  int64                       // when its last connection went; valid when len(conns) == 0
}

type coreProxy struct {
	routes   []*coreConn // live routes, in the order learned
	pid      genserver.PID
	name     string // the engine's address as a string, once
	expireAt int64  // when it has no routes: forgotten then
	started  bool
}

type coreLocal struct {
	pid   genserver.PID
	learn []byte // encoded learn payload, proof included
}

type outCall struct {
	conn     *coreConn
	peer     *corePeer
	callee   keyholder.Address
	from     genserver.From
	deadline int64 // logical; the call is swept after it
}

// exportedFrom is a From that another node may answer (ExportFrom),
// kept until it is answered or its deadline passes.
type exportedFrom struct {
	from     genserver.From
	deadline int64
}

type inCall struct {
	peer       keyholder.Address
	callee     keyholder.Address
	caller     keyholder.Address
	ref        uint64
	preferConn connID
	// For a call that goes straight into the callee's mailbox
	// (inDelivered) rather than to a dummy caller, which watches these
	// itself: the callee (its incarnation) and the call's logical deadline
	// (zero: none). inCall stays within 128 bytes, so the map holds it
	// inline (no allocation per call); its From is in core.inFrom.
	calleePID genserver.PID
	deadline  int64
}

type actionKind uint8

const (
	actSend       actionKind = iota + 1 // send env on handle, in mode
	actDeliver                          // deliver the message being stepped to dst, from sender
	actStartCall                        // start a dummy caller (id) for the call being stepped
	actCancelCall                       // cancel dummy caller id (and answer from with context.Canceled: no reply leaves)
	actEndCall                          // answer from (call id in service) with err: a reply with it leaves
	actFailCall                         // answer from with err
	actResolve                          // answer from with the reply being stepped
	actStartProxy                       // spawn the proxy of engine
	actStopProxy                        // stop the proxy of engine (pid), then notify forget
	actSubscribe                        // the proxy of engine asks for filter
	actLearned                          // notify: engine learned from peer
	actSynced                           // notify: peer's burst is complete
	actBurst                            // announce learns on handle, then the end-of-burst marker
	actRefuse                           // a bound refused peer: log it (cause)
	actClose                            // close the connection handle (go-away, cause)
)

// sendMode says how a send may wait.
type sendMode uint8

const (
	// sendBlock: the stepping goroutine is a sender (a proxy, a dummy
	// caller): it may wait for room in the connection's queue.
	sendBlock sendMode = iota + 1
	// sendTry: the stepping goroutine is a connection reader, which must
	// never wait on a writer: send if there is room, else drop and count.
	sendTry
	// sendControl: a learn or forget, sent in order by the route's own
	// goroutine after its burst.
	sendControl
)

// action is one thing the driver must do after a step.
type action struct {
	kind   actionKind
	mode   sendMode
	handle any
	conn   connID
	env    wire.Envelope // header of what to send (the driver adds Src payloads it encodes)
	engine keyholder.Address
	peer   keyholder.Address
	pid    genserver.PID // actDeliver: the sender's proxy; actStopProxy: the proxy
	dst    genserver.PID
	from   genserver.From
	err    error
	id     uint64
	name   string // actStartCall: the caller's address as a string (cached); actStartProxy: the engine's
	cause  dropCause
	learns [][]byte
	filter []byte
}

func newCore(router keyholder.Address, lim coreLimits) *core {
	return &core{
		lim:     lim,
		router:  router,
		conns:   make(map[connID]*coreConn),
		peers:   make(map[keyholder.Address]*corePeer),
		proxies: make(map[keyholder.Address]*coreProxy),
		grace:   make(map[keyholder.Address]struct{}),
		local:   make(map[keyholder.Address]*coreLocal),
		byPID:   make(map[genserver.PID]keyholder.Address),
		out:     make(map[uint64]outCall),
		in:      make(map[uint64]inCall),
		inFrom:  make(map[uint64]genserver.From),
		exports: make(map[uint64]exportedFrom),
	}
}

func (c *core) drop(cause dropCause) { c.drops[cause]++ }

func (c *core) peer(a keyholder.Address) *corePeer {
	p := c.peers[a]
	if p == nil {
		p = &corePeer{learned: make(map[keyholder.Address]int32), callsIn: make(map[uint64]struct{})}
		c.peers[a] = p
	}
	return p
}

// connUp: a connection to peer came up. Our engines are announced on it by
// the route's goroutine (actBurst), never by the stepping reader.
func (c *core) connUp(acts []action, id connID, peer keyholder.Address, handle any) []action {
	c.changed()
	p := c.peer(peer)
	if c.lim.MaxConns > 0 && len(p.conns) >= c.lim.MaxConns {
		c.drop(dropPeerConns)
		return append(acts,
			action{kind: actRefuse, peer: peer, conn: id, cause: dropPeerConns},
			action{kind: actClose, handle: handle, conn: id, peer: peer, cause: dropPeerConns})
	}
	cc := &coreConn{id: id, peer: peer, peerName: peer.String(), handle: handle, learned: make(map[keyholder.Address]struct{}), calls: make(map[uint64]struct{})}
	c.conns[id] = cc
	p.conns = append(p.conns, cc)
	learns := make([][]byte, 0, len(c.local))
	for _, l := range c.local {
		learns = append(learns, l.learn)
	}
	return append(acts, action{kind: actBurst, handle: handle, conn: id, peer: peer, learns: learns})
}

// connDown: a connection went down. Calls sent on it fail at once; its
// routes go; proxies left without a route wait Grace for one; a peer left
// without connections keeps its calls in service for Grace.
func (c *core) connDown(acts []action, id connID, now int64) []action {
	c.changed()
	cc := c.conns[id]
	if cc == nil {
		return acts
	}
	delete(c.conns, id)
	c.lastNow = now
	p := c.peers[cc.peer]
	for ref := range cc.calls {
		oc := c.out[ref]
		delete(c.out, ref)
		p.calls--
		acts = append(acts, action{kind: actFailCall, from: oc.from, err: ErrNoConnection, id: ref})
	}
	for e := range cc.learned {
		c.unroute(e, cc, p)
		if px := c.proxies[e]; px != nil && len(px.routes) == 0 {
			px.expireAt = now + c.lim.Grace
			c.grace[e] = struct{}{}
		}
	}
	for i, x := range p.conns {
		if x == cc {
			p.conns = append(p.conns[:i:i], p.conns[i+1:]...)
			break
		}
	}
	if len(p.conns) == 0 {
		p.downAt = now
	}
	return acts
}

// unroute removes the route cc from engine e's proxy and the peer's count.
func (c *core) unroute(e keyholder.Address, cc *coreConn, p *corePeer) {
	c.changed()
	if px := c.proxies[e]; px != nil {
		for i, r := range px.routes {
			if r == cc {
				px.routes = append(px.routes[:i:i], px.routes[i+1:]...)
				break
			}
		}
	}
	if n := p.learned[e] - 1; n > 0 {
		p.learned[e] = n
	} else {
		delete(p.learned, e)
	}
}

// learn: the router of connection id (checked by the driver, with the
// engine's proof) announces engine, asking for the events of filter.
func (c *core) learn(acts []action, id connID, engine keyholder.Address, filter []byte) []action {
	c.changed()
	cc := c.conns[id]
	if cc == nil {
		c.drop(dropNoRoute)
		return acts
	}
	if engine == c.router || c.local[engine] != nil {
		c.drop(dropBadProof) // our own engine or router, reflected back
		return acts
	}
	p := c.peers[cc.peer]
	px := c.proxies[engine]
	if _, known := cc.learned[engine]; known {
		return append(acts,
			action{kind: actSubscribe, engine: engine, filter: filter},
			action{kind: actLearned, engine: engine, peer: cc.peer})
	}
	if _, counted := p.learned[engine]; !counted && c.lim.MaxLearned > 0 && len(p.learned) >= c.lim.MaxLearned {
		c.drop(dropLearnLimit)
		return append(acts, action{kind: actRefuse, peer: cc.peer, conn: cc.id, engine: engine, cause: dropLearnLimit})
	}
	cc.learned[engine] = struct{}{}
	cc.taught++
	p.learned[engine]++
	if px == nil {
		// The driver subscribes the new proxy (filter) before it reports
		// it started, so the engine is learned with its subscription.
		px = &coreProxy{name: engine.String()}
		c.proxies[engine] = px
		px.routes = append(px.routes, cc)
		return append(acts, action{kind: actStartProxy, engine: engine, peer: cc.peer, filter: filter, name: px.name})
	}
	px.routes = append(px.routes, cc)
	if px.expireAt != 0 {
		px.expireAt = 0
		delete(c.grace, engine)
	}
	acts = append(acts, action{kind: actSubscribe, engine: engine, filter: filter})
	if px.started {
		acts = append(acts, action{kind: actLearned, engine: engine, peer: cc.peer})
	}
	return acts
}

// proxyStarted: the driver spawned engine's proxy as pid (or failed: zero
// pid), after an actStartProxy. orphan reports a proxy the core no longer
// wants (forgotten meanwhile): the driver stops it quietly.
func (c *core) proxyStarted(acts []action, engine keyholder.Address, pid genserver.PID, ok bool) (_ []action, orphan bool) {
	c.changed()
	px := c.proxies[engine]
	if px == nil || px.started {
		return acts, ok
	}
	if !ok { // the name is taken: we cannot stand in for it
		c.drop(dropLearnRefused)
		for _, r := range px.routes {
			delete(r.learned, engine)
			c.unroute(engine, r, c.peers[r.peer])
		}
		delete(c.proxies, engine)
		delete(c.grace, engine)
		return acts, false
	}
	px.pid, px.started = pid, true
	for i, r := range px.routes {
		if !slices.ContainsFunc(px.routes[:i], func(o *coreConn) bool { return o.peer == r.peer }) {
			acts = append(acts, action{kind: actLearned, engine: engine, peer: r.peer})
		}
	}
	if len(px.routes) == 0 { // its routes went while it started: it waits as any proxy would
		px.expireAt = c.lastNow + c.lim.Grace
		c.grace[engine] = struct{}{}
	}
	return acts, false
}

// proxyDied: engine's proxy pid ended without the core asking (killed).
// The engine is forgotten on every route: a new learn starts afresh.
func (c *core) proxyDied(acts []action, engine keyholder.Address, pid genserver.PID) []action {
	c.changed()
	px := c.proxies[engine]
	if px == nil || !px.started || px.pid != pid {
		return acts // stopped by us, or an older incarnation
	}
	for _, r := range px.routes {
		delete(r.learned, engine)
		c.unroute(engine, r, c.peers[r.peer])
	}
	return c.removeProxy(acts, engine, px, nil)
}

// forget: the router of connection id says engine is gone. reason is the
// engine's exit reason, carried to monitors (or nil).
func (c *core) forget(acts []action, id connID, engine keyholder.Address, reason error) []action {
	c.changed()
	cc := c.conns[id]
	if cc == nil {
		c.drop(dropNoRoute)
		return acts
	}
	if _, ok := cc.learned[engine]; !ok {
		c.drop(dropForgetUnknown)
		return acts
	}
	delete(cc.learned, engine)
	c.unroute(engine, cc, c.peers[cc.peer])
	px := c.proxies[engine]
	if px != nil && len(px.routes) == 0 {
		return c.removeProxy(acts, engine, px, reason)
	}
	return acts
}

// removeProxy forgets engine's proxy; reason is what its monitors and
// links are told (the engine's exit reason, ErrNoConnection).
func (c *core) removeProxy(acts []action, engine keyholder.Address, px *coreProxy, reason error) []action {
	c.changed()
	delete(c.proxies, engine)
	delete(c.grace, engine)
	if !px.started {
		return acts
	}
	return append(acts, action{kind: actStopProxy, engine: engine, pid: px.pid, err: reason})
}

// synced: the peer's end-of-burst marker arrived on id.
func (c *core) synced(acts []action, id connID) []action {
	cc := c.conns[id]
	if cc == nil {
		c.drop(dropNoRoute)
		return acts
	}
	return append(acts, action{kind: actSynced, peer: cc.peer, conn: id})
}

// message: a cast, info, event or call from src to dst arrived on id. The
// source must be an engine learned on that connection (or its router), the
// destination one of our running engines. A call is admitted within the
// peer's budget of calls in service.
func (c *core) message(acts []action, id connID, kind wire.Kind, src, dst keyholder.Address, ref uint64) []action {
	cc := c.conns[id]
	if cc == nil {
		c.drop(dropNoRoute)
		return acts
	}
	var sender genserver.PID
	srcName := cc.peerName
	if src != cc.peer {
		if _, ok := cc.learned[src]; !ok {
			c.drop(dropUnknownSrc)
			return acts
		}
		srcName = ""
		if px := c.proxies[src]; px != nil {
			sender, srcName = px.pid, px.name
		}
	}
	if (kind == wire.Link || kind == wire.Unlink) && sender.IsZero() {
		c.drop(dropUnknownSrc) // only an engine (its proxy here) can be linked
		return acts
	}
	l := c.local[dst]
	if l == nil {
		c.drop(dropNoEngine)
		if kind == wire.Call { // answered at once, by the router
			acts = c.errorReply(acts, cc, src, ref, errNoProcessCode)
		}
		return acts
	}
	if kind != wire.Call {
		return append(acts, action{kind: actDeliver, pid: sender, dst: l.pid, env: wire.Envelope{Kind: kind, Src: src, Dst: dst}})
	}
	p := c.peers[cc.peer]
	if c.lim.MaxCallsIn > 0 && len(p.callsIn) >= c.lim.MaxCallsIn {
		c.drop(dropCallsInLimit)
		acts = append(acts, action{kind: actRefuse, peer: cc.peer, conn: cc.id, cause: dropCallsInLimit})
		return c.errorReply(acts, cc, src, ref, errTooManyCallsCode)
	}
	c.nextIn++
	c.in[c.nextIn] = inCall{peer: cc.peer, callee: dst, caller: src, ref: ref, preferConn: id, calleePID: l.pid}
	p.callsIn[c.nextIn] = struct{}{}
	return append(acts, action{kind: actStartCall, id: c.nextIn, pid: sender, dst: l.pid, name: srcName, env: wire.Envelope{Kind: kind, Src: src, Dst: dst, Ref: ref}})
}

// inDelivered: the driver delivers call id (just admitted by message)
// straight into the callee's mailbox, answered through from; no dummy
// caller watches it, so the core ends it (actEndCall) when its deadline
// (logical; zero: none) passes or its callee stops.
func (c *core) inDelivered(id uint64, from genserver.From, deadline int64) {
	if ic, ok := c.in[id]; ok {
		ic.deadline = deadline
		c.in[id] = ic
		c.inFrom[id] = from
	}
}

// Reply codes the core itself answers with (callbridge codes).
const (
	errNoProcessCode    = 1
	errTooManyCallsCode = 2
)

// errorReply answers a call at once from the router, on the reader path:
// the send must not wait.
func (c *core) errorReply(acts []action, cc *coreConn, caller keyholder.Address, ref uint64, code uint64) []action {
	return append(acts, action{kind: actSend, mode: sendTry, handle: cc.handle, conn: cc.id,
		env: wire.Envelope{Kind: wire.Reply, Src: c.router, Dst: caller, Ref: ref}, id: code})
}

// callDone: dummy caller id has the callee's answer. The reply goes back
// on a live connection to the caller's router, the one the call came on if
// it is still up.
func (c *core) callDone(acts []action, id uint64) []action {
	ic, ok := c.in[id]
	if !ok {
		return acts // cancelled meanwhile
	}
	delete(c.in, id)
	delete(c.inFrom, id)
	p := c.peers[ic.peer]
	delete(p.callsIn, id)
	if len(p.conns) == 0 {
		c.drop(dropReplyNoRoute)
		return acts
	}
	cc := p.conns[0]
	if pc := c.conns[ic.preferConn]; pc != nil {
		cc = pc
	}
	return append(acts, action{kind: actSend, mode: sendBlock, handle: cc.handle, conn: cc.id,
		env: wire.Envelope{Kind: wire.Reply, Src: ic.callee, Dst: ic.caller, Ref: ic.ref}})
}

// callsOn returns how many outgoing calls wait for their reply on conn
// (for the driver's choice of writing a lone call at once).
func (c *core) callsOn(conn connID) int {
	if cc := c.conns[conn]; cc != nil {
		return len(cc.calls)
	}
	return 0
}

// callsInWith returns how many calls the peer of in-service call id has
// in service here, id included (0 if id is not in service).
func (c *core) callsInWith(id uint64) int {
	if ic, ok := c.in[id]; ok {
		if p := c.peers[ic.peer]; p != nil {
			return len(p.callsIn)
		}
	}
	return 0
}

// outCall: a local caller (from, pid caller) calls engine through its proxy.
// On success the action is the send of the call; the driver fills in the
// payload and deadline.
func (c *core) outCall(acts []action, engine keyholder.Address, caller genserver.PID, from genserver.From, deadline int64) []action {
	px := c.proxies[engine]
	if px == nil || len(px.routes) == 0 {
		c.drop(dropNoRouteOut)
		return append(acts, action{kind: actFailCall, from: from, err: ErrNoConnection})
	}
	cc := px.routes[0]
	p := c.peers[cc.peer]
	if c.lim.MaxCalls > 0 && p.calls >= c.lim.MaxCalls {
		c.drop(dropCallsOutLimit)
		return append(acts, action{kind: actFailCall, from: from, err: ErrTooManyCalls, cause: dropCallsOutLimit})
	}
	c.nextRef++
	ref := c.nextRef
	c.out[ref] = outCall{conn: cc, peer: p, callee: engine, from: from, deadline: deadline}
	cc.calls[ref] = struct{}{}
	p.calls++
	return append(acts, action{kind: actSend, mode: sendBlock, handle: cc.handle, conn: cc.id,
		env: wire.Envelope{Kind: wire.Call, Src: c.sourceOf(caller), Dst: engine, Ref: ref}})
}

// sendFailed: the send of outgoing call ref failed (err says why); the call
// fails with it at once.
func (c *core) sendFailed(acts []action, ref uint64, err error) []action {
	oc, ok := c.takeCall(ref)
	if !ok {
		return acts
	}
	return append(acts, action{kind: actFailCall, from: oc.from, err: err, id: ref})
}

func (c *core) takeCall(ref uint64) (outCall, bool) {
	oc, ok := c.out[ref]
	if !ok {
		return oc, false
	}
	delete(c.out, ref)
	delete(oc.conn.calls, ref)
	oc.peer.calls--
	return oc, true
}

// reply: a reply to our call ref arrived on id from src. It answers the
// call only when it comes from the peer the call went to, from the engine
// called or that peer's router (which answers for engines it does not
// have).
func (c *core) reply(acts []action, id connID, src keyholder.Address, ref uint64) []action {
	cc := c.conns[id]
	oc, ok := c.out[ref]
	if cc == nil || !ok || oc.peer != c.peers[cc.peer] || (src != oc.callee && src != cc.peer) {
		c.drop(dropLateReply)
		return acts
	}
	c.takeCall(ref)
	return append(acts, action{kind: actResolve, from: oc.from, id: ref})
}

// outMessage: a cast, info or event from caller to engine through its
// proxy; the action is its send, or nothing (counted) without a route.
func (c *core) outMessage(acts []action, kind wire.Kind, engine keyholder.Address, caller genserver.PID) []action {
	px := c.proxies[engine]
	if px == nil || len(px.routes) == 0 {
		c.drop(dropNoRouteOut)
		return acts
	}
	cc := px.routes[0]
	return append(acts, action{kind: actSend, mode: sendBlock, handle: cc.handle, conn: cc.id,
		env: wire.Envelope{Kind: kind, Src: c.sourceOf(caller), Dst: engine}})
}

// outLink: caller links itself to (or unlinks from) engine's proxy. Only
// one of our engines can be linked across (engine false otherwise); the
// action is the send of the link, or nothing (counted) without a route.
func (c *core) outLink(acts []action, kind wire.Kind, engine keyholder.Address, caller genserver.PID) (_ []action, isEngine bool) {
	src, ok := c.byPID[caller]
	if !ok || caller.IsZero() {
		return acts, false
	}
	px := c.proxies[engine]
	if px == nil || len(px.routes) == 0 {
		c.drop(dropNoRouteOut)
		return acts, true
	}
	cc := px.routes[0]
	return append(acts, action{kind: actSend, mode: sendBlock, handle: cc.handle, conn: cc.id,
		env: wire.Envelope{Kind: kind, Src: src, Dst: engine}}), true
}

func (c *core) sourceOf(pid genserver.PID) keyholder.Address {
	if a, ok := c.byPID[pid]; ok && !pid.IsZero() {
		return a
	}
	return c.router
}

// localUp: one of our engines runs as pid; learn is its encoded learn
// message, announced on every connection.
func (c *core) localUp(acts []action, engine keyholder.Address, pid genserver.PID, learn []byte) []action {
	c.changed()
	if old := c.local[engine]; old != nil {
		delete(c.byPID, old.pid)
	}
	c.local[engine] = &coreLocal{pid: pid, learn: learn}
	if !pid.IsZero() {
		c.byPID[pid] = engine
	}
	for _, cc := range c.conns {
		acts = append(acts, action{kind: actSend, mode: sendControl, handle: cc.handle, conn: cc.id, engine: engine,
			env: wire.Envelope{Kind: wire.Learn, Src: c.router, Dst: cc.peer, Payload: learn}})
	}
	return acts
}

// localDown: our engine (incarnation pid) stopped with reason; every peer
// is told. A stale pid (a newer incarnation runs) changes nothing.
func (c *core) localDown(acts []action, engine keyholder.Address, pid genserver.PID, reason error) []action {
	c.changed()
	l := c.local[engine]
	if l == nil || l.pid != pid {
		return acts
	}
	delete(c.local, engine)
	delete(c.byPID, pid)
	for id, ic := range c.in {
		if from := c.inFrom[id]; ic.calleePID == pid && from.Pending() {
			// Delivered into its mailbox: the caller learns at once that
			// the callee exited, as a local caller does.
			acts = append(acts, action{kind: actEndCall, id: id, from: from, err: &genserver.ExitError{PID: pid, Reason: reason}})
		}
	}
	for _, cc := range c.conns {
		acts = append(acts, action{kind: actSend, mode: sendControl, handle: cc.handle, conn: cc.id, engine: engine, err: reason,
			env: wire.Envelope{Kind: wire.Forget, Src: c.router, Dst: cc.peer}})
	}
	return acts
}

// tick: logical time is now. Proxies past their grace are forgotten; a
// peer gone past its grace loses its calls in service; outgoing calls past
// their deadline (their callers gave up) are swept.
func (c *core) tick(acts []action, now int64) []action {
	c.lastNow = now
	for e := range c.grace {
		px := c.proxies[e]
		if px == nil || len(px.routes) > 0 {
			delete(c.grace, e)
			continue
		}
		if now >= px.expireAt {
			acts = c.removeProxy(acts, e, px, ErrNoConnection)
		}
	}
	for a, p := range c.peers {
		if len(p.conns) > 0 || now < p.downAt+c.lim.Grace {
			continue
		}
		for id := range p.callsIn {
			acts = append(acts, action{kind: actCancelCall, id: id, peer: a, from: c.inFrom[id]})
			delete(c.in, id)
			delete(c.inFrom, id)
		}
		if p.calls == 0 && len(p.learned) == 0 {
			delete(c.peers, a)
		} else {
			clear(p.callsIn)
		}
	}
	for id, ic := range c.in {
		if ic.deadline != 0 && now > ic.deadline {
			// Answered with ErrTimeout (the reply leaves, and callDone
			// removes it): the caller's own deadline may be later.
			acts = append(acts, action{kind: actEndCall, id: id, from: c.inFrom[id], err: genserver.ErrTimeout})
		}
	}
	for ref, oc := range c.out {
		if oc.deadline != 0 && now > oc.deadline {
			c.takeCall(ref)
		}
	}
	for tok, x := range c.exports {
		if now > x.deadline {
			delete(c.exports, tok)
		}
	}
	return acts
}

// exportFrom lets other nodes answer from until deadline, by token.
func (c *core) exportFrom(token uint64, from genserver.From, deadline int64) {
	c.exports[token] = exportedFrom{from, deadline}
}

// answer: a router answered the exported From token on id (or, with id
// zero, one of our own engines did).
func (c *core) answer(acts []action, id connID, token uint64) []action {
	if id != 0 && c.conns[id] == nil {
		c.drop(dropNoRoute)
		return acts
	}
	x, ok := c.exports[token]
	if !ok {
		c.drop(dropLateReply)
		return acts
	}
	delete(c.exports, token)
	return append(acts, action{kind: actResolve, from: x.from, id: token})
}

// routeTo returns a live connection to router, for an answer.
func (c *core) routeTo(router keyholder.Address) (any, bool) {
	p := c.peers[router]
	if p == nil || len(p.conns) == 0 {
		return nil, false
	}
	return p.conns[0].handle, true
}

// Snapshot helpers (for introspection, under the driver's lock).

// connTaught is how many engines the peer taught us on connection id over
// its life, those it has since forgotten included (a peer node that stops
// forgets its engines before its connection goes down).
func (c *core) connTaught(id connID) int {
	if cc := c.conns[id]; cc != nil {
		return cc.taught
	}
	return 0
}

func (c *core) learnedByPeer() map[keyholder.Address][]keyholder.Address {
	out := make(map[keyholder.Address][]keyholder.Address, len(c.peers))
	for a, p := range c.peers {
		if len(p.learned) == 0 {
			continue
		}
		l := make([]keyholder.Address, 0, len(p.learned))
		for e := range p.learned {
			l = append(l, e)
		}
		out[a] = l
	}
	return out
}
