package bench

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/enginekit/enginekit/genserver"
	"github.com/enginekit/enginekit/keyholder"
	"github.com/enginekit/enginekit/netconn"
	"github.com/enginekit/enginekit/node"
	"github.com/enginekit/enginekit/transport"
)

// The cross-node figures run two nodes in this process, connected over
// loopback TCP (127.0.0.1) with TLS 1.3 and per-message MACs or
// signatures: callers on node a call or cast to sink engines on node b.
// The pair is set up once per figure, outside the clock, and reused by
// every round. Payloads are a []byte (a built-in registry type), boxed
// once so a send allocates nothing on our side. Callers and casters run
// outside any process (as a program's main does), so their messages are
// authenticated with node a's router key; the ping-pong engines send as
// engines, with their own keys.

// curveCallers are the points of the concurrency curve.
var curveCallers = []int{1, 16, 256, 4096}

// remoteWorkloads returns the cross-node rows of the bench table, with the
// targets of issue 13.
func remoteWorkloads() []workload {
	var ws []workload
	for _, auth := range []netconn.Auth{netconn.MACs, netconn.Signatures} {
		prefix := "remote.tcp." + auth.String() + "."
		rtt := workload{name: prefix + "call_rtt_us", unit: "us", limit: "limit.tls_rtt_us", run: plain(remoteCallRTT(auth))}
		calls256, castRate := 200e3, 4e6
		if auth == netconn.MACs {
			rtt.target, rtt.targetOf = 2, "limit.tls_rtt_us"
		} else {
			rtt.target, rtt.limit = 120, "limit.tls_rtt_signed_us"
			calls256 = 100e3
		}
		ws = append(ws, rtt)
		for _, c := range curveCallers {
			w := workload{
				name: prefix + "callers_" + strconv.Itoa(c) + "_calls_per_s", unit: "calls/s", better: higherIsBetter,
				limit: "limit.tls_stream_msgs_per_s", run: callCurve(auth, c, 1),
			}
			switch c {
			case 256:
				w.target, w.p99Target = calls256, 10*time.Millisecond
			case 4096:
				w.target, w.targetOf = 1, prefix+"callers_256_calls_per_s"
			}
			ws = append(ws, w)
		}
		ws = append(ws,
			workload{name: prefix + "engines_256_calls_per_s", unit: "calls/s", better: higherIsBetter,
				limit: "limit.tls_stream_msgs_per_s", run: callCurve(auth, 256, 256)},
			workload{name: prefix + "cast_msgs_per_s", unit: "msg/s", target: castRate, better: higherIsBetter,
				limit: "limit.tls_stream_msgs_per_s", run: plain(remoteCastRate(auth))},
		)
		for _, size := range payloadSizes {
			limit := "limit.tls_stream_" + sizeName(size) + "_mb_per_s"
			w := workload{name: prefix + "payload_" + sizeName(size) + "_mb_per_s", unit: "MB/s", better: higherIsBetter,
				limit: limit, run: plain(remotePayload(auth, size))}
			if size >= 64<<10 {
				w.target, w.targetOf = 0.8, limit
			}
			ws = append(ws, w)
		}
		ws = append(ws,
			workload{name: prefix + "pingpong_msgs_per_s", unit: "msg/s", better: higherIsBetter,
				limit: "limit.tls_stream_msgs_per_s", run: plain(remotePingPong(auth))},
			workload{name: prefix + "allocs_per_call", unit: "allocs", target: 10, run: plain(remoteAllocs(auth))},
		)
	}
	return ws
}

// remoteSink echoes calls and counts casts; a round waits for its goal.
type remoteSink struct {
	n     atomic.Int64
	round atomic.Pointer[sinkRound]
}

type sinkRound struct {
	goal int64
	done chan struct{}
}

func (s *remoteSink) HandleCall(_ *genserver.Process, _ genserver.From, req any) (any, error) {
	return req, nil
}

func (s *remoteSink) HandleCast(*genserver.Process, any) {
	n := s.n.Add(1)
	if r := s.round.Load(); r != nil && n == r.goal {
		close(r.done)
	}
}

// newBenchNode starts a node with no engines; onSynced, when set, hears
// each peer whose engines it has all learned.
func newBenchNode(ctx context.Context, name string, auth netconn.Auth, onSynced func(peer keyholder.Address)) (*node.Node, error) {
	return node.Start(ctx, node.Config{Name: name, Transport: transport.Config{Auth: auth, OnSynced: onSynced}})
}

func closeNode(n *node.Node) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	_ = n.Stop(ctx)
}

// syncTimeout bounds the wait for two nodes to learn each other's engines.
const syncTimeout = time.Minute

