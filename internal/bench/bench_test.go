package bench

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"math"
	"slices"
	"strings"
	"testing"
	"time"
)

// run runs the bench and returns its report and progress.
func run(t *testing.T, o Options) (out, progress string, err error) {
	t.Helper()
	var report, prog bytes.Buffer
	o.Progress = &prog
	err = Run(context.Background(), o, &report)
	return report.String(), prog.String(), err
}

func TestBadOptions(t *testing.T) {
	for _, o := range []Options{{Run: "("}, {Run: "^nothing$"}, {Rounds: -1}, {RoundTime: -1}, {Timeout: -1}} {
		if _, _, err := run(t, o); !errors.Is(err, ErrBadOptions) {
			t.Errorf("%+v: %v, want ErrBadOptions", o, err)
		}
	}
}

// decodeBenchJSON parses bench -json output strictly, one object per line.
func decodeBenchJSON(t *testing.T, out string) map[string]benchLine {
	t.Helper()
	got := make(map[string]benchLine)
	for _, l := range strings.Split(strings.TrimSuffix(out, "\n"), "\n") {
		var line benchLine
		dec := json.NewDecoder(strings.NewReader(l))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&line); err != nil || dec.More() {
			t.Fatalf("line %q is not one JSON object: %v", l, err)
		}
		if _, dup := got[line.Name]; dup {
			t.Errorf("%s printed twice", line.Name)
		}
		got[line.Name] = line
	}
	return got
}

// issue13 are the figures issue 13 asks the bench for, each with the
// physical limit it is compared with.
var issue13 = map[string]string{
	"remote.tcp.macs.call_rtt_us":                    "limit.tls_rtt_us",
	"remote.tcp.signatures.call_rtt_us":              "limit.tls_rtt_signed_us",
	"remote.tcp.macs.callers_1_calls_per_s":          "limit.tls_stream_msgs_per_s",
	"remote.tcp.macs.callers_16_calls_per_s":         "limit.tls_stream_msgs_per_s",
	"remote.tcp.macs.callers_256_calls_per_s":        "limit.tls_stream_msgs_per_s",
	"remote.tcp.macs.callers_4096_calls_per_s":       "limit.tls_stream_msgs_per_s",
	"remote.tcp.signatures.callers_1_calls_per_s":    "limit.tls_stream_msgs_per_s",
	"remote.tcp.signatures.callers_16_calls_per_s":   "limit.tls_stream_msgs_per_s",
	"remote.tcp.signatures.callers_256_calls_per_s":  "limit.tls_stream_msgs_per_s",
	"remote.tcp.signatures.callers_4096_calls_per_s": "limit.tls_stream_msgs_per_s",
	"remote.tcp.macs.engines_256_calls_per_s":        "limit.tls_stream_msgs_per_s",
	"remote.tcp.signatures.engines_256_calls_per_s":  "limit.tls_stream_msgs_per_s",
	"remote.tcp.macs.cast_msgs_per_s":                "limit.tls_stream_msgs_per_s",
	"remote.tcp.signatures.cast_msgs_per_s":          "limit.tls_stream_msgs_per_s",
	"remote.tcp.macs.payload_128b_mb_per_s":          "limit.tls_stream_128b_mb_per_s",
	"remote.tcp.macs.payload_4kb_mb_per_s":           "limit.tls_stream_4kb_mb_per_s",
	"remote.tcp.macs.payload_64kb_mb_per_s":          "limit.tls_stream_64kb_mb_per_s",
	"remote.tcp.macs.payload_1mb_mb_per_s":           "limit.tls_stream_1mb_mb_per_s",
	"remote.tcp.signatures.payload_64kb_mb_per_s":    "limit.tls_stream_64kb_mb_per_s",
	"remote.tcp.signatures.payload_1mb_mb_per_s":     "limit.tls_stream_1mb_mb_per_s",
	"remote.tcp.macs.pingpong_msgs_per_s":            "limit.tls_stream_msgs_per_s",
	"remote.tcp.macs.allocs_per_call":                "",
	"remote.tcp.signatures.allocs_per_call":          "",
	"nodes.learn_burst_ms":                           "limit.learn_verify_ms",
	"nodes.relearn_burst_ms":                         "",
	"nodes.full_mesh_ms":                             "",
	"local.skynet_ms":                                "limit.skynet_goroutines_ms",
	"local.call_rtt_us":                              "limit.chan_rtt_us",
	"local.cast_msgs_per_s":                          "limit.chan_stream_msgs_per_s",
	"limit.ed25519_sign_us":                          "",
	"limit.ed25519_verify_us":                        "",
	"limit.gmac_128b_us":                             "",
	"limit.tls_rtt_maced_us":                         "",
}

