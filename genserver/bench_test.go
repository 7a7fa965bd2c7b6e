package genserver_test

import (
	"context"
	"runtime"
	"testing"
	"time"

	"github.com/enginekit/enginekit/genserver"
)

type echo struct{}

func (echo) HandleCall(_ *genserver.Process, _ genserver.From, req any) (any, error) { return req, nil }
func (echo) HandleCast(*genserver.Process, any)                                      {}

// BenchmarkCall is the local call round trip: one caller, sequential calls.
func BenchmarkCall(b *testing.B) {
	sys := genserver.NewSystem(genserver.Config{})
	defer sys.Stop(context.Background())
	pid, _ := sys.Spawn(func() genserver.Server { return echo{} })
	ctx := context.Background()
	req := new([128]byte)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := sys.Call(ctx, pid, req); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/1e3, "µs/call")
}

// BenchmarkCallByName adds the registry lookup.
func BenchmarkCallByName(b *testing.B) {
	sys := genserver.NewSystem(genserver.Config{})
	defer sys.Stop(context.Background())
	_, _ = sys.Spawn(func() genserver.Server { return echo{} }, genserver.WithName("echo"))
	ctx := context.Background()
	req := new([128]byte)
	for b.Loop() {
		if _, err := sys.Call(ctx, genserver.Name("echo"), req); err != nil {
			b.Fatal(err)
		}
	}
}

type sink struct {
	left int
	done chan struct{}
}

func (s *sink) HandleCall(*genserver.Process, genserver.From, any) (any, error) { return nil, nil }
func (s *sink) HandleCast(_ *genserver.Process, msg any) {
	if s.left--; s.left == 0 {
		close(s.done)
	}
}

// BenchmarkCast is cast throughput with one sender and a 128-byte payload:
// the sender casts b.N messages, the clock stops when the receiver has
// processed all of them.
func BenchmarkCast(b *testing.B) {
	for _, mode := range []struct {
		name    string
		payload func() any
	}{
		// A pointer to a 128-byte value: what a Go program passes (no copy).
		{"shared-128B", func() func() any { p := new([128]byte); return func() any { return p } }()},
		// A fresh 128-byte slice per message: allocation included.
		{"fresh-128B", func() any { return make([]byte, 128) }},
	} {
		b.Run(mode.name, func(b *testing.B) {
			sys := genserver.NewSystem(genserver.Config{})
			defer sys.Stop(context.Background())
			s := &sink{left: b.N, done: make(chan struct{})}
			pid, _ := sys.Spawn(func() genserver.Server { return s })
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				if err := sys.Cast(pid, mode.payload()); err != nil {
					b.Fatal(err)
				}
			}
			<-s.done
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "msg/s")
		})
	}
}

type initOnly struct{ n int }

func (s *initOnly) Init(*genserver.Process) error                                   { s.n = 1; return nil }
func (s *initOnly) HandleCall(*genserver.Process, genserver.From, any) (any, error) { return nil, nil }
func (s *initOnly) HandleCast(*genserver.Process, any)                              {}

// BenchmarkSpawn is spawn + Init, up to Spawn returning.
func BenchmarkSpawn(b *testing.B) {
	sys := genserver.NewSystem(genserver.Config{})
	defer func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		_ = sys.Stop(ctx)
	}()
	factory := func() genserver.Server { return &initOnly{} }
	b.ReportAllocs()
	for b.Loop() {
		if _, err := sys.Spawn(factory); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/1e3, "µs/spawn")
}

// BenchmarkIdleMemory measures the memory of 100,000 idle servers (after
// Init), heap and stacks, per server.
func BenchmarkIdleMemory(b *testing.B) {
	const n = 100_000
	for b.Loop() {
		sys := genserver.NewSystem(genserver.Config{})
		before := memInUse()
		pids := make([]genserver.PID, n)
		for i := range pids {
			pids[i], _ = sys.Spawn(func() genserver.Server { return &initOnly{} })
		}
		after := memInUse()
		b.ReportMetric(float64(after-before)/n, "B/server")
		runtime.KeepAlive(pids)
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		_ = sys.Stop(ctx)
		cancel()
	}
}

func memInUse() uint64 {
	runtime.GC()
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapInuse + m.StackInuse
}

// BenchmarkProcesses is one introspection snapshot of 1,000 idle processes:
// what an observer or a metrics scrape pays per look.
func BenchmarkProcesses(b *testing.B) {
	sys := genserver.NewSystem(genserver.Config{})
	defer sys.Stop(context.Background())
	for range 1000 {
		_, _ = sys.Spawn(func() genserver.Server { return &initOnly{} })
	}
	b.ReportAllocs()
	for b.Loop() {
		if n := len(sys.Processes()); n != 1000 {
			b.Fatal(n)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/1000, "ns/process")
}

// BenchmarkChanRoundTrip is the baseline for BenchmarkCall: a ping-pong over
// two unbuffered channels between two goroutines, 128-byte payload by
// pointer, as enginekit bench's limit.chan_rtt_us.
func BenchmarkChanRoundTrip(b *testing.B) {
	ping, pong := make(chan *[128]byte), make(chan *[128]byte)
	done := make(chan struct{})
	go func() {
		defer close(done)
		for m := range ping {
			pong <- m
		}
	}()
	defer func() { close(ping); <-done }()
	msg := new([128]byte)
	for b.Loop() {
		ping <- msg
		<-pong
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/1e3, "µs/call")
}

// BenchmarkChanStream is the baseline for BenchmarkCast: one goroutine sends
// b.N messages over a channel of 1,024 slots, the clock stops when the
// receiver has taken them all, as enginekit bench's
// limit.chan_stream_msgs_per_s.
func BenchmarkChanStream(b *testing.B) {
	c := make(chan *[128]byte, 1024)
	done := make(chan struct{})
	msg := new([128]byte)
	n := b.N
	b.ResetTimer()
	go func() {
		defer close(done)
		for range n {
			<-c
		}
	}()
	for range n {
		c <- msg
	}
	<-done
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "msg/s")
}