// remotePair is node a connected to node b, each having learned the
// engines the other had when they connected.
type remotePair struct {
	a, b *node.Node
}

// newRemotePair starts a and b, lets spawnA and spawnB (either may be nil)
// start engines on them, connects a to b over loopback TCP and waits until
// each has learned all the other's engines.
func newRemotePair(ctx context.Context, auth netconn.Auth, spawnA, spawnB func(*transport.Transport) error) (_ *remotePair, err error) {
	p := &remotePair{}
	defer func() {
		if err != nil {
			p.close()
		}
	}()
	syncedA, syncedB := make(chan struct{}, 1), make(chan struct{}, 1)
	signal := func(c chan struct{}) func(keyholder.Address) {
		return func(keyholder.Address) {
			select {
			case c <- struct{}{}:
			default:
			}
		}
	}
	if p.a, err = newBenchNode(ctx, "a", auth, signal(syncedA)); err != nil {
		return nil, err
	}
	if p.b, err = newBenchNode(ctx, "b", auth, signal(syncedB)); err != nil {
		return nil, err
	}
	for _, s := range []struct {
		spawn func(*transport.Transport) error
		n     *node.Node
	}{{spawnA, p.a}, {spawnB, p.b}} {
		if s.spawn != nil {
			if err := s.spawn(s.n.Transport()); err != nil {
				return nil, err
			}
		}
	}
	bound, err := p.b.Transport().Listen(ctx, "tcp://127.0.0.1:0", netconn.AllowOnly(p.a.Router()))
	if err != nil {
		return nil, err
	}
	if err := p.a.Transport().Connect(ctx, transport.Endpoint(bound.Network(), bound.String()), p.b.Router()); err != nil {
		return nil, err
	}
	t := time.NewTimer(syncTimeout)
	defer t.Stop()
	for _, c := range []chan struct{}{syncedA, syncedB} {
		select {
		case <-c:
		case <-t.C:
			return nil, fmt.Errorf("the nodes did not learn each other's engines within %v", syncTimeout)
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	return p, nil
}

func (p *remotePair) close() {
	if p.a != nil {
		closeNode(p.a)
	}
	if p.b != nil {
		closeNode(p.b)
	}
}

// spawnSinks returns a spawn function that starts n engines on a node,
// all served by sink, and the destinations of those engines.
func spawnSinks(n int, sink *remoteSink) (func(*transport.Transport) error, *[]genserver.Dest) {
	dests := make([]genserver.Dest, 0, n)
	return func(tr *transport.Transport) error {
		for i := range n {
			addr, _, err := tr.SpawnEngine("sink"+strconv.Itoa(i), func() genserver.Server { return sink })
			if err != nil {
				return err
			}
			dests = append(dests, genserver.Name(addr.String()))
		}
		return nil
	}, &dests
}

// sinkPair is a pair whose node b runs one sink engine.
func sinkPair(ctx context.Context, auth netconn.Auth) (*remotePair, *remoteSink, genserver.Dest, error) {
	sink := &remoteSink{}
	spawn, dests := spawnSinks(1, sink)
	p, err := newRemotePair(ctx, auth, nil, spawn)
	if err != nil {
		return nil, nil, nil, err
	}
	return p, sink, (*dests)[0], nil
}

func remoteCallRTT(auth netconn.Auth) func(context.Context, benchOpts) (float64, error) {
	return func(ctx context.Context, o benchOpts) (float64, error) {
		p, _, to, err := sinkPair(ctx, auth)
		if err != nil {
			return 0, err
		}
		defer p.close()
		var req any = make([]byte, limitPayload)
		return o.latencyUS(ctx, 1<<30, func(n int) (time.Duration, error) {
			bg := context.Background()
			start := time.Now()
			for range n {
				if _, err := p.a.System().Call(bg, to, req); err != nil {
					return 0, err
				}
			}
			return time.Since(start), nil
		})
	}
}

// callCurve measures callers concurrent callers on node a, caller i
// calling engine i mod engines on node b, for rounds of o.roundTime: calls
// per second (the median of o.rounds rounds, after a warm-up round) and
// the p50 and p99 of every call's latency in those rounds. Each call has
// the default deadline (genserver.DefaultCallTimeout), so a lost reply
// fails the figure within seconds instead of hanging it.
func callCurve(auth netconn.Auth, callers, engines int) func(context.Context, benchOpts) (measurement, error) {
	return func(ctx context.Context, o benchOpts) (measurement, error) {
		sink := &remoteSink{}
		spawn, dests := spawnSinks(engines, sink)
		p, err := newRemotePair(ctx, auth, nil, spawn)
		if err != nil {
			return measurement{}, err
		}
		defer p.close()
		if _, _, err := callRound(ctx, p.a.System(), callers, *dests, o.roundTime/2); err != nil {
			return measurement{}, err
		}
		rates := make([]float64, 0, o.rounds)
		var lats []time.Duration
		for range o.rounds {
			runtime.GC()
			rate, l, err := callRound(ctx, p.a.System(), callers, *dests, o.roundTime)
			if err != nil {
				return measurement{}, err
			}
			rates = append(rates, rate)
			lats = append(lats, l...)
		}
		slices.Sort(lats)
		return measurement{value: median(rates), p50: percentile(lats, 0.50), p99: percentile(lats, 0.99)}, nil
	}
}

// callRound runs callers callers for d (each finishes the call it is in)
// and returns calls per second and every call's latency.
func callRound(ctx context.Context, sys *genserver.System, callers int, dests []genserver.Dest, d time.Duration) (float64, []time.Duration, error) {
	var (
		stop    atomic.Bool
		wg      sync.WaitGroup
		errOnce sync.Once
		firstE  error
		failed  = make(chan struct{})
	)
	var req any = make([]byte, limitPayload)
	lats := make([][]time.Duration, callers)
	start := time.Now()
	for i := range callers {
		wg.Go(func() {
			bg := context.Background()
			dest := dests[i%len(dests)]
			for !stop.Load() {
				t0 := time.Now()
				if _, err := sys.Call(bg, dest, req); err != nil {
					errOnce.Do(func() {
						firstE = fmt.Errorf("caller %d of %d, call %d: %w", i+1, callers, len(lats[i])+1, err)
						close(failed)
					})
					return
				}
				lats[i] = append(lats[i], time.Since(t0))
			}
		})
	}
	t := time.NewTimer(d)
	select {
	case <-t.C:
	case <-failed:
	case <-ctx.Done():
	}
	t.Stop()
	stop.Store(true)
	wg.Wait()
	elapsed := time.Since(start)
	if firstE != nil {
		return 0, nil, firstE
	}
	if err := ctx.Err(); err != nil {
		return 0, nil, err
	}
	var all []time.Duration
	for _, l := range lats {
		all = append(all, l...)
	}
	return float64(len(all)) / elapsed.Seconds(), all, nil
}

// percentile returns the q-quantile of sorted (nearest rank).
func percentile(sorted []time.Duration, q float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	i := int(q*float64(len(sorted))+0.5) - 1
	return sorted[min(max(i, 0), len(sorted)-1)]
}

// remoteCastMaxN bounds the casts of one round: the sender outruns the
// connection, so up to a round's worth of messages wait in the proxy's
// unbounded mailbox.
const remoteCastMaxN = 1 << 20

// castRound casts n copies of msg to the sink at to and waits until the
// sink has handled them all.
func castRound(ctx context.Context, sys *genserver.System, sink *remoteSink, to genserver.Dest, msg any, n int) (time.Duration, error) {
	r := &sinkRound{goal: sink.n.Load() + int64(n), done: make(chan struct{})}
	sink.round.Store(r)
	start := time.Now()
	for range n {
		if err := sys.Cast(to, msg); err != nil {
			return 0, err
		}
	}
	// A cast lost on the way (no route, too large) would leave the round
	// waiting: bound it.
	t := time.NewTimer(time.Minute)
	defer t.Stop()
	select {
	case <-r.done:
		return time.Since(start), nil
	case <-t.C:
		return 0, fmt.Errorf("the sink got %d of %d casts within a minute", sink.n.Load()-(r.goal-int64(n)), n)
	case <-ctx.Done():
		return 0, ctx.Err()
	}
}

func remoteCastRate(auth netconn.Auth) func(context.Context, benchOpts) (float64, error) {
	return func(ctx context.Context, o benchOpts) (float64, error) {
		p, sink, to, err := sinkPair(ctx, auth)
		if err != nil {
			return 0, err
		}
		defer p.close()
		var msg any = make([]byte, limitPayload)
		return o.rate(ctx, remoteCastMaxN, func(n int) (time.Duration, error) {
			return castRound(ctx, p.a.System(), sink, to, msg, n)
		})
	}
}

// remotePayload is the payload curve: one sender's casts of size bytes, in
// MB/s of payload, after one call of that size both ways that must succeed
// (a message the nodes cannot carry fails the figure at once and says why,
// where a cast would be dropped and counted).
func remotePayload(auth netconn.Auth, size int) func(context.Context, benchOpts) (float64, error) {
	return func(ctx context.Context, o benchOpts) (float64, error) {
		p, sink, to, err := sinkPair(ctx, auth)
		if err != nil {
			return 0, err
		}
		defer p.close()
		var msg any = make([]byte, size)
		if _, err := p.a.System().Call(context.Background(), to, msg); err != nil {
			return 0, fmt.Errorf("a call of %d bytes: %w", size, err)
		}
		maxN := min(remoteCastMaxN, max(1, (128<<20)/size))
		rate, err := o.rate(ctx, maxN, func(n int) (time.Duration, error) {
			return castRound(ctx, p.a.System(), sink, to, msg, n)
		})
		return rate * float64(size) / 1e6, err
	}
}

// The ping-pong engines: the pinger (on a) casts n pings to the ponger (on
// b), which casts each back to its sender; the round ends when all n have
// come back.
type pingStart struct {
	n    int
	done chan error
}

type pinger struct {
	peer     genserver.Dest
	msg      any
	got, n   int
	done     chan error
	finished bool
}

func (s *pinger) HandleCall(*genserver.Process, genserver.From, any) (any, error) { return nil, nil }

func (s *pinger) HandleCast(p *genserver.Process, msg any) {
	switch m := msg.(type) {
	case pingStart:
		s.got, s.n, s.done, s.finished = 0, m.n, m.done, false
		for range m.n {
			if err := p.Cast(s.peer, s.msg); err != nil {
				s.finish(err)
				return
			}
		}
	case []byte:
		if s.got++; s.got == s.n {
			s.finish(nil)
		}
	}
}

func (s *pinger) finish(err error) {
	if !s.finished {
		s.finished = true
		s.done <- err
	}
}

type ponger struct{ errs chan error }

func (ponger) HandleCall(*genserver.Process, genserver.From, any) (any, error) { return nil, nil }

func (s ponger) HandleCast(p *genserver.Process, msg any) {
	if err := p.Cast(p.Sender(), msg); err != nil {
		select {
		case s.errs <- err:
		default:
		}
	}
}

// remotePingPong is pings answered per second between two engines, one
// per node (ergo's "ping" benchmark with a remote pong, both ways).
func remotePingPong(auth netconn.Auth) func(context.Context, benchOpts) (float64, error) {
	return func(ctx context.Context, o benchOpts) (float64, error) {
		pong := ponger{errs: make(chan error, 1)}
		var pongAddr keyholder.Address
		var pingPID genserver.PID
		ping := &pinger{msg: make([]byte, limitPayload)}
		p, err := newRemotePair(ctx, auth,
			func(tr *transport.Transport) (err error) {
				_, pingPID, err = tr.SpawnEngine("ping", func() genserver.Server { return ping })
				return err
			},
			func(tr *transport.Transport) (err error) {
				pongAddr, _, err = tr.SpawnEngine("pong", func() genserver.Server { return pong })
				return err
			})
		if err != nil {
			return 0, err
		}
		defer p.close()
		// Set before any pingStart is cast, so the pinger reads it after.
		ping.peer = genserver.Name(pongAddr.String())
		return o.rate(ctx, remoteCastMaxN, func(n int) (time.Duration, error) {
			done := make(chan error, 1)
			start := time.Now()
			if err := p.a.System().Cast(pingPID, pingStart{n: n, done: done}); err != nil {
				return 0, err
			}
			t := time.NewTimer(time.Minute)
			defer t.Stop()
			select {
			case err := <-done:
				return time.Since(start), err
			case err := <-pong.errs:
				return 0, fmt.Errorf("pong: %w", err)
			case <-t.C:
				return 0, errors.New("the pongs did not all come back within a minute")
			case <-ctx.Done():
				return 0, ctx.Err()
			}
		})
	}
}

// remoteAllocs counts the heap allocations of a cross-node call round trip
// (runtime.MemStats.Mallocs before and after o.allocs sequential calls),
// on both nodes, as both run in this process: the caller's side, the
// callee's side and the transport's goroutines of both. The median of
// o.rounds rounds, after a warm-up.
func remoteAllocs(auth netconn.Auth) func(context.Context, benchOpts) (float64, error) {
	return func(ctx context.Context, o benchOpts) (float64, error) {
		p, _, to, err := sinkPair(ctx, auth)
		if err != nil {
			return 0, err
		}
		defer p.close()
		var req any = make([]byte, limitPayload)
		calls := func(n int) error {
			for range n {
				if _, err := p.a.System().Call(context.Background(), to, req); err != nil {
					return err
				}
			}
			return nil
		}
		if err := calls(o.allocs / 10); err != nil {
			return 0, err
		}
		perCall := make([]float64, 0, o.rounds)
		for range o.rounds {
			if err := ctx.Err(); err != nil {
				return 0, err
			}
			runtime.GC()
			before := mallocs()
			if err := calls(o.allocs); err != nil {
				return 0, err
			}
			perCall = append(perCall, float64(mallocs()-before)/float64(o.allocs))
		}
		return median(perCall), nil
	}
}
