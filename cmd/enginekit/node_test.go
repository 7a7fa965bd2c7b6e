package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/enginekit/enginekit/keyholder"
)

// syncBuffer is a bytes.Buffer safe for concurrent writers, which can
// wait for what they write.
type syncBuffer struct {
	mu      sync.Mutex
	b       bytes.Buffer
	changed chan struct{} // closed and replaced on every write
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.changed != nil {
		close(s.changed)
		s.changed = nil
	}
	return s.b.Write(p)
}

// waitFor waits until the buffer contains substr.
func (s *syncBuffer) waitFor(t *testing.T, substr string) {
	t.Helper()
	timeout := time.NewTimer(30 * time.Second)
	defer timeout.Stop()
	for {
		s.mu.Lock()
		if strings.Contains(s.b.String(), substr) {
			s.mu.Unlock()
			return
		}
		if s.changed == nil {
			s.changed = make(chan struct{})
		}
		changed := s.changed
		s.mu.Unlock()
		select {
		case <-changed:
		case <-timeout.C:
			t.Fatalf("no %q within 30s in:\n%s", substr, s)
		}
	}
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// passFile writes testPass to a file in dir and returns the flag for it.
func passFile(t *testing.T, dir string) []string {
	t.Helper()
	p := filepath.Join(dir, "pass")
	if err := os.WriteFile(p, []byte(testPass+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return []string{"--passphrase-file", p}
}

// testNode is `enginekit node` running in this process.
type testNode struct {
	router  string
	listen  []string
	admin   string            // the admin server's URL, with --admin
	gossip  string            // the cluster gossip address, with --cluster-cert
	engines map[string]string // name -> address
	stdout  []string          // what it printed, "ready" included
	stderr  *syncBuffer
	cancel  context.CancelFunc
	done    chan int
	stopped bool
}

// startNode runs the node command with args and returns once it printed
// "ready". The node is stopped (as by SIGINT) at cleanup, and must exit 0.
func startNode(t *testing.T, args ...string) *testNode {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	pr, pw := io.Pipe()
	n := &testNode{engines: map[string]string{}, stderr: &syncBuffer{}, cancel: cancel, done: make(chan int, 1)}
	go func() {
		code := run(ctx, append([]string{"node"}, args...), pw, n.stderr)
		pw.Close()
		n.done <- code
	}()
	lines := make(chan string)
	drained := make(chan struct{})
	go func() {
		defer close(drained)
		defer close(lines)
		sc := bufio.NewScanner(pr)
		for sc.Scan() {
			lines <- sc.Text()
		}
	}()
	t.Cleanup(func() {
		n.stop(t)
		<-drained
	})
	timeout := time.NewTimer(30 * time.Second)
	defer timeout.Stop()
	for {
		select {
		case l, ok := <-lines:
			if !ok {
				code := <-n.done
				n.done <- code
				t.Fatalf("node exited %d before it was ready; stderr:\n%s", code, n.stderr)
			}
			n.stdout = append(n.stdout, l)
			f := strings.Fields(l)
			switch {
			case l == "ready":
				go func() { // keep draining, so the node never blocks on stdout
					for range lines {
					}
				}()
				return n
			case len(f) == 2 && f[0] == "router":
				n.router = f[1]
			case len(f) == 2 && f[0] == "listen":
				n.listen = append(n.listen, f[1])
			case len(f) == 3 && f[0] == "engine":
				n.engines[f[2]] = f[1]
			case len(f) == 2 && f[0] == "admin":
				n.admin = f[1]
			case len(f) == 2 && f[0] == "gossip":
				n.gossip = f[1]
			default:
				t.Fatalf("node printed an unexpected line %q", l)
			}
		case <-timeout.C:
			t.Fatalf("node not ready after 30s; stderr:\n%s", n.stderr)
		}
	}
}

// stop stops the node as SIGINT does and checks that it exited 0.
func (n *testNode) stop(t *testing.T) {
	t.Helper()
	if n.stopped {
		return
	}
	n.stopped = true
	n.cancel()
	select {
	case code := <-n.done:
		if code != 0 {
			t.Errorf("node exited %d; stderr:\n%s", code, n.stderr)
		}
	case <-time.After(30 * time.Second):
		t.Fatalf("node did not stop within 30s; stderr:\n%s", n.stderr)
	}
}

// nodeArgs are the flags every test node gets: a key file in dir, the
// passphrase file and a fast KDF.
func nodeArgs(t *testing.T, dir, keys string) []string {
	args := append([]string{"--keys", filepath.Join(dir, keys)}, passFile(t, dir)...)
	return append(args, fastKDF...)
}

// call runs `enginekit call` (or cast) against node n's engine.
func (n *testNode) cmd(t *testing.T, verb, endpoint, engine string, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	to := engine
	if a, ok := n.engines[engine]; ok {
		to = a
	}
	return runCmd(t, append([]string{verb, "--node", endpoint, "--router", n.router, "--to", to}, args...)...)
}

func TestNodeCallCast(t *testing.T) {
	dir := t.TempDir()
	sock := filepath.Join(dir, "a.sock")
	n := startNode(t, append(nodeArgs(t, dir, "a.keys"),
		"--listen", "tcp://127.0.0.1:0", "--listen", "unix://"+sock, "--accept", "any", "--auth", "macs")...)

	// The printed block: router, listeners, engines, ready.
	if len(n.stdout) != 6 || !strings.HasPrefix(n.stdout[0], "router ek1") || n.stdout[5] != "ready" {
		t.Errorf("node printed:\n%s", strings.Join(n.stdout, "\n"))
	}
	if len(n.listen) != 2 || n.listen[1] != "unix://"+sock || strings.HasSuffix(n.listen[0], ":0") {
		t.Errorf("listeners %q", n.listen)
	}
	if len(n.engines) != 2 || n.engines["echo"] == "" || n.engines["kv"] == "" {
		t.Fatalf("engines %v", n.engines)
	}
	kh := loadKeys(t, filepath.Join(dir, "a.keys"))
	if n.router != kh.Router().String() {
		t.Errorf("printed router %s, key file has %s", n.router, kh.Router())
	}
	for name, addr := range n.engines {
		if a, ok := kh.Engine(name); !ok || a.String() != addr {
			t.Errorf("engine %s printed as %s, key file has %v", name, addr, a)
		}
	}

	for _, ep := range n.listen {
		t.Run(strings.SplitN(ep, ":", 2)[0], func(t *testing.T) {
			call := func(engine string, args ...string) string {
				t.Helper()
				code, out, errOut := n.cmd(t, "call", ep, engine, append([]string{"--auth", "macs"}, args...)...)
				if code != 0 || errOut != "" {
					t.Fatalf("call %v: exit %d, stderr %q", args, code, errOut)
				}
				return out
			}
			if got := call("echo", "echo", "hello, world"); got != "hello, world\n" {
				t.Errorf("echo printed %q", got)
			}
			if got := call("echo", "--json", "echo", "--", "-x"); got != `{"text":"-x"}`+"\n" {
				t.Errorf("echo --json printed %q", got)
			}
			key := "k-" + ep[:3]
			if got := call("kv", "put", key, "v 1"); !strings.HasPrefix(got, key+" = v 1 (version ") {
				t.Errorf("put printed %q", got)
			}
			var e entryJSON
			if err := json.Unmarshal([]byte(call("kv", "get", key, "--json")), &e); err != nil || !e.Found || e.Value == nil || *e.Value != "v 1" || e.Key != key {
				t.Errorf("get --json: %+v, %v", e, err)
			}
			if got := call("kv", "get", "missing"); got != "missing not found\n" {
				t.Errorf("get missing printed %q", got)
			}
			if got := call("kv", "delete", key); !strings.HasPrefix(got, key+" deleted (version ") {
				t.Errorf("delete printed %q", got)
			}

			// A deferred reply: get --wait answers once the key is put.
			waited := make(chan string, 1)
			go func() {
				_, out, errOut := n.cmd(t, "call", ep, "kv", "--auth", "macs", "--timeout", "20s", "get", "--wait", "later-"+ep[:3])
				waited <- out + errOut
			}()
			call("kv", "put", "later-"+ep[:3], "now")
			if got := <-waited; !strings.HasPrefix(got, "later-"+ep[:3]+" = now (version ") {
				t.Errorf("get --wait printed %q", got)
			}
		})
	}

	// Casts are in the engine's mailbox when cast returns: a count sent
	// afterwards sees them.
	tcp := n.listen[0]
	for _, args := range [][]string{{"echo", "one"}, {"--json", "echo", "two"}} {
		code, out, errOut := n.cmd(t, "cast", tcp, "echo", append([]string{"--auth", "macs"}, args...)...)
		want := "sent\n"
		if args[0] == "--json" {
			want = `{"sent":true}` + "\n"
		}
		if code != 0 || out != want {
			t.Errorf("cast %v: exit %d, stdout %q, stderr %q", args, code, out, errOut)
		}
	}
	code, out, errOut := n.cmd(t, "call", tcp, "echo", "--auth", "macs", "count")
	if code != 0 || out != "2\n" {
		t.Errorf("count: exit %d, stdout %q, stderr %q", code, out, errOut)
	}

	// Failures: one line, exit 1, and fast where they can be.
	other := newAddress(t)
	for _, tc := range []struct {
		name string
		args []string
		want string
	}{
		{"no such engine", []string{"call", "--node", tcp, "--router", n.router, "--to", other, "--auth", "macs", "echo", "x"}, "no such engine"},
		{"cast to no such engine", []string{"cast", "--node", tcp, "--router", n.router, "--to", other, "--auth", "macs", "echo", "x"}, "no such engine"},
		{"wrong router", []string{"call", "--node", tcp, "--router", other, "--to", n.engines["echo"], "--auth", "macs", "echo", "x"}, "wrong --router"},
		{"wrong auth", []string{"call", "--node", tcp, "--router", n.router, "--to", n.engines["echo"], "echo", "x"}, "--auth"},
		{"wrong engine kind", []string{"call", "--node", tcp, "--router", n.router, "--to", n.engines["kv"], "--auth", "macs", "count"}, "unknown request"},
		{"unreachable", []string{"call", "--node", closedPort(t), "--router", n.router, "--to", n.engines["echo"], "echo", "x"}, "cannot reach"},
		{"no socket", []string{"call", "--node", "unix://" + filepath.Join(dir, "none.sock"), "--router", n.router, "--to", n.engines["echo"], "echo", "x"}, "cannot reach"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			start := time.Now()
			code, out, errOut := runCmd(t, append(tc.args, "--timeout", "30s")...)
			if code != 1 || out != "" || !strings.Contains(errOut, tc.want) {
				t.Errorf("exit %d, stdout %q, stderr %q; want exit 1 and %q", code, out, errOut, tc.want)
			}
			oneLine(t, errOut)
			if d := time.Since(start); d > 10*time.Second {
				t.Errorf("took %v: not failing fast", d)
			}
		})
	}

	n.stop(t)
	logs := n.stderr.String()
	for _, want := range []string{`"event":"shutdown"`, `"event":"stopped"`} {
		if !strings.Contains(logs, want) {
			t.Errorf("node log lacks %s:\n%s", want, logs)
		}
	}
	// The one-shot clients' connections are logged at debug only
	// (docs/operations.md, "Connection logs").
	for _, quiet := range []string{`"event":"up"`, `"event":"down"`} {
		if strings.Contains(logs, quiet) {
			t.Errorf("node log at info has %s of a one-shot client:\n%s", quiet, logs)
		}
	}
	if _, err := os.Stat(sock); !os.IsNotExist(err) {
		t.Errorf("the socket file is left behind: %v", err)
	}
}

func TestNodeAcceptPolicy(t *testing.T) {
	dir := t.TempDir()
	a := startNode(t, append(nodeArgs(t, dir, "a.keys"), "--listen", "tcp://127.0.0.1:0", "--accept", "any", "--engines", "echo")...)
	// b admits only a (by --accept), and dials it.
	b := startNode(t, append(nodeArgs(t, dir, "b.keys"), "--listen", "tcp://127.0.0.1:0",
		"--accept", a.router, "--peer", a.listen[0]+"="+a.router, "--engines", "kv")...)
	a.stderr.waitFor(t, `"event":"learn","engine":"`+b.engines["kv"])
	b.stderr.waitFor(t, `"event":"learn","engine":"`+a.engines["echo"])
	code, _, errOut := b.cmd(t, "call", b.listen[0], "kv", "get", "x")
	if code != 1 || !strings.Contains(errOut, "refused") || !strings.Contains(errOut, "--accept") {
		t.Errorf("call to a node that does not admit us: exit %d, stderr %q", code, errOut)
	}
	oneLine(t, errOut)
	// a still serves the CLI, and b's dial of a is in a's log.
	if code, out, errOut := a.cmd(t, "call", a.listen[0], "echo", "echo", "hi"); code != 0 || out != "hi\n" {
		t.Errorf("call a: exit %d, %q, %q", code, out, errOut)
	}
	// b says goodbye: a forgets b's engine at once, without waiting for
	// the grace period (5s by default).
	b.stop(t)
	a.stderr.waitFor(t, `"event":"forget","engine":"`+b.engines["kv"])
}

func TestNodeKeepsIdentities(t *testing.T) {
	dir := t.TempDir()
	first := startNode(t, append(nodeArgs(t, dir, "n.keys"), "--engines", "echo")...)
	first.stop(t)
	if !strings.Contains(first.stderr.String(), "created the key file") {
		t.Errorf("no word of creating the key file:\n%s", first.stderr)
	}
	// A second run adds kv to the file and keeps echo and the router.
	second := startNode(t, append(nodeArgs(t, dir, "n.keys"), "--engines", "echo,kv")...)
	second.stop(t)
	third := startNode(t, append(nodeArgs(t, dir, "n.keys"), "--engines", "kv,echo")...)
	third.stop(t)
	if first.router != second.router || second.router != third.router {
		t.Errorf("routers %s, %s, %s", first.router, second.router, third.router)
	}
	if first.engines["echo"] != second.engines["echo"] || second.engines["echo"] != third.engines["echo"] || second.engines["kv"] != third.engines["kv"] {
		t.Errorf("engines %v, %v, %v", first.engines, second.engines, third.engines)
	}
}

func TestNodeStaleSocket(t *testing.T) {
	dir := t.TempDir()
	sock := filepath.Join(dir, "n.sock")
	// A socket file nobody listens on, as a killed node leaves behind.
	ln, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	ln.(*net.UnixListener).SetUnlinkOnClose(false)
	ln.Close()
	n := startNode(t, append(nodeArgs(t, dir, "n.keys"), "--listen", "unix://"+sock, "--accept", "any")...)
	if code, out, errOut := n.cmd(t, "call", n.listen[0], "echo", "echo", "hi"); code != 0 || out != "hi\n" {
		t.Errorf("call: exit %d, %q, %q", code, out, errOut)
	}
}

// TestNodeErrors: what goes wrong at start-up is one line and exit 1.
func TestNodeErrors(t *testing.T) {
	dir := t.TempDir()
	base := nodeArgs(t, dir, "good.keys")
	// Make the key file.
	startNode(t, base...).stop(t)

	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	liveSock := filepath.Join(dir, "live.sock")
	live, err := net.Listen("unix", liveSock)
	if err != nil {
		t.Fatal(err)
	}
	defer live.Close()

	wrongPass := filepath.Join(dir, "wrong")
	must(t, os.WriteFile(wrongPass, []byte("not the passphrase\n"), 0o600))
	corrupt := filepath.Join(dir, "corrupt.keys")
	must(t, os.WriteFile(corrupt, []byte("this is no key file"), 0o600))
	open := filepath.Join(dir, "open.keys")
	data, err := os.ReadFile(filepath.Join(dir, "good.keys"))
	must(t, err)
	must(t, os.WriteFile(open, data, 0o644))
	must(t, os.Chmod(open, 0o644))
	router := newAddress(t)

	for _, tc := range []struct {
		name string
		args []string
		want string
	}{
		{"busy port", append(base, "--listen", "tcp://"+busy.Addr().String(), "--accept", "any"), "address already in use"},
		{"busy socket", append(base, "--listen", "unix://"+liveSock, "--accept", "any"), "address already in use"},
		{"unreachable peer", append(base, "--peer", closedPort(t)+"="+router), "unreachable"},
		{"missing peer socket", append(base, "--peer", "unix://"+filepath.Join(dir, "none.sock")+"="+router), "unreachable"},
		{"wrong passphrase", []string{"--keys", filepath.Join(dir, "good.keys"), "--passphrase-file", wrongPass}, "wrong passphrase"},
		{"corrupt key file", []string{"--keys", corrupt, "--passphrase-file", wrongPass}, "corrupt key file"},
		{"key file open to others", []string{"--keys", open, "--passphrase-file", wrongPass}, "chmod 600"},
		{"key file is a directory", []string{"--keys", dir, "--passphrase-file", wrongPass}, "not a regular file"},
		{"no passphrase file", []string{"--keys", filepath.Join(dir, "good.keys"), "--passphrase-file", filepath.Join(dir, "nope")}, "passphrase"},
		{"key file in a missing directory", append([]string{"--keys", filepath.Join(dir, "no", "such", "dir", "k.keys")}, base[2:]...), "no such file or directory"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, out, errOut := runCmd(t, append([]string{"node"}, tc.args...)...)
			if code != 1 || out != "" || !strings.Contains(errOut, tc.want) {
				t.Errorf("exit %d, stdout %q, stderr %q; want exit 1 and %q", code, out, errOut, tc.want)
			}
			oneLine(t, lastLine(errOut))
			if strings.Contains(errOut, "panic") || strings.Contains(errOut, "goroutine ") {
				t.Errorf("stack trace in %q", errOut)
			}
		})
	}
}

// A busy port on a first run is found before any engine starts and before
// the key file is created.
func TestNodeBusyPortFirstRun(t *testing.T) {
	dir := t.TempDir()
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	args := append([]string{"node", "--listen", "tcp://" + busy.Addr().String(), "--accept", "any"}, nodeArgs(t, dir, "new.keys")...)
	code, out, errOut := runCmd(t, args...)
	if code != 1 || out != "" || !strings.Contains(errOut, "address already in use") {
		t.Fatalf("exit %d, stdout %q, stderr %q", code, out, errOut)
	}
	if strings.Contains(errOut, "child started") || strings.Contains(errOut, "key file") {
		t.Errorf("engines started or key file written before the busy port was found:\n%s", errOut)
	}
	if _, err := os.Lstat(filepath.Join(dir, "new.keys")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("key file left behind: %v", err)
	}
}

// An endpoint without a scheme gets an error that shows the form wanted,
// with the value put in it.
func TestEndpointWithoutScheme(t *testing.T) {
	a := newAddress(t)
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"call", "--node", "127.0.0.1:7001", "--router", a, "--to", a, "echo", "x"}, "did you mean tcp://127.0.0.1:7001?"},
		{[]string{"cast", "--node", "127.0.0.1:7001", "--router", a, "--to", a, "echo", "x"}, "did you mean tcp://127.0.0.1:7001?"},
		{[]string{"node", "--keys", "k", "--listen", "/run/a.sock", "--accept", "any"}, "unix:///run/a.sock"},
		{[]string{"node", "--keys", "k", "--peer", "localhost:7001=" + a}, "did you mean tcp://localhost:7001?"},
	} {
		code, out, errOut := runCmd(t, tc.args...)
		if code != 2 || out != "" || !strings.Contains(errOut, "want tcp://HOST:PORT or unix:///path/to.sock") || !strings.Contains(errOut, tc.want) {
			t.Errorf("%q: exit %d, stderr %q; want exit 2 naming the form and %q", tc.args, code, errOut, tc.want)
		}
		oneLine(t, errOut)
	}
}

