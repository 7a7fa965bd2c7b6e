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
	for _, o := range []Options{{Run: "("}, {Run: "^nothing$"}, {Rounds: -1}, {RoundTime: -1}} {
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

func TestBenchQuickJSON(t *testing.T) {
	out, errOut, err := run(t, Options{Quick: true, JSON: true})
	if err != nil {
		t.Fatalf("%v, progress:\n%s", err, errOut)
	}
	got := decodeBenchJSON(t, out)
	var want []string
	for _, w := range benchWorkloads() {
		want = append(want, w.name)
	}
	for _, name := range []string{
		"local.call_rtt_us", "local.cast_msgs_per_s", "local.idle_bytes_per_server", "local.spawn_us",
		"limit.chan_rtt_us", "limit.tcp_rtt_us", "limit.tcp_stream_msgs_per_s",
		"limit.unix_rtt_us", "limit.unix_stream_msgs_per_s",
		"remote.tcp.macs.call_rtt_us", "remote.tcp.signatures.call_rtt_us",
		"remote.unix.macs.call_rtt_us", "remote.unix.signatures.call_rtt_us",
		"remote.tcp.macs.cast_msgs_per_s", "remote.tcp.signatures.cast_msgs_per_s",
		"remote.unix.macs.cast_msgs_per_s", "remote.unix.signatures.cast_msgs_per_s",
	} {
		if !slices.Contains(want, name) {
			t.Errorf("the bench table lacks %s", name)
		}
	}
	for _, name := range want {
		line, ok := got[name]
		switch {
		case !ok:
			t.Errorf("no line for %s", name)
			continue
		case line.Error != "":
			t.Errorf("%s failed: %s", name, line.Error)
		case line.Unit == "" || line.Better == "":
			t.Errorf("%s: no unit or direction: %+v", name, line)
		}
		if !strings.Contains(errOut, "running "+name+"...") {
			t.Errorf("no progress line for %s on stderr", name)
		}
		if strings.HasPrefix(name, "limit.") {
			continue
		}
		if line.Target == nil || line.Pass == nil {
			t.Errorf("%s: no target or pass mark: %+v", name, line)
		}
		if line.Limit != "" {
			if _, ok := got[line.Limit]; !ok || line.Ratio == nil {
				t.Errorf("%s: limit %q not measured or no ratio", name, line.Limit)
			}
		}
	}
	if len(got) != len(want) {
		t.Errorf("%d lines, want %d", len(got), len(want))
	}
}

func TestBenchTable(t *testing.T) {
	out, errOut, err := run(t, Options{Quick: true, Run: `^local\.call_rtt_us$`})
	if err != nil {
		t.Fatalf("%v, progress:\n%s", err, errOut)
	}
	// -run keeps the figure and the limit it is compared with.
	for _, want := range []string{"local.call_rtt_us", "≤ 0.6 us", "× limit.chan_rtt_us", "\nlimit.chan_rtt_us "} {
		if !strings.Contains(out, want) {
			t.Errorf("table lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, "local.cast") || strings.Contains(out, "limit.tcp") {
		t.Errorf("-run did not select:\n%s", out)
	}
	if !strings.Contains(out, "pass") && !strings.Contains(out, "FAIL") {
		t.Errorf("no pass/fail mark:\n%s", out)
	}
	for _, l := range strings.Split(out, "\n") {
		if strings.HasSuffix(l, " ") {
			t.Errorf("trailing blanks in %q", l)
		}
	}
}

func TestBenchPassAndRatio(t *testing.T) {
	figure := workload{name: "x.rtt_us", unit: "us", target: 1, limit: "limit.y"}
	rate := workload{name: "x.rate", unit: "msg/s", target: 10, better: higherIsBetter}
	limit := workload{name: "limit.y", unit: "us"}
	for _, tc := range []struct {
		r    benchResult
		pass bool
	}{
		{benchResult{w: figure, value: 0.5}, true},
		{benchResult{w: figure, value: 1}, true},
		{benchResult{w: figure, value: 1.5}, false},
		{benchResult{w: rate, value: 11}, true},
		{benchResult{w: rate, value: 9}, false},
	} {
		if got := tc.r.pass(); got != tc.pass {
			t.Errorf("%s = %v: pass %v, want %v", tc.r.w.name, tc.r.value, got, tc.pass)
		}
	}
	byName := resultsByName([]benchResult{{w: figure, value: 3}, {w: limit, value: 2}})
	if q, ok := ratio(byName["x.rtt_us"], byName); !ok || q != 1.5 {
		t.Errorf("ratio = %v, %v; want 1.5", q, ok)
	}
	if _, ok := ratio(benchResult{w: rate, value: 1}, byName); ok {
		t.Error("ratio for a figure without a limit")
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
