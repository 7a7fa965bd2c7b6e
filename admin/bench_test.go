package admin_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/enginekit/enginekit/admin"
	"github.com/enginekit/enginekit/genserver"
	"github.com/enginekit/enginekit/internal/nodetest"
	"github.com/enginekit/enginekit/keyholder"
	"github.com/enginekit/enginekit/netconn"
	"github.com/enginekit/enginekit/supervisor"
)

type benchEcho struct{}

func (benchEcho) HandleCall(_ *genserver.Process, _ genserver.From, req any) (any, error) {
	return req, nil
}
func (benchEcho) HandleCast(*genserver.Process, any) {}

type benchSink struct {
	left int
	done chan struct{}
}

func (s *benchSink) HandleCall(*genserver.Process, genserver.From, any) (any, error) { return nil, nil }
func (s *benchSink) HandleCast(*genserver.Process, any) {
	if s.left--; s.left == 0 {
		close(s.done)
	}
}

// BenchmarkIntrospection is genserver's call and cast benchmarks (one
// caller, a 128-byte payload) in a System of 1,000 named processes, and the
// same across a loopback TCP connection to another node (MACs), while
// the admin server of that System is scraped: not at all (quiet), every
// second (an observer page open, or Prometheus at 15 times its usual
// rate), every 10 ms, and in a tight loop (worst case: the scraper takes a
// whole core of a 2-core machine). Each scrape is /metrics and /api/processes, both of which
// snapshot every process.
//
//	go test -run '^$' -bench Introspection -count 5 ./admin/
func BenchmarkIntrospection(b *testing.B) {
	for _, scrape := range []struct {
		name  string
		every time.Duration // 0: never; <0: back to back
	}{{"quiet", 0}, {"scrape-1s", time.Second}, {"scrape-10ms", 10 * time.Millisecond}, {"scrape-loop", -1}} {
		for _, op := range []string{"call", "cast", "remote-call", "remote-cast"} {
			b.Run(op+"/"+scrape.name, func(b *testing.B) {
				benchIntrospection(b, op, scrape.every)
			})
		}
	}
}

func benchIntrospection(b *testing.B, op string, every time.Duration) {
	ctx := context.Background()
	var sys *genserver.System
	src := admin.Source{}
	var remote keyholder.Address
	sink := &benchSink{left: b.N, done: make(chan struct{})}
	if strings.HasPrefix(op, "remote-") {
		a, c := nodetest.New(b, "a", netconn.MACs), nodetest.New(b, "b", netconn.MACs)
		var err error
		if remote, _, err = c.Tr.SpawnEngine("sink", func() genserver.Server { return sink }); err != nil {
			b.Fatal(err)
		}
		nodetest.Connect(b, a, c, "tcp")
		a.WaitLearn(b, remote)
		sys, src.Transport, src.Supervisors = a.Sys, a.Tr, []*supervisor.Supervisor{a.Node.Supervisor()}
	} else {
		sys = genserver.NewSystem(genserver.Config{Name: "bench"})
		defer sys.Stop(ctx)
	}
	src.System = sys
	for i := range 1000 {
		if _, err := sys.Spawn(func() genserver.Server { return benchEcho{} }, genserver.WithName(fmt.Sprintf("p%d", i))); err != nil {
			b.Fatal(err)
		}
	}
	srv, err := admin.New(admin.Config{Addr: "127.0.0.1:0", Source: src})
	if err != nil {
		b.Fatal(err)
	}
	defer srv.Close()

	var scrapes atomic.Int64
	stop := make(chan struct{})
	var wg sync.WaitGroup
	if every != 0 {
		hc := &http.Client{}
		defer hc.CloseIdleConnections()
		wg.Add(1)
		go func() {
			defer wg.Done()
			var tick <-chan time.Time
			if every > 0 {
				t := time.NewTicker(every)
				defer t.Stop()
				tick = t.C
			}
			for {
				if tick != nil {
					select {
					case <-tick:
					case <-stop:
						return
					}
				}
				select {
				case <-stop:
					return
				default:
				}
				for _, path := range []string{"/metrics", "/api/processes"} {
					resp, err := hc.Get(srv.URL() + path)
					if err != nil {
						b.Error(err)
						return
					}
					_, _ = io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
				}
				scrapes.Add(1)
			}
		}()
	}
	req := new([128]byte)
	b.ReportAllocs()
	switch op {
	case "call":
		pid, _ := sys.Spawn(func() genserver.Server { return benchEcho{} }, genserver.WithName("echo"))
		b.ResetTimer()
		for b.Loop() {
			if _, err := sys.Call(ctx, pid, req); err != nil {
				b.Fatal(err)
			}
		}
	case "remote-call":
		payload := make([]byte, 128)
		b.ResetTimer()
		for b.Loop() {
			if _, err := sys.Call(ctx, genserver.Name(remote.String()), payload); err != nil {
				b.Fatal(err)
			}
		}
	case "cast", "remote-cast":
		var to genserver.Dest = genserver.Name(remote.String())
		var msg any = make([]byte, 128) // what the wire can carry
		if op == "cast" {
			to, _ = sys.Spawn(func() genserver.Server { return sink }, genserver.WithName("sink"))
			msg = req
		}
		b.ResetTimer()
		for i := 0; i < b.N; i++ {
			if err := sys.Cast(to, msg); err != nil {
				b.Fatal(err)
			}
		}
		<-sink.done
	}
	b.StopTimer()
	close(stop)
	wg.Wait()
	b.ReportMetric(float64(scrapes.Load())/b.Elapsed().Seconds(), "scrapes/s")
}

// BenchmarkScrape is the cost of one scrape of a System of 1,000 named
// processes, on the scraper's side.
//
//	go test -run '^$' -bench Scrape ./admin/
func BenchmarkScrape(b *testing.B) {
	ctx := context.Background()
	sys := genserver.NewSystem(genserver.Config{Name: "bench"})
	defer sys.Stop(ctx)
	for i := range 1000 {
		if _, err := sys.Spawn(func() genserver.Server { return benchEcho{} }, genserver.WithName(fmt.Sprintf("p%d", i))); err != nil {
			b.Fatal(err)
		}
	}
	srv, err := admin.New(admin.Config{Addr: "127.0.0.1:0", Source: admin.Source{System: sys}})
	if err != nil {
		b.Fatal(err)
	}
	defer srv.Close()
	hc := &http.Client{}
	defer hc.CloseIdleConnections()
	for _, path := range []string{"/metrics", "/api/processes", "/api/stats"} {
		b.Run(path, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				resp, err := hc.Get(srv.URL() + path)
				if err != nil {
					b.Fatal(err)
				}
				_, _ = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
			}
		})
	}
	b.Run("System.Processes", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			_ = sys.Processes()
		}
	})
}
