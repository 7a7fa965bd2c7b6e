package cluster

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/enginekit/enginekit/keyholder"
)

func addr(b byte) keyholder.Address {
	var a keyholder.Address
	a[0] = b
	return a
}

func TestPlan(t *testing.T) {
	self := addr(5)
	first := func(eps []string) string { return eps[0] }
	mem := func(r byte, inc uint64, ep string) Member {
		return Member{Router: addr(r), Incarnation: inc, Endpoints: []string{ep}}
	}
	cases := []struct {
		name             string
		have             map[keyholder.Address]string
		members          []Member
		disconnect, dial []Target
	}{
		{
			name:    "dial only higher routers, never self",
			members: []Member{mem(5, 1, "self"), mem(3, 1, "low"), mem(7, 1, "high"), mem(9, 1, "higher")},
			dial:    []Target{{addr(7), "high"}, {addr(9), "higher"}},
		},
		{
			name:    "nothing to do",
			have:    map[keyholder.Address]string{addr(7): "high"},
			members: []Member{mem(5, 1, "self"), mem(7, 1, "high")},
		},
		{
			name:       "departed member",
			have:       map[keyholder.Address]string{addr(7): "high", addr(9): "gone"},
			members:    []Member{mem(7, 1, "high")},
			disconnect: []Target{{addr(9), "gone"}},
		},
		{
			name:       "back under a new endpoint; the latest incarnation wins",
			have:       map[keyholder.Address]string{addr(7): "old"},
			members:    []Member{mem(7, 2, "new"), mem(7, 1, "old")},
			disconnect: []Target{{addr(7), "old"}},
			dial:       []Target{{addr(7), "new"}},
		},
		{
			name:    "a member without endpoints is not dialled",
			members: []Member{{Router: addr(8)}},
		},
	}
	for _, c := range cases {
		have := c.have
		if have == nil {
			have = map[keyholder.Address]string{}
		}
		d, k := plan(self, have, c.members, first)
		if !slices.Equal(d, c.disconnect) || !slices.Equal(k, c.dial) {
			t.Errorf("%s: disconnect %v dial %v; want %v %v", c.name, d, k, c.disconnect, c.dial)
		}
	}
	if !Dials(addr(1), addr(2)) || Dials(addr(2), addr(1)) || Dials(addr(1), addr(1)) {
		t.Error("Dials is not the strict bytewise order")
	}
}

// fakeConnector records Connect and Disconnect calls of one node.
type fakeConnector struct {
	self keyholder.Address
	net  *fakeNet
}

// fakeNet is the connections of all nodes of a test: dialer → targets.
type fakeNet struct {
	mu    sync.Mutex
	conns map[keyholder.Address]map[Target]bool
	calls []string
}

func (f fakeConnector) Connect(_ context.Context, endpoint string, router keyholder.Address) error {
	f.net.mu.Lock()
	defer f.net.mu.Unlock()
	t := Target{router, endpoint}
	if f.net.conns[f.self] == nil {
		f.net.conns[f.self] = map[Target]bool{}
	}
	if f.net.conns[f.self][t] {
		return fmt.Errorf("already connected to %s at %s", router, endpoint)
	}
	f.net.conns[f.self][t] = true
	f.net.calls = append(f.net.calls, fmt.Sprintf("connect %s→%s %s", f.self, router, endpoint))
	return nil
}

func (f fakeConnector) Disconnect(endpoint string, router keyholder.Address) error {
	f.net.mu.Lock()
	defer f.net.mu.Unlock()
	t := Target{router, endpoint}
	if !f.net.conns[f.self][t] {
		return errors.New("not connected")
	}
	delete(f.net.conns[f.self], t)
	f.net.calls = append(f.net.calls, fmt.Sprintf("disconnect %s→%s %s", f.self, router, endpoint))
	return nil
}

// isFullMesh reports whether nodes (router → endpoint) are connected pairwise
// exactly once, by the lower router, at the current endpoint.
func (n *fakeNet) isFullMesh(nodes map[keyholder.Address]string) bool {
	n.mu.Lock()
	defer n.mu.Unlock()
	total := 0
	for from, targets := range n.conns {
		if _, ok := nodes[from]; !ok && len(targets) > 0 {
			return false // a departed node still holds connections
		}
		for t := range targets {
			if nodes[t.Router] != t.Endpoint || !Dials(from, t.Router) {
				return false
			}
			total++
		}
	}
	return total == len(nodes)*(len(nodes)-1)/2
}

