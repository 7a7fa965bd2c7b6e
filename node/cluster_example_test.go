package node_test

import (
	"context"
	"fmt"
	"time"

	"github.com/enginekit/enginekit/cluster"
	"github.com/enginekit/enginekit/keyholder"
	"github.com/enginekit/enginekit/node"
)

// A node in a cluster: its certificate, issued here by a cluster key held
// in memory (in practice 'enginekit cluster admit' issues it and the node
// reads it with cluster.ReadCertFile), and the cluster's gossip key. Other
// nodes would join it with Discovery: cluster.Static{its gossip address}.
func Example_cluster() {
	auth, _ := cluster.NewAuthority(nil)
	defer auth.Close()
	kh, _ := keyholder.New(keyholder.Config{})
	defer kh.Close()
	cert, _ := auth.Issue(kh.Router(), "node-1", time.Now(), time.Hour)
	gossipKey, _ := auth.GossipKey()

	n, err := node.Start(context.Background(), node.Config{
		Keys:    node.Keys{Holder: kh},
		Listen:  []node.Listener{{Endpoint: "tcp://127.0.0.1:0"}}, // admits members by certificate
		Cluster: &node.Cluster{Certificate: cert, GossipKey: gossipKey, Gossip: "127.0.0.1:0"},
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer n.Stop(context.Background())
	for _, m := range n.Cluster().Members() {
		fmt.Println(m.Node, m.Self, m.Router == n.Router())
	}
	// Output:
	// node-1 true true
}
