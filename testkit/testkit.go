package testkit

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/enginekit/enginekit/genserver"
	"github.com/enginekit/enginekit/keyholder"
	"github.com/enginekit/enginekit/netconn"
	"github.com/enginekit/enginekit/node"
	"github.com/enginekit/enginekit/payload"
	"github.com/enginekit/enginekit/transport"
	"go.uber.org/goleak"
)

// Network is how the nodes of a cluster connect.
type Network string

const (
	TCP    Network = "tcp"    // loopback TCP, 127.0.0.1 (the default)
	Unix   Network = "unix"   // Unix sockets in a temporary directory
	Memory Network = "memory" // in-memory pipes (netconn.PipeListener): no socket at all
)

// DefaultTimeout bounds every wait when Options.Timeout is zero.
const DefaultTimeout = 20 * time.Second

// Options configures a cluster. The zero value is valid: two nodes over TCP,
// signatures, no engines.
type Options struct {
	// Nodes is how many nodes to start. Default 2.
	Nodes int
	// Network is TCP (default), Unix or Memory.
	Network Network
	// Auth is the per-message authentication of every connection.
	// Default netconn.Signatures.
	Auth netconn.Auth
	// Register names the payload types of the engines under test; every
	// node registers the same.
	Register []func(*payload.Registry) error
	// Engines run on every node (each node its own instance, with its own
	// address). Use Configure for engines on some nodes only.
	Engines []node.Engine
	// Configure, when set, may change node i's Config before it starts
	// (its Name is "n0", "n1", …). Listen and Peers are the cluster's: the
	// testkit sets its own. Callbacks in Transport are kept and called
	// after the testkit's; a Transport.Net.Backoff left zero becomes 5–50 ms.
	Configure func(i int, cfg *node.Config)
	// Timeout bounds each wait. Default DefaultTimeout.
	Timeout time.Duration
	// NoLeakCheck turns off the goroutine-leak check at cleanup (for
	// parallel tests; see the package doc).
	NoLeakCheck bool
}

// Cluster is a set of running, connected nodes.
type Cluster struct {
	// Nodes in order; node i is called "n<i>".
	Nodes []*Node

	timeout time.Duration
	links   map[[2]int]cable
	routers map[keyholder.Address]bool
}

// Node is one node of a cluster: a node.Node and what its transport told.
type Node struct {
	*node.Node
	timeout time.Duration

	mu      sync.Mutex
	changed chan struct{} // closed and replaced on every event
	learns  map[keyholder.Address]int
	known   map[keyholder.Address]bool // learned and not forgotten
	conns   map[keyholder.Address]int  // live connections per peer router
}

// TB is what the testkit needs of a test: *testing.T and *testing.B have
// it (testing.TB), and so can a harness of your own.
type TB interface {
	Helper()
	Cleanup(func())
	Error(args ...any)
	Errorf(format string, args ...any)
	Fatalf(format string, args ...any)
	TempDir() string
}

// Main runs the package's tests with goleak's check over the whole package:
// call it from TestMain.
func Main(m *testing.M) { goleak.VerifyTestMain(m) }