// meshNode is a membership with a mesh on a fake connector.
type meshNode struct {
	*testMember
	endpoint string
	mesh     *Mesh
	cancel   context.CancelFunc
	done     chan error
}

func (tc *testCluster) startMeshNode(fn *fakeNet, name, endpoint string, cert *Certificate, opts ...memberOpt) *meshNode {
	t := tc.t
	t.Helper()
	opts = append(opts, func(c *Config) { c.Endpoints = []string{endpoint} })
	tm := tc.start(name, cert, opts...)
	mesh, err := NewMesh(MeshConfig{
		Self:        tm.router,
		Connector:   fakeConnector{self: tm.router, net: fn},
		Members:     tm.m.Members,
		Changed:     tm.m.Changed(),
		Resync:      50 * time.Millisecond,
		DepartGrace: 100 * time.Millisecond,
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	n := &meshNode{testMember: tm, endpoint: endpoint, mesh: mesh, cancel: cancel, done: make(chan error, 1)}
	go func() { n.done <- mesh.Serve(ctx) }()
	t.Cleanup(n.stop)
	return n
}

func (n *meshNode) stop() {
	n.cancel()
	if err := <-n.done; err != nil {
		n.t.Errorf("mesh: %v", err)
	}
	n.done <- nil
	n.testMember.stop()
}

func TestMeshOverGossip(t *testing.T) {
	tc := newTestCluster(t, 1)
	fn := &fakeNet{conns: map[keyholder.Address]map[Target]bool{}}
	seed := tc.startMeshNode(fn, "node-0", "tcp://127.0.0.1:10", nil)
	nodes := []*meshNode{seed}
	for i := 1; i < 5; i++ {
		nodes = append(nodes, tc.startMeshNode(fn, fmt.Sprintf("node-%d", i), fmt.Sprintf("tcp://127.0.0.1:1%d", i), nil, withSeeds(seed.m.Addr())))
	}
	want := func() map[keyholder.Address]string {
		m := map[keyholder.Address]string{}
		for _, n := range nodes {
			if n != nil {
				m[n.router] = n.endpoint
			}
		}
		return m
	}
	eventually(t, "a full mesh of five", func() bool { return fn.isFullMesh(want()) })

	// The member with the highest router leaves: everyone disconnects it
	// (all of them dialled it).
	slices.SortFunc(nodes, func(a, b *meshNode) int {
		if Dials(a.router, b.router) {
			return -1
		}
		return 1
	})
	highest := nodes[4]
	highest.stop()
	nodes[4] = nil
	eventually(t, "the mesh without the departed member", func() bool { return fn.isFullMesh(want()) })

	// The new highest restarts under a new endpoint: the others move their
	// connection to the new one.
	old := nodes[3]
	old.stop()
	nodes[3] = tc.startMeshNode(fn, "node-9", "tcp://127.0.0.1:19", old.cert, withSeeds(nodes[0].m.Addr()))
	eventually(t, "the mesh following the new endpoint", func() bool { return fn.isFullMesh(want()) })

	for _, n := range nodes[:4] {
		if s := n.mesh.Stats(); s.ConnectErrors != 0 || s.DisconnectErrors != 0 {
			t.Errorf("%s: %+v", n.m.Name(), s)
		}
	}
	// The lowest router dials everyone and is dialled by no one.
	if got := len(nodes[0].mesh.Connected()); got != 3 {
		t.Errorf("lowest router made %d connections, want 3", got)
	}
	if got := len(nodes[3].mesh.Connected()); got != 0 {
		t.Errorf("highest router made %d connections, want 0", got)
	}
}

func TestMeshConfigErrors(t *testing.T) {
	fc := fakeConnector{net: &fakeNet{}}
	members := func() []Member { return nil }
	for _, c := range []MeshConfig{
		{Connector: fc, Members: members},
		{Self: addr(1), Members: members},
		{Self: addr(1), Connector: fc},
		{Self: addr(1), Connector: fc, Members: members, Resync: -1},
	} {
		if _, err := NewMesh(c); !errors.Is(err, ErrBadConfig) {
			t.Errorf("%+v: %v", c, err)
		}
	}
}

// TestMeshDepartGrace drives Sync on a logical clock: a member missing for
// less than the grace keeps its connection; past it, it is disconnected; a
// member back under a new endpoint moves at once.
func TestMeshDepartGrace(t *testing.T) {
	fn := &fakeNet{conns: map[keyholder.Address]map[Target]bool{}}
	self, peer := addr(1), addr(2)
	var members []Member
	now := time.Unix(1000, 0)
	mesh, err := NewMesh(MeshConfig{
		Self: self, Connector: fakeConnector{self: self, net: fn},
		Members:     func() []Member { return members },
		DepartGrace: 10 * time.Second,
		Now:         func() time.Time { return now },
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	connected := func() []Target { return mesh.Connected() }

	members = []Member{{Router: peer, Endpoints: []string{"a"}, Incarnation: 1}}
	mesh.Sync(ctx)
	if got := connected(); !slices.Equal(got, []Target{{peer, "a"}}) {
		t.Fatalf("connected %v", got)
	}
	members = nil // the gossip lost it
	now = now.Add(9 * time.Second)
	mesh.Sync(ctx)
	if got := connected(); len(got) != 1 {
		t.Fatalf("disconnected within the grace: %v", got)
	}
	members = []Member{{Router: peer, Endpoints: []string{"a"}, Incarnation: 1}} // back
	mesh.Sync(ctx)
	members = nil
	now = now.Add(9 * time.Second) // 18 s after connecting, 9 s after last seen
	mesh.Sync(ctx)
	if got := connected(); len(got) != 1 {
		t.Fatalf("the grace did not restart when the member came back: %v", got)
	}
	now = now.Add(2 * time.Second)
	mesh.Sync(ctx)
	if got := connected(); len(got) != 0 {
		t.Fatalf("still connected past the grace: %v", got)
	}

	// Back under a new endpoint while the old one is within the grace.
	members = []Member{{Router: peer, Endpoints: []string{"a"}, Incarnation: 1}}
	mesh.Sync(ctx)
	members = []Member{{Router: peer, Endpoints: []string{"b"}, Incarnation: 2}}
	mesh.Sync(ctx)
	if got := connected(); !slices.Equal(got, []Target{{peer, "b"}}) {
		t.Fatalf("not moved to the new endpoint: %v", got)
	}
	if s := mesh.Stats(); s != (MeshStats{Connects: 3, Disconnects: 2}) {
		t.Fatalf("stats %+v", s)
	}
}

// refusingConnector refuses every Connect, as a transport refuses a
// duplicate.
type refusingConnector struct{ calls *int }

func (r refusingConnector) Connect(context.Context, string, keyholder.Address) error {
	*r.calls++
	return errors.New("transport: already connecting")
}
func (refusingConnector) Disconnect(string, keyholder.Address) error { return nil }

// TestMeshConnectBackoff: a refused Connect is retried after resync·2ⁿ,
// not on every Sync.
func TestMeshConnectBackoff(t *testing.T) {
	calls := 0
	now := time.Unix(1000, 0)
	peer := Member{Router: addr(2), Endpoints: []string{"a"}}
	mesh, err := NewMesh(MeshConfig{
		Self: addr(1), Connector: refusingConnector{&calls},
		Members: func() []Member { return []Member{peer} },
		Resync:  time.Second,
		Now:     func() time.Time { return now },
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	var at []int // seconds at which Connect was called
	for sec := 0; sec < 40; sec++ {
		before := calls
		mesh.Sync(ctx)
		if calls != before {
			at = append(at, sec)
		}
		now = now.Add(time.Second)
	}
	if want := []int{0, 1, 3, 7, 15, 31}; !slices.Equal(at, want) {
		t.Fatalf("Connect at %v s, want %v", at, want)
	}
	if s := mesh.Stats(); s.ConnectErrors != 6 || s.Connects != 0 {
		t.Fatalf("stats %+v", s)
	}
	if got := retryDelay(time.Second, 100); got != MaxConnectRetry {
		t.Fatalf("retryDelay capped at %v", got)
	}
}
