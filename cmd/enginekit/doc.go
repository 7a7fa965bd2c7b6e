// Command enginekit runs enginekit nodes and the tools around them:
//
//	enginekit demo      the runtime at work, as a short narrative; exits by itself
//	enginekit node      a node: example engines, listeners, peers or a cluster, until SIGINT/SIGTERM
//	enginekit call      call an engine on a running node and print the reply
//	enginekit cast      cast a message to an engine on a running node
//	enginekit ps        a running node's processes, from its admin server
//	enginekit status    a running node's connections, peers, supervisors, counters
//	enginekit keygen    create a key file: a router key and engine identities
//	enginekit keys      list the addresses in a key file (no passphrase needed)
//	enginekit cluster   cluster keys and membership certificates
//	enginekit bench     the performance targets beside the machine's limits
//
// "enginekit help" lists them; "enginekit COMMAND --help" gives a command's
// flags. Errors are one line on stderr, with exit status 1 (2 for bad usage).
//
// Where the code is: main.go (the command table and flag handling), node.go
// and node_engines.go (a node.Node from flags; the engines from examples/ it
// can run), call.go (the one-shot client of call and cast, itself a node),
// keys.go (keygen, keys, passphrases), demo.go and demo_nodes.go, bench.go
// (flags over internal/bench), admin.go, ps.go and status.go (admin server
// readers), cluster.go (init, admit, show), cluster_node.go (the cluster
// flags of node) and cluster_relay.go (the relay engine behind call --via).
// Libraries do the work: node starts and stops a node,
// keyholder reads and writes key files.
package main
