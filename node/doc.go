// Package node runs one enginekit node: a genserver System, its keys, the
// payload registry, the event broker, the transport with its listeners and
// peers, and the node's engines under a one-for-one supervisor. Start brings
// all of it up in order and returns once the node is ready; Stop takes it
// down in the reverse order.
//
// # Starting
//
//	n, err := node.Start(ctx, node.Config{
//		Name:     "alice",
//		Register: []func(*payload.Registry) error{echo.Register},
//		Engines:  []node.Engine{{Name: "echo", Factory: echo.New}},
//		Listen:   []node.Listener{{Endpoint: "tcp://127.0.0.1:7001", Accept: netconn.AcceptAny}},
//	})
//	if err != nil { ... }
//	defer n.Stop(context.Background())
//
// Start checks the whole Config first (Verify), then:
//
//  1. opens the key file, or makes keys in memory, and gives every engine an
//     identity (new ones are not written yet);
//  2. binds each listen address once and lets it go, so that a busy port or
//     socket fails Start before any engine runs and before a key file is
//     created or rewritten; with RequirePeers, dials each peer once, for the
//     same reason;
//  3. writes the key file if it is new or gained engine identities;
//  4. makes the System, the registry and the broker, and starts the transport;
//  5. starts the engines' supervisor, each engine under its own identity, and
//     waits until every engine has started;
//  6. listens on each listener (port 0 picks a free port: ListenAddrs tells
//     which) and starts dialling each peer, re-dialled with backoff whenever
//     the connection drops;
//  7. with Config.Cluster, starts the cluster agent (package cluster): the
//     gossip membership joins through Cluster.Discovery and the mesh keeps a
//     connection to every member; the transport presents the node's
//     certificate and admits members by theirs (step 2 checked that the
//     certificate names this node's router and is valid, and bound the
//     gossip address once);
//  8. with Config.Admin, starts the admin server (package admin), whose
//     address step 2 checked too.
//
// A failure at any step undoes the steps before it.
//
// # Stopping
//
// Stop closes the admin server, then stops the engines (each engine's stop
// tells every peer to forget it), then the cluster agent (leaving the
// gossip and dropping the mesh's connections), then the transport (which says farewell to its peers and closes the
// connections, flushing what is queued), then the System and, when the node
// made it, the keyholder. It is the only order that neither loses the last
// messages nor makes the supervisor restart engines whose System is gone.
// Stop is safe to call more than once and from any goroutine.
//
// The transport and the engines' supervisor are siblings driven by the node
// rather than children of one root supervisor: a transport cannot usefully be
// restarted under the same listeners. If either ends on its own (the engines'
// supervisor gives up after too many restarts), Done is closed and Err says
// why; the caller decides, usually by calling Stop and exiting.
//
// # What a node does not own
//
// Getting the passphrase (environment, terminal, secret store) is the
// caller's business: Config.Keys.Passphrase is asked for it only when a key
// file is read or created. Logging goes to Config.Logger only.
package node
