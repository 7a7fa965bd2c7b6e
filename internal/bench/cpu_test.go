package bench

import (
	"context"
	"fmt"
	"syscall"
	"testing"
	"time"

	"github.com/enginekit/enginekit/netconn"
)

// processCPU is the CPU time (user and system) this process has used.
func processCPU(b *testing.B) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// BenchmarkRemoteCastCPU is remote.tcp.AUTH.cast_msgs_per_s and the payload
// curve measured in CPU time rather than wall time: one sender's casts to
// an engine on another node over loopback TLS, as the bench runs them,
// reporting the CPU both nodes spend per message (cpu-ns/op) and per MB of
// payload (cpu-ms/MB) besides the wall time. On a machine shared with
// other work the wall-clock rate says how much CPU the run got; the CPU per
// message says what the code costs, and is what to compare between
// versions (the wall-clock rate is at most GOMAXPROCS divided by it).
func BenchmarkRemoteCastCPU(b *testing.B) {
	for _, auth := range []netconn.Auth{netconn.MACs, netconn.Signatures} {
		for _, size := range []int{limitPayload, 64 << 10, 1 << 20} {
			b.Run(fmt.Sprintf("%v/%s", auth, sizeName(size)), func(b *testing.B) {
				ctx := context.Background()
				p, sink, to, err := sinkPair(ctx, auth)
				if err != nil {
					b.Fatal(err)
				}
				defer p.close()
				var msg any = make([]byte, size)
				if _, err := castRound(ctx, p.a.System(), sink, to, msg, 1); err != nil {
					b.Fatal(err)
				}
				cpu0 := processCPU(b)
				b.ResetTimer()
				if _, err := castRound(ctx, p.a.System(), sink, to, msg, b.N); err != nil {
					b.Fatal(err)
				}
				b.StopTimer()
				cpu := processCPU(b) - cpu0
				b.SetBytes(int64(size))
				b.ReportMetric(float64(cpu.Nanoseconds())/float64(b.N), "cpu-ns/op")
				b.ReportMetric(float64(cpu.Nanoseconds())/1e6/(float64(b.N)*float64(size)/1e6), "cpu-ms/MB")
			})
		}
	}
}
