// Package testkit tests engines across nodes: it starts N real nodes
// (node.Start) in the test's process, connects every pair over loopback TCP
// or Unix sockets in a temporary directory, waits until each node has
// learned the engines of the others, cuts and heals the links between them,
// and checks at cleanup that nothing leaked a goroutine.
//
//	func TestCounterAcrossNodes(t *testing.T) {
//		c := testkit.Start(t, testkit.Options{
//			Register: []func(*wire.Registry) error{counter.Register},
//			Engines:  []node.Engine{{Name: "counter", Factory: counter.New}},
//		})
//		a, b := c.Nodes[0], c.Nodes[1]
//		n, err := genserver.Call[int](ctx, b.System(), a.Dest("counter"), counter.Get{})
//		...
//		c.Cut(t, 0, 1)  // returns once both ends saw the link go down
//		c.Heal(t, 0, 1) // returns once both ends learned each other's engines again
//	}
//
// # The links
//
// For each pair i < j, node j listens on a fresh endpoint (port 0, or a
// socket file) that admits only the routers of the cluster, and node i
// dials it through a link: a relay on its own endpoint that Cut closes,
// like a pulled cable, and keeps refusing (accepting and hanging up) until
// Heal. Node i redials with a short backoff (5–50 ms) the whole time, so a
// healed link comes back within one backoff step. Each node's transport
// uses Options.Auth on every connection.
//
// In-memory connections (netconn.PipeListener) need the transport to accept
// a net.Listener and a dial function (transport ListenOn and ConnectWith);
// until it does, TCP and Unix sockets are the networks on offer.
//
// # Waiting
//
// Nothing here sleeps. Start, Cut and Heal return once the nodes have
// reported what they wait for (learn and connection events from the
// transport), or fail the test after Options.Timeout (20 s). Node.WaitLearn
// and Node.WaitForget wait for one engine of a test's own, spawned later.
//
// # Leaks
//
// At cleanup the nodes are stopped in order (node.Node.Stop) and then, unless
// Options.NoLeakCheck, goleak checks that no goroutine started since Start is
// still running: a leak in the test's own engines fails the test that made
// it. Parallel tests start goroutines of their own meanwhile; set
// NoLeakCheck in those and use Main (goleak over the whole package) instead.
package testkit
