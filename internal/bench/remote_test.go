package bench

import (
	"strings"
	"testing"
)

// TestRemoteWorkloads pins the cross-node rows: one per transport and
// authentication mode and figure, each with its target (docs/design.md) and
// compared with the limit of its own transport.
func TestRemoteWorkloads(t *testing.T) {
	want := map[string]struct {
		target float64
		limit  string
	}{
		"remote.tcp.macs.call_rtt_us":            {30, "limit.tcp_rtt_us"},
		"remote.tcp.signatures.call_rtt_us":      {120, "limit.tcp_rtt_us"},
		"remote.unix.macs.call_rtt_us":           {30, "limit.unix_rtt_us"},
		"remote.unix.signatures.call_rtt_us":     {120, "limit.unix_rtt_us"},
		"remote.tcp.macs.cast_msgs_per_s":        {1.4e6, "limit.tcp_stream_msgs_per_s"},
		"remote.tcp.signatures.cast_msgs_per_s":  {7e5, "limit.tcp_stream_msgs_per_s"},
		"remote.unix.macs.cast_msgs_per_s":       {1.4e6, "limit.unix_stream_msgs_per_s"},
		"remote.unix.signatures.cast_msgs_per_s": {7e5, "limit.unix_stream_msgs_per_s"},
	}
	got := 0
	for _, w := range benchWorkloads() {
		if !strings.HasPrefix(w.name, "remote.") {
			continue
		}
		got++
		exp, ok := want[w.name]
		if !ok {
			t.Errorf("unexpected figure %s", w.name)
			continue
		}
		rate := strings.HasSuffix(w.name, "_per_s")
		if w.target != exp.target || w.limit != exp.limit || (w.better == higherIsBetter) != rate {
			t.Errorf("%s: target %v, limit %s, better %v; want %v, %s", w.name, w.target, w.limit, w.better, exp.target, exp.limit)
		}
	}
	if got != len(want) {
		t.Errorf("%d remote figures, want %d", got, len(want))
	}
}
