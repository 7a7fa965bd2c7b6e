package test

import (
	"context"
	"sync/atomic"
	"testing"

	"github.com/enginekit/enginekit/genserver"
	"github.com/enginekit/enginekit/netconn"
)

// sink echoes calls and counts casts, closing done at the target count.
type sink struct {
	n      atomic.Int64
	target int64
	done   chan struct{}
}

func (s *sink) HandleCall(_ *genserver.Process, _ genserver.From, req any) (any, error) {
	return req, nil
}

func (s *sink) HandleCast(*genserver.Process, any) {
	if s.n.Add(1) == s.target {
		close(s.done)
	}
}

func benchSetups() []setup {
	return []setup{{"tcp", netconn.MACs}, {"tcp", netconn.Signatures}, {"unix", netconn.MACs}, {"unix", netconn.Signatures}}
}

// benchPair connects two nodes and returns the caller's System and the
// address of the sink on the other node.
func benchPair(b *testing.B, s setup, sk *sink) (*genserver.System, genserver.Dest) {
	a, c := newNode(b, "a", s), newNode(b, "b", s)
	addr, _, err := c.tr.SpawnEngine("sink", func() genserver.Server { return sk })
	if err != nil {
		b.Fatal(err)
	}
	if err := a.tr.Connect(context.Background(), c.listen(s), c.kh.Router()); err != nil {
		b.Fatal(err)
	}
	a.waitLearn(addr)
	return a.sys, dest(addr)
}

// BenchmarkRemoteCall is the cross-node call round trip with a 128-byte
// payload: one caller, sequential calls.
func BenchmarkRemoteCall(b *testing.B) {
	for _, s := range benchSetups() {
		b.Run(s.String(), func(b *testing.B) {
			sys, to := benchPair(b, s, &sink{})
			payload := make([]byte, 128)
			ctx := context.Background()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				if _, err := sys.Call(ctx, to, payload); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.Elapsed().Microseconds())/float64(b.N), "µs/call")
		})
	}
}

// BenchmarkRemoteCast is cross-node cast throughput with a 128-byte
// payload: one sender casts b.N messages; the clock stops when the
// receiving engine has handled the last one.
func BenchmarkRemoteCast(b *testing.B) {
	for _, s := range benchSetups() {
		b.Run(s.String(), func(b *testing.B) {
			sk := &sink{target: int64(b.N), done: make(chan struct{})}
			sys, to := benchPair(b, s, sk)
			payload := make([]byte, 128)
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				if err := sys.Cast(to, payload); err != nil {
					b.Fatal(err)
				}
			}
			<-sk.done
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "msg/s")
		})
	}
}
