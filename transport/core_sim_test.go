package transport

import (
	"bufio"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/enginekit/enginekit/callbridge"
	"github.com/enginekit/enginekit/genserver"
	"github.com/enginekit/enginekit/keyholder"
	"github.com/enginekit/enginekit/wire"
)

// The scenario tests drive transport cores on a simulated network, on
// logical time: no sockets, no goroutines of the transport, no sleeps. A
// scenario is a text file in testdata/ with one command per line ('#'
// starts a comment):
//
//	nodes n1 n2 ...            create nodes (each with a core and a router address)
//	limits n learned=N callsin=N callsout=N conns=N grace=MS
//	engine n e                 engine e starts on node n (engines are named globally)
//	stop n e [reason...]       engine e on node n stops (with an exit reason)
//	connect a b                a new connection between a and b comes up on both sides
//	cut a b                    every connection between a and b goes down (in-flight messages are lost)
//	drop a b N                 the next N messages from a to b are lost
//	delay a b MS               messages from a to b sent from now on take MS longer
//	reorder a b                the messages in flight from a to b are delivered in reverse order
//	tick MS                    time passes: messages due are delivered, every core ticks
//	run                        tick 0: deliver everything due now
//	call n e c [from e2] [deadline=K]
//	                           node n calls engine e (through its proxy); the call is named c.
//	                           It is delivered into e's mailbox (no dummy caller), with a
//	                           deadline K after now on the callee's node (default: none)
//	reply c                    the callee of incoming call c answers
//	export c                   the callee of call c exports its From (ExportFrom)
//	answer m c                 node m answers call c's exported From (Transport.Reply)
//	cast n e [from e2]         node n casts to engine e
//	link n e [from e2]         on node n, e2 (or a process that is no engine) links itself to e's proxy
//	unlink n e from e2         ... and unlinks
//	forge a b src e dst e2 [kind K]  a sends b a cast (or K: link, unlink, info) claiming to come from engine e (or a's router: src router)
//	learnbad a b e             a sends b a learn for e whose proof does not verify
//	learnfrom a b e            a sends b a learn for e signed by an engine, not by a's router
//	forget a b e               a's router tells b to forget engine e
//	expect ...                 an assertion (see expect below)
//
// Each scenario file is one test: TestScenarios/<file>.
func TestScenarios(t *testing.T) {
	files, err := filepath.Glob(filepath.Join("testdata", "*.txt"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no scenarios: %v", err)
	}
	for _, f := range files {
		t.Run(strings.TrimSuffix(filepath.Base(f), ".txt"), func(t *testing.T) { runScenario(t, f) })
	}
}

func runScenario(t *testing.T, file string) {
	fh, err := os.Open(file)
	if err != nil {
		t.Fatal(err)
	}
	defer fh.Close()
	sys := genserver.NewSystem(genserver.Config{Name: "sim"})
	defer sys.Stop(context.Background())
	n := &simNet{t: t, sys: sys, nodes: map[string]*simNode{}, engines: map[string]string{},
		calls: map[string]*simCall{}, links: map[[2]string]*simLink{}}
	sc := bufio.NewScanner(fh)
	line := 0
	for sc.Scan() {
		line++
		text := sc.Text()
		if i := strings.IndexByte(text, '#'); i >= 0 {
			text = text[:i]
		}
		f := strings.Fields(text)
		if len(f) == 0 {
			continue
		}
		n.where = fmt.Sprintf("%s:%d: %s", filepath.Base(file), line, strings.TrimSpace(text))
		n.do(f)
		n.epochs.check(n)
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
}

type simNet struct {
	t       *testing.T
	sys     *genserver.System
	where   string
	now     int64 // milliseconds
	nodes   map[string]*simNode
	order   []string
	engines map[string]string // engine → node
	calls   map[string]*simCall
	links   map[[2]string]*simLink
	nextID  connID
	seq     int
	// replyErr is the error of the reply being sent by simReplier.
	replyErr string
	epochs   epochCheck
}

// simReplier is the driver's callReplier on the simulated network: the
// answer to a call delivered into a mailbox is sent back with callDone.
type simReplier struct {
	n  *simNet
	nd *simNode
}

func (r simReplier) CallReply(id uint64, _ any, err error) {
	delete(r.nd.serving, id)
	if err != nil {
		r.n.replyErr = errName(err)
	}
	r.n.exec(r.nd, r.nd.core.callDone(nil, id))
	r.n.replyErr = ""
}

type simNode struct {
	name      string
	router    keyholder.Address
	core      *core
	conns     map[connID]string // conn → peer node
	learned   map[keyholder.Address]int
	forgot    map[keyholder.Address]int
	synced    map[string]int
	delivered map[string]int // "kind src->dst"
	serving   map[uint64]string
	cancelled int
	refused   map[string]int
	pids      map[keyholder.Address]genserver.PID
	// downReason is the reason the monitors of a forgotten engine's proxy get.
	downReason map[keyholder.Address]string
	// linkResult is what the latest link or unlink on the node did: sent,
	// local (the linker is no engine), no-connection.
	linkResult string
}

type simCall struct {
	name     string
	from     *simNode
	ref      uint64
	state    string // pending, resolved, failed <error>
	callee   *simNode
	inID     uint64
	calleeAt keyholder.Address
	token    uint64 // exported From
	deadline int64  // relative, on the callee's node; 0: none
	inFrom   genserver.From
	answer   string // refused: Reply returned false at once
}

type simLink struct {
	delay    int64
	drop     int
	inflight []simMsg
}

// simMsg is an envelope in flight, with its payload in semantic form.
type simMsg struct {
	at      int64
	seq     int
	conn    connID // the receiver's connection
	from    string
	kind    wire.Kind
	src     keyholder.Address
	dst     keyholder.Address
	ref     uint64
	engines []keyholder.Address // learns
	badRoot bool                // proofs do not verify
	code    uint64              // error reply
	err     string              // reply: the callee's error (errName), if any
	reason  error               // forget
}

func simAddr(s string) keyholder.Address { return sha256.Sum256([]byte(s)) }

func (n *simNet) fail(format string, args ...any) {
	n.t.Helper()
	n.t.Fatalf("%s: %s", n.where, fmt.Sprintf(format, args...))
}

func (n *simNet) node(name string) *simNode {
	nd := n.nodes[name]
	if nd == nil {
		n.fail("no node %q", name)
	}
	return nd
}

func (n *simNet) engineAddr(e string) keyholder.Address { return simAddr("engine:" + e) }

func (n *simNet) nameOf(a keyholder.Address) string {
	for e := range n.engines {
		if n.engineAddr(e) == a {
			return e
		}
	}
	for name, nd := range n.nodes {
		if nd.router == a {
			return name
		}
	}
	return "?"
}

func (n *simNet) pid() genserver.PID {
	pid, err := n.sys.Spawn(func() genserver.Server { return idle{} })
	if err != nil {
		n.fail("spawn: %v", err)
	}
	return pid
}

type idle struct{}

func (idle) HandleCall(*genserver.Process, genserver.From, any) (any, error) { return nil, nil }
func (idle) HandleCast(*genserver.Process, any)                              {}

func (n *simNet) do(f []string) {
	args := f[1:]
	need := func(k int) {
		if len(args) < k {
			n.fail("want at least %d arguments", k)
		}
	}
	switch f[0] {
	case "nodes":
		for _, name := range args {
			nd := &simNode{name: name, router: simAddr("router:" + name), conns: map[connID]string{},
				learned: map[keyholder.Address]int{}, forgot: map[keyholder.Address]int{}, synced: map[string]int{},
				delivered: map[string]int{}, serving: map[uint64]string{}, refused: map[string]int{},
				pids: map[keyholder.Address]genserver.PID{}, downReason: map[keyholder.Address]string{}}
			nd.core = newCore(nd.router, coreLimits{Grace: 1000, MaxLearned: 1000, MaxCallsIn: 1000, MaxCalls: 1000, MaxConns: 4})
			n.nodes[name] = nd
			n.order = append(n.order, name)
		}
	case "limits":
		need(2)
		nd := n.node(args[0])
		for _, kv := range args[1:] {
			k, v, _ := strings.Cut(kv, "=")
			x, err := strconv.Atoi(v)
			if err != nil {
				n.fail("limit %q: %v", kv, err)
			}
			switch k {
			case "learned":
				nd.core.lim.MaxLearned = x
			case "callsin":
				nd.core.lim.MaxCallsIn = x
			case "callsout":
				nd.core.lim.MaxCalls = x
			case "conns":
				nd.core.lim.MaxConns = x
			case "grace":
				nd.core.lim.Grace = int64(x)
			default:
				n.fail("unknown limit %q", k)
			}
		}
	case "engine":
		need(2)
		nd := n.node(args[0])
		n.engines[args[1]] = args[0]
		a := n.engineAddr(args[1])
		pid := n.pid()
		nd.pids[a] = pid
		n.exec(nd, nd.core.localUp(nil, a, pid, a[:]))
	case "stop":
		need(2)
		nd := n.node(args[0])
		a := n.engineAddr(args[1])
		var reason error
		if len(args) > 2 {
			reason = errors.New(strings.Join(args[2:], " "))
		}
		n.exec(nd, nd.core.localDown(nil, a, nd.pids[a], reason))
		delete(n.engines, args[1])
	case "connect", "heal":
		need(2)
		a, b := n.node(args[0]), n.node(args[1])
		n.nextID++
		id := n.nextID
		a.conns[id] = b.name
		b.conns[id] = a.name
		n.exec(a, a.core.connUp(nil, id, b.router, id))
		n.exec(b, b.core.connUp(nil, id, a.router, id))
	case "cut":
		need(2)
		a, b := n.node(args[0]), n.node(args[1])
		for id, peer := range a.conns {
			if peer == b.name {
				n.down(id)
			}
		}
	case "drop":
		need(3)
		x, _ := strconv.Atoi(args[2])
		n.link(args[0], args[1]).drop += x
	case "delay":
		need(3)
		x, _ := strconv.Atoi(args[2])
		n.link(args[0], args[1]).delay = int64(x)
	case "reorder":
		need(2)
		l := n.link(args[0], args[1])
		slices.Reverse(l.inflight)
		for i := range l.inflight {
			l.inflight[i].at = n.now
		}
	case "tick", "run":
		d := 0
		if f[0] == "tick" {
			need(1)
			d, _ = strconv.Atoi(args[0])
		}
		n.advance(int64(d))
	case "call":
		need(3)
		nd := n.node(args[0])
		callee := n.engineAddr(args[1])
		var caller genserver.PID
		if len(args) >= 5 && args[3] == "from" {
			caller = nd.pids[n.engineAddr(args[4])]
		}
		c := &simCall{name: args[2], from: nd, state: "pending", calleeAt: callee}
		if k, ok := strings.CutPrefix(args[len(args)-1], "deadline="); ok {
			c.deadline, _ = strconv.ParseInt(k, 10, 64)
		}
		n.calls[c.name] = c
		acts := nd.core.outCall(nil, callee, caller, genserver.From{}, 0)
		if len(acts) == 1 && acts[0].kind == actFailCall {
			c.state = "failed " + errName(acts[0].err)
			return
		}
		c.ref = acts[0].env.Ref
		n.exec(nd, acts)
	case "reply":
		need(1)
		c := n.calls[args[0]]
		if c == nil || c.callee == nil {
			n.fail("call %q is not in service anywhere", args[0])
		}
		if !genserver.Reply(c.inFrom, nil, nil) { // late: dropped, as the real From drops it
			delete(c.callee.serving, c.inID)
			n.exec(c.callee, c.callee.core.callDone(nil, c.inID))
		}
	case "export":
		// The callee's handler exports the From of call c (ExportFrom).
		need(1)
		c := n.calls[args[0]]
		if c == nil || c.callee == nil {
			n.fail("call %q is not in service anywhere", args[0])
		}
		c.token = uint64(len(n.calls))<<8 | 1
		c.callee.core.exportFrom(c.token, genserver.From{}, n.now+10_000)
	case "answer":
		// Node m answers the exported From of call c (Transport.Reply): an
		// answer envelope to the node holding the call.
		need(2)
		m, c := n.node(args[0]), n.calls[args[1]]
		if c == nil || c.token == 0 {
			n.fail("call %q was not exported", args[1])
		}
		if _, ok := m.core.routeTo(c.callee.router); !ok {
			c.answer = "refused"
			return
		}
		n.send(simMsg{conn: n.connBetween(m, c.callee), from: m.name, kind: wire.Answer, src: m.router, dst: c.callee.router, ref: c.token})
	case "cast":
		need(2)
		nd := n.node(args[0])
		var caller genserver.PID
		if len(args) >= 4 && args[2] == "from" {
			caller = nd.pids[n.engineAddr(args[3])]
		}
		n.exec(nd, nd.core.outMessage(nil, wire.Cast, n.engineAddr(args[1]), caller))
	case "link", "unlink":
		need(2)
		nd := n.node(args[0])
		var caller genserver.PID
		if len(args) >= 4 && args[2] == "from" {
			caller = nd.pids[n.engineAddr(args[3])]
		}
		kind := wire.Link
		if f[0] == "unlink" {
			kind = wire.Unlink
		}
		acts, isEngine := nd.core.outLink(nil, kind, n.engineAddr(args[1]), caller)
		switch {
		case !isEngine:
			nd.linkResult = "local"
		case len(acts) == 0:
			nd.linkResult = "no-connection"
		default:
			nd.linkResult = "sent"
		}
		n.exec(nd, acts)
	case "forge", "learnbad", "learnfrom", "forget":
		need(3)
		a, b := n.node(args[0]), n.node(args[1])
		id := n.connBetween(a, b)
		m := simMsg{conn: id, from: a.name, src: a.router, dst: b.router}
		switch f[0] {
		case "forge":
			need(6)
			m.kind, m.src, m.dst = wire.Cast, n.engineAddr(args[3]), n.engineAddr(args[5])
			if args[3] == "router" {
				m.src = a.router
			}
			if len(args) >= 8 && args[6] == "kind" {
				m.kind = kindNamed(args[7])
			}
		case "learnbad":
			m.kind, m.engines, m.badRoot = wire.Learns, []keyholder.Address{n.engineAddr(args[2])}, true
		case "learnfrom":
			m.kind, m.engines, m.src = wire.Learns, []keyholder.Address{n.engineAddr(args[2])}, n.engineAddr(args[2])
		case "forget":
			m.kind, m.engines = wire.Forget, []keyholder.Address{n.engineAddr(args[2])}
		}
		n.send(m)
	case "expect":
		n.expect(args)
	default:
		n.fail("unknown command %q", f[0])
	}
}

func (n *simNet) connBetween(a, b *simNode) connID {
	var ids []connID
	for id, p := range a.conns {
		if p == b.name {
			ids = append(ids, id)
		}
	}
	if len(ids) == 0 {
		n.fail("no connection between %s and %s", a.name, b.name)
	}
	slices.Sort(ids)
	return ids[len(ids)-1]
}

func (n *simNet) link(a, b string) *simLink {
	k := [2]string{a, b}
	if n.links[k] == nil {
		n.links[k] = &simLink{}
	}
	return n.links[k]
}

// down takes connection id down on both sides; what was in flight on it is lost.
func (n *simNet) down(id connID) {
	for _, name := range n.order {
		nd := n.nodes[name]
		peer, ok := nd.conns[id]
		if !ok {
			continue
		}
		delete(nd.conns, id)
		l := n.link(peer, name)
		l.inflight = slices.DeleteFunc(l.inflight, func(m simMsg) bool { return m.conn == id })
		n.exec(nd, nd.core.connDown(nil, id, n.now))
	}
}

func (n *simNet) send(m simMsg) {
	to := n.nodes[m.from].conns[m.conn]
	l := n.link(m.from, to)
	if l.drop > 0 {
		l.drop--
		return
	}
	n.seq++
	m.seq, m.at = n.seq, n.now+l.delay
	l.inflight = append(l.inflight, m)
}

// advance delivers what is due up to now+d, in time order (each link in
// its order: a connection never reorders), then ticks every core.
func (n *simNet) advance(d int64) {
	end := n.now + d
	for {
		var best *simLink
		for _, k := range n.linkKeys() {
			l := n.links[k]
			if len(l.inflight) == 0 || l.inflight[0].at > end {
				continue
			}
			if best == nil || l.inflight[0].at < best.inflight[0].at ||
				l.inflight[0].at == best.inflight[0].at && l.inflight[0].seq < best.inflight[0].seq {
				best = l
			}
		}
		if best == nil {
			break
		}
		m := best.inflight[0]
		best.inflight = best.inflight[1:]
		n.now = max(n.now, m.at)
		n.receive(m)
	}
	n.now = end
	for _, name := range n.order {
		nd := n.nodes[name]
		n.exec(nd, nd.core.tick(nil, n.now))
	}
}

func (n *simNet) linkKeys() [][2]string {
	keys := make([][2]string, 0, len(n.links))
	for k := range n.links {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool {
		return keys[i][0] < keys[j][0] || keys[i][0] == keys[j][0] && keys[i][1] < keys[j][1]
	})
	return keys
}

// receive is what the real driver's deliver does, with the payload checks
// (router signature, proofs) done on the semantic message.
func (n *simNet) receive(m simMsg) {
	to := n.nodes[n.nodes[m.from].conns[m.conn]]
	if to == nil {
		return // the connection went meanwhile
	}
	c := to.core
	peer := n.nodes[m.from].router
	switch m.kind {
	case wire.Learns:
		if m.src != peer {
			c.drop(dropNotRouter)
			return
		}
		var acts []action
		for _, e := range m.engines {
			if m.badRoot {
				c.drop(dropBadProof)
				continue
			}
			acts = c.learn(acts, m.conn, e, nil)
		}
		n.exec(to, acts)
	case wire.Forget:
		if m.src != peer {
			c.drop(dropNotRouter)
			return
		}
		n.exec(to, c.forget(nil, m.conn, m.engines[0], m.reason))
	case wire.Synced:
		n.exec(to, c.synced(nil, m.conn))
	case wire.Answer:
		if m.src != peer {
			c.drop(dropNotRouter)
			return
		}
		// The answer resolves the dummy caller's call, which then replies.
		if acts := c.answer(nil, m.conn, m.ref); len(acts) == 1 {
			for _, call := range n.calls {
				if call.callee == to && call.token == m.ref {
					delete(to.serving, call.inID)
					n.exec(to, c.callDone(nil, call.inID))
				}
			}
		}
	case wire.Reply:
		acts := c.reply(nil, m.conn, m.src, m.ref)
		for _, call := range n.calls {
			if call.from == to && call.ref == m.ref && len(acts) == 1 {
				call.state = "resolved"
				if m.code != 0 {
					call.state = "failed " + errName(codeErr(m.code))
				}
				if m.err != "" {
					call.state = "failed " + m.err
				}
			}
		}
	default:
		acts := c.message(nil, m.conn, m.kind, m.src, m.dst, m.ref)
		if m.kind == wire.Call {
			for _, a := range acts {
				if a.kind != actStartCall {
					continue
				}
				for _, call := range n.calls {
					if n.nodes[m.from] == call.from && call.ref == m.ref {
						call.callee, call.inID = to, a.id
						to.serving[a.id] = call.name
						// As the driver does: into the mailbox, with a
						// From whose Reply sends the reply.
						call.inFrom = genserver.Relay{}.RemoteFrom(simReplier{n, to}, a.id, a.pid, "", time.Time{})
						var dl int64
						if call.deadline > 0 {
							dl = n.now + call.deadline
						}
						c.inDelivered(a.id, call.inFrom, dl)
					}
				}
			}
		}
		n.exec(to, acts)
	}
}

// exec carries out a core's actions on the simulated network.
func (n *simNet) exec(nd *simNode, acts []action) {
	for _, a := range acts {
		switch a.kind {
		case actSend:
			m := simMsg{conn: a.conn, from: nd.name, kind: a.env.Kind, src: a.env.Src, dst: a.env.Dst, ref: a.env.Ref}
			switch a.env.Kind {
			case wire.Learn:
				m.kind, m.engines = wire.Learns, []keyholder.Address{a.engine}
			case wire.Forget:
				m.engines, m.reason = []keyholder.Address{a.engine}, a.err
			case wire.Reply:
				if a.mode == sendTry {
					m.code = a.id
				}
				m.err, n.replyErr = n.replyErr, ""
			}
			if _, live := nd.conns[a.conn]; live {
				n.send(m)
			}
		case actBurst:
			m := simMsg{conn: a.conn, from: nd.name, kind: wire.Learns, src: nd.router}
			for _, l := range a.learns {
				m.engines = append(m.engines, keyholder.Address(l))
			}
			sort.Slice(m.engines, func(i, j int) bool { return n.nameOf(m.engines[i]) < n.nameOf(m.engines[j]) })
			if len(m.engines) > 0 {
				n.send(m)
			}
			n.send(simMsg{conn: a.conn, from: nd.name, kind: wire.Synced, src: nd.router})
		case actStartProxy:
			more, _ := nd.core.proxyStarted(nil, a.engine, n.pid(), true)
			n.exec(nd, more)
		case actStopProxy:
			nd.forgot[a.engine]++
			nd.downReason[a.engine] = "normal"
			if a.err != nil {
				nd.downReason[a.engine] = errName(a.err)
			}
		case actLearned:
			nd.learned[a.engine]++
		case actSynced:
			for name, x := range n.nodes {
				if x.router == a.peer {
					nd.synced[name]++
				}
			}
		case actFailCall:
			for _, c := range n.calls {
				if c.from == nd && c.ref == a.id && c.state == "pending" {
					c.state = "failed " + errName(a.err)
				}
			}
		case actDeliver:
			nd.delivered[fmt.Sprintf("%v %s->%s", a.env.Kind, n.nameOf(a.env.Src), n.nameOf(a.env.Dst))]++
		case actCancelCall:
			if _, ok := nd.serving[a.id]; ok {
				delete(nd.serving, a.id)
				nd.cancelled++
			}
			genserver.Reply(a.from, nil, context.Canceled) // the core forgot it: nothing leaves
		case actEndCall:
			genserver.Reply(a.from, nil, a.err)
		case actRefuse:
			nd.refused[a.cause.String()]++
		case actClose:
			n.down(a.conn)
		case actSubscribe, actStartCall, actResolve:
		}
	}
}

func kindNamed(s string) wire.Kind {
	for k := wire.Cast; k.Valid(); k++ {
		if k.String() == s {
			return k
		}
	}
	return 0
}

func errName(err error) string {
	switch err {
	case ErrNoConnection:
		return "no-connection"
	case ErrTooManyCalls:
		return "too-many-calls"
	case genserver.ErrNoProcess:
		return "no-process"
	case genserver.ErrTimeout:
		return "timeout"
	}
	var exit *genserver.ExitError
	if errors.As(err, &exit) {
		if exit.Reason == nil {
			return "exited"
		}
		return "exited " + exit.Reason.Error()
	}
	var re *callbridge.RemoteError
	if errors.As(err, &re) {
		return re.Message
	}
	return err.Error()
}

// expect checks one assertion:
//
//	expect n learned e [K]      OnLearn fired K times (default: at least once) for e on n
//	expect n proxy e routes=K   n's proxy of e has K live routes (K=0: in grace)
//	expect n no-proxy e         n has no proxy for e
//	expect n forgot e [K]       n forgot e (its proxy stopped) K times (default 1)
//	expect n down e REASON      the monitors of e's proxy on n got Down with REASON (normal, no-connection, a text)
//	expect n synced m [K]       n got m's end-of-burst marker K times (default 1)
//	expect n delivered KIND src dst K
//	expect n drop CAUSE K       n counted K drops of CAUSE
//	expect n refused CAUSE K
//	expect n serving K          n has K incoming calls in service
//	expect n cancelled K        n cancelled K dummy callers
//	expect n link RESULT        the latest link or unlink on n was sent, local or no-connection
//	expect call c STATE...      call c is pending, resolved, or failed <error>
//	expect call c answer refused  node m's answer to c could not leave (no route to the holder)
func (n *simNet) expect(a []string) {
	if len(a) < 2 {
		n.fail("expect what?")
	}
	count := func(i int, def int) int {
		if len(a) <= i {
			return def
		}
		x, err := strconv.Atoi(a[i])
		if err != nil {
			n.fail("count %q: %v", a[i], err)
		}
		return x
	}
	if a[0] == "call" {
		c := n.calls[a[1]]
		if c == nil {
			n.fail("no call %q", a[1])
		}
		if len(a) > 2 && a[2] == "answer" {
			if want := strings.Join(a[3:], " "); c.answer != want {
				n.fail("answer to %s is %q, want %q", a[1], c.answer, want)
			}
			return
		}
		if want := strings.Join(a[2:], " "); c.state != want {
			n.fail("call %s is %q, want %q", a[1], c.state, want)
		}
		return
	}
	nd := n.node(a[0])
	if len(a) < 2 {
		n.fail("expect %s what?", a[0])
	}
	check := func(what string, got, want int) {
		n.t.Helper()
		if got != want {
			n.fail("%s: got %d, want %d", what, got, want)
		}
	}
	switch a[1] {
	case "learned":
		e := n.engineAddr(a[2])
		if len(a) > 3 {
			check("learned "+a[2], nd.learned[e], count(3, 0))
		} else if nd.learned[e] == 0 {
			n.fail("%s never learned %s", a[0], a[2])
		}
	case "proxy":
		px := nd.core.proxies[n.engineAddr(a[2])]
		if px == nil {
			n.fail("%s has no proxy for %s", a[0], a[2])
		}
		k, v, _ := strings.Cut(a[3], "=")
		x, _ := strconv.Atoi(v)
		if k != "routes" {
			n.fail("proxy what? %q", a[3])
		}
		check("routes of "+a[2], len(px.routes), x)
	case "no-proxy":
		if nd.core.proxies[n.engineAddr(a[2])] != nil {
			n.fail("%s still has a proxy for %s", a[0], a[2])
		}
	case "down":
		if got, want := nd.downReason[n.engineAddr(a[2])], strings.Join(a[3:], " "); got != want {
			n.fail("monitors of %s got %q, want %q", a[2], got, want)
		}
	case "link":
		if nd.linkResult != a[2] {
			n.fail("link on %s: %q, want %q", a[0], nd.linkResult, a[2])
		}
	case "forgot":
		check("forgot "+a[2], nd.forgot[n.engineAddr(a[2])], count(3, 1))
	case "synced":
		check("synced from "+a[2], nd.synced[a[2]], count(3, 1))
	case "delivered":
		key := fmt.Sprintf("%s %s->%s", a[2], a[3], a[4])
		check("delivered "+key, nd.delivered[key], count(5, 1))
	case "drop":
		i := slices.Index(dropNames[:], a[2])
		if i < 0 {
			n.fail("unknown drop cause %q", a[2])
		}
		check("drops "+a[2], int(nd.core.drops[i]), count(3, 1))
	case "refused":
		check("refused "+a[2], nd.refused[a[2]], count(3, 1))
	case "serving":
		check("calls in service", len(nd.serving), count(2, 0))
		check("calls in service (core)", len(nd.core.in), count(2, 0))
	case "cancelled":
		check("cancelled", nd.cancelled, count(2, 0))
	default:
		n.fail("unknown expectation %q", a[1])
	}
}
