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

// A workload is one row of the bench table. A figure usually has a target
// (from issue 13 or docs/design.md) and names the physical limit it is
// compared with; a limit ("limit.…") has neither.
type workload struct {
	name   string    // "area.figure_unit"
	unit   string    // "us", "msg/s", "MB/s", "allocs"…
	target float64   // 0: no target
	better direction // which way the target is met
	// targetOf, when set, makes target a ratio: the figure is met when
	// figure ÷ targetOf's value is on the right side of target (a limit,
	// e.g. "≤ 2× limit.tls_rtt_us", or another figure, e.g. "throughput
	// at 4,096 callers ≥ 1× that at 256").
	targetOf string
	// p99Target, when set, is a bound on the 99th percentile latency the
	// figure reports too; both must hold for the target to be met.
	p99Target time.Duration
	limit     string // name of the limit workload this figure is divided by; "" for none
	// run measures the figure. It sets up and tears down everything it
	// uses, and uses o's helpers to size and repeat its loops.
	run func(ctx context.Context, o benchOpts) (measurement, error)
	// derive, in place of run, computes the row from rows measured before
	// it in the same run.
	derive *derivation
}

// derivation is a row computed from others: f gets their values in the
// order of from; text says how, for the report.
type derivation struct {
	from []string
	f    func([]float64) float64
	text string
}

// deps are the rows w needs measured before it, or compared with.
func (w workload) deps() []string {
	deps := []string{w.limit, w.targetOf}
	if w.derive != nil {
		deps = append(deps, w.derive.from...)
	}
	return deps
}

// measurement is what a workload measured: its value and, for figures made
// of many concurrent operations, the latency percentiles of those.
type measurement struct {
	value    float64
	p50, p99 time.Duration // zero when the figure has none
}

// plain adapts a workload that measures a value only.
func plain(f func(context.Context, benchOpts) (float64, error)) func(context.Context, benchOpts) (measurement, error) {
	return func(ctx context.Context, o benchOpts) (measurement, error) {
		v, err := f(ctx, o)
		return measurement{value: v}, err
	}
}

// benchWorkloads is the bench table, in the order it runs and prints:
// local figures, cross-node figures (remote.go), the figures of several
// nodes (nodes.go), then the limits (limits.go, limits_tls.go).
func benchWorkloads() []workload {
	ws := []workload{
		{name: "local.call_rtt_us", unit: "us", target: 1.5, targetOf: "limit.chan_rtt_us", limit: "limit.chan_rtt_us", run: plain(localCallRTT)},
		{name: "local.cast_msgs_per_s", unit: "msg/s", target: 0.9, targetOf: "limit.chan_stream_msgs_per_s", better: higherIsBetter, limit: "limit.chan_stream_msgs_per_s", run: plain(localCastRate)},
		{name: "local.idle_bytes_per_server", unit: "B", target: 2900, run: plain(localIdleBytes)},
		{name: "local.spawn_us", unit: "us", target: 2, run: plain(localSpawn)},
		{name: "local.skynet_ms", unit: "ms", limit: "limit.skynet_goroutines_ms", run: plain(localSkynet)},
	}
	ws = append(ws, remoteWorkloads()...)
	ws = append(ws, nodesWorkloads()...)
	return append(ws, limitWorkloads()...)
}

// benchOpts says how long and how often to measure, and how big the
// workloads of many engines, nodes or processes are.
type benchOpts struct {
	quick     bool
	rounds    int           // measured rounds per figure; the figure is their median
	roundTime time.Duration // each round runs at least this long (unless capped by maxN)
	servers   int           // servers per round of local.idle_bytes_per_server, and cap on spawns per round
	skynet    int           // processes in the skynet tree (a power of 10)
	learn     int           // engines in the learn burst
	mesh      int           // nodes in the full mesh
	meshEng   int           // engines per node of the mesh
	allocs    int           // calls per round of the allocation count
}

func defaultBenchOpts(quick bool) benchOpts {
	if quick {
		return benchOpts{quick: true, rounds: 3, roundTime: 2 * time.Millisecond, servers: 2000,
			skynet: 10_000, learn: 1000, mesh: 4, meshEng: 2, allocs: 200}
	}
	return benchOpts{rounds: 5, roundTime: 250 * time.Millisecond, servers: 100_000,
		skynet: 1_000_000, learn: 100_000, mesh: 16, meshEng: 10, allocs: 20_000}
}

// heavyRounds is the number of rounds of a workload that takes seconds per
// round (the learn burst, the mesh, skynet): at most 3.
func (o benchOpts) heavyRounds() int { return min(o.rounds, 3) }

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