// TestBenchQuickJSON runs the whole quick suite and checks that the report
// is complete and well formed. It checks no value against its target: the
// machine is shared and the quick suite is not for numbers.
func TestBenchQuickJSON(t *testing.T) {
	out, errOut, err := run(t, Options{Quick: true, JSON: true})
	if err != nil {
		t.Fatalf("%v, progress:\n%s", err, errOut)
	}
	got := decodeBenchJSON(t, out)
	names := Figures()
	for name, limit := range issue13 {
		w, ok := workloadNamed(name)
		if !ok {
			t.Errorf("the bench table lacks %s", name)
		} else if w.limit != limit {
			t.Errorf("%s is compared with %q, want %q", name, w.limit, limit)
		}
	}
	for _, name := range names {
		line, ok := got[name]
		switch {
		case !ok:
			t.Errorf("no line for %s", name)
			continue
		case line.Error != "":
			t.Errorf("%s failed: %s", name, line.Error)
			continue
		case line.Unit == "" || line.Better == "":
			t.Errorf("%s: no unit or direction: %+v", name, line)
		case !(line.Value > 0) && !(line.Unit == "allocs" && line.Value == 0):
			t.Errorf("%s: value %v", name, line.Value)
		}
		if !strings.Contains(errOut, "running "+name+"...") && !strings.Contains(errOut, "computing "+name+"...") {
			t.Errorf("no progress line for %s on stderr", name)
		}
		if strings.Contains(name, ".callers_") || strings.Contains(name, ".engines_") {
			if line.P50US == nil || line.P99US == nil || *line.P50US <= 0 || *line.P50US > *line.P99US {
				t.Errorf("%s: p50 %v, p99 %v", name, line.P50US, line.P99US)
			}
		}
		if strings.HasPrefix(name, "limit.") {
			if line.Target != nil || line.Limit != "" {
				t.Errorf("limit %s has a target or a limit: %+v", name, line)
			}
			continue
		}
		if line.Target != nil && (line.Pass == nil || line.TargetText == "") {
			t.Errorf("%s: a target and no pass mark: %+v", name, line)
		}
		if line.TargetOf != "" {
			if _, ok := got[line.TargetOf]; !ok {
				t.Errorf("%s: target relative to %q, which is not in the report", name, line.TargetOf)
			}
		}
		if line.Limit != "" {
			if _, ok := got[line.Limit]; !ok || line.Ratio == nil {
				t.Errorf("%s: limit %q not measured or no ratio", name, line.Limit)
			}
		}
	}
	if len(got) != len(names) {
		t.Errorf("%d lines, want %d", len(got), len(names))
	}
}

func workloadNamed(name string) (workload, bool) {
	for _, w := range benchWorkloads() {
		if w.name == name {
			return w, true
		}
	}
	return workload{}, false
}