// Start starts the cluster that opts describes, connects every pair of
// nodes and returns once each node has learned every engine of every other
// node. The cluster stops at the test's cleanup.
func Start(t TB, opts Options) *Cluster {
	t.Helper()
	if opts.Nodes == 0 {
		opts.Nodes = 2
	}
	if opts.Network == "" {
		opts.Network = TCP
	}
	if opts.Timeout == 0 {
		opts.Timeout = DefaultTimeout
	}
	if opts.Nodes < 1 || opts.Timeout < 0 || (opts.Network != TCP && opts.Network != Unix && opts.Network != Memory) {
		t.Fatalf("testkit: bad Options: %d nodes, network %q, timeout %v", opts.Nodes, opts.Network, opts.Timeout)
	}
	if !opts.NoLeakCheck {
		ignore := goleak.IgnoreCurrent()
		t.Cleanup(func() { goleak.VerifyNone(t, ignore) }) // runs after the nodes stop
	}
	c := &Cluster{timeout: opts.Timeout, links: make(map[[2]int]cable), routers: make(map[keyholder.Address]bool)}
	var mu sync.Mutex // guards c.routers while listeners may consult it
	admit := func(r keyholder.Address) bool { mu.Lock(); defer mu.Unlock(); return c.routers[r] }
	dir := socketDir(t, opts.Network)

	for i := range opts.Nodes {
		n := &Node{timeout: opts.Timeout, changed: make(chan struct{}), learns: make(map[keyholder.Address]int),
			known: make(map[keyholder.Address]bool), conns: make(map[keyholder.Address]int)}
		cfg := node.Config{
			Name:     fmt.Sprintf("n%d", i),
			Register: opts.Register,
			Engines:  opts.Engines,
		}
		cfg.Transport.Auth = opts.Auth
		if opts.Configure != nil {
			opts.Configure(i, &cfg)
		}
		n.hook(&cfg.Transport)
		if cfg.Transport.Net.Backoff == (netconn.Backoff{}) {
			cfg.Transport.Net.Backoff = netconn.Backoff{Min: 5 * time.Millisecond, Max: 50 * time.Millisecond}
		}
		cfg.Listen, cfg.Peers = nil, nil
		for j := i + 1; j < opts.Nodes && opts.Network != Memory; j++ {
			ep := "tcp://127.0.0.1:0"
			if opts.Network == Unix {
				ep = "unix://" + filepath.Join(dir, fmt.Sprintf("n%d-from-n%d.sock", i, j))
			}
			cfg.Listen = append(cfg.Listen, node.Listener{Endpoint: ep, Accept: admit})
		}
		nd, err := node.Start(context.Background(), cfg)
		if err != nil {
			t.Fatalf("testkit: starting node %d: %v", i, err)
		}
		n.Node = nd
		t.Cleanup(func() {
			ctx, cancel := context.WithTimeout(context.Background(), opts.Timeout)
			defer cancel()
			if err := nd.Stop(ctx); err != nil {
				t.Errorf("testkit: stopping node %d: %v", i, err)
			}
		})
		mu.Lock()
		c.routers[nd.Router()] = true
		mu.Unlock()
		c.Nodes = append(c.Nodes, n)
	}

	// Node i listens for each j > i; j dials i through a link.
	for i, n := range c.Nodes {
		for j := i + 1; j < len(c.Nodes); j++ {
			name := fmt.Sprintf("n%d-to-n%d", j, i)
			var l cable
			if opts.Network == Memory {
				pl := netconn.NewPipeListener(fmt.Sprintf("n%d", i))
				if _, err := n.Transport().ListenOn(context.Background(), pl, admit); err != nil {
					t.Fatalf("testkit: node %d listening in memory: %v", i, err)
				}
				l = &pipeLink{dial: pl.Dial}
			} else {
				network, address, err := transport.ParseEndpoint(n.ListenAddrs()[j-i-1])
				if err != nil {
					t.Fatalf("testkit: %v", err)
				}
				laddr := "127.0.0.1:0"
				if network == "unix" {
					laddr = filepath.Join(dir, fmt.Sprintf("link-n%d-n%d.sock", j, i))
				}
				nl, err := newLink(network, laddr, network, address)
				if err != nil {
					t.Fatalf("testkit: link %d-%d: %v", i, j, err)
				}
				l = nl
			}
			t.Cleanup(l.close) // after the nodes stop (cleanups run last-in first-out)
			c.links[[2]int{i, j}] = l
			if err := c.Nodes[j].Transport().ConnectWith(context.Background(), name, l.dialer(), n.Router()); err != nil {
				t.Fatalf("testkit: node %d dialling node %d: %v", j, i, err)
			}
		}
	}
	for _, n := range c.Nodes {
		for _, m := range c.Nodes {
			if n != m {
				n.waitEngines(t, m, nil)
			}
		}
	}
	return c
}

// socketDir is a directory for Unix sockets, short enough for their path
// limit (108 bytes on Linux).
func socketDir(t TB, network Network) string {
	if network != Unix {
		return ""
	}
	dir := t.TempDir()
	if len(dir) > 60 {
		var err error
		if dir, err = os.MkdirTemp("", "testkit"); err != nil {
			t.Fatalf("testkit: %v", err)
		}
		t.Cleanup(func() { os.RemoveAll(dir) })
	}
	return dir
}

// hook chains the node's bookkeeping in front of the callbacks in cfg.
func (n *Node) hook(cfg *transport.Config) {
	onLearn, onForget, onConn := cfg.OnLearn, cfg.OnForget, cfg.OnConnection
	cfg.OnLearn = func(engine, peer keyholder.Address) {
		n.update(func() { n.learns[engine]++; n.known[engine] = true })
		if onLearn != nil {
			onLearn(engine, peer)
		}
	}
	cfg.OnForget = func(engine keyholder.Address) {
		n.update(func() { delete(n.known, engine) })
		if onForget != nil {
			onForget(engine)
		}
	}
	cfg.OnConnection = func(peer keyholder.Address, up bool, err error) {
		n.update(func() {
			if up {
				n.conns[peer]++
			} else if n.conns[peer] > 0 {
				n.conns[peer]--
			}
		})
		if onConn != nil {
			onConn(peer, up, err)
		}
	}
}

