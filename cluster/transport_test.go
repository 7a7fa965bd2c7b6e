package cluster_test

import (
	"context"
	"fmt"
	"runtime"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/enginekit/enginekit/cluster"
	"github.com/enginekit/enginekit/genserver"
	"github.com/enginekit/enginekit/keyholder"
	"github.com/enginekit/enginekit/netconn"
	"github.com/enginekit/enginekit/payload"
	"github.com/enginekit/enginekit/transport"
	"github.com/hashicorp/memberlist"
)

// echo answers a call with its node's name and the request.
type echo struct{ node string }

func (e echo) HandleCall(_ *genserver.Process, _ genserver.From, req any) (any, error) {
	return fmt.Sprintf("%s: %v", e.node, req), nil
}
func (echo) HandleCast(*genserver.Process, any) {}

// clusterNode is a System, a transport admitting by certificate and
// listening on loopback, and (once joined) a membership and a mesh.
type clusterNode struct {
	t        testing.TB
	name     string
	sys      *genserver.System
	kh       *keyholder.Keyholder
	tr       *transport.Transport
	cert     *cluster.Certificate
	verifier *cluster.Verifier
	endpoint string
	echo     keyholder.Address

	mu     sync.Mutex
	synced map[keyholder.Address]bool
	forgot map[keyholder.Address]bool // engines forgotten

	agent    *cluster.Agent
	stopOnce sync.Once
	stopJoin func() // stops membership and mesh
}

// stop stops the node: mesh and membership (leaving the cluster), then
// transport and System. Safe twice.
func (n *clusterNode) stop() {
	n.stopOnce.Do(func() {
		if n.stopJoin != nil {
			n.stopJoin()
		}
		n.tr.Close()
		n.sys.Stop(context.Background())
	})
}

