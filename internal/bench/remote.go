package bench

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync/atomic"
	"time"

	"github.com/enginekit/enginekit/genserver"
	"github.com/enginekit/enginekit/keyholder"
	"github.com/enginekit/enginekit/netconn"
	"github.com/enginekit/enginekit/node"
	"github.com/enginekit/enginekit/transport"
)

// The cross-node figures run two nodes in this process, connected over
// loopback TCP (127.0.0.1) or a Unix socket in a temporary directory, as
// test/bench_test.go does: node a calls or casts to a sink engine on node
// b. The pair is set up once per figure, outside the clock, and reused by
// every round. Payloads are a 128-byte []byte (a built-in registry type),
// boxed once so a send allocates nothing on our side.

// remoteWorkloads returns the cross-node rows of the bench table.
func remoteWorkloads() []workload {
	var ws []workload
	for _, network := range []string{"tcp", "unix"} {
		for _, auth := range []netconn.Auth{netconn.MACs, netconn.Signatures} {
			rtt, rate := 30.0, 1.4e6
			if auth == netconn.Signatures {
				rtt, rate = 120, 7e5
			}
			prefix := "remote." + network + "." + auth.String()
			ws = append(ws,
				workload{name: prefix + ".call_rtt_us", unit: "us", target: rtt, limit: "limit." + network + "_rtt_us", run: remoteCallRTT(network, auth)},
				workload{name: prefix + ".cast_msgs_per_s", unit: "msg/s", target: rate, better: higherIsBetter, limit: "limit." + network + "_stream_msgs_per_s", run: remoteCastRate(network, auth)},
			)
		}
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

// newBenchNode starts a node with no engines; onLearn, when set, hears
// each engine it learns.
func newBenchNode(ctx context.Context, name string, auth netconn.Auth, onLearn func(keyholder.Address)) (*node.Node, error) {
	cfg := node.Config{Name: name, Transport: transport.Config{Auth: auth}}
	if onLearn != nil {
		cfg.Transport.OnLearn = func(e, _ keyholder.Address) { onLearn(e) }
	}
	return node.Start(ctx, cfg)
}

func closeNode(n *node.Node) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	_ = n.Stop(ctx)
}

// remotePair is node a, connected to node b, which runs the sink.
type remotePair struct {
	a, b *node.Node
	to   genserver.Dest
	sink *remoteSink
	dir  string
}

func newRemotePair(ctx context.Context, network string, auth netconn.Auth) (_ *remotePair, err error) {
	p := &remotePair{sink: &remoteSink{}}
	defer func() {
		if err != nil {
			p.close()
		}
	}()
	learned := make(chan keyholder.Address, 4)
	if p.a, err = newBenchNode(ctx, "a", auth, func(e keyholder.Address) { learned <- e }); err != nil {
		return nil, err
	}
	if p.b, err = newBenchNode(ctx, "b", auth, nil); err != nil {
		return nil, err
	}
	addr, _, err := p.b.Transport().SpawnEngine("sink", func() genserver.Server { return p.sink })
	if err != nil {
		return nil, err
	}
	endpoint := "tcp://127.0.0.1:0"
	if network == "unix" {
		if p.dir, err = os.MkdirTemp("", "enginekit-bench-"); err != nil {
			return nil, err
		}
		endpoint = "unix://" + filepath.Join(p.dir, "b.sock")
	}
	bound, err := p.b.Transport().Listen(ctx, endpoint, netconn.AllowOnly(p.a.Router()))
	if err != nil {
		return nil, err
	}
	if err := p.a.Transport().Connect(ctx, transport.Endpoint(bound.Network(), bound.String()), p.b.Router()); err != nil {
		return nil, err
	}
	t := time.NewTimer(10 * time.Second)
	defer t.Stop()
	for {
		select {
		case e := <-learned:
			if e == addr {
				p.to = genserver.Name(addr.String())
				return p, nil
			}
		case <-t.C:
			return nil, errors.New("the nodes did not connect within 10s")
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
}

func (p *remotePair) close() {
	if p.a != nil {
		closeNode(p.a)
	}
	if p.b != nil {
		closeNode(p.b)
	}
	if p.dir != "" {
		_ = os.RemoveAll(p.dir)
	}
}

func remoteCallRTT(network string, auth netconn.Auth) func(context.Context, benchOpts) (float64, error) {
	return func(ctx context.Context, o benchOpts) (float64, error) {
		p, err := newRemotePair(ctx, network, auth)
		if err != nil {
			return 0, err
		}
		defer p.close()
		var req any = make([]byte, limitPayload)
		return o.latencyUS(ctx, 1<<30, func(n int) (time.Duration, error) {
			bg := context.Background()
			start := time.Now()
			for range n {
				if _, err := p.a.System().Call(bg, p.to, req); err != nil {
					return 0, err
				}
			}
			return time.Since(start), nil
		})
	}
}

// remoteCastMaxN bounds the casts of one round: the sender outruns the
// connection, so up to a round's worth of messages wait in the proxy's
// unbounded mailbox.
const remoteCastMaxN = 1 << 20

func remoteCastRate(network string, auth netconn.Auth) func(context.Context, benchOpts) (float64, error) {
	return func(ctx context.Context, o benchOpts) (float64, error) {
		p, err := newRemotePair(ctx, network, auth)
		if err != nil {
			return 0, err
		}
		defer p.close()
		var msg any = make([]byte, limitPayload)
		return o.rate(ctx, remoteCastMaxN, func(n int) (time.Duration, error) {
			r := &sinkRound{goal: p.sink.n.Load() + int64(n), done: make(chan struct{})}
			p.sink.round.Store(r)
			start := time.Now()
			for range n {
				if err := p.a.System().Cast(p.to, msg); err != nil {
					return 0, err
				}
			}
			// A cast lost on the way (no route) would leave the round
			// waiting: bound it.
			t := time.NewTimer(time.Minute)
			defer t.Stop()
			select {
			case <-r.done:
				return time.Since(start), nil
			case <-t.C:
				return 0, fmt.Errorf("the sink got %d of %d casts within a minute", p.sink.n.Load()-(r.goal-int64(n)), n)
			case <-ctx.Done():
				return 0, ctx.Err()
			}
		})
	}
}
