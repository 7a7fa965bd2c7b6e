package test

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

// TestClusterProcs is issue 15's "done when" with the built binary: a
// cluster key made with 'enginekit cluster init', three key files each
// admitted with 'enginekit cluster admit', and three 'enginekit node'
// processes, the second and third given only the first one's gossip
// address with one --join and none given a --peer. Each node learns the
// other two nodes' engines, and each calls the others' engines through its
// relay engine ('enginekit call --via'). Then one node is killed with
// SIGKILL: the other two forget its engines and still call each other;
// a call to the killed node's engine fails. It restarts on a new port,
// joining through another node, and is called again. Finally SIGTERM stops
// all three, with exit status 0.
func TestClusterProcs(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the enginekit binary")
	}
	bin := buildEnginekit(t)
	dir := t.TempDir()
	pass := filepath.Join(dir, "pass")
	if err := os.WriteFile(pass, []byte("cluster procs passphrase\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	secret := []string{"--passphrase-file", pass, "--kdf-memory-kib", "64", "--kdf-time", "1"}
	file := func(name string) string { return filepath.Join(dir, name) }
	ok := func(args ...string) string {
		t.Helper()
		code, out, errOut, _ := runProc(t, bin, args...)
		if code != 0 {
			t.Fatalf("%v: exit %d: %s", args, code, errOut)
		}
		return out
	}

	ok(append([]string{"cluster", "init", "--key", file("cluster.key"), "--gossip-key-out", file("gossip.key")}, secret...)...)
	names := []string{"n1", "n2", "n3"}
	for _, n := range names {
		out := ok(append([]string{"keygen", "--keys", file(n + ".keys")}, secret...)...)
		router := ""
		for _, l := range strings.Split(out, "\n") {
			if r, found := strings.CutPrefix(l, "router "); found {
				router = r
			}
		}
		if router == "" {
			t.Fatalf("keygen printed %q", out)
		}
		ok("cluster", "admit", "--key", file("cluster.key"), "--passphrase-file", pass, "--router", router,
			"--name", n, "--out", file(n+".cert"))
	}

	start := func(n string, join ...string) (*proc, nodeInfo) {
		t.Helper()
		args := append([]string{"node", "--name", n, "--keys", file(n + ".keys"), "--listen", "tcp://127.0.0.1:0", "--accept", "any",
			"--engines", "echo,kv,relay", "--forget-grace", "300ms",
			"--cluster-cert", file(n + ".cert"), "--gossip-key", file("gossip.key"), "--gossip", "127.0.0.1:0"}, secret...)
		for _, j := range join {
			args = append(args, "--join", j)
		}
		p := startProc(t, n, bin, nil, args...)
		info := p.ready(t)
		if info.gossip == "" || len(info.listen) != 1 || info.engines["relay"] == "" {
			t.Fatalf("%s printed:\n%s", n, p.stdout)
		}
		return p, info
	}
	p1, i1 := start("n1")
	p2, i2 := start("n2", i1.gossip)
	p3, i3 := start("n3", i1.gossip)
	procs := []*proc{p1, p2, p3}
	infos := []nodeInfo{i1, i2, i3}

	// Every node learns every engine of the two others.
	for i, p := range procs {
		for j, other := range infos {
			if i == j {
				continue
			}
			for name, addr := range other.engines {
				p.stderr.await(t, 0, fmt.Sprintf("%s learning %s's %s", names[i], names[j], name),
					logEvent("event", "learn", "engine", addr, "peer", other.router))
			}
		}
	}

	call := func(from, to int, engine string, req ...string) (int, string, string) {
		t.Helper()
		f := infos[from]
		code, out, errOut, _ := runProc(t, bin, append([]string{"call", "--node", f.listen[0], "--router", f.router,
			"--via", f.engines["relay"], "--to", infos[to].engines[engine]}, req...)...)
		return code, out, errOut
	}
	for from := range infos {
		for to := range infos {
			if from == to {
				continue
			}
			text := fmt.Sprintf("%s to %s", names[from], names[to])
			if code, out, errOut := call(from, to, "echo", "echo", text); code != 0 || out != text+"\n" {
				t.Errorf("%s: exit %d, stdout %q, stderr %q", text, code, out, errOut)
			}
		}
	}
	if code, out, errOut := call(0, 2, "kv", "put", "colour", "blue"); code != 0 || !strings.HasPrefix(out, "colour = blue (version 1)") {
		t.Errorf("n1 putting into n3's kv: exit %d, %q, %q", code, out, errOut)
	}
	if code, out, errOut := call(1, 2, "kv", "get", "colour"); code != 0 || !strings.HasPrefix(out, "colour = blue (version 1)") {
		t.Errorf("n2 reading n3's kv: exit %d, %q, %q", code, out, errOut)
	}

	// Kill n3: n1 and n2 forget its engines, and still serve each other.
	marks := []int{p1.stderr.len(), p2.stderr.len()}
	p3.signal(t, syscall.SIGKILL)
	p3.wait(t)
	for i, p := range procs[:2] {
		for name, addr := range i3.engines {
			p.stderr.await(t, marks[i], names[i]+" forgetting n3's "+name, logEvent("event", "forget", "engine", addr))
		}
	}
	for _, pair := range [][2]int{{0, 1}, {1, 0}} {
		text := fmt.Sprintf("%s to %s without n3", names[pair[0]], names[pair[1]])
		if code, out, errOut := call(pair[0], pair[1], "echo", "echo", text); code != 0 || out != text+"\n" {
			t.Errorf("%s: exit %d, stdout %q, stderr %q", text, code, out, errOut)
		}
	}
	if code, out, errOut := call(0, 2, "echo", "echo", "anyone?"); code != 1 || out != "" || !strings.Contains(errOut, "the node knows no such engine") {
		t.Errorf("call to the killed node's engine: exit %d, stdout %q, stderr %q", code, out, errOut)
	}

	// n3 comes back from the same key file on a new port, joining through
	// n2 this time: the others learn its engines again, at the same
	// addresses, and call them at the new endpoint.
	marks = []int{p1.stderr.len(), p2.stderr.len()}
	p3again, i3again := start("n3", i2.gossip)
	if i3again.router != i3.router || i3again.engines["echo"] != i3.engines["echo"] || i3again.listen[0] == i3.listen[0] {
		t.Fatalf("n3 came back as\n%s\nafter\n%s", p3again.stdout, p3.stdout)
	}
	infos[2] = i3again
	for i, p := range procs[:2] {
		for name, addr := range i3.engines {
			p.stderr.await(t, marks[i], names[i]+" relearning n3's "+name, logEvent("event", "learn", "engine", addr, "peer", i3.router))
		}
	}
	for _, pair := range [][2]int{{0, 2}, {2, 1}} {
		text := fmt.Sprintf("%s to %s after the restart", names[pair[0]], names[pair[1]])
		if code, out, errOut := call(pair[0], pair[1], "echo", "echo", text); code != 0 || out != text+"\n" {
			t.Errorf("%s: exit %d, stdout %q, stderr %q", text, code, out, errOut)
		}
	}

	for _, p := range []*proc{p1, p2, p3again} {
		p.signal(t, syscall.SIGTERM)
		if code := p.wait(t); code != 0 {
			t.Errorf("%s exited %d after SIGTERM:\n%s", p.name, code, p.stderr)
		}
	}
}
