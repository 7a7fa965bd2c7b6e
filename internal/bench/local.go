package bench

import (
	"context"
	"fmt"
	"math"
	"runtime"
	"time"

	"github.com/enginekit/enginekit/genserver"
)

// The local figures use the genserver API as genserver/bench_test.go does:
// calls and casts from outside any process, with context.Background, so
// that a call's deadline is the default one.

// benchEcho answers every call with its request.
type benchEcho struct{}

func (benchEcho) HandleCall(_ *genserver.Process, _ genserver.From, req any) (any, error) {
	return req, nil
}
func (benchEcho) HandleCast(*genserver.Process, any) {}

// benchSink counts casts down and says when it has processed them all.
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

// benchIdle does its bit of work in Init and then idles.
type benchIdle struct{ n int }

func (s *benchIdle) Init(*genserver.Process) error                                   { s.n = 1; return nil }
func (s *benchIdle) HandleCall(*genserver.Process, genserver.From, any) (any, error) { return nil, nil }
func (s *benchIdle) HandleCast(*genserver.Process, any)                              {}

func newIdle() genserver.Server { return &benchIdle{} }

// stopSystem stops sys, giving a big System time to wind down.
func stopSystem(sys *genserver.System) error {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	return sys.Stop(ctx)
}

func localCallRTT(ctx context.Context, o benchOpts) (float64, error) {
	sys := genserver.NewSystem(genserver.Config{Name: "bench"})
	defer stopSystem(sys)
	pid, err := sys.Spawn(func() genserver.Server { return benchEcho{} })
	if err != nil {
		return 0, err
	}
	req := new([128]byte)
	return o.latencyUS(ctx, math.MaxInt, func(n int) (time.Duration, error) {
		bg := context.Background()
		start := time.Now()
		for range n {
			if _, err := sys.Call(bg, pid, req); err != nil {
				return 0, err
			}
		}
		return time.Since(start), nil
	})
}

func localCastRate(ctx context.Context, o benchOpts) (float64, error) {
	sys := genserver.NewSystem(genserver.Config{Name: "bench"})
	defer stopSystem(sys)
	msg := new([128]byte)
	// The mailbox is unbounded: a sender faster than its receiver queues up
	// to n messages, so n is capped to bound memory.
	return o.rate(ctx, 4_000_000, func(n int) (time.Duration, error) {
		s := &benchSink{left: n, done: make(chan struct{})}
		pid, err := sys.Spawn(func() genserver.Server { return s })
		if err != nil {
			return 0, err
		}
		defer sys.StopProcess(context.Background(), pid, nil)
		start := time.Now()
		for range n {
			if err := sys.Cast(pid, msg); err != nil {
				return 0, err
			}
		}
		select {
		case <-s.done:
		case <-pid.Done():
			return 0, fmt.Errorf("sink exited: %v", pid.Reason())
		}
		return time.Since(start), nil
	})
}

// localSpawn times Spawn (with Init) into a fresh System per round, which
// is then stopped outside the clock, so rounds do not pile up servers.
func localSpawn(ctx context.Context, o benchOpts) (float64, error) {
	return o.latencyUS(ctx, o.servers, func(n int) (time.Duration, error) {
		sys := genserver.NewSystem(genserver.Config{Name: "bench"})
		defer stopSystem(sys)
		start := time.Now()
		for range n {
			if _, err := sys.Spawn(newIdle); err != nil {
				return 0, err
			}
		}
		return time.Since(start), nil
	})
}

// localIdleBytes spawns o.servers idle servers and divides the growth of
// heap and stack in use (after GC) by their number. The System keeps the
// servers reachable; their PIDs are not kept, so the figure is the servers'
// own cost, including their share of the System's tables.
func localIdleBytes(ctx context.Context, o benchOpts) (float64, error) {
	perServer := make([]float64, 0, o.rounds)
	for range o.rounds {
		if err := ctx.Err(); err != nil {
			return 0, err
		}
		v, err := idleRound(o.servers)
		if err != nil {
			return 0, err
		}
		perServer = append(perServer, v)
	}
	return median(perServer), nil
}

func idleRound(n int) (float64, error) {
	sys := genserver.NewSystem(genserver.Config{Name: "bench"})
	defer stopSystem(sys)
	before := memInUse()
	for range n {
		if _, err := sys.Spawn(newIdle); err != nil {
			return 0, err
		}
	}
	after := memInUse()
	runtime.KeepAlive(sys)
	return (float64(after) - float64(before)) / float64(n), nil
}

func memInUse() uint64 {
	runtime.GC()
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapInuse + m.StackInuse
}

// skynet (github.com/atemerev/skynet): a tree of o.skynet processes, 10
// children each; every leaf sends its number to its parent, every parent
// the sum of its children's to its own, and the root's sum ends the run.
// Each process is spawned by its parent and stops once it has reported.
type skyStart struct{}
type skyResult int

type skyRun struct {
	root chan int   // the root's sum
	errs chan error // the first failure to spawn (capacity 1)
}

type skyNode struct {
	run       *skyRun
	num, size int
	parent    genserver.PID // zero for the root
	got, sum  int
}

func (s *skyNode) HandleCall(*genserver.Process, genserver.From, any) (any, error) { return nil, nil }

func (s *skyNode) HandleCast(p *genserver.Process, msg any) {
	switch m := msg.(type) {
	case skyStart:
		if s.size == 1 {
			s.report(p, s.num)
			return
		}
		size := s.size / 10
		for i := range 10 {
			child := &skyNode{run: s.run, num: s.num + i*size, size: size, parent: p.Self()}
			pid, err := p.System().Spawn(func() genserver.Server { return child })
			if err == nil {
				err = p.Cast(pid, skyStart{})
			}
			if err != nil {
				select {
				case s.run.errs <- err:
				default:
				}
				p.Stop(nil)
				return
			}
		}
	case skyResult:
		s.sum += int(m)
		if s.got++; s.got == 10 {
			s.report(p, s.sum)
		}
	}
}

func (s *skyNode) report(p *genserver.Process, v int) {
	if s.parent.IsZero() {
		s.run.root <- v
	} else if err := p.Cast(s.parent, skyResult(v)); err != nil {
		select {
		case s.run.errs <- err:
		default:
		}
	}
	p.Stop(nil)
}

// localSkynet runs skynet in a fresh System per round, in milliseconds.
func localSkynet(ctx context.Context, o benchOpts) (float64, error) {
	return o.heavy(ctx, func() (time.Duration, error) {
		sys := genserver.NewSystem(genserver.Config{Name: "skynet"})
		defer stopSystem(sys)
		run := &skyRun{root: make(chan int, 1), errs: make(chan error, 1)}
		root := &skyNode{run: run, size: o.skynet}
		start := time.Now()
		pid, err := sys.Spawn(func() genserver.Server { return root })
		if err != nil {
			return 0, err
		}
		if err := sys.Cast(pid, skyStart{}); err != nil {
			return 0, err
		}
		select {
		case sum := <-run.root:
			d := time.Since(start)
			if want := o.skynet * (o.skynet - 1) / 2; sum != want {
				return 0, fmt.Errorf("sum %d, want %d", sum, want)
			}
			return d, nil
		case err := <-run.errs:
			return 0, err
		case <-ctx.Done():
			return 0, ctx.Err()
		}
	})
}

// mallocs is the number of heap objects allocated so far by the process.
func mallocs() uint64 {
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.Mallocs
}
