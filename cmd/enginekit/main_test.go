package main

import (
	"bytes"
	"context"
	"strings"
	"testing"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// runCmd runs the command line args as main would and returns its exit
// code and output.
func runCmd(t *testing.T, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errOut bytes.Buffer
	code = run(context.Background(), args, &out, &errOut)
	return code, out.String(), errOut.String()
}

// oneLine checks that an error went out as one line, without a stack trace.
func oneLine(t *testing.T, stderr string) {
	t.Helper()
	if strings.Count(stderr, "\n") != 1 || !strings.HasSuffix(stderr, "\n") {
		t.Errorf("stderr is not one line: %q", stderr)
	}
	for _, bad := range []string{"goroutine ", "panic", ".go:"} {
		if strings.Contains(stderr, bad) {
			t.Errorf("stderr contains %q: %q", bad, stderr)
		}
	}
}

func TestDemo(t *testing.T) {
	code, out, errOut := runCmd(t, "demo")
	if code != 0 {
		t.Fatalf("demo exited %d\nstdout:\n%s\nstderr:\n%s", code, out, errOut)
	}
	for _, want := range []string{"answered later", "supervisor restarted fragile"} {
		if !strings.Contains(out, want) {
			t.Errorf("demo output lacks %q:\n%s", want, out)
		}
	}
}

func TestHelp(t *testing.T) {
	code, out, _ := runCmd(t, "help")
	if code != 0 {
		t.Errorf("help exited %d", code)
	}
	for _, c := range commands() {
		if !strings.Contains(out, "  "+c.name+" ") {
			t.Errorf("help does not list %s:\n%s", c.name, out)
		}
		code, out, errOut := runCmd(t, c.name, "--help")
		if code != 0 || !strings.HasPrefix(out, "Usage: enginekit "+c.name) || errOut != "" {
			t.Errorf("%s --help: exit %d, stdout %q, stderr %q", c.name, code, out, errOut)
		}
	}
}

func TestBadFlags(t *testing.T) {
	for _, args := range [][]string{
		{"nosuchcommand"},
		{"keygen", "--nosuchflag"},
		{"keygen"}, // --keys is required
		{"keygen", "--keys", "k", "extra"},
		{"keygen", "--keys", "k", "--engine", ""},
		{"keygen", "--keys", "k", "--engine", "a", "--engine", "a"},
		{"keygen", "--keys", "k", "--kdf-time", "x"},
		{"keys"},
		{"keys", "--keys"},
		{"bench", "-nosuchflag"},
		{"bench", "-run", "("},
		{"bench", "-run", "no workload has this name"},
		{"bench", "-rounds", "-1"},
		{"bench", "-round-time", "fast"},
	} {
		t.Run(strings.Join(args, " "), func(t *testing.T) {
			code, _, errOut := runCmd(t, args...)
			if code != 2 {
				t.Errorf("exit %d, want 2; stderr %q", code, errOut)
			}
			oneLine(t, errOut)
			if !strings.Contains(errOut, "help") {
				t.Errorf("stderr does not point to help: %q", errOut)
			}
		})
	}
}
