package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"runtime/pprof"

	"github.com/enginekit/enginekit/internal/bench"
)

// The bench suite lives in internal/bench; this is its command line.

const benchSynopsis = `bench [-quick] [-json] [-run REGEXP] [-rounds N] [-round-time D] [-timeout D] [-cpuprofile FILE]

Measures the performance figures of issue 13 (and docs/design.md) and, in the
same run, the physical limits of this machine they are compared with, then
prints a table: each figure, the p50/p99 latency of its calls where it has
them, its target and whether it is met, and its ratio to its limit
(latency: figure ÷ limit, so 2× is twice the limit's time; throughput:
figure ÷ limit, so 0.5× is half the limit's rate). A target written as
"≤ 2× limit.tls_rtt_us" is on that ratio.

Every figure is the median of -rounds rounds. Loops are sized as testing.B
sizes them: the number of operations grows until one round lasts at least
-round-time, and each round runs after a GC; figures of seconds per round
(skynet, the learn burst, the mesh) take at most 3 rounds. Payloads are 128
bytes unless named. Local payloads are a pointer to a [128]byte, as a Go
program passes them; cross-node payloads are a []byte. Cross-node figures
run two nodes in this process over loopback TCP with mutual TLS 1.3 and
per-message MACs or signatures, set up once per figure; callers run outside
any process. Each figure is bounded by -timeout: past it, it is reported as
failed (a hang in the code it measures is reported, not waited for). The
default run takes a few minutes; progress goes to stderr. The code is in
internal/bench.

Figures (AUTH is macs or signatures):
  local.call_rtt_us            call round trip, one caller, echo server
  local.cast_msgs_per_s        cast throughput, one sender
  local.idle_bytes_per_server  heap+stack per idle server (after Init), 100,000 servers
  local.spawn_us               Spawn including Init, until Spawn returns
  local.skynet_ms              skynet: a tree of 1,000,000 processes, 10 children
                               each, summing their numbers
  remote.tcp.AUTH.call_rtt_us  cross-node call round trip, one caller, echo engine
  remote.tcp.AUTH.callers_{1,16,256,4096}_calls_per_s
                               that many concurrent callers on one node calling
                               one engine on the other, with p50/p99 latency
  remote.tcp.AUTH.engines_256_calls_per_s
                               256 callers, each calling its own engine
  remote.tcp.AUTH.cast_msgs_per_s
                               cross-node casts from one sender, until the
                               receiving engine has handled every one
  remote.tcp.AUTH.payload_{128b,4kb,64kb,1mb}_mb_per_s
                               one sender's casts of that size, MB/s of payload
                               (after one call of that size, which must work)
  remote.tcp.AUTH.pingpong_msgs_per_s
                               two engines, one per node: pings answered per
                               second (each a cast there and a cast back)
  remote.tcp.AUTH.allocs_per_call
                               heap allocations per call round trip, both nodes
  nodes.learn_burst_ms         a fresh node connects to one with 100,000 engines
                               until it has learned them all
  nodes.relearn_burst_ms       the same node again, after it disconnected and
                               forgot them all (their proofs remembered)
  nodes.full_mesh_ms           16 nodes of 10 engines connect pairwise until each
                               has learned every other's engines
Limits:
  limit.chan_rtt_us            Go channel ping-pong between two goroutines
  limit.chan_stream_msgs_per_s one goroutine to another over a channel (capacity 1024)
  limit.skynet_goroutines_ms   skynet with goroutines and channels
  limit.tcp_rtt_us, limit.tcp_stream_msgs_per_s
                               raw loopback TCP ping-pong; framed one-way stream
  limit.tls_rtt_us             raw mutual TLS 1.3 ping-pong over loopback TCP
  limit.tls_rtt_{signed,maced}_us
                               the same, each message signed (ed25519) or
                               MACed (GMAC, AES-256-GCM) by its sender and checked
  limit.tls_stream_msgs_per_s  raw TLS framed one-way stream of 128-byte messages
  limit.tls_stream_{128b,4kb,64kb,1mb}_mb_per_s
                               the same with messages of that size, MB/s
  limit.ed25519_{sign,verify}_us, limit.gmac_128b_us
                               the machine's crypto on a 128-byte message

A call is two messages, so a calls/s figure's ceiling is 0.5× its stream limit.`

func runBench(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("bench", benchSynopsis, stdout)
	o := bench.Options{Progress: stderr}
	fs.BoolVar(&o.Quick, "quick", false, "measure briefly, with small counts (3 rounds of ≥2ms; skynet of 10,000,\na learn burst of 1,000, a mesh of 4 nodes): a smoke run, not for numbers")
	fs.BoolVar(&o.JSON, "json", false, "print one JSON object per figure and limit, one per line:\n{\"name\", \"value\", \"unit\", \"better\", \"p50_us\", \"p99_us\", \"target\", \"target_of\",\n\"p99_target_us\", \"target_text\", \"pass\", \"limit\", \"ratio\", \"error\"}")
	fs.StringVar(&o.Run, "run", "", "measure only the figures and limits whose names match this `regexp`\n(a selected figure's limit is measured too)")
	fs.IntVar(&o.Rounds, "rounds", 0, "measured rounds per figure (default 5; 3 with -quick)")
	fs.DurationVar(&o.RoundTime, "round-time", 0, "minimum `duration` of a round (default 250ms; 2ms with -quick)")
	fs.DurationVar(&o.Timeout, "timeout", 0, "bound on each figure, set-up included (default 3m; 1m with -quick)")
	cpuProfile := fs.String("cpuprofile", "", "write a CPU profile of the whole run to `file`, for go tool pprof\n(with -run, of the figures it selects: where their time goes)")
	if err := parse(fs, args); err != nil {
		return err
	}
	if *cpuProfile != "" {
		f, err := os.Create(*cpuProfile)
		if err != nil {
			return err
		}
		if err := pprof.StartCPUProfile(f); err != nil {
			f.Close()
			return err
		}
		defer func() {
			pprof.StopCPUProfile()
			f.Close()
		}()
	}
	err := bench.Run(ctx, o, stdout)
	if errors.Is(err, bench.ErrBadOptions) {
		return fmt.Errorf("%w: %v", errUsage, err)
	}
	return err
}