// --admin runs the node's admin server and prints its URL; ps reads it.
func TestNodeAdmin(t *testing.T) {
	dir := t.TempDir()
	n := startNode(t, append(nodeArgs(t, dir, "a.keys"), "--admin", "127.0.0.1:0")...)
	if !strings.HasPrefix(n.admin, "http://127.0.0.1:") {
		t.Fatalf("admin line: %q", n.admin)
	}
	code, out, errOut := runCmd(t, "ps", "--admin", n.admin)
	if code != 0 || !strings.Contains(out, "engines/echo") {
		t.Fatalf("ps: exit %d, stdout:\n%s\nstderr: %s", code, out, errOut)
	}
	code, _, errOut = runCmd(t, append([]string{"node", "--admin", "0.0.0.0:0"}, nodeArgs(t, dir, "b.keys")...)...)
	if code != 2 || !strings.Contains(errOut, "loopback") {
		t.Fatalf("non-loopback admin: exit %d, stderr %q", code, errOut)
	}
}

// lastLine is the error line after any log lines the node wrote first.
func lastLine(s string) string {
	lines := strings.Split(strings.TrimSuffix(s, "\n"), "\n")
	return lines[len(lines)-1] + "\n"
}

func TestNodeCallBadFlags(t *testing.T) {
	a := newAddress(t)
	call := []string{"call", "--node", "tcp://127.0.0.1:1", "--router", a, "--to", a}
	cast := []string{"cast", "--node", "tcp://127.0.0.1:1", "--router", a, "--to", a}
	for _, args := range [][]string{
		{"node"}, // --keys is required
		{"node", "--keys", "k", "--nosuchflag"},
		{"node", "--keys", "k", "extra"},
		{"node", "--keys", "k", "--engines", "echo,nosuch"},
		{"node", "--keys", "k", "--engines", "echo,echo"},
		{"node", "--keys", "k", "--listen", "ftp://x"},
		{"node", "--keys", "k", "--listen", "tcp://127.0.0.1:0"}, // admits no one
		{"node", "--keys", "k", "--peer", "tcp://127.0.0.1:1"},
		{"node", "--keys", "k", "--peer", "tcp://127.0.0.1:1=ek1nope"},
		{"node", "--keys", "k", "--accept", "someone"},
		{"node", "--keys", "k", "--accept", "any," + a},
		{"node", "--keys", "k", "--auth", "rsa"},
		{"node", "--keys", "k", "--log-level", "loud"},
		{"node", "--keys", "k", "--forget-grace", "-1s"},
		{"node", "--keys", "k", "--forget-grace", "soon"},
		{"call"},
		{"call", "--node", "tcp://127.0.0.1:1", "--router", a, "echo", "x"}, // no --to
		{"call", "--node", "nowhere", "--router", a, "--to", a, "echo", "x"},
		{"call", "--node", "tcp://127.0.0.1:1", "--router", "ek1", "--to", a, "echo", "x"},
		{"call", "--node", "tcp://127.0.0.1:1", "--router", a, "--to", "x", "echo", "x"},
		call[:7:7],                              // no request
		append(call[:7:7], "shout", "x"),        // no such request
		append(call[:7:7], "echo"),              // echo needs TEXT
		append(call[:7:7], "echo", "a", "b"),    // one TEXT
		append(call[:7:7], "put", "k"),          // put needs VALUE
		append(call[:7:7], "count", "--wait"),   // --wait is for get
		append(call[:7:7], "get", "k", "--bad"), // unknown flag after the request
		append(call[:7:7], "--timeout", "0s", "count"),
		append(call[:7:7], "--auth", "none", "count"),
		append(cast[:7:7], "get", "k"), // cast sends echo only
		append(cast[:7:7], "echo", "x", "--wait"),
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

func TestParseInterleaved(t *testing.T) {
	for _, tc := range []struct {
		args []string
		pos  string
		wait bool
	}{
		{[]string{"get", "k", "--wait"}, "get k", true},
		{[]string{"--wait", "get", "k"}, "get k", true},
		{[]string{"get", "--", "--wait"}, "get --wait", false},
		{[]string{"echo", "-"}, "echo -", false},
	} {
		fs := newFlags("t", "t", io.Discard)
		wait := fs.Bool("wait", false, "")
		pos, err := parseInterleaved(fs, tc.args)
		if err != nil || strings.Join(pos, " ") != tc.pos || *wait != tc.wait {
			t.Errorf("%q: %q, wait %v, %v", tc.args, pos, *wait, err)
		}
	}
}

func TestPrintable(t *testing.T) {
	for in, want := range map[string]string{
		"hello world": "hello world",
		"":            `""`,
		" padded":     `" padded"`,
		"tab\there":   `"tab\there"`,
		"\xff":        `"\xff"`,
		"héllo":       "héllo",
	} {
		if got := printable(in); got != want {
			t.Errorf("printable(%q) = %s, want %s", in, got, want)
		}
	}
}

// newAddress returns the address of a fresh engine nobody runs.
func newAddress(t *testing.T) string {
	t.Helper()
	kh, err := keyholder.New(keyholder.Config{})
	must(t, err)
	defer kh.Close()
	a, err := kh.NewEngine("nobody")
	must(t, err)
	return a.String()
}

// closedPort returns a TCP endpoint nothing listens on.
func closedPort(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	must(t, err)
	addr := ln.Addr().String()
	ln.Close()
	return "tcp://" + addr
}

func loadKeys(t *testing.T, path string) *keyholder.Keyholder {
	t.Helper()
	kh, err := keyholder.Load(path, []byte(testPass))
	must(t, err)
	t.Cleanup(func() { kh.Close() })
	return kh
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// The ordering engine from the command line: submit (called and cast) and
// read, including a read started before its transaction is ordered. (That
// the read is deferred rather than late is pinned by examples/ordering's
// own tests; here both orders must print the same.)
func TestNodeOrdering(t *testing.T) {
	dir := t.TempDir()
	n := startNode(t, append(nodeArgs(t, dir, "a.keys"),
		"--listen", "tcp://127.0.0.1:0", "--accept", "any", "--engines", "ordering")...)
	ep := n.listen[0]
	read := make(chan string, 1)
	go func() {
		code, out, errOut := n.cmd(t, "call", ep, "ordering", "read", "tx-1", "--timeout", "30s")
		read <- fmt.Sprintf("%d %s%s", code, out, errOut)
	}()
	if code, out, errOut := n.cmd(t, "call", ep, "ordering", "submit", "tx-1", "pay bob 5"); code != 0 || out != "height 1\n" {
		t.Fatalf("submit: exit %d, %q %q", code, out, errOut)
	}
	if got := <-read; got != "0 tx-1 at height 1: pay bob 5\n" {
		t.Fatalf("read printed %q", got)
	}
	if code, out, errOut := n.cmd(t, "cast", ep, "ordering", "submit", "tx-2", "pay carol 7"); code != 0 || out != "sent\n" {
		t.Fatalf("cast submit: exit %d, %q %q", code, out, errOut)
	}
	if code, out, errOut := n.cmd(t, "call", ep, "ordering", "read", "tx-2", "--json"); code != 0 || out != `{"txid":"tx-2","height":2,"data":"pay carol 7"}`+"\n" {
		t.Fatalf("read --json: exit %d, %q %q", code, out, errOut)
	}
}
