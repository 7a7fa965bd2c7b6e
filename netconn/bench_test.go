package netconn

import (
	"context"
	"fmt"
	"sync"
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
	b.Run("raw-tls", func(b *testing.B) {
		r := newRawTLS(b)
		b.ReportAllocs()
		b.ResetTimer()
		start, cpu := time.Now(), startCPU()
		r.stream(b, b.N, 128)
		b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "msg/s")
		cpu.report(b, b.N)
	})
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
	b.Run("raw-tls", func(b *testing.B) {
		r := newRawTLS(b)
		b.ReportAllocs()
		b.ResetTimer()
		cpu := startCPU()
		r.pingPong(b, b.N, 128+wire.RecordHeaderSize)
		cpu.report(b, b.N)
	})
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
			cpu := startCPU()
			for range b.N {
				if err := p.cliConn.Send(ctx, env); err != nil {
					b.Fatal(err)
				}
				<-back
			}
			cpu.report(b, b.N)
		})
	}
}

var payloadSizes = []int{128, 4 << 10, 64 << 10, 1 << 20}

// BenchmarkPayload measures a stream of casts of one payload size from one
// engine over loopback TCP, in MB/s of payload, beside a raw TLS 1.3 stream
// of messages of the same size (raw-tls) in the same run.
func BenchmarkPayload(b *testing.B) {
	for _, size := range payloadSizes {
		b.Run(fmt.Sprintf("size=%d/raw-tls", size), func(b *testing.B) {
			r := newRawTLS(b)
			b.SetBytes(int64(size))
			b.ReportAllocs()
			b.ResetTimer()
			cpu := startCPU()
			r.stream(b, b.N, size)
			cpu.report(b, b.N)
		})
		for _, auth := range []Auth{MACs, Signatures} {
			b.Run(fmt.Sprintf("size=%d/%v", size, auth), func(b *testing.B) {
				benchStream(b, auth, size, 1, nil)
			})
		}
	}
}

// BenchmarkSenders measures a stream of 128-byte casts from one engine sent
// by 1, 16 or 256 goroutines at once.
func BenchmarkSenders(b *testing.B) {
	for _, n := range []int{1, 16, 256} {
		for _, auth := range []Auth{MACs, Signatures} {
			b.Run(fmt.Sprintf("senders=%d/%v", n, auth), func(b *testing.B) {
				benchStream(b, auth, 128, n, nil)
			})
		}
	}
}

// benchStream sends b.N casts of size bytes from one engine, split among
// senders goroutines, over loopback TCP, and stops the clock when the
// receiver has had them all.
func benchStream(b *testing.B, auth Auth, size, senders int, tweak func(s, c *Config)) {
	var got atomic.Int64
	all := make(chan struct{})
	want := int64(b.N)
	p := startPair(b, tcpType, auth, func(s, c *Config) {
		s.Deliver = func(*Conn, *wire.Envelope) {
			if got.Add(1) == want {
				close(all)
			}
		}
		if tweak != nil {
			tweak(s, c)
		}
	})
	env := cast(p.cli.engine, p.srv.engine, string(make([]byte, size)))
	if m := p.cliConn.MaxPayload(); size > m {
		b.Fatalf("payload of %d bytes, limit %d", size, m)
	}
	ctx := context.Background()
	b.SetBytes(int64(size))
	b.ReportAllocs()
	b.ResetTimer()
	start, cpu := time.Now(), startCPU()
	var wg sync.WaitGroup
	for i := range senders {
		n := b.N / senders
		if i < b.N%senders {
			n++
		}
		wg.Go(func() {
			for range n {
				if err := p.cliConn.Send(ctx, env); err != nil {
					b.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	select {
	case <-all:
	case <-time.After(time.Minute):
		b.Fatalf("received %d of %d", got.Load(), b.N)
	}
	el := time.Since(start)
	b.StopTimer()
	cpu.report(b, b.N)
	b.ReportMetric(float64(b.N)/el.Seconds(), "msg/s")
	s := p.cliConn.Stats()
	b.ReportMetric(float64(s.EnvelopesOut)/float64(max(s.FramesOut, 1)), "env/frame")
}

// BenchmarkCallers measures calls, a 128-byte envelope there and one back,
// from 1, 16 or 256 concurrent callers sharing one source (as callers that
// are not engines share their router's), over loopback TCP. The server
// answers from its reader; env/frame shows how batches grow with load.
func BenchmarkCallers(b *testing.B) {
	for _, n := range []int{1, 16, 256} {
		for _, auth := range []Auth{MACs, Signatures} {
			b.Run(fmt.Sprintf("callers=%d/%v", n, auth), func(b *testing.B) {
				backs := make([]chan struct{}, n)
				for i := range backs {
					backs[i] = make(chan struct{}, 1)
				}
				var p *pair
				p = startPair(b, tcpType, auth, func(s, c *Config) {
					s.Deliver = func(c *Conn, env *wire.Envelope) {
						reply := wire.Envelope{Kind: wire.Reply, Src: p.srv.engine, Dst: env.Src, Ref: env.Ref, Payload: env.Payload}
						if err := c.TrySend(&reply); err != nil {
							b.Error(err)
						}
					}
					c.Deliver = func(_ *Conn, env *wire.Envelope) { backs[env.Ref] <- struct{}{} }
				})
				payload := make([]byte, 128)
				ctx := context.Background()
				b.ReportAllocs()
				b.ResetTimer()
				start, cpu := time.Now(), startCPU()
				var wg sync.WaitGroup
				for i := range n {
					calls := b.N / n
					if i < b.N%n {
						calls++
					}
					wg.Go(func() {
						env := wire.Envelope{Kind: wire.Call, Src: p.cli.engine, Dst: p.srv.engine, Ref: uint64(i), Payload: payload}
						for range calls {
							if err := p.cliConn.Send(ctx, &env); err != nil {
								b.Error(err)
								return
							}
							<-backs[i]
						}
					})
				}
				wg.Wait()
				el := time.Since(start)
				b.StopTimer()
				cpu.report(b, b.N)
				b.ReportMetric(float64(b.N)/el.Seconds(), "calls/s")
				s := p.cliConn.Stats()
				b.ReportMetric(float64(s.EnvelopesOut)/float64(max(s.FramesOut, 1)), "env/frame")
			})
		}
	}
}
