package netconn

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/enginekit/enginekit/wire"
)

var batchSizes = []int{1, 64}

// BenchmarkEnvelopeEncodeSign measures the writer's path per envelope:
// queueing a 128-byte cast (encoding it), then numbering and authenticating
// its batch, for batches of 1 (light load) and 64 (load).
func BenchmarkEnvelopeEncodeSign(b *testing.B) {
	for _, auth := range []Auth{Signatures, MACs} {
		for _, n := range batchSizes {
			b.Run(fmt.Sprintf("%v/batch=%d", auth, n), func(b *testing.B) {
				src, dst := newNode(b), newNode(b)
				c := testConn(b, src, dst, auth, wire.DefaultMaxFrameSize)
				env := cast(src.engine, dst.engine, string(make([]byte, 128)))
				ctx := context.Background()
				var spare []byte
				var spareB []queuedBatch
				var auth []byte
				b.ReportAllocs()
				for i := 0; b.Loop(); i++ {
					if err := c.q.push(ctx, env, c.cfg.Keyholder.Owns, true); err != nil {
						b.Fatal(err)
					}
					if i%n == n-1 {
						buf, batches, _, _ := c.q.take(spare, spareB)
						buf, _, auth = c.seal(buf, batches, auth)
						spare, spareB = buf, batches
					}
				}
			})
		}
	}
}

// BenchmarkVerifyDecode measures the reader's path per envelope: decoding a
// batch of 128-byte casts, checking its tag and the replay window, and
// handing each envelope to Deliver.
func BenchmarkVerifyDecode(b *testing.B) {
	for _, auth := range []Auth{Signatures, MACs} {
		for _, n := range batchSizes {
			b.Run(fmt.Sprintf("%v/batch=%d", auth, n), func(b *testing.B) {
				src, dst := newNode(b), newNode(b)
				sender := testConn(b, src, dst, auth, wire.DefaultMaxFrameSize)
				receiver := testConn(b, dst, src, auth, wire.DefaultMaxFrameSize)
				var delivered int
				receiver.cfg.Deliver = func(*Conn, *wire.Envelope) { delivered++ }
				env := cast(src.engine, dst.engine, string(make([]byte, 128)))
				// Distinct batches, so the replay check passes; the guard is
				// renewed after each round.
				const rounds = 256
				bodies := make([][]byte, rounds)
				for r := range bodies {
					for range n {
						sender.q.push(context.Background(), env, sender.cfg.Keyholder.Owns, true)
					}
					buf, batches, _, _ := sender.q.take(nil, nil)
					buf, _, _ = sender.seal(buf, batches, nil)
					bodies[r] = buf[wire.FrameHeaderSize:]
				}
				var rs readState
				b.ReportAllocs()
				i := 0
				for b.Loop() {
					if i%rounds == 0 {
						b.StopTimer()
						receiver.guard = mustReplayGuard()
						b.StartTimer()
					}
					if err := receiver.handleBatch(bodies[i%rounds], &rs); err != nil {
						b.Fatal(err)
					}
					i++
				}
				if delivered != i*n {
					b.Fatalf("delivered %d of %d", delivered, i*n)
				}
				b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(i*n), "ns/envelope")
			})
		}
	}
}

// BenchmarkStream measures a stream of 128-byte casts from one engine
// between two connection holders over loopback, TLS 1.3 included: one
// goroutine sends b.N casts, and the clock stops when the receiver has had
// them all.
func BenchmarkStream(b *testing.B) {
	for _, ct := range connTypes {
		for _, auth := range []Auth{MACs, Signatures} {
			b.Run(ct.name+"/"+auth.String(), func(b *testing.B) {
				var got atomic.Int64
				all := make(chan struct{})
				var want atomic.Int64
				p := startPair(b, ct, auth, func(s, c *Config) {
					s.Deliver = func(*Conn, *wire.Envelope) {
						if got.Add(1) == want.Load() {
							close(all)
						}
					}
				})
				env := cast(p.cli.engine, p.srv.engine, string(make([]byte, 128)))
				ctx := context.Background()
				want.Store(int64(b.N))
				b.ReportAllocs()
				b.ResetTimer()
				start := time.Now()
				for range b.N {
					if err := p.cliConn.Send(ctx, env); err != nil {
						b.Fatal(err)
					}
				}
				select {
				case <-all:
				case <-time.After(time.Minute):
					b.Fatalf("received %d of %d", got.Load(), b.N)
				}
				el := time.Since(start)
				b.StopTimer()
				b.ReportMetric(float64(b.N)/el.Seconds(), "msg/s")
				s := p.cliConn.Stats()
				b.ReportMetric(float64(s.EnvelopesOut)/float64(max(s.FramesOut, 1)), "env/frame")
			})
		}
	}
}

// BenchmarkRoundTrip measures one 128-byte envelope there and one back,
// sequentially, over loopback TCP: the connection's share of a cross-node
// call's round trip.
func BenchmarkRoundTrip(b *testing.B) {
	for _, auth := range []Auth{MACs, Signatures} {
		b.Run(auth.String(), func(b *testing.B) {
			back := make(chan struct{}, 1)
			var reply *wire.Envelope
			p := startPair(b, connTypes[0], auth, func(s, c *Config) {
				s.Deliver = func(c *Conn, env *wire.Envelope) {
					_ = c.Send(context.Background(), reply)
				}
				c.Deliver = func(*Conn, *wire.Envelope) { back <- struct{}{} }
			})
			reply = cast(p.srv.engine, p.cli.engine, string(make([]byte, 128)))
			env := cast(p.cli.engine, p.srv.engine, string(make([]byte, 128)))
			ctx := context.Background()
			b.ReportAllocs()
			b.ResetTimer()
			for range b.N {
				if err := p.cliConn.Send(ctx, env); err != nil {
					b.Fatal(err)
				}
				<-back
			}
		})
	}
}
