package bench

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"regexp"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"
)

// direction says which way a figure is good.
type direction int8

const (
	lowerIsBetter direction = iota
	higherIsBetter
)

func (d direction) String() string {
	if d == higherIsBetter {
		return "higher"
	}
	return "lower"
}

// A workload is one row of the bench table. A figure has a target (from
// docs/design.md) and usually names the physical limit it is compared with; a
// limit ("limit.…") has neither.
type workload struct {
	name   string    // "area.figure_unit"
	unit   string    // "us", "msg/s", "B"
	target float64   // 0: no target
	better direction // which way the target is met
	limit  string    // name of the limit workload this figure is divided by; "" for none
	// run measures the figure. It sets up and tears down everything it
	// uses, and uses o's helpers to size and repeat its loops.
	run func(ctx context.Context, o benchOpts) (float64, error)
}

// benchWorkloads is the bench table, in the order it runs and prints.
func benchWorkloads() []workload {
	ws := []workload{
		{name: "local.call_rtt_us", unit: "us", target: 0.6, limit: "limit.chan_rtt_us", run: localCallRTT},
		{name: "local.cast_msgs_per_s", unit: "msg/s", target: 10e6, better: higherIsBetter, limit: "limit.chan_stream_msgs_per_s", run: localCastRate},
		{name: "local.idle_bytes_per_server", unit: "B", target: 2900, run: localIdleBytes},
		{name: "local.spawn_us", unit: "us", target: 2, run: localSpawn},
	}
	// Cross-node figures (bench_remote.go):
	// remote.{tcp,unix}.{macs,signatures}.call_rtt_us, compared with
	// limit.{tcp,unix}_rtt_us, and .cast_msgs_per_s, compared with
	// limit.{tcp,unix}_stream_msgs_per_s.
	ws = append(ws, remoteWorkloads()...)
	return append(ws, []workload{
		{name: "limit.chan_rtt_us", unit: "us", run: chanRTT},
		{name: "limit.chan_stream_msgs_per_s", unit: "msg/s", better: higherIsBetter, run: chanStream},
		{name: "limit.tcp_rtt_us", unit: "us", run: netRTT("tcp")},
		{name: "limit.tcp_stream_msgs_per_s", unit: "msg/s", better: higherIsBetter, run: netStream("tcp")},
		{name: "limit.unix_rtt_us", unit: "us", run: netRTT("unix")},
		{name: "limit.unix_stream_msgs_per_s", unit: "msg/s", better: higherIsBetter, run: netStream("unix")},
	}...)
}

// benchOpts says how long and how often to measure.
type benchOpts struct {
	quick     bool
	rounds    int           // measured rounds per figure; the figure is their median
	roundTime time.Duration // each round runs at least this long (unless capped by maxN)
	servers   int           // servers per round of local.idle_bytes_per_server, and cap on spawns per round
}

func defaultBenchOpts(quick bool) benchOpts {
	if quick {
		return benchOpts{quick: true, rounds: 3, roundTime: 2 * time.Millisecond, servers: 2000}
	}
	return benchOpts{rounds: 5, roundTime: 250 * time.Millisecond, servers: 100_000}
}

// timeOp measures op, which runs some operation n times and returns how
// long that took (leaving setup and teardown out). As testing.B does, it
// first grows n until one run takes at least o.roundTime or n reaches maxN;
// it then times o.rounds runs of that size, each after a GC, and returns
// the median time per operation in seconds.
func (o benchOpts) timeOp(ctx context.Context, maxN int, op func(n int) (time.Duration, error)) (float64, error) {
	n := 1
	for {
		if err := ctx.Err(); err != nil {
			return 0, err
		}
		d, err := op(n)
		if err != nil {
			return 0, err
		}
		if d >= o.roundTime || n >= maxN {
			break
		}
		n = nextN(n, d, o.roundTime, maxN)
	}
	perOp := make([]float64, 0, o.rounds)
	for range o.rounds {
		if err := ctx.Err(); err != nil {
			return 0, err
		}
		runtime.GC()
		d, err := op(n)
		if err != nil {
			return 0, err
		}
		perOp = append(perOp, max(d.Seconds(), 1e-9)/float64(n))
	}
	return median(perOp), nil
}

// nextN predicts the n that makes a run last goal, given that n took d: 20%
// more than the linear guess, at most 100 times n, at least n+1.
func nextN(n int, d, goal time.Duration, maxN int) int {
	d = max(d, time.Nanosecond)
	next := int64(float64(n) * float64(goal) / float64(d) * 1.2)
	next = min(next, 100*int64(n), int64(maxN))
	return int(max(next, int64(n)+1))
}

// latencyUS is timeOp in microseconds per operation.
func (o benchOpts) latencyUS(ctx context.Context, maxN int, op func(n int) (time.Duration, error)) (float64, error) {
	s, err := o.timeOp(ctx, maxN, op)
	return s * 1e6, err
}

