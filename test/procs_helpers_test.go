package test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// Helpers for the multi-process tests: build the enginekit binary, run it
// as separate OS processes, and wait on the lines they print.

// procWait bounds every wait for a process's output.
const procWait = 30 * time.Second

// buildEnginekit builds ./cmd/enginekit into a temporary directory of t and
// returns the binary's path.
func buildEnginekit(t *testing.T) string {
	t.Helper()
	goTool, err := exec.LookPath("go")
	if err != nil {
		t.Skip("no go tool to build the enginekit binary with")
	}
	bin := filepath.Join(t.TempDir(), "enginekit")
	cmd := exec.Command(goTool, "build", "-o", bin, "./cmd/enginekit")
	cmd.Dir = ".." // the module root: tests run in their package's directory
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("building enginekit: %v\n%s", err, out)
	}
	return bin
}

// lines collects what a process prints on one stream, line by line, and
// lets tests wait for a line.
type lines struct {
	name    string
	mu      sync.Mutex
	all     []string
	eof     bool
	changed chan struct{} // closed and replaced when a line comes or the stream ends
}

func newLines(name string) *lines { return &lines{name: name, changed: make(chan struct{})} }

func (l *lines) read(r io.Reader) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		l.mu.Lock()
		l.all = append(l.all, sc.Text())
		close(l.changed)
		l.changed = make(chan struct{})
		l.mu.Unlock()
	}
	l.mu.Lock()
	l.eof = true
	close(l.changed)
	l.changed = make(chan struct{})
	l.mu.Unlock()
}

// await waits for a line at index from or later that match accepts, and
// returns its index and the line. It fails the test after procWait or when
// the stream ends first.
func (l *lines) await(t *testing.T, from int, what string, match func(string) bool) (int, string) {
	t.Helper()
	timeout := time.NewTimer(procWait)
	defer timeout.Stop()
	for {
		l.mu.Lock()
		for i := from; i < len(l.all); i++ {
			if match(l.all[i]) {
				line := l.all[i]
				l.mu.Unlock()
				return i, line
			}
		}
		from = max(from, len(l.all))
		eof, changed := l.eof, l.changed
		l.mu.Unlock()
		if eof {
			t.Fatalf("%s ended without %s:\n%s", l.name, what, l.String())
		}
		select {
		case <-changed:
		case <-timeout.C:
			t.Fatalf("no %s from %s within %v:\n%s", what, l.name, procWait, l.String())
		}
	}
}

func (l *lines) len() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.all)
}

func (l *lines) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return strings.Join(l.all, "\n")
}

// logEvent matches a JSON log line whose fields have the given values.
func logEvent(fields ...string) func(string) bool {
	return func(line string) bool {
		var m map[string]any
		if json.Unmarshal([]byte(line), &m) != nil {
			return false
		}
		for i := 0; i+1 < len(fields); i += 2 {
			if v, _ := m[fields[i]].(string); v != fields[i+1] {
				return false
			}
		}
		return true
	}
}

// proc is a running enginekit process.
type proc struct {
	name   string
	cmd    *exec.Cmd
	stdout *lines
	stderr *lines
	done   chan struct{} // closed once the process is reaped
	err    error         // its exit, valid after done
}

// startProc runs the binary with args and env added to ours. The process
// is killed, if still running, and reaped at cleanup.
func startProc(t *testing.T, name, bin string, env []string, args ...string) *proc {
	t.Helper()
	cmd := exec.Command(bin, args...)
	cmd.Env = append(os.Environ(), env...)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	p := &proc{name: name, cmd: cmd, stdout: newLines(name + " stdout"), stderr: newLines(name + " stderr"), done: make(chan struct{})}
	var readers sync.WaitGroup
	readers.Add(2)
	go func() { defer readers.Done(); p.stdout.read(stdout) }()
	go func() { defer readers.Done(); p.stderr.read(stderr) }()
	go func() {
		readers.Wait() // Wait closes the pipes: read them to the end first
		p.err = cmd.Wait()
		close(p.done)
	}()
	t.Cleanup(func() {
		select {
		case <-p.done:
		default:
			_ = cmd.Process.Kill()
			<-p.done
		}
	})
	return p
}

// signal sends sig to the process.
func (p *proc) signal(t *testing.T, sig os.Signal) {
	t.Helper()
	if err := p.cmd.Process.Signal(sig); err != nil {
		t.Fatalf("signalling %s: %v", p.name, err)
	}
}

// wait waits for the process to exit and returns its exit code.
func (p *proc) wait(t *testing.T) int {
	t.Helper()
	select {
	case <-p.done:
	case <-time.After(procWait):
		t.Fatalf("%s did not exit within %v", p.name, procWait)
	}
	return p.cmd.ProcessState.ExitCode()
}

// nodeInfo is what `enginekit node` prints on stdout before "ready".
type nodeInfo struct {
	router  string
	listen  []string
	engines map[string]string // name -> address
	gossip  string            // the cluster gossip address, with --cluster-cert
}

// ready waits for the node's "ready" line and parses what came before it.
func (p *proc) ready(t *testing.T) nodeInfo {
	t.Helper()
	end, _ := p.stdout.await(t, 0, `"ready"`, func(l string) bool { return l == "ready" })
	info := nodeInfo{engines: map[string]string{}}
	p.stdout.mu.Lock()
	defer p.stdout.mu.Unlock()
	for _, l := range p.stdout.all[:end] {
		f := strings.Fields(l)
		switch {
		case len(f) == 2 && f[0] == "router":
			info.router = f[1]
		case len(f) == 2 && f[0] == "listen":
			info.listen = append(info.listen, f[1])
		case len(f) == 3 && f[0] == "engine":
			info.engines[f[2]] = f[1]
		case len(f) == 2 && f[0] == "gossip":
			info.gossip = f[1]
		default:
			t.Errorf("%s printed an unexpected line %q", p.name, l)
		}
	}
	return info
}

// runProc runs the binary to completion and returns its exit code and
// output.
func runProc(t *testing.T, bin string, args ...string) (code int, stdout, stderr string, took time.Duration) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), procWait)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, args...)
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	start := time.Now()
	err := cmd.Run()
	took = time.Since(start)
	if ctx.Err() != nil {
		t.Fatalf("%v did not finish within %v", args, procWait)
	}
	var exit *exec.ExitError
	if err != nil && !errors.As(err, &exit) {
		t.Fatalf("running %v: %v", args, err)
	}
	return cmd.ProcessState.ExitCode(), out.String(), errOut.String(), took
}