func (n *Node) update(f func()) {
	n.mu.Lock()
	f()
	close(n.changed)
	n.changed = make(chan struct{})
	n.mu.Unlock()
}

// wait waits until cond (called under the node's lock) holds.
func (n *Node) wait(t TB, what string, cond func() bool) {
	t.Helper()
	timeout := time.NewTimer(n.timeout)
	defer timeout.Stop()
	for {
		n.mu.Lock()
		ok, ch := cond(), n.changed
		n.mu.Unlock()
		if ok {
			return
		}
		select {
		case <-ch:
		case <-timeout.C:
			t.Fatalf("testkit: %s: %s within %v", n.System().Name(), what, n.timeout)
		}
	}
}

// waitEngines waits until n has learned every engine that peer runs, each
// more often than before says (nil: at least once).
func (n *Node) waitEngines(t TB, peer *Node, before map[keyholder.Address]int) {
	t.Helper()
	engines := peer.Transport().Engines()
	n.wait(t, "did not learn the engines of "+peer.System().Name(), func() bool {
		for e := range engines {
			if n.learns[e] <= before[e] || !n.known[e] {
				return false
			}
		}
		return true
	})
}

// WaitLearn waits until n has learned engine (and not forgotten it since).
func (n *Node) WaitLearn(t TB, engine keyholder.Address) {
	t.Helper()
	n.wait(t, "did not learn "+engine.String(), func() bool { return n.known[engine] })
}

// WaitForget waits until n does not know engine (forgotten, or never
// learned).
func (n *Node) WaitForget(t TB, engine keyholder.Address) {
	t.Helper()
	n.wait(t, "did not forget "+engine.String(), func() bool { return !n.known[engine] })
}

// Addr returns the address of n's engine called name, failing the test if
// n has none.
func (n *Node) Addr(t TB, name string) keyholder.Address {
	t.Helper()
	a, ok := n.Engine(name)
	if !ok {
		t.Fatalf("testkit: %s runs no engine %q", n.System().Name(), name)
	}
	return a
}

// Dest is where to call or cast n's engine called name from any node of
// the cluster (it panics if there is none; see Addr).
func (n *Node) Dest(name string) genserver.Dest {
	a, ok := n.Engine(name)
	if !ok {
		panic(fmt.Sprintf("testkit: %s runs no engine %q", n.System().Name(), name))
	}
	return genserver.Name(a.String())
}

func (c *Cluster) link(t TB, i, j int) cable {
	t.Helper()
	if i > j {
		i, j = j, i
	}
	l, ok := c.links[[2]int{i, j}]
	if !ok {
		t.Fatalf("testkit: no link between nodes %d and %d", i, j)
	}
	return l
}

// Cut pulls the link between nodes i and j and returns once both have seen
// their connection go down. The link stays cut until Heal; calls between
// the two fail at once with transport.ErrNoConnection meanwhile, and engines
// learned over it are forgotten after the transport's ForgetGrace.
func (c *Cluster) Cut(t TB, i, j int) {
	t.Helper()
	c.link(t, i, j).setCut(true)
	a, b := c.Nodes[i], c.Nodes[j]
	a.wait(t, "connection to "+b.System().Name()+" still up after a cut", func() bool { return a.conns[b.Router()] == 0 })
	b.wait(t, "connection to "+a.System().Name()+" still up after a cut", func() bool { return b.conns[a.Router()] == 0 })
}

// Heal plugs the link between nodes i and j back in and returns once each
// has learned the other's engines again over the new connection.
func (c *Cluster) Heal(t TB, i, j int) {
	t.Helper()
	a, b := c.Nodes[i], c.Nodes[j]
	snapshot := func(n *Node) map[keyholder.Address]int {
		n.mu.Lock()
		defer n.mu.Unlock()
		m := make(map[keyholder.Address]int, len(n.learns))
		for k, v := range n.learns {
			m[k] = v
		}
		return m
	}
	beforeA, beforeB := snapshot(a), snapshot(b)
	c.link(t, i, j).setCut(false)
	a.wait(t, "no connection to "+b.System().Name()+" after a heal", func() bool { return a.conns[b.Router()] > 0 })
	b.wait(t, "no connection to "+a.System().Name()+" after a heal", func() bool { return b.conns[a.Router()] > 0 })
	a.waitEngines(t, b, beforeA)
	b.waitEngines(t, a, beforeB)
}