func newClusterNode(t *testing.T, auth *cluster.Authority, name string, issued time.Time) *clusterNode {
	t.Helper()
	kh, err := keyholder.New(keyholder.Config{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { kh.Close() })
	return startClusterNode(t, auth, name, issued, kh)
}

// startClusterNode starts a node with the router and engine keys of kh
// (a node restarted keeps its keys).
func startClusterNode(t testing.TB, auth *cluster.Authority, name string, issued time.Time, kh *keyholder.Keyholder) *clusterNode {
	t.Helper()
	ctx := context.Background()
	cert, err := auth.Issue(kh.Router(), name, issued, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	// Every node trusts the cluster key of our own cluster's authority.
	v, err := cluster.NewVerifier(cluster.VerifierConfig{Cluster: auth.Cluster()})
	if err != nil {
		t.Fatal(err)
	}
	n := &clusterNode{t: t, name: name, kh: kh, cert: cert, verifier: v, synced: map[keyholder.Address]bool{}, forgot: map[keyholder.Address]bool{}}
	n.sys = genserver.NewSystem(genserver.Config{Name: name})
	reg, err := payload.NewRegistry(payload.Limits{})
	if err != nil {
		t.Fatal(err)
	}
	net := netconn.DefaultConfig()
	net.Credential = cert.Bytes()
	net.AdmitCredential = v.Admit
	n.tr, err = transport.New(transport.Config{
		System: n.sys, Keyholder: kh, Registry: reg, Auth: netconn.MACs, Net: net,
		ForgetGrace: 200 * time.Millisecond,
		OnSynced: func(peer keyholder.Address) {
			n.mu.Lock()
			n.synced[peer] = true
			n.mu.Unlock()
		},
		OnForget: func(engine keyholder.Address) {
			n.mu.Lock()
			n.forgot[engine] = true
			n.mu.Unlock()
		},
		OnConnection: func(peer keyholder.Address, up bool, err error) {
			if testing.Verbose() {
				t.Logf("%s: connection to %s up=%v err=%v", name, peer.String()[:8], up, err)
			}
			if !up {
				n.mu.Lock()
				delete(n.synced, peer)
				n.mu.Unlock()
			}
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := n.tr.Start(); err != nil {
		t.Fatal(err)
	}
	if _, ok := t.(*testing.T); ok {
		t.Cleanup(n.stop)
	}
	n.echo, _, err = n.tr.SpawnEngine("echo", func() genserver.Server { return echo{name} })
	if err != nil {
		t.Fatal(err)
	}
	// Accept no router by key: only cluster certificates get in.
	at, err := n.tr.Listen(ctx, "tcp://127.0.0.1:0", netconn.AllowOnly())
	if err != nil {
		t.Fatal(err)
	}
	n.endpoint = "tcp://" + at.String()
	return n
}

func (n *clusterNode) syncedWith(peers ...*clusterNode) bool {
	n.mu.Lock()
	defer n.mu.Unlock()
	for _, p := range peers {
		if p != n && !n.synced[p.kh.Router()] {
			return false
		}
	}
	return true
}

// eventually polls cond on a ticker until it holds or 15 s pass.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.NewTimer(15 * time.Second)
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

// TestAdmissionOverTransport: a listener that accepts no router by key
// admits the routers whose hello carries a certificate of its cluster, and
// refuses (and counts) a foreign and an expired one.
func TestAdmissionOverTransport(t *testing.T) {
	auth, err := cluster.NewAuthority(nil)
	if err != nil {
		t.Fatal(err)
	}
	defer auth.Close()
	foreignAuth, _ := cluster.NewAuthority(nil)
	defer foreignAuth.Close()
	ctx := context.Background()
	now := time.Now()

	a := newClusterNode(t, auth, "a", now)
	b := newClusterNode(t, auth, "b", now)
	foreign := newClusterNode(t, foreignAuth, "foreign", now)
	late := newClusterNode(t, auth, "late", now.Add(-2*time.Hour))

	if err := b.tr.Connect(ctx, a.endpoint, a.kh.Router()); err != nil {
		t.Fatal(err)
	}
	eventually(t, "b admitted by a", func() bool { return a.syncedWith(b) && b.syncedWith(a) })
	reply, err := genserver.Call[string](ctx, b.sys, genserver.Name(a.echo.String()), "hi")
	if err != nil || reply != "a: hi" {
		t.Fatalf("call across an admitted connection: %q, %v", reply, err)
	}

	for _, n := range []*clusterNode{foreign, late} {
		if err := n.tr.Connect(ctx, a.endpoint, a.kh.Router()); err != nil {
			t.Fatal(err)
		}
	}
	eventually(t, "a to refuse the foreign and the expired certificate", func() bool {
		s := a.verifier.Stats()
		return s.Foreign >= 1 && s.Expired >= 1
	})
	if a.syncedWith(foreign) || a.syncedWith(late) {
		t.Fatal("an outsider got in")
	}
}

// The transport is a Connector as it is.
var _ cluster.Connector = (*transport.Transport)(nil)

func fastGossip(c *memberlist.Config) {
	c.TCPTimeout = time.Second
	// Lax probes: under -race on a loaded machine tight ones make members
	// flap. Leaving is announced, so no test waits for failure detection.
	c.ProbeInterval = 500 * time.Millisecond
	c.ProbeTimeout = 250 * time.Millisecond
	c.GossipInterval = 20 * time.Millisecond
	c.PushPullInterval = time.Second
	c.SuspicionMult = 4
}

// join starts n's cluster agent (membership and mesh), through seed if
// any.
func (n *clusterNode) join(gossipKey []byte, seed string) *cluster.Agent {
	t := n.t
	t.Helper()
	cfg := cluster.AgentConfig{
		Config: cluster.Config{
			Certificate: n.cert, Verifier: n.verifier, GossipKey: gossipKey,
			Endpoints: []string{n.endpoint}, JoinInterval: 50 * time.Millisecond, Tune: fastGossip,
		},
		Connector:   n.tr,
		Resync:      50 * time.Millisecond,
		DepartGrace: 100 * time.Millisecond,
	}
	if seed != "" {
		cfg.Discovery = cluster.Static{seed}
	}
	a, err := cluster.NewAgent(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	ready := make(chan struct{})
	done := make(chan error, 1)
	go func() { done <- a.ServeReady(ctx, func() { close(ready) }) }()
	select {
	case <-ready:
	case err := <-done:
		t.Fatalf("agent: %v", err)
	}
	n.stopJoin = func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("agent: %v", err)
		}
	}
	n.agent = a
	return a
}

// TestThreeNodesJoinLeaveRestart is the issue's "done when" in one
// process: three nodes, each told only one seed and no peer, reach a full
// mesh of transport connections (one per pair) and call each other's
// engines; one leaves and is forgotten; it restarts with the same keys on a
// new port and the mesh follows it there.
func TestThreeNodesJoinLeaveRestart(t *testing.T) {
	auth, err := cluster.NewAuthority(nil)
	if err != nil {
		t.Fatal(err)
	}
	defer auth.Close()
	gk, _ := auth.GossipKey()
	now := time.Now()
	nodes := []*clusterNode{newClusterNode(t, auth, "n0", now), newClusterNode(t, auth, "n1", now), newClusterNode(t, auth, "n2", now)}
	// Order by router, so that the leaver below (the highest) was dialled
	// by both others and both must Disconnect it.
	slices.SortFunc(nodes, func(a, b *clusterNode) int {
		if cluster.Dials(a.kh.Router(), b.kh.Router()) {
			return -1
		}
		return 1
	})
	seed := nodes[0].join(gk, "").Membership()
	nodes[1].join(gk, seed.Addr())
	nodes[2].join(gk, seed.Addr())

	fullMesh := func() bool {
		for _, n := range nodes {
			if !n.syncedWith(nodes...) || len(n.tr.Connections()) != len(nodes)-1 {
				return false
			}
		}
		return true
	}
	callAll := func() {
		t.Helper()
		ctx := context.Background()
		for _, from := range nodes {
			for _, to := range nodes {
				if from == to {
					continue
				}
				reply, err := genserver.Call[string](ctx, from.sys, genserver.Name(to.echo.String()), from.name)
				if want := to.name + ": " + from.name; err != nil || reply != want {
					t.Errorf("%s → %s: %q, %v; want %q", from.name, to.name, reply, err, want)
				}
			}
		}
	}
	eventually(t, "a full mesh, every burst learned", fullMesh)
	callAll()

	// n2 leaves: the others drop their connection and forget its engine
	// after the transport's grace period.
	leaver := nodes[2]
	leaver.stop()
	eventually(t, "n2 forgotten", func() bool {
		for _, n := range nodes[:2] {
			n.mu.Lock()
			forgot := n.forgot[leaver.echo]
			n.mu.Unlock()
			if !forgot || slices.ContainsFunc(n.tr.Connections(), func(c transport.Connection) bool { return c.Peer == leaver.kh.Router() }) {
				return false
			}
		}
		return true
	})

	// Those that dialled n2 disconnect it (after the mesh's depart grace)
	// through the transport's Disconnect, without error.
	eventually(t, "the dialers of n2 to disconnect it", func() bool {
		for _, n := range nodes[:2] {
			if n.agent.Mesh().Stats().Disconnects != 1 {
				return false
			}
		}
		return true
	})
	for _, n := range nodes[:2] {
		if s := n.agent.Mesh().Stats(); s.DisconnectErrors != 0 || s.ConnectErrors != 0 {
			t.Errorf("%s: mesh %+v", n.name, s)
		}
	}

	// n2 comes back with the same keys on a new port.
	back := startClusterNode(t, auth, "n2", now, leaver.kh)
	if back.endpoint == leaver.endpoint {
		t.Fatalf("restart listens at the same endpoint %s", back.endpoint)
	}
	back.join(gk, seed.Addr())
	nodes[2] = back
	eventually(t, "the mesh to follow n2 to its new endpoint", fullMesh)
	callAll()
}

// startBenchNode starts a node whose stop the benchmark calls itself.
func startBenchNode(b *testing.B, auth *cluster.Authority, name string, kh *keyholder.Keyholder) *clusterNode {
	return startClusterNode(b, auth, name, time.Now(), kh)
}

// BenchmarkMeshCost measures what one connection of a full mesh costs a
// node: goroutines, heap and idle keepalive traffic (netconn's default
// IdleTimeout of 30 s: a ping after 7.5 s of silence). It meshes nodes with
// real transports on loopback, each pair dialled by its lower router, with
// one engine per node. Run it with
//
//	go test -run '^$' -bench MeshCost -benchtime 1x ./cluster
func BenchmarkMeshCost(b *testing.B) {
	const window = 15 * time.Second
	for _, n := range []int{4, 8, 16} {
		b.Run(fmt.Sprintf("nodes=%d", n), func(b *testing.B) {
			for range b.N {
				auth, err := cluster.NewAuthority(nil)
				if err != nil {
					b.Fatal(err)
				}
				var nodes []*clusterNode
				var stops []func()
				for i := range n {
					kh, _ := keyholder.New(keyholder.Config{})
					node := startBenchNode(b, auth, fmt.Sprintf("n%d", i), kh)
					nodes = append(nodes, node)
					stops = append(stops, func() { node.stop(); kh.Close() })
				}
				runtime.GC()
				var before runtime.MemStats
				runtime.ReadMemStats(&before)
				g0 := runtime.NumGoroutine()
				ctx := context.Background()
				for _, a := range nodes {
					for _, c := range nodes {
						if cluster.Dials(a.kh.Router(), c.kh.Router()) {
							if err := a.tr.Connect(ctx, c.endpoint, c.kh.Router()); err != nil {
								b.Fatal(err)
							}
						}
					}
				}
				deadline := time.After(60 * time.Second)
				tick := time.NewTicker(10 * time.Millisecond)
			wait:
				for {
					all := true
					for _, x := range nodes {
						all = all && x.syncedWith(nodes...)
					}
					if all {
						break wait
					}
					select {
					case <-deadline:
						b.Fatal("no full mesh")
					case <-tick.C:
					}
				}
				tick.Stop()
				runtime.GC()
				var after runtime.MemStats
				runtime.ReadMemStats(&after)
				ends := float64(n * (n - 1))
				b.ReportMetric(float64(runtime.NumGoroutine()-g0)/ends, "goroutines/conn-end")
				b.ReportMetric(float64(int64(after.HeapAlloc)-int64(before.HeapAlloc))/ends, "heapB/conn-end")

				sum := func() (out uint64) {
					for _, x := range nodes {
						for _, c := range x.tr.Connections() {
							out += c.Stats.BytesOut
						}
					}
					return out
				}
				s0 := sum()
				<-time.After(window)
				b.ReportMetric(float64(sum()-s0)/window.Seconds()/ends, "idleB/s/conn-end")
				for _, s := range stops {
					s()
				}
				auth.Close()
			}
		})
	}
}
