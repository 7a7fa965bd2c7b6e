package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// The command is a thin wrapper over internal/bench: flags in, table out,
// bad options as usage errors.
func TestBenchCommand(t *testing.T) {
	code, out, errOut := runCmd(t, "bench", "-quick", "-run", `^limit\.chan_rtt_us$`)
	if code != 0 || !strings.Contains(out, "limit.chan_rtt_us") || !strings.Contains(errOut, "running limit.chan_rtt_us...") {
		t.Fatalf("exit %d, stdout:\n%s\nstderr:\n%s", code, out, errOut)
	}
	profile := filepath.Join(t.TempDir(), "cpu.pprof")
	code, _, errOut = runCmd(t, "bench", "-quick", "-run", `^limit\.chan_rtt_us$`, "-cpuprofile", profile)
	if fi, err := os.Stat(profile); code != 0 || err != nil || fi.Size() == 0 {
		t.Fatalf("-cpuprofile: exit %d, %v, stderr:\n%s", code, err, errOut)
	}
	code, _, errOut = runCmd(t, "bench", "-run", "(")
	if code != 2 || !strings.Contains(errOut, "see 'enginekit bench --help'") {
		t.Fatalf("bad -run: exit %d, stderr %q", code, errOut)
	}
}
