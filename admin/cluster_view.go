package admin

import (
	"cmp"
	"slices"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Member is one member of the node's cluster, as /api/members lists it.
// Package admin does not know package cluster: the node fills these (see
// Source.Members).
type Member struct {
	Node      string   `json:"node"`             // the name its certificate gives
	Router    string   `json:"router"`           // its router address
	Gossip    string   `json:"gossip,omitempty"` // its gossip address, HOST:PORT
	Endpoints []string `json:"endpoints"`        // its transport endpoints, preferred first
	// CertExpires is when its membership certificate expires.
	CertExpires time.Time `json:"cert_expires,omitzero"`
	// Connected: this node has a live transport connection to it (always
	// true for Self).
	Connected bool `json:"connected"`
	// Remote is the endpoint of that connection, when there is one.
	Remote string `json:"remote,omitempty"`
	// Self marks this node.
	Self bool `json:"self,omitempty"`
}

// ClusterStats are the membership counters of a cluster node.
type ClusterStats struct {
	// Admitted counts certificates found valid (by the transport's
	// admission and the gossip alike).
	Admitted uint64 `json:"admitted"`
	// Refused counts certificates refused, by reason: malformed,
	// foreign, bad_signature, router_mismatch, expired, not_yet_valid,
	// denied (every reason present, zero or not).
	Refused map[string]uint64 `json:"refused"`
	// RefusedAlive counts gossip announcements of a member refused (a bad
	// name, metadata or certificate).
	RefusedAlive uint64 `json:"refused_alive"`
	// Joins and JoinErrors count joins through a seed and failed rounds.
	Joins      uint64 `json:"joins"`
	JoinErrors uint64 `json:"join_errors"`
	// MeshConnects, MeshConnectErrors and MeshDisconnects count the
	// connections the full mesh started, failed to start, and dropped
	// (departed or moved members).
	MeshConnects      uint64 `json:"mesh_connects"`
	MeshConnectErrors uint64 `json:"mesh_connect_errors"`
	MeshDisconnects   uint64 `json:"mesh_disconnects"`
}

// Members is the document of /api/members. Cluster is false, and the
// rest empty, when the node is not a member of a cluster
// (Source.Members is nil).
type Members struct {
	Time    time.Time    `json:"time"`
	Cluster bool         `json:"cluster"`
	Members []Member     `json:"members"`
	Stats   ClusterStats `json:"stats"`
}

// members returns the document of /api/members: the members sorted by
// node name, then router.
func (src Source) members() Members {
	doc := Members{Time: time.Now(), Members: []Member{}, Stats: ClusterStats{Refused: map[string]uint64{}}}
	if src.Members == nil {
		return doc
	}
	doc.Cluster = true
	doc.Members = append(doc.Members, src.Members()...)
	for i := range doc.Members {
		if doc.Members[i].Endpoints == nil {
			doc.Members[i].Endpoints = []string{}
		}
	}
	slices.SortFunc(doc.Members, func(a, b Member) int {
		return cmp.Or(cmp.Compare(a.Node, b.Node), cmp.Compare(a.Router, b.Router))
	})
	if src.ClusterStats != nil {
		doc.Stats = src.ClusterStats()
		if doc.Stats.Refused == nil {
			doc.Stats.Refused = map[string]uint64{}
		}
	}
	return doc
}

var (
	descClusterMembers  = desc("cluster_members", "Members of the node's cluster other than itself, by whether a transport connection to them is up.", "state")
	descClusterAdmitted = desc("cluster_admitted_total", "Cluster certificates found valid.")
	descClusterRefused  = desc("cluster_refused_total", "Cluster certificates refused, by reason.", "reason")
	descClusterAlive    = desc("cluster_refused_alive_total", "Gossip announcements of a member refused (bad name, metadata or certificate).")
	descClusterMesh     = desc("cluster_mesh_total", "Connections the cluster's full mesh started, failed to start or dropped.", "event")
	clusterDescs        = []*prometheus.Desc{descClusterMembers, descClusterAdmitted, descClusterRefused, descClusterAlive, descClusterMesh}
)

// collectCluster exports the cluster series, only when src.Members is set.
func (c *Collector) collectCluster(ch chan<- prometheus.Metric) {
	if c.src.Members == nil {
		return
	}
	doc := c.src.members()
	connected, not := 0, 0
	for _, m := range doc.Members {
		switch {
		case m.Self:
		case m.Connected:
			connected++
		default:
			not++
		}
	}
	send(ch, descClusterMembers, prometheus.GaugeValue, float64(connected), "connected")
	send(ch, descClusterMembers, prometheus.GaugeValue, float64(not), "not_connected")
	if c.src.ClusterStats == nil {
		return
	}
	st := doc.Stats
	send(ch, descClusterAdmitted, prometheus.CounterValue, float64(st.Admitted))
	for reason, n := range st.Refused {
		send(ch, descClusterRefused, prometheus.CounterValue, float64(n), reason)
	}
	send(ch, descClusterAlive, prometheus.CounterValue, float64(st.RefusedAlive))
	send(ch, descClusterMesh, prometheus.CounterValue, float64(st.MeshConnects), "connect")
	send(ch, descClusterMesh, prometheus.CounterValue, float64(st.MeshConnectErrors), "connect_error")
	send(ch, descClusterMesh, prometheus.CounterValue, float64(st.MeshDisconnects), "disconnect")
}