// rate is timeOp as operations per second.
func (o benchOpts) rate(ctx context.Context, maxN int, op func(n int) (time.Duration, error)) (float64, error) {
	s, err := o.timeOp(ctx, maxN, op)
	if err != nil {
		return 0, err
	}
	return 1 / s, nil
}

func median(xs []float64) float64 {
	s := slices.Clone(xs)
	slices.Sort(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

// --- running ----------------------------------------------------------------

// ErrBadOptions is wrapped by Run's error for options it cannot use.
var ErrBadOptions = errors.New("bench: bad options")

// Options says what to measure and how to report it. The zero value is the
// full run: every figure and limit, 5 rounds of at least 250 ms, a table.
type Options struct {
	// Quick measures briefly (3 rounds of at least 2 ms, 2,000 idle
	// servers): for tests, not for numbers.
	Quick bool
	// Rounds is the number of measured rounds per figure (default 5; 3
	// with Quick). RoundTime is the least a round lasts (default 250 ms; 2 ms
	// with Quick).
	Rounds    int
	RoundTime time.Duration
	// Run, when set, is a regular expression: only the figures and limits
	// whose names match are measured (and the limit of each selected
	// figure).
	Run string
	// JSON prints one JSON object per figure and limit, one per line, in
	// place of the table.
	JSON bool
	// Progress, when set, gets a line per figure as it is measured.
	Progress io.Writer
}

// Figures returns the names of every figure and limit, in table order.
func Figures() []string {
	var names []string
	for _, w := range benchWorkloads() {
		names = append(names, w.name)
	}
	return names
}

// Run measures what opts selects and prints the report to out. It returns
// an error if a measurement failed (the report says which) or ctx ended.
func Run(ctx context.Context, opts Options, out io.Writer) error {
	o := defaultBenchOpts(opts.Quick)
	if opts.Rounds < 0 || opts.RoundTime < 0 {
		return fmt.Errorf("%w: rounds and round time must not be negative", ErrBadOptions)
	}
	if opts.Rounds > 0 {
		o.rounds = opts.Rounds
	}
	if opts.RoundTime > 0 {
		o.roundTime = opts.RoundTime
	}
	progress := opts.Progress
	if progress == nil {
		progress = io.Discard
	}
	ws, err := selectWorkloads(benchWorkloads(), opts.Run)
	if err != nil {
		return err
	}

	results := make([]benchResult, 0, len(ws))
	failed := 0
	for _, w := range ws {
		fmt.Fprintf(progress, "running %s...", w.name)
		v, err := w.run(ctx, o)
		if err == nil && (math.IsNaN(v) || math.IsInf(v, 0)) {
			err = fmt.Errorf("measured %v", v)
		}
		if err != nil {
			if ctx.Err() != nil {
				fmt.Fprintln(progress, " interrupted")
				return ctx.Err()
			}
			failed++
			fmt.Fprintf(progress, " failed: %v\n", err)
		} else {
			fmt.Fprintf(progress, " %s %s\n", formatValue(v, w.unit), w.unit)
		}
		results = append(results, benchResult{w: w, value: v, err: err})
	}

	if opts.JSON {
		err = printBenchJSON(out, results)
	} else {
		err = printBenchTable(out, results, o)
	}
	if err != nil {
		return err
	}
	if failed > 0 {
		return fmt.Errorf("%d of %d measurements failed (see above)", failed, len(results))
	}
	return nil
}

// selectWorkloads keeps the workloads matching expr and the limits they
// are compared with, in table order.
func selectWorkloads(all []workload, expr string) ([]workload, error) {
	if expr == "" {
		return all, nil
	}
	re, err := regexp.Compile(expr)
	if err != nil {
		return nil, fmt.Errorf("%w: run: %v", ErrBadOptions, err)
	}
	keep := make(map[string]bool)
	for _, w := range all {
		if re.MatchString(w.name) {
			keep[w.name] = true
			if w.limit != "" {
				keep[w.limit] = true
			}
		}
	}
	if len(keep) == 0 {
		return nil, fmt.Errorf("%w: run %q matches no figure or limit", ErrBadOptions, expr)
	}
	var ws []workload
	for _, w := range all {
		if keep[w.name] {
			ws = append(ws, w)
		}
	}
	return ws, nil
}

type benchResult struct {
	w     workload
	value float64
	err   error
}

func (r benchResult) pass() bool {
	if r.w.better == higherIsBetter {
		return r.value >= r.w.target
	}
	return r.value <= r.w.target
}

// ratio returns the figure divided by its limit, if both were measured.
func ratio(r benchResult, byName map[string]benchResult) (float64, bool) {
	l, ok := byName[r.w.limit]
	if r.err != nil || !ok || l.err != nil || l.value == 0 {
		return 0, false
	}
	return r.value / l.value, true
}

func resultsByName(results []benchResult) map[string]benchResult {
	m := make(map[string]benchResult, len(results))
	for _, r := range results {
		m[r.w.name] = r
	}
	return m
}

// benchLine is one line of -json output.
type benchLine struct {
	Name   string   `json:"name"`
	Value  float64  `json:"value"`
	Unit   string   `json:"unit"`
	Better string   `json:"better"`
	Target *float64 `json:"target,omitempty"`
	Pass   *bool    `json:"pass,omitempty"`
	Limit  string   `json:"limit,omitempty"`
	Ratio  *float64 `json:"ratio,omitempty"`
	Error  string   `json:"error,omitempty"`
}

func printBenchJSON(w io.Writer, results []benchResult) error {
	byName := resultsByName(results)
	enc := json.NewEncoder(w)
	for _, r := range results {
		line := benchLine{Name: r.w.name, Unit: r.w.unit, Better: r.w.better.String(), Limit: r.w.limit}
		if r.w.target != 0 {
			line.Target = &r.w.target
		}
		if r.err != nil {
			line.Error = r.err.Error()
		} else {
			line.Value = r.value
			if r.w.target != 0 {
				pass := r.pass()
				line.Pass = &pass
			}
			if q, ok := ratio(r, byName); ok {
				line.Ratio = &q
			}
		}
		if err := enc.Encode(line); err != nil {
			return err
		}
	}
	return nil
}

func printBenchTable(w io.Writer, results []benchResult, o benchOpts) error {
	byName := resultsByName(results)
	fmt.Fprintf(w, "enginekit bench: median of %d rounds of ≥ %v; %s %s/%s, GOMAXPROCS=%d, %d CPUs",
		o.rounds, o.roundTime, runtime.Version(), runtime.GOOS, runtime.GOARCH, runtime.GOMAXPROCS(0), runtime.NumCPU())
	if o.quick {
		fmt.Fprint(w, " (-quick: not for numbers)")
	}
	fmt.Fprintln(w)
	fmt.Fprintln(w)
	var table bytes.Buffer
	tw := tabwriter.NewWriter(&table, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "figure\tvalue\ttarget\t\tvs limit")
	limits := false
	for _, r := range results {
		if strings.HasPrefix(r.w.name, "limit.") && !limits {
			limits = true
			fmt.Fprintln(tw, "\t\t\t\t")
			fmt.Fprintln(tw, "limit\tvalue\t\t\t")
		}
		if r.err != nil {
			fmt.Fprintf(tw, "%s\terror: %v\t\t\t\n", r.w.name, r.err)
			continue
		}
		target, mark := "", ""
		if r.w.target != 0 {
			op := "≤"
			if r.w.better == higherIsBetter {
				op = "≥"
			}
			target = fmt.Sprintf("%s %s %s", op, formatTarget(r.w.target, r.w.unit), r.w.unit)
			mark = "pass"
			if !r.pass() {
				mark = "FAIL"
			}
		}
		vs := ""
		if q, ok := ratio(r, byName); ok {
			vs = fmt.Sprintf("%.2f× %s", q, r.w.limit)
		}
		fmt.Fprintf(tw, "%s\t%s %s\t%s\t%s\t%s\n", r.w.name, formatValue(r.value, r.w.unit), r.w.unit, target, mark, vs)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	// tabwriter pads empty cells; drop the trailing blanks.
	for line := range strings.Lines(table.String()) {
		if _, err := fmt.Fprintln(w, strings.TrimRight(line, " \n")); err != nil {
			return err
		}
	}
	return nil
}

// formatValue prints v with three significant digits, rates in k or M.
func formatValue(v float64, unit string) string {
	suffix := ""
	if unit == "msg/s" {
		v, suffix = scaleRate(v)
	}
	var s string
	switch a := math.Abs(v); {
	case a >= 100:
		s = strconv.FormatFloat(v, 'f', 0, 64)
	case a >= 10:
		s = strconv.FormatFloat(v, 'f', 1, 64)
	case a >= 1:
		s = strconv.FormatFloat(v, 'f', 2, 64)
	default:
		s = strconv.FormatFloat(v, 'f', 3, 64)
	}
	return s + suffix
}

// formatTarget prints a target as docs/design.md writes it.
func formatTarget(v float64, unit string) string {
	suffix := ""
	if unit == "msg/s" {
		v, suffix = scaleRate(v)
	}
	return strconv.FormatFloat(v, 'f', -1, 64) + suffix
}

func scaleRate(v float64) (float64, string) {
	switch a := math.Abs(v); {
	case a >= 1e6:
		return v / 1e6, "M"
	case a >= 1e3:
		return v / 1e3, "k"
	}
	return v, ""
}
