package node_test

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/enginekit/enginekit/admin"
	"github.com/enginekit/enginekit/cluster"
	"github.com/enginekit/enginekit/examples/echo"
	"github.com/enginekit/enginekit/genserver"
	"github.com/enginekit/enginekit/keyholder"
	"github.com/enginekit/enginekit/node"
	"github.com/enginekit/enginekit/payload"
	"github.com/hashicorp/memberlist"
)

// fastGossip: quick joins and push/pulls; lax probes, so that a loaded
// machine under -race does not make members flap.
func fastGossip(c *memberlist.Config) {
	c.TCPTimeout = time.Second
	c.ProbeInterval = 500 * time.Millisecond
	c.ProbeTimeout = 250 * time.Millisecond
	c.GossipInterval = 20 * time.Millisecond
	c.PushPullInterval = time.Second
	c.SuspicionMult = 4
}

// clusterKeys makes a keyholder and a certificate for its router, issued
// by auth at issued for an hour.
func clusterKeys(t *testing.T, auth *cluster.Authority, name string, issued time.Time) (*keyholder.Keyholder, *cluster.Certificate) {
	t.Helper()
	kh, err := keyholder.New(keyholder.Config{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { kh.Close() })
	cert, err := auth.Issue(kh.Router(), name, issued, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	return kh, cert
}

// clusterConfig is a node with an echo engine, listening on loopback with
// no Accept (only cluster members and no one else get in), gossiping on a
// free loopback port and joining through seed, if any.
func clusterConfig(name string, kh *keyholder.Keyholder, cert *cluster.Certificate, gossipKey []byte, seed string) node.Config {
	c := &node.Cluster{Certificate: cert, GossipKey: gossipKey, Gossip: "127.0.0.1:0",
		JoinInterval: 50 * time.Millisecond, DepartGrace: 200 * time.Millisecond, Tune: fastGossip}
	if seed != "" {
		c.Discovery = cluster.Static{seed}
	}
	return node.Config{
		Name:     name,
		Keys:     node.Keys{Holder: kh},
		Register: []func(*payload.Registry) error{echo.Register},
		Engines:  []node.Engine{{Name: "echo", Factory: echo.New}},
		Listen:   []node.Listener{{Endpoint: "tcp://127.0.0.1:0"}},
		Cluster:  c,
	}
}

// eventually polls cond on a ticker until it holds, or fails the test
// after wait.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.NewTimer(wait)
	defer deadline.Stop()
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for !cond() {
		select {
		case <-deadline.C:
			t.Fatalf("timed out waiting for %s", what)
		case <-tick.C:
		}
	}
}

// knows reports whether n has learned the echo engine of each of others.
func knows(n *node.Node, others ...*node.Node) bool {
	learned := n.Transport().Learned()
	for _, o := range others {
		if o == n {
			continue
		}
		addr, _ := o.Engine("echo")
		found := false
		for _, e := range learned[o.Router()] {
			found = found || e == addr
		}
		if !found {
			return false
		}
	}
	return true
}

func callEcho(t *testing.T, from, to *node.Node, text string) {
	t.Helper()
	addr, _ := to.Engine("echo")
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	got, err := genserver.Call[echo.Echo](ctx, from.System(), genserver.Name(addr.String()), echo.Echo{Text: text})
	if err != nil || got.Text != text {
		t.Fatalf("%s calling %s's echo: %+v, %v", from.System().Name(), to.System().Name(), got, err)
	}
}

// TestClusterThreeNodes is issue 15's "done when" with node.Start: three
// nodes, two of them given only the first one's gossip address and none
// given a peer, admit each other by certificate, reach a full mesh, and
// call each other's engines; once one stops, the other two still do.
func TestClusterThreeNodes(t *testing.T) {
	auth, err := cluster.NewAuthority(nil)
	if err != nil {
		t.Fatal(err)
	}
	defer auth.Close()
	gk, _ := auth.GossipKey()
	now := time.Now()

	var nodes []*node.Node
	seed := ""
	for _, name := range []string{"n0", "n1", "n2"} {
		kh, cert := clusterKeys(t, auth, name, now)
		cfg := clusterConfig(name, kh, cert, gk, seed)
		cfg.Admin = &admin.Config{Addr: "127.0.0.1:0"}
		n := start(t, cfg)
		if n.Cluster() == nil {
			t.Fatal("no cluster agent")
		}
		if seed == "" {
			seed = n.Cluster().Membership().Addr()
		}
		nodes = append(nodes, n)
	}
	eventually(t, "a full mesh with every engine learned", func() bool {
		for _, n := range nodes {
			if !knows(n, nodes...) || len(n.Transport().Connections()) != len(nodes)-1 || len(n.Cluster().Members()) != len(nodes) {
				return false
			}
		}
		return true
	})
	for _, from := range nodes {
		for _, to := range nodes {
			if from != to {
				callEcho(t, from, to, "from "+from.System().Name())
			}
		}
	}
	for _, n := range nodes {
		// /readyz: connected to every member.
		resp, err := http.Get(n.Admin().URL() + "/readyz")
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Errorf("%s /readyz: %d %s", n.System().Name(), resp.StatusCode, body)
		}
		if s := n.Cluster().Membership().Verifier().Stats(); s.Refused() != 0 || s.Admitted == 0 {
			t.Errorf("%s: verifier %+v", n.System().Name(), s)
		}
		// /api/members: every member, each connected, this node marked.
		c, err := admin.NewClient(n.Admin().URL(), nil)
		if err != nil {
			t.Fatal(err)
		}
		doc, err := c.Members(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		self := 0
		for _, m := range doc.Members {
			if m.Self {
				self++
			}
			if !m.Connected || m.CertExpires.IsZero() || len(m.Endpoints) == 0 || m.Gossip == "" {
				t.Errorf("%s /api/members: %+v", n.System().Name(), m)
			}
		}
		if !doc.Cluster || len(doc.Members) != len(nodes) || self != 1 || doc.Stats.Admitted == 0 || len(doc.Stats.Refused) != 7 {
			t.Errorf("%s /api/members = %+v", n.System().Name(), doc)
		}
	}

	// n2 stops (leaving the cluster); n0 and n1 still serve each other.
	if err := nodes[2].Stop(context.Background()); err != nil {
		t.Fatal(err)
	}
	eventually(t, "n2 gone from the others' membership", func() bool {
		return len(nodes[0].Cluster().Members()) == 2 && len(nodes[1].Cluster().Members()) == 2
	})
	callEcho(t, nodes[0], nodes[1], "still here")
	callEcho(t, nodes[1], nodes[0], "still here")
}

// TestClusterWrongCertificate: a certificate issued for another router,
// an expired one, and a busy gossip port fail Start, before anything runs.
func TestClusterWrongCertificate(t *testing.T) {
	auth, err := cluster.NewAuthority(nil)
	if err != nil {
		t.Fatal(err)
	}
	defer auth.Close()
	gk, _ := auth.GossipKey()
	now := time.Now()
	kh, _ := clusterKeys(t, auth, "mine", now)
	_, other := clusterKeys(t, auth, "other", now)

	_, err = node.Start(context.Background(), clusterConfig("n", kh, other, gk, ""))
	if !errors.Is(err, node.ErrWrongCertificate) || !strings.Contains(err.Error(), kh.Router().String()) {
		t.Fatalf("another router's certificate: %v", err)
	}

	expired, err := auth.Issue(kh.Router(), "mine", now.Add(-2*time.Hour), time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	if _, err = node.Start(context.Background(), clusterConfig("n", kh, expired, gk, "")); !errors.Is(err, cluster.ErrExpired) {
		t.Fatalf("expired certificate: %v", err)
	}

	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	good, _ := auth.Issue(kh.Router(), "mine", now, time.Hour)
	cfg := clusterConfig("n", kh, good, gk, "")
	cfg.Cluster.Gossip = busy.Addr().String()
	if _, err = node.Start(context.Background(), cfg); err == nil || !strings.Contains(err.Error(), "cluster gossip "+busy.Addr().String()) {
		t.Fatalf("busy gossip port: %v", err)
	}
}

// TestClusterForeign: a node of another cluster, told our seed, neither
// joins the gossip nor gets a connection admitted, and our side counts
// its certificate as foreign.
func TestClusterForeign(t *testing.T) {
	auth, _ := cluster.NewAuthority(nil)
	defer auth.Close()
	foreignAuth, _ := cluster.NewAuthority(nil)
	defer foreignAuth.Close()
	gk, _ := auth.GossipKey()
	fgk, _ := foreignAuth.GossipKey()
	now := time.Now()

	kh, cert := clusterKeys(t, auth, "home", now)
	home := start(t, clusterConfig("home", kh, cert, gk, ""))
	fkh, fcert := clusterKeys(t, foreignAuth, "stranger", now)
	stranger := start(t, clusterConfig("stranger", fkh, fcert, fgk, home.Cluster().Membership().Addr()))

	// Even dialled directly, the stranger's certificate is refused.
	if err := stranger.Transport().Connect(context.Background(), home.ListenAddrs()[0], home.Router()); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the stranger's join to fail and its certificate to be refused", func() bool {
		return stranger.Cluster().Membership().Stats().JoinErrors >= 1 &&
			home.Cluster().Membership().Verifier().Stats().Foreign >= 1
	})
	if m := home.Cluster().Members(); len(m) != 1 || !m[0].Self {
		t.Errorf("home's members: %+v", m)
	}
	if c := home.Transport().Connections(); len(c) != 0 {
		t.Errorf("home has connections: %+v", c)
	}
	if knows(stranger, home) {
		t.Error("the stranger learned home's engine")
	}
}

