// Package testkit tests engines across nodes: it starts N real nodes
// (node.Start) in the test's process, connects every pair over loopback TCP,
// Unix sockets in a temporary directory, or in-memory pipes, waits until each
// node has learned the engines of the others, cuts and heals the links
// between them, and checks at cleanup that nothing leaked a goroutine.
//
//	func TestCounterAcrossNodes(t *testing.T) {
//		c := testkit.Start(t, testkit.Options{
//			Register: []func(*payload.Registry) error{counter.Register},
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
// For each pair i < j, node i listens (on a fresh endpoint, port 0 or a
// socket file, or on a netconn.PipeListener with Memory) admitting only the
// routers of the cluster, and node j dials it through a link: for sockets a
// relay on its own endpoint, for Memory a wrapper of the pipe listener's
// Dial. Cut closes the link's connections, like a pulled cable, and keeps
// refusing new ones until Heal. Node j redials with a short backoff
// (5–50 ms) the whole time, so a healed link comes back within one backoff
// step. Each node's transport uses Options.Auth on every connection.
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
