package main

import (
	"context"
	"errors"
	"fmt"
	"io"

	"github.com/enginekit/enginekit/internal/bench"
)

// The bench suite lives in internal/bench; this is its command line.

const benchSynopsis = `bench [-quick] [-json] [-run REGEXP] [-rounds N] [-round-time D]

Measures the performance targets (docs/design.md, "Performance") and, in the
same run, the physical limits of this machine they are compared with, then
prints a table: each figure, its target and whether it is met, and its ratio
to its limit (latency: figure ÷ limit, so 2× is twice the limit's time;
throughput: figure ÷ limit, so 0.5× is half the limit's rate).

Every figure is the median of -rounds rounds. Loops are sized as testing.B
sizes them: the number of operations grows until one round lasts at least
-round-time, and each round runs after a GC. Payloads are 128 bytes; calls
are sequential from one caller; casts come from one sender and are counted
until the receiver has processed all of them. Local payloads are a pointer
to a [128]byte, as a Go program passes them (Erlang shares binaries over 64
bytes the same way); cross-node payloads are a 128-byte []byte. Cross-node
figures run two nodes in this process over loopback TCP or a Unix socket
(TLS 1.3, MACs or signatures), set up once per figure. The default run
takes about 35 seconds; progress goes to stderr. The code is in
internal/bench.

Figures:
  local.call_rtt_us            call round trip, one caller, echo server
  local.cast_msgs_per_s        cast throughput, one sender
  local.idle_bytes_per_server  heap+stack per idle server (after Init), 100,000 servers
  local.spawn_us               Spawn including Init, until Spawn returns
  remote.{tcp,unix}.{macs,signatures}.call_rtt_us
                               cross-node call round trip, one caller, echo engine
  remote.{tcp,unix}.{macs,signatures}.cast_msgs_per_s
                               cross-node cast throughput, one sender, until the
                               receiving engine has handled every cast
Limits:
  limit.chan_rtt_us            Go channel ping-pong between two goroutines
  limit.chan_stream_msgs_per_s one goroutine to another over a channel (capacity 1024)
  limit.{tcp,unix}_rtt_us      raw loopback ping-pong of 128 bytes (TCP_NODELAY)
  limit.{tcp,unix}_stream_msgs_per_s
                               raw loopback stream of 128-byte messages with a
                               4-byte length prefix, bufio on both ends, one way`

func runBench(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("bench", benchSynopsis, stdout)
	o := bench.Options{Progress: stderr}
	fs.BoolVar(&o.Quick, "quick", false, "measure briefly (3 rounds of ≥2ms, 2,000 idle servers): for tests, not for numbers")
	fs.BoolVar(&o.JSON, "json", false, "print one JSON object per figure and limit, one per line:\n{\"name\", \"value\", \"unit\", \"better\", \"target\", \"pass\", \"limit\", \"ratio\", \"error\"}")
	fs.StringVar(&o.Run, "run", "", "measure only the figures and limits whose names match this `regexp`\n(a selected figure's limit is measured too)")
	fs.IntVar(&o.Rounds, "rounds", 0, "measured rounds per figure (default 5; 3 with -quick)")
	fs.DurationVar(&o.RoundTime, "round-time", 0, "minimum `duration` of a round (default 250ms; 2ms with -quick)")
	if err := parse(fs, args); err != nil {
		return err
	}
	err := bench.Run(ctx, o, stdout)
	if errors.Is(err, bench.ErrBadOptions) {
		return fmt.Errorf("%w: %v", errUsage, err)
	}
	return err
}
