package test

import (
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestProcs runs the enginekit binary as separate OS processes: two nodes,
// a and b (b dials a), and one-shot `enginekit call` and `cast` processes,
// over TCP and over a Unix socket. It kills a with SIGKILL, checks that b
// forgets a's engines after the grace period and that calls to a fail
// fast, restarts a from the same key file (same addresses, relearned by b,
// calls work again), and finally stops both nodes with SIGTERM.
func TestProcs(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the enginekit binary")
	}
	bin := buildEnginekit(t)
	for _, tc := range []struct {
		network string
		auth    string
	}{{"tcp", "signatures"}, {"unix", "macs"}} {
		t.Run(tc.network+"/"+tc.auth, func(t *testing.T) {
			t.Parallel()
			procsScenario(t, bin, tc.network, tc.auth)
		})
	}
}

func procsScenario(t *testing.T, bin, network, auth string) {
	dir := t.TempDir()
	env := []string{"ENGINEKIT_PASSPHRASE=procs test passphrase"}
	fastKDF := []string{"--kdf-memory-kib", "64", "--kdf-time", "1"}
	listenA := "tcp://127.0.0.1:0"
	if network == "unix" {
		listenA = "unix://" + filepath.Join(dir, "a.sock")
	}
	// a keeps foreign engines long (1m), so that forgetting b's engines
	// at the end can only come from b's farewell; b forgets a's quickly.
	nodeA := func(name, listen string) *proc {
		args := append([]string{"node", "--name", "a", "--keys", filepath.Join(dir, "a.keys"),
			"--listen", listen, "--accept", "any", "--auth", auth, "--engines", "echo,kv", "--forget-grace", "1m"}, fastKDF...)
		return startProc(t, name, bin, env, args...)
	}

	a := nodeA("a", listenA)
	infoA := a.ready(t)
	if len(infoA.listen) != 1 || infoA.engines["echo"] == "" || infoA.engines["kv"] == "" {
		t.Fatalf("a printed:\n%s", a.stdout)
	}
	endpointA := infoA.listen[0] // the real port when asked for port 0

	b := startProc(t, "b", bin, env, append([]string{"node", "--name", "b", "--keys", filepath.Join(dir, "b.keys"),
		"--peer", endpointA + "=" + infoA.router, "--auth", auth, "--engines", "echo",
		"--forget-grace", "300ms", "--redial-max", "200ms"}, fastKDF...)...)
	infoB := b.ready(t)

	// b learns a's engines and a learns b's, over b's connection.
	for _, name := range []string{"echo", "kv"} {
		b.stderr.await(t, 0, "b learning a's "+name, logEvent("event", "learn", "engine", infoA.engines[name], "peer", infoA.router))
	}
	a.stderr.await(t, 0, "a learning b's echo", logEvent("event", "learn", "engine", infoB.engines["echo"], "peer", infoB.router))

	// A third process calls a's engines.
	call := func(verb, engine string, args ...string) (int, string, string, time.Duration) {
		t.Helper()
		return runProc(t, bin, append([]string{verb, "--node", endpointA, "--router", infoA.router,
			"--to", infoA.engines[engine], "--auth", auth}, args...)...)
	}
	ok := func(verb, engine string, args ...string) string {
		t.Helper()
		code, out, errOut, _ := call(verb, engine, args...)
		if code != 0 {
			t.Fatalf("%s %v: exit %d: %s", verb, args, code, errOut)
		}
		return out
	}
	if got := ok("call", "echo", "echo", "hello from a third process"); got != "hello from a third process\n" {
		t.Errorf("echo printed %q", got)
	}
	if got := ok("call", "kv", "put", "colour", "blue"); !strings.HasPrefix(got, "colour = blue (version ") {
		t.Errorf("put printed %q", got)
	}
	if got := ok("call", "kv", "get", "colour"); !strings.HasPrefix(got, "colour = blue (version ") {
		t.Errorf("get printed %q", got)
	}
	if got := ok("cast", "echo", "echo", "counted"); got != "sent\n" {
		t.Errorf("cast printed %q", got)
	}
	if got := ok("call", "echo", "count"); got != "1\n" {
		t.Errorf("count after one cast printed %q", got)
	}

	// A deferred reply across processes: Get{Wait} on a missing key does
	// not answer (the call times out), and answers once another process
	// puts the key.
	if code, _, errOut, _ := call("call", "kv", "--timeout", "1s", "get", "--wait", "nothing"); code != 1 || !strings.Contains(errOut, "timed out") {
		t.Errorf("get --wait on a missing key: exit %d, %q", code, errOut)
	}
	waiter := startProc(t, "waiter", bin, nil, "call", "--node", endpointA, "--router", infoA.router,
		"--to", infoA.engines["kv"], "--auth", auth, "--timeout", "20s", "get", "--wait", "later")
	ok("call", "kv", "put", "later", "here")
	waiter.stdout.await(t, 0, "the deferred reply", func(l string) bool { return strings.HasPrefix(l, "later = here (version ") })
	if code := waiter.wait(t); code != 0 {
		t.Errorf("waiting get exited %d: %s", code, waiter.stderr)
	}

	// Kill a. b sees the connection go down and, after its grace period,
	// forgets a's engines; calls to a fail fast.
	mark := b.stderr.len()
	a.signal(t, syscall.SIGKILL)
	a.wait(t)
	b.stderr.await(t, mark, "b's connection to a going down", logEvent("event", "down", "peer", infoA.router))
	for _, name := range []string{"echo", "kv"} {
		b.stderr.await(t, mark, "b forgetting a's "+name, logEvent("event", "forget", "engine", infoA.engines[name]))
	}
	code, out, errOut, took := call("call", "echo", "echo", "anyone?")
	if code != 1 || out != "" || !strings.Contains(errOut, "cannot reach") || strings.Count(errOut, "\n") != 1 {
		t.Errorf("call to the killed node: exit %d, stdout %q, stderr %q", code, out, errOut)
	}
	if took > 5*time.Second {
		t.Errorf("call to the killed node took %v", took)
	}

	// Restart a from the same key file, at the same endpoint (a killed
	// node leaves its Unix socket file behind; the node clears it).
	mark = b.stderr.len()
	a2 := nodeA("a again", endpointA)
	infoA2 := a2.ready(t)
	if infoA2.router != infoA.router || infoA2.engines["echo"] != infoA.engines["echo"] || infoA2.engines["kv"] != infoA.engines["kv"] {
		t.Errorf("a came back as\n%s\nnot\n%s", a2.stdout, a.stdout)
	}
	if !slices.Equal(infoA2.listen, []string{endpointA}) {
		t.Errorf("a listens at %q, want %s", infoA2.listen, endpointA)
	}
	for _, name := range []string{"echo", "kv"} {
		b.stderr.await(t, mark, "b relearning a's "+name, logEvent("event", "learn", "engine", infoA.engines[name], "peer", infoA.router))
	}
	if got := ok("call", "echo", "echo", "back"); got != "back\n" {
		t.Errorf("echo after the restart printed %q", got)
	}
	// The kv engine keeps its snapshots in memory: a new node process
	// starts empty.
	if got := ok("call", "kv", "get", "colour"); got != "colour not found\n" {
		t.Errorf("get after the restart printed %q", got)
	}

	// SIGTERM: b stops its engines (a is told to forget them at once, long
	// before a's one-minute grace), closes its connection and exits 0.
	mark = a2.stderr.len()
	b.signal(t, syscall.SIGTERM)
	if code := b.wait(t); code != 0 {
		t.Errorf("b exited %d after SIGTERM:\n%s", code, b.stderr)
	}
	a2.stderr.await(t, mark, "a forgetting b's echo", logEvent("event", "forget", "engine", infoB.engines["echo"]))
	order := []string{`"event":"shutdown"`, `"engines stopped"`, `"event":"down"`, `"event":"stopped"`}
	logs, at := b.stderr.String(), 0
	for _, want := range order {
		i := strings.Index(logs[at:], want)
		if i < 0 {
			t.Fatalf("b's log lacks %s after offset %d (want %v in order):\n%s", want, at, order, logs)
		}
		at += i
	}
	a2.signal(t, syscall.SIGINT)
	if code := a2.wait(t); code != 0 {
		t.Errorf("a exited %d after SIGINT:\n%s", code, a2.stderr)
	}
}