// heavy times o.heavyRounds() runs of run, each after a GC, and returns the
// median in milliseconds: for workloads of seconds per run, whose size is
// fixed (a tree of a million processes, 100,000 engines).
func (o benchOpts) heavy(ctx context.Context, run func() (time.Duration, error)) (float64, error) {
	ms := make([]float64, 0, o.heavyRounds())
	for range o.heavyRounds() {
		if err := ctx.Err(); err != nil {
			return 0, err
		}
		runtime.GC()
		d, err := run()
		if err != nil {
			return 0, err
		}
		ms = append(ms, float64(d)/float64(time.Millisecond))
	}
	return median(ms), nil
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

// errStuck is the error of a figure that did not end within its timeout
// and the grace after it.
var errStuck = errors.New("did not end")

// Defaults of Options' zero fields.
const (
	DefaultTimeout      = 3 * time.Minute
	DefaultQuickTimeout = time.Minute
	// stuckGrace is how long a figure whose timeout passed may take to
	// wind down (its calls fail with their own deadlines, its nodes stop)
	// before the run gives up on it and goes on.
	stuckGrace = 30 * time.Second
)

// Options says what to measure and how to report it. The zero value is the
// full run: every figure and limit, 5 rounds of at least 250 ms, a table.
type Options struct {
	// Quick measures briefly, with small counts (3 rounds of at least 2
	// ms, 2,000 idle servers, skynet of 10,000, a learn burst of 1,000
	// engines, a mesh of 4 nodes): every figure is exercised, none is a
	// number to keep.
	Quick bool
	// Rounds is the number of measured rounds per figure (default 5; 3
	// with Quick; figures of seconds per round take at most 3). RoundTime
	// is the least a round lasts (default 250 ms; 2 ms with Quick).
	Rounds    int
	RoundTime time.Duration
	// Timeout bounds each figure, set-up included (default 3 min; 1 min
	// with Quick). A figure past it is cancelled and reported as failed; if
	// it has not ended 30 s later (a hang in the code it measures) the run
	// reports it as stuck and goes on without it.
	Timeout time.Duration
	// Run, when set, is a regular expression: only the figures and limits
	// whose names match are measured (and the limits and figures each
	// selected figure is compared with).
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
	if opts.Rounds < 0 || opts.RoundTime < 0 || opts.Timeout < 0 {
		return fmt.Errorf("%w: rounds, round time and timeout must not be negative", ErrBadOptions)
	}
	if opts.Rounds > 0 {
		o.rounds = opts.Rounds
	}
	if opts.RoundTime > 0 {
		o.roundTime = opts.RoundTime
	}
	timeout := opts.Timeout
	if timeout == 0 {
		timeout = DefaultTimeout
		if opts.Quick {
			timeout = DefaultQuickTimeout
		}
	}
	progress := opts.Progress
	if progress == nil {
		progress = io.Discard
	}
	ws, err := selectWorkloads(benchWorkloads(), opts.Run)
	if err != nil {
		return err
	}

	byName := make(map[string]benchResult, len(ws))
	failed := 0
	for _, w := range runOrder(ws) {
		var (
			m   measurement
			err error
		)
		if w.derive != nil {
			fmt.Fprintf(progress, "computing %s...", w.name)
			m, err = derive(w.derive, byName)
		} else {
			fmt.Fprintf(progress, "running %s...", w.name)
			m, err = runOne(ctx, w, o, timeout, stuckGrace)
		}
		if err == nil && (math.IsNaN(m.value) || math.IsInf(m.value, 0)) {
			err = fmt.Errorf("measured %v", m.value)
		}
		if err != nil {
			if ctx.Err() != nil {
				fmt.Fprintln(progress, " interrupted")
				return ctx.Err()
			}
			failed++
			fmt.Fprintf(progress, " failed: %v\n", err)
		} else {
			fmt.Fprintf(progress, " %s %s\n", formatValue(m.value, w.unit), w.unit)
		}
		byName[w.name] = benchResult{w: w, m: m, err: err}
	}
	results := make([]benchResult, 0, len(ws))
	for _, w := range ws {
		results = append(results, byName[w.name])
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

// runOne runs w under timeout. A workload that has not returned grace
// after its context ended is abandoned (its goroutines stay behind: the
// code it measures hangs), so that one hang cannot stop the run.
func runOne(ctx context.Context, w workload, o benchOpts, timeout, grace time.Duration) (measurement, error) {
	wctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	type result struct {
		m   measurement
		err error
	}
	done := make(chan result, 1)
	go func() {
		m, err := w.run(wctx, o)
		done <- result{m, err}
	}()
	var r result
	select {
	case r = <-done:
	case <-wctx.Done():
		t := time.NewTimer(grace)
		defer t.Stop()
		select {
		case r = <-done:
		case <-t.C:
			return measurement{}, fmt.Errorf("%w within %v (timeout) + %v: abandoned", errStuck, timeout, grace)
		}
	}
	if r.err != nil && ctx.Err() == nil && errors.Is(wctx.Err(), context.DeadlineExceeded) {
		return r.m, fmt.Errorf("timeout %v: %w", timeout, r.err)
	}
	return r.m, r.err
}

// derive computes a derived row from the rows it needs.
func derive(d *derivation, byName map[string]benchResult) (measurement, error) {
	in := make([]float64, len(d.from))
	for i, name := range d.from {
		r, ok := byName[name]
		if !ok || r.err != nil {
			return measurement{}, fmt.Errorf("%s, which it is computed from, failed", name)
		}
		in[i] = r.m.value
	}
	return measurement{value: d.f(in)}, nil
}

// runOrder orders ws, which is in table order, so that each limit runs
// just before the first figure compared with it: on a machine whose load
// changes during the run (a shared one), a figure and its limit are then
// measured in conditions as close as the run allows.
func runOrder(ws []workload) []workload {
	byName := make(map[string]workload, len(ws))
	for _, w := range ws {
		byName[w.name] = w
	}
	done := make(map[string]bool, len(ws))
	order := make([]workload, 0, len(ws))
	var add func(w workload)
	add = func(w workload) {
		if done[w.name] {
			return
		}
		done[w.name] = true
		for _, dep := range w.deps() {
			if d, ok := byName[dep]; ok && (strings.HasPrefix(dep, "limit.") || w.derive != nil) {
				add(d)
			}
		}
		order = append(order, w)
	}
	for _, w := range ws {
		add(w)
	}
	return order
}

// selectWorkloads keeps the workloads matching expr and the rows they are
// compared with, in table order.
func selectWorkloads(all []workload, expr string) ([]workload, error) {
	if expr == "" {
		return all, nil
	}
	re, err := regexp.Compile(expr)
	if err != nil {
		return nil, fmt.Errorf("%w: run: %v", ErrBadOptions, err)
	}
	byName := make(map[string]workload, len(all))
	for _, w := range all {
		byName[w.name] = w
	}
	keep := make(map[string]bool)
	var add func(name string)
	add = func(name string) {
		w, ok := byName[name]
		if !ok || keep[name] {
			return
		}
		keep[name] = true
		for _, dep := range w.deps() {
			add(dep)
		}
	}
	for _, w := range all {
		if re.MatchString(w.name) {
			add(w.name)
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
	w   workload
	m   measurement
	err error
}

// pass says whether r meets its target; ok is false when that cannot be
// told (no target, or the row the target is a ratio of failed).
func (r benchResult) pass(byName map[string]benchResult) (pass, ok bool) {
	if r.w.target == 0 || r.err != nil {
		return false, false
	}
	v := r.m.value
	if r.w.targetOf != "" {
		ref, found := byName[r.w.targetOf]
		if !found || ref.err != nil || ref.m.value == 0 {
			return false, false
		}
		v /= ref.m.value
	}
	if r.w.better == higherIsBetter {
		pass = v >= r.w.target
	} else {
		pass = v <= r.w.target
	}
	if r.w.p99Target > 0 && r.m.p99 > r.w.p99Target {
		pass = false
	}
	return pass, true
}

// ratio returns the figure divided by its limit, if both were measured.
func ratio(r benchResult, byName map[string]benchResult) (float64, bool) {
	l, ok := byName[r.w.limit]
	if r.err != nil || !ok || l.err != nil || l.m.value == 0 {
		return 0, false
	}
	return r.m.value / l.m.value, true
}

func resultsByName(results []benchResult) map[string]benchResult {
	m := make(map[string]benchResult, len(results))
	for _, r := range results {
		m[r.w.name] = r
	}
	return m
}

// targetText is the target as the table prints it: "≥ 200k msg/s, p99 ≤
// 10ms" or "≤ 2× limit.tls_rtt_us".
func targetText(w workload) string {
	if w.target == 0 {
		return ""
	}
	op := "≤"
	if w.better == higherIsBetter {
		op = "≥"
	}
	var s string
	if w.targetOf != "" {
		s = fmt.Sprintf("%s %s× %s", op, strconv.FormatFloat(w.target, 'f', -1, 64), w.targetOf)
	} else {
		s = fmt.Sprintf("%s %s %s", op, formatTarget(w.target, w.unit), w.unit)
	}
	if w.p99Target > 0 {
		s += fmt.Sprintf(", p99 ≤ %v", w.p99Target)
	}
	return s
}

// benchLine is one line of -json output.
type benchLine struct {
	Name       string   `json:"name"`
	Value      float64  `json:"value"`
	Unit       string   `json:"unit"`
	Better     string   `json:"better"`
	P50US      *float64 `json:"p50_us,omitempty"`
	P99US      *float64 `json:"p99_us,omitempty"`
	Target     *float64 `json:"target,omitempty"`
	TargetOf   string   `json:"target_of,omitempty"`
	P99Target  *float64 `json:"p99_target_us,omitempty"`
	TargetText string   `json:"target_text,omitempty"`
	Pass       *bool    `json:"pass,omitempty"`
	Limit      string   `json:"limit,omitempty"`
	Ratio      *float64 `json:"ratio,omitempty"`
	Derived    string   `json:"derived,omitempty"`
	Error      string   `json:"error,omitempty"`
}

func usPtr(d time.Duration) *float64 {
	us := float64(d) / float64(time.Microsecond)
	return &us
}

func printBenchJSON(w io.Writer, results []benchResult) error {
	byName := resultsByName(results)
	enc := json.NewEncoder(w)
	for _, r := range results {
		line := benchLine{Name: r.w.name, Unit: r.w.unit, Better: r.w.better.String(), Limit: r.w.limit,
			TargetOf: r.w.targetOf, TargetText: targetText(r.w)}
		if r.w.derive != nil {
			line.Derived = r.w.derive.text
		}
		if r.w.target != 0 {
			line.Target = &r.w.target
		}
		if r.w.p99Target > 0 {
			line.P99Target = usPtr(r.w.p99Target)
		}
		if r.err != nil {
			line.Error = r.err.Error()
		} else {
			line.Value = r.m.value
			if r.m.p99 > 0 {
				line.P50US, line.P99US = usPtr(r.m.p50), usPtr(r.m.p99)
			}
			if pass, ok := r.pass(byName); ok {
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
	fmt.Fprintln(tw, "figure\tvalue\tp50 / p99\ttarget\t\tvs limit")
	limits := false
	var errs []string
	for _, r := range results {
		if strings.HasPrefix(r.w.name, "limit.") && !limits {
			limits = true
			fmt.Fprintln(tw, "\t\t\t\t\t")
			fmt.Fprintln(tw, "limit\tvalue\t\t\t\t")
		}
		if r.err != nil {
			errs = append(errs, fmt.Sprintf("[%d] %s: %v", len(errs)+1, r.w.name, r.err))
			mark := ""
			if r.w.target != 0 {
				mark = "not met"
			}
			fmt.Fprintf(tw, "%s\tfailed [%d]\t\t%s\t%s\t\n", r.w.name, len(errs), targetText(r.w), mark)
			continue
		}
		lat := ""
		if r.m.p99 > 0 {
			lat = fmt.Sprintf("%s / %s", formatDuration(r.m.p50), formatDuration(r.m.p99))
		}
		mark := ""
		if pass, ok := r.pass(byName); ok {
			mark = "met"
			if !pass {
				mark = "not met"
			}
		} else if r.w.target != 0 {
			mark = "?"
		}
		vs := ""
		if q, ok := ratio(r, byName); ok {
			vs = fmt.Sprintf("%s× %s", formatRatio(q), r.w.limit)
		} else if r.w.derive != nil {
			vs = "= " + r.w.derive.text
		}
		fmt.Fprintf(tw, "%s\t%s %s\t%s\t%s\t%s\t%s\n", r.w.name, formatValue(r.m.value, r.w.unit), r.w.unit, lat, targetText(r.w), mark, vs)
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
	if len(errs) > 0 {
		fmt.Fprintln(w)
		fmt.Fprintln(w, "failed:")
	}
	for _, e := range errs {
		if _, err := fmt.Fprintln(w, e); err != nil {
			return err
		}
	}
	return nil
}

// formatRatio prints a ratio with two decimals, or three significant
// digits when it is small.
func formatRatio(q float64) string {
	if q < 0.1 {
		return strconv.FormatFloat(q, 'g', 2, 64)
	}
	return strconv.FormatFloat(q, 'f', 2, 64)
}

// formatDuration prints a latency with three significant digits.
func formatDuration(d time.Duration) string {
	switch {
	case d >= time.Second:
		return formatValue(d.Seconds(), "") + "s"
	case d >= time.Millisecond:
		return formatValue(float64(d)/float64(time.Millisecond), "") + "ms"
	}
	return formatValue(float64(d)/float64(time.Microsecond), "") + "µs"
}

// formatValue prints v with three significant digits, rates in k or M.
func formatValue(v float64, unit string) string {
	suffix := ""
	if unit == "msg/s" || unit == "calls/s" {
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
	if unit == "msg/s" || unit == "calls/s" {
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
