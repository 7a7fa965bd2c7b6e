package main

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/enginekit/enginekit/admin"
	"github.com/enginekit/enginekit/cluster"
	"github.com/enginekit/enginekit/keyholder"
	"github.com/enginekit/enginekit/node"
	"github.com/hashicorp/memberlist"
)

// TestStatusClusterMembers: three nodes started with node.Start join one
// cluster through the first one's gossip address; once the mesh is full,
// status on each shows every member, the others CONNECTED yes, and the
// membership counters; --json carries the same.
func TestStatusClusterMembers(t *testing.T) {
	auth, err := cluster.NewAuthority(nil)
	must(t, err)
	defer auth.Close()
	gk, err := auth.GossipKey()
	must(t, err)
	now := time.Now()

	names := []string{"n0", "n1", "n2"}
	var nodes []*node.Node
	seed := ""
	for _, name := range names {
		kh, err := keyholder.New(keyholder.Config{})
		must(t, err)
		t.Cleanup(func() { kh.Close() })
		cert, err := auth.Issue(kh.Router(), name, now, time.Hour)
		must(t, err)
		c := &node.Cluster{Certificate: cert, GossipKey: gk, Gossip: "127.0.0.1:0",
			JoinInterval: 50 * time.Millisecond, DepartGrace: time.Second, Tune: func(c *memberlist.Config) {
				c.TCPTimeout = time.Second
				c.ProbeInterval = 500 * time.Millisecond
				c.ProbeTimeout = 250 * time.Millisecond
				c.GossipInterval = 20 * time.Millisecond
				c.PushPullInterval = time.Second
				c.SuspicionMult = 4
			}}
		if seed != "" {
			c.Discovery = cluster.Static{seed}
		}
		n, err := node.Start(context.Background(), node.Config{
			Name:    name,
			Keys:    node.Keys{Holder: kh},
			Listen:  []node.Listener{{Endpoint: "tcp://127.0.0.1:0"}},
			Cluster: c,
			Admin:   &admin.Config{Addr: "127.0.0.1:0"},
		})
		must(t, err)
		t.Cleanup(func() {
			if err := n.Stop(context.Background()); err != nil {
				t.Error(err)
			}
		})
		if seed == "" {
			seed = n.Cluster().Membership().Addr()
		}
		nodes = append(nodes, n)
	}

	// Wait for the full mesh as status itself reports it.
	deadline := time.NewTimer(30 * time.Second)
	defer deadline.Stop()
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for _, n := range nodes {
		for {
			code, out, errOut := runCmd(t, "status", "--admin", n.Admin().URL(), "--json")
			if code != 0 {
				t.Fatalf("status --json: %s", errOut)
			}
			var doc statusDoc
			must(t, json.Unmarshal([]byte(out), &doc))
			if full(doc.Members, len(nodes)) {
				break
			}
			select {
			case <-deadline.C:
				t.Fatalf("%s never saw a full mesh: %+v", n.System().Name(), doc.Members)
			case <-tick.C:
			}
		}
	}

	for i, n := range nodes {
		code, out, errOut := runCmd(t, "status", "--admin", n.Admin().URL())
		if code != 0 {
			t.Fatalf("status: %s", errOut)
		}
		if i == 0 {
			t.Logf("status of n0:\n%s", out)
		}
		if !strings.Contains(out, "members 3, 2 of the others connected\n") ||
			!strings.Contains(out, "NODE") || !strings.Contains(out, "CERT EXPIRES") ||
			!strings.Contains(out, "refused 0 (at 0: bad_signature denied expired foreign malformed not_yet_valid router_mismatch)") {
			t.Errorf("%s: status lacks the members section:\n%s", names[i], out)
		}
		for j, o := range nodes {
			line := memberLine(out, names[j])
			want := "yes"
			if i == j {
				want = "this node"
			}
			if line == "" || !strings.Contains(line, shortAddr(o.Router().String())) || !strings.Contains(line, o.Cluster().Membership().Addr()) ||
				!strings.Contains(line, o.ListenAddrs()[0]) || !strings.Contains(line, " "+want+" ") || !strings.Contains(line, "(in 5") {
				t.Errorf("%s: member %s: %q, want CONNECTED %s", names[i], names[j], line, want)
			}
		}
	}
}

// full reports whether doc lists want members, each connected, and
// counts the admissions.
func full(doc admin.Members, want int) bool {
	if !doc.Cluster || len(doc.Members) != want || doc.Stats.Admitted == 0 {
		return false
	}
	for _, m := range doc.Members {
		if !m.Connected || m.CertExpires.IsZero() || len(m.Endpoints) == 0 {
			return false
		}
	}
	return true
}

// memberLine is the members table's row of node name.
func memberLine(out, name string) string {
	for _, l := range strings.Split(out, "\n") {
		if strings.HasPrefix(l, "  "+name+" ") {
			return l
		}
	}
	return ""
}