// TestClusterVerify: what Config.Verify refuses in a Cluster, and that a
// listener without Accept is fine in a cluster.
func TestClusterVerify(t *testing.T) {
	auth, _ := cluster.NewAuthority(nil)
	defer auth.Close()
	gk, _ := auth.GossipKey()
	kh, cert := clusterKeys(t, auth, "n", time.Now())
	ok := clusterConfig("n", kh, cert, gk, "")
	if err := ok.Verify(); err != nil {
		t.Fatalf("a cluster node listening without Accept: %v", err)
	}
	for _, tc := range []struct {
		name   string
		change func(c *node.Config)
		want   string
	}{
		{"no certificate", func(c *node.Config) { c.Cluster.Certificate = nil }, "no Certificate"},
		{"no gossip key", func(c *node.Config) { c.Cluster.GossipKey = nil }, "no GossipKey"},
		{"short gossip key", func(c *node.Config) { c.Cluster.GossipKey = make([]byte, 8) }, "want 16, 24 or 32"},
		{"bad gossip address", func(c *node.Config) { c.Cluster.Gossip = "7946" }, "Gossip"},
		{"unreachable", func(c *node.Config) { c.Listen = nil }, "could not reach"},
		{"credential set", func(c *node.Config) { c.Transport.Net.Credential = []byte("x") }, "node's to set"},
		{"bad endpoint", func(c *node.Config) { c.Cluster.Endpoints = []string{"10.0.0.1:7001"} }, "endpoint"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := clusterConfig("n", kh, cert, gk, "")
			c := *cfg.Cluster
			cfg.Cluster = &c
			tc.change(&cfg)
			if err := cfg.Verify(); !errors.Is(err, node.ErrBadConfig) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Verify() = %v, want ErrBadConfig mentioning %q", err, tc.want)
			}
		})
	}
}
