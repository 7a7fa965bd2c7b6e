package main

import (
	"net"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/enginekit/enginekit/cluster"
	"github.com/enginekit/enginekit/keyholder"
)

// clusterFiles makes a cluster in dir: its gossip key file, and for each
// name a key file (made with keygen) and a certificate for its router.
// It returns the gossip key's path; the files of name are name.keys and
// name.cert.
func clusterFiles(t *testing.T, dir string, auth *cluster.Authority, names ...string) string {
	t.Helper()
	t.Setenv(passphraseEnv, testPass)
	gossip := filepath.Join(dir, "gossip.key")
	gk, err := auth.GossipKey()
	must(t, err)
	must(t, cluster.WriteGossipKeyFile(gossip, gk))
	for _, name := range names {
		code, out, errOut := runCmd(t, append([]string{"keygen", "--keys", filepath.Join(dir, name+".keys")}, fastKDF...)...)
		if code != 0 {
			t.Fatalf("keygen: %s", errOut)
		}
		var router keyholder.Address
		for _, l := range strings.Split(out, "\n") {
			if r, ok := strings.CutPrefix(l, "router "); ok {
				router, err = keyholder.ParseAddress(r)
				must(t, err)
			}
		}
		c, err := auth.Issue(router, name, time.Now(), time.Hour)
		must(t, err)
		must(t, cluster.WriteCertFile(filepath.Join(dir, name+".cert"), c))
	}
	return gossip
}

// TestNodeCluster: two nodes started with --cluster-cert, the second with
// one --join and neither with --peer, find each other; each node's relay
// engine calls the other node's engines ('enginekit call --via').
func TestNodeCluster(t *testing.T) {
	dir := t.TempDir()
	auth, err := cluster.NewAuthority(nil)
	must(t, err)
	defer auth.Close()
	gossip := clusterFiles(t, dir, auth, "a", "b")
	member := func(name string, extra ...string) *testNode {
		args := append(nodeArgs(t, dir, name+".keys"), "--listen", "tcp://127.0.0.1:0", "--accept", "any",
			"--engines", "echo,kv,relay", "--cluster-cert", filepath.Join(dir, name+".cert"),
			"--gossip-key", gossip, "--gossip", "127.0.0.1:0")
		return startNode(t, append(args, extra...)...)
	}
	a := member("a")
	if a.gossip == "" || strings.HasSuffix(a.gossip, ":0") {
		t.Fatalf("a printed gossip %q", a.gossip)
	}
	b := member("b", "--join", a.gossip)

	relayTo := func(from, to *testNode, engine string, req ...string) (int, string, string) {
		t.Helper()
		return runCmd(t, append([]string{"call", "--node", from.listen[0], "--router", from.router,
			"--via", from.engines["relay"], "--to", to.engines[engine]}, req...)...)
	}
	// b learns a's engines once the mesh connects them; poll with the
	// relay until it does (a call to an engine not yet learned fails).
	deadline := time.Now().Add(20 * time.Second)
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for {
		code, out, errOut := relayTo(b, a, "echo", "echo", "from b")
		if code == 0 && out == "from b\n" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("b's relay never reached a's echo: exit %d, %q, %q", code, out, errOut)
		}
		<-tick.C
	}
	if code, out, errOut := relayTo(a, b, "kv", "put", "k", "v"); code != 0 || !strings.HasPrefix(out, "k = v (version 1)") {
		t.Fatalf("a's relay to b's kv: exit %d, %q, %q", code, out, errOut)
	}
	if code, out, errOut := relayTo(b, b, "kv", "get", "k"); code != 0 || !strings.HasPrefix(out, "k = v (version 1)") {
		t.Fatalf("b's relay to its own kv: exit %d, %q, %q", code, out, errOut)
	}
	// An engine that is not there: the error names the relayed call, not
	// the relay.
	code, _, errOut := runCmd(t, "call", "--node", a.listen[0], "--router", a.router, "--via", a.engines["relay"],
		"--to", newAddress(t), "echo", "x")
	if code != 1 || !strings.Contains(errOut, "the node knows no such engine") {
		t.Errorf("relay to no engine: exit %d, %q", code, errOut)
	}
	oneLine(t, errOut)
}

func TestNodeClusterErrors(t *testing.T) {
	dir := t.TempDir()
	auth, err := cluster.NewAuthority(nil)
	must(t, err)
	defer auth.Close()
	gossip := clusterFiles(t, dir, auth, "a", "b")
	base := append(nodeArgs(t, dir, "a.keys"), "--listen", "tcp://127.0.0.1:0")
	cert := filepath.Join(dir, "a.cert")
	with := func(extra ...string) []string { return slices.Concat(base, extra) }
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	must(t, err)
	defer busy.Close()
	for _, tc := range []struct {
		name string
		code int
		args []string
		want string
	}{
		{"join without cert", 2, with("--join", "127.0.0.1:7946"), "need --cluster-cert"},
		{"cert without gossip key", 2, with("--cluster-cert", cert), "needs --gossip-key"},
		{"join and discover", 2, with("--cluster-cert", cert, "--gossip-key", gossip, "--join", "127.0.0.1:1", "--discover", "dns:x:1"), "not both"},
		{"join an endpoint", 2, with("--cluster-cert", cert, "--gossip-key", gossip, "--join", "tcp://127.0.0.1:1"), "gossip HOST:PORT"},
		{"bad discover", 2, with("--cluster-cert", cert, "--gossip-key", gossip, "--discover", "consul:x"), "dns:NAME:PORT"},
		{"bad gossip", 2, with("--cluster-cert", cert, "--gossip-key", gossip, "--gossip", "7946"), "--gossip"},
		{"bad advertise", 2, with("--cluster-cert", cert, "--gossip-key", gossip, "--advertise", "127.0.0.1:7001"), "did you mean tcp://127.0.0.1:7001"},
		{"no listener", 2, append(nodeArgs(t, dir, "a.keys"), "--cluster-cert", cert, "--gossip-key", gossip), "needs a --listen"},
		{"missing cert", 1, with("--cluster-cert", filepath.Join(dir, "none.cert"), "--gossip-key", gossip), "no such file"},
		{"another node's cert", 1, with("--cluster-cert", filepath.Join(dir, "b.cert"), "--gossip-key", gossip, "--gossip", "127.0.0.1:0"), "cluster admit --router"},
		{"busy gossip port", 1, with("--cluster-cert", cert, "--gossip-key", gossip, "--gossip", busy.Addr().String()), "cluster gossip " + busy.Addr().String() + ": bind: address already in use"},
		{"cert as gossip key", 1, with("--cluster-cert", cert, "--gossip-key", cert), "--gossip-key"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, out, errOut := runCmd(t, append([]string{"node"}, tc.args...)...)
			if code != tc.code || out != "" || !strings.Contains(errOut, tc.want) {
				t.Errorf("exit %d, stdout %q, stderr %q; want exit %d and %q", code, out, errOut, tc.code, tc.want)
			}
			oneLine(t, lastLine(errOut))
		})
	}
}