func TestBenchTable(t *testing.T) {
	out, errOut, err := run(t, Options{Quick: true, Run: `^local\.call_rtt_us$`})
	if err != nil {
		t.Fatalf("%v, progress:\n%s", err, errOut)
	}
	// -run keeps the figure and the limit it is compared with.
	for _, want := range []string{"local.call_rtt_us", "≤ 1.5× limit.chan_rtt_us", "× limit.chan_rtt_us", "\nlimit.chan_rtt_us "} {
		if !strings.Contains(out, want) {
			t.Errorf("table lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, "local.cast") || strings.Contains(out, "limit.tcp") {
		t.Errorf("-run did not select:\n%s", out)
	}
	if !strings.Contains(out, " met ") && !strings.Contains(out, "not met") {
		t.Errorf("no met/not met mark:\n%s", out)
	}
	for _, l := range strings.Split(out, "\n") {
		if strings.HasSuffix(l, " ") {
			t.Errorf("trailing blanks in %q", l)
		}
	}
}

// TestSelectFollowsTargets: a figure whose target is relative to another
// figure brings that figure, and its limit, along.
func TestSelectFollowsTargets(t *testing.T) {
	ws, err := selectWorkloads(benchWorkloads(), `macs\.callers_4096`)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, w := range ws {
		names = append(names, w.name)
	}
	want := []string{"remote.tcp.macs.callers_256_calls_per_s", "remote.tcp.macs.callers_4096_calls_per_s", "limit.tls_stream_msgs_per_s"}
	if !slices.Equal(names, want) {
		t.Errorf("selected %v, want %v", names, want)
	}
}

// TestRunOrder: each limit runs just before the first figure compared
// with it, every workload once.
func TestRunOrder(t *testing.T) {
	ws := []workload{
		{name: "a", limit: "limit.x"},
		{name: "b", limit: "limit.y", target: 1, targetOf: "a"},
		{name: "c", limit: "limit.x"},
		{name: "limit.x"}, {name: "limit.y"}, {name: "limit.z"},
		{name: "d", limit: "limit.sum"},
		{name: "limit.sum", derive: &derivation{from: []string{"limit.z", "limit.w"}}},
		{name: "limit.w"},
	}
	var got []string
	for _, w := range runOrder(ws) {
		got = append(got, w.name)
	}
	want := []string{"limit.x", "a", "limit.y", "b", "c", "limit.z", "limit.w", "limit.sum", "d"}
	if !slices.Equal(got, want) {
		t.Errorf("run order %v, want %v", got, want)
	}
}

func TestDerive(t *testing.T) {
	d := &derivation{from: []string{"limit.a", "limit.b"}, f: func(v []float64) float64 { return v[0] + 2*v[1] }}
	byName := map[string]benchResult{"limit.a": {m: measurement{value: 1}}, "limit.b": {m: measurement{value: 3}}}
	if m, err := derive(d, byName); err != nil || m.value != 7 {
		t.Errorf("derive = %v, %v; want 7", m.value, err)
	}
	byName["limit.b"] = benchResult{err: errors.New("x")}
	if _, err := derive(d, byName); err == nil || !strings.Contains(err.Error(), "limit.b") {
		t.Errorf("derive from a failed row: %v", err)
	}
}

func TestBenchPassAndRatio(t *testing.T) {
	figure := workload{name: "x.rtt_us", unit: "us", target: 1, limit: "limit.y"}
	rate := workload{name: "x.rate", unit: "msg/s", target: 10, better: higherIsBetter}
	relative := workload{name: "x.rel_us", unit: "us", target: 2, targetOf: "limit.y", limit: "limit.y"}
	tail := workload{name: "x.calls", unit: "calls/s", target: 10, better: higherIsBetter, p99Target: time.Millisecond}
	none := workload{name: "x.none", unit: "ms"}
	limit := workload{name: "limit.y", unit: "us"}
	byName := resultsByName([]benchResult{{w: figure, m: measurement{value: 3}}, {w: limit, m: measurement{value: 2}}})
	for _, tc := range []struct {
		r        benchResult
		pass, ok bool
	}{
		{benchResult{w: figure, m: measurement{value: 0.5}}, true, true},
		{benchResult{w: figure, m: measurement{value: 1}}, true, true},
		{benchResult{w: figure, m: measurement{value: 1.5}}, false, true},
		{benchResult{w: rate, m: measurement{value: 11}}, true, true},
		{benchResult{w: rate, m: measurement{value: 9}}, false, true},
		{benchResult{w: relative, m: measurement{value: 4}}, true, true}, // 2× the limit
		{benchResult{w: relative, m: measurement{value: 4.1}}, false, true},
		{benchResult{w: tail, m: measurement{value: 11, p99: time.Millisecond}}, true, true},
		{benchResult{w: tail, m: measurement{value: 11, p99: 2 * time.Millisecond}}, false, true},
		{benchResult{w: none, m: measurement{value: 1}}, false, false},
		{benchResult{w: figure, err: errors.New("x")}, false, false},
	} {
		pass, ok := tc.r.pass(byName)
		if pass != tc.pass || ok != tc.ok {
			t.Errorf("%s = %+v: pass %v %v, want %v %v", tc.r.w.name, tc.r.m, pass, ok, tc.pass, tc.ok)
		}
	}
	if _, ok := (benchResult{w: relative, m: measurement{value: 1}}).pass(map[string]benchResult{}); ok {
		t.Error("pass told without the row the target is relative to")
	}
	if q, ok := ratio(byName["x.rtt_us"], byName); !ok || q != 1.5 {
		t.Errorf("ratio = %v, %v; want 1.5", q, ok)
	}
	if _, ok := ratio(benchResult{w: rate, m: measurement{value: 1}}, byName); ok {
		t.Error("ratio for a figure without a limit")
	}
	for w, want := range map[*workload]string{
		&figure: "≤ 1 us", &rate: "≥ 10 msg/s", &relative: "≤ 2× limit.y", &tail: "≥ 10 calls/s, p99 ≤ 1ms", &none: "",
	} {
		if got := targetText(*w); got != want {
			t.Errorf("targetText(%s) = %q, want %q", w.name, got, want)
		}
	}
}

// TestTimeout: a figure past its timeout fails and says so, and one that
// does not end even then is abandoned and reported as stuck, so one hang
// cannot stop the run.
func TestTimeout(t *testing.T) {
	o := defaultBenchOpts(true)
	slow := workload{name: "x.slow", run: func(ctx context.Context, _ benchOpts) (measurement, error) {
		<-ctx.Done()
		return measurement{}, ctx.Err()
	}}
	if _, err := runOne(context.Background(), slow, o, time.Millisecond, time.Minute); !errors.Is(err, context.DeadlineExceeded) || !strings.Contains(err.Error(), "timeout 1ms") {
		t.Errorf("slow: %v", err)
	}
	release, ended := make(chan struct{}), make(chan struct{})
	stuck := workload{name: "x.stuck", run: func(context.Context, benchOpts) (measurement, error) {
		defer close(ended)
		<-release
		return measurement{value: 1}, nil
	}}
	_, err := runOne(context.Background(), stuck, o, time.Millisecond, time.Millisecond)
	close(release)
	<-ended
	if !errors.Is(err, errStuck) {
		t.Errorf("stuck: %v", err)
	}
}

func TestNextN(t *testing.T) {
	goal := 100 * time.Millisecond
	for _, tc := range []struct {
		n    int
		d    time.Duration
		maxN int
		want int
	}{
		{1, 0, 1 << 40, 100},                         // no time measured: grow 100×
		{100, time.Millisecond, 1 << 40, 10000},      // capped at 100×
		{1000, 50 * time.Millisecond, 1 << 40, 2400}, // linear guess plus 20%
		{1000, 50 * time.Millisecond, 1500, 1500},    // capped at maxN
		{10, time.Hour, 1 << 40, 11},                 // at least n+1
	} {
		if got := nextN(tc.n, tc.d, goal, tc.maxN); got != tc.want {
			t.Errorf("nextN(%d, %v) = %d, want %d", tc.n, tc.d, got, tc.want)
		}
	}
}

func TestMedian(t *testing.T) {
	xs := []float64{5, 1, 3}
	if got := median(xs); got != 3 {
		t.Errorf("median = %v, want 3", got)
	}
	if xs[0] != 5 {
		t.Error("median sorted its argument")
	}
	if got := median([]float64{4, 1, 3, 2}); got != 2.5 {
		t.Errorf("median = %v, want 2.5", got)
	}
}

func TestFormatValue(t *testing.T) {
	for _, tc := range []struct {
		v    float64
		unit string
		want string
	}{
		{0.5123, "us", "0.512"},
		{4.123, "us", "4.12"},
		{11.44, "us", "11.4"},
		{2901.2, "B", "2901"},
		{34.2e6, "msg/s", "34.2M"},
		{645e3, "msg/s", "645k"},
		{math.Inf(1), "us", "+Inf"},
	} {
		if got := formatValue(tc.v, tc.unit); got != tc.want {
			t.Errorf("formatValue(%v, %s) = %q, want %q", tc.v, tc.unit, got, tc.want)
		}
	}
	if got := formatTarget(10e6, "msg/s"); got != "10M" {
		t.Errorf("formatTarget = %q, want 10M", got)
	}
	if got := formatTarget(0.6, "us"); got != "0.6" {
		t.Errorf("formatTarget = %q, want 0.6", got)
	}
}
