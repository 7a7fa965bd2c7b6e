package bench

import (
	"strings"
	"testing"
	"time"
)

// TestRemoteWorkloads pins the targets of issue 13 on the cross-node rows.
func TestRemoteWorkloads(t *testing.T) {
	type target struct {
		value    float64
		targetOf string
		p99      time.Duration
	}
	want := map[string]target{
		"remote.tcp.macs.call_rtt_us":                    {2, "limit.tls_rtt_us", 0},
		"remote.tcp.signatures.call_rtt_us":              {120, "", 0},
		"remote.tcp.macs.callers_256_calls_per_s":        {200e3, "", 10 * time.Millisecond},
		"remote.tcp.signatures.callers_256_calls_per_s":  {100e3, "", 10 * time.Millisecond},
		"remote.tcp.macs.callers_4096_calls_per_s":       {1, "remote.tcp.macs.callers_256_calls_per_s", 0},
		"remote.tcp.signatures.callers_4096_calls_per_s": {1, "remote.tcp.signatures.callers_256_calls_per_s", 0},
		"remote.tcp.macs.cast_msgs_per_s":                {4e6, "", 0},
		"remote.tcp.signatures.cast_msgs_per_s":          {4e6, "", 0},
		"remote.tcp.macs.payload_64kb_mb_per_s":          {0.8, "limit.tls_stream_64kb_mb_per_s", 0},
		"remote.tcp.macs.payload_1mb_mb_per_s":           {0.8, "limit.tls_stream_1mb_mb_per_s", 0},
		"remote.tcp.signatures.payload_64kb_mb_per_s":    {0.8, "limit.tls_stream_64kb_mb_per_s", 0},
		"remote.tcp.signatures.payload_1mb_mb_per_s":     {0.8, "limit.tls_stream_1mb_mb_per_s", 0},
		"remote.tcp.macs.allocs_per_call":                {10, "", 0},
		"remote.tcp.signatures.allocs_per_call":          {10, "", 0},
		"nodes.learn_burst_ms":                           {1000, "", 0},
		"local.call_rtt_us":                              {1.5, "limit.chan_rtt_us", 0},
		"local.cast_msgs_per_s":                          {0.9, "limit.chan_stream_msgs_per_s", 0},
	}
	for name, exp := range want {
		w, ok := workloadNamed(name)
		if !ok {
			t.Errorf("no figure %s", name)
			continue
		}
		higher := strings.HasSuffix(name, "_per_s")
		if w.target != exp.value || w.targetOf != exp.targetOf || w.p99Target != exp.p99 || (w.better == higherIsBetter) != higher {
			t.Errorf("%s: target %v of %q, p99 %v, better %v; want %v of %q, p99 %v", name, w.target, w.targetOf, w.p99Target, w.better, exp.value, exp.targetOf, exp.p99)
		}
	}
	for _, w := range benchWorkloads() {
		if _, pinned := want[w.name]; !pinned && w.target != 0 && strings.HasPrefix(w.name, "remote.") {
			t.Errorf("%s has a target (%v) this test does not pin", w.name, w.target)
		}
	}
}
