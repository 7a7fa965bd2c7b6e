package admin_test

import (
	"context"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/enginekit/enginekit/admin"
)

// fakeMembers is a cluster of three as a node would report it: itself,
// one member connected and one not (yet), with some refusals counted.
func fakeMembers(calls *atomic.Int64) admin.Source {
	expires := time.Date(2027, 1, 2, 3, 4, 5, 0, time.UTC)
	return admin.Source{
		Members: func() []admin.Member {
			calls.Add(1)
			return []admin.Member{ // not sorted: the document sorts them by node
				{Node: "n2", Router: "r2", Gossip: "127.0.0.1:7002", CertExpires: expires},
				{Node: "n0", Router: "r0", Gossip: "127.0.0.1:7000", Endpoints: []string{"tcp://127.0.0.1:9000"}, CertExpires: expires, Connected: true, Self: true},
				{Node: "n1", Router: "r1", Gossip: "127.0.0.1:7001", Endpoints: []string{"tcp://127.0.0.1:9001"}, CertExpires: expires, Connected: true, Remote: "tcp://127.0.0.1:9001"},
			}
		},
		ClusterStats: func() admin.ClusterStats {
			return admin.ClusterStats{Admitted: 5, Refused: map[string]uint64{"expired": 2, "foreign": 1, "denied": 0},
				RefusedAlive: 3, MeshConnects: 2, MeshDisconnects: 1}
		},
	}
}

func serveSource(t *testing.T, src admin.Source) *admin.Server {
	t.Helper()
	srv, err := admin.New(admin.Config{Addr: "127.0.0.1:0", Source: src})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := srv.Close(); err != nil {
			t.Error(err)
		}
	})
	return srv
}

func TestAPIMembers(t *testing.T) {
	var calls atomic.Int64
	srv := serveSource(t, fakeMembers(&calls))
	doc, err := client(t, srv.URL()).Members(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if !doc.Cluster || len(doc.Members) != 3 || calls.Load() != 1 {
		t.Fatalf("members = %+v (%d calls)", doc, calls.Load())
	}
	for i, want := range []string{"n0", "n1", "n2"} {
		if doc.Members[i].Node != want {
			t.Errorf("member %d is %q, want %q (sorted by node)", i, doc.Members[i].Node, want)
		}
	}
	n0, n2 := doc.Members[0], doc.Members[2]
	if !n0.Self || !n0.Connected || n0.Gossip != "127.0.0.1:7000" || n0.Endpoints[0] != "tcp://127.0.0.1:9000" || !n0.CertExpires.Equal(time.Date(2027, 1, 2, 3, 4, 5, 0, time.UTC)) {
		t.Errorf("n0 = %+v", n0)
	}
	if n2.Connected || n2.Self || n2.Endpoints == nil {
		t.Errorf("n2 = %+v (endpoints should be [] not null)", n2)
	}
	if doc.Members[1].Remote != "tcp://127.0.0.1:9001" {
		t.Errorf("n1 = %+v", doc.Members[1])
	}
	if s := doc.Stats; s.Admitted != 5 || s.Refused["expired"] != 2 || s.RefusedAlive != 3 || s.MeshConnects != 2 || s.MeshDisconnects != 1 {
		t.Errorf("stats = %+v", s)
	}
}

func TestMetricsMembers(t *testing.T) {
	var calls atomic.Int64
	srv := serveSource(t, fakeMembers(&calls))
	m := scrape(t, srv.URL())
	for series, want := range map[string]string{
		`enginekit_cluster_members{state="connected"}`:      "1", // n1; n0 is this node
		`enginekit_cluster_members{state="not_connected"}`:  "1", // n2
		`enginekit_cluster_admitted_total`:                  "5",
		`enginekit_cluster_refused_total{reason="expired"}`: "2",
		`enginekit_cluster_refused_total{reason="foreign"}`: "1",
		`enginekit_cluster_refused_total{reason="denied"}`:  "0",
		`enginekit_cluster_refused_alive_total`:             "3",
		`enginekit_cluster_mesh_total{event="connect"}`:     "2",
		`enginekit_cluster_mesh_total{event="disconnect"}`:  "1",
	} {
		if got, ok := m[series]; !ok || got != want {
			t.Errorf("%s = %q (present %v), want %s", series, got, ok, want)
		}
	}
}

// TestMembersAbsentWithoutCluster: a node outside a cluster has no
// cluster series, and /api/members says so.
func TestMembersAbsentWithoutCluster(t *testing.T) {
	f := newFixture(t)
	srv := f.serve(t, admin.Config{})
	for series := range scrape(t, srv.URL()) {
		if strings.HasPrefix(series, "enginekit_cluster_") {
			t.Errorf("series %s without a cluster", series)
		}
	}
	doc, err := client(t, srv.URL()).Members(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if doc.Cluster || len(doc.Members) != 0 || doc.Members == nil {
		t.Errorf("members without a cluster = %+v", doc)
	}
}
