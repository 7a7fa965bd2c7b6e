package node

import (
	"errors"
	"fmt"
	"net"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/enginekit/enginekit/admin"
	"github.com/enginekit/enginekit/cluster"
	"github.com/enginekit/enginekit/keyholder"
	"github.com/enginekit/enginekit/transport"
	"github.com/hashicorp/memberlist"
)

// DefaultGossip is where a cluster node's gossip listens when
// Cluster.Gossip is empty (memberlist's usual port, on loopback).
const DefaultGossip = "127.0.0.1:7946"

// ErrWrongCertificate is wrapped by Start's error when the cluster
// certificate names another router than the node's own (it was issued for
// another key file).
var ErrWrongCertificate = errors.New("node: cluster certificate is for another router")

// Cluster makes the node a member of a cluster (package cluster): it
// presents its certificate to every peer, admits every peer presenting a
// valid certificate of the same cluster (beside the routers its listeners'
// Accept and Peers admit), finds the other members by gossip, and keeps a
// transport connection to each of them. See docs/clusters.md.
type Cluster struct {
	// Certificate is the node's membership certificate
	// (cluster.ReadCertFile); it must name the node's router and be valid
	// now. The cluster key it carries is the one trusted. Required.
	Certificate *cluster.Certificate

	// GossipKey encrypts the gossip (cluster.ReadGossipKeyFile): the
	// cluster's, shared by every member. Required.
	GossipKey []byte

	// Discovery finds members to join through: cluster.Static (seed
	// gossip addresses) or cluster.DNS. nil: none, the node waits to be
	// joined (the first node of a cluster).
	Discovery cluster.Discovery

	// Deny revokes certificates and routers (cluster.ReadDenyListFile), for
	// the transport's admission and the membership alike. Default: none.
	Deny *cluster.DenyList

	// Gossip is the HOST:PORT the gossip binds, UDP and TCP. Default
	// DefaultGossip; port 0 picks a free one (Node.Cluster's
	// Membership().Addr tells which). A busy port fails Start before
	// anything starts.
	Gossip string

	// Endpoints are the transport endpoints advertised to the other
	// members, preferred first (at most cluster.MaxEndpoints). Default:
	// the node's listen addresses as bound, TCP first, without wildcard
	// addresses (0.0.0.0, [::]); Start fails if that leaves none. Set it
	// when the node listens on a wildcard address or behind NAT.
	Endpoints []string

	// JoinInterval is how often a node that is alone runs Discovery again.
	// Default cluster.DefaultJoinInterval.
	JoinInterval time.Duration

	// DepartGrace is how long a member may be missing from the gossip
	// before the node drops its connection. Default
	// cluster.DefaultDepartGrace.
	DepartGrace time.Duration

	// Tune adjusts memberlist's configuration (timings for tests or a
	// WAN); see cluster.Config.Tune. Default: memberlist's LAN defaults.
	Tune func(*memberlist.Config)
}

func (c Cluster) gossip() string {
	if c.Gossip == "" {
		return DefaultGossip
	}
	return c.Gossip
}

// verify checks what can be checked without the keys.
func (c Cluster) verify(cfg Config) error {
	bad := func(format string, args ...any) error {
		return fmt.Errorf("%w: Cluster: "+format, append([]any{ErrBadConfig}, args...)...)
	}
	switch {
	case c.Certificate == nil:
		return bad("no Certificate")
	case len(c.GossipKey) == 0:
		return bad("no GossipKey")
	case len(c.GossipKey) != 16 && len(c.GossipKey) != 24 && len(c.GossipKey) != 32:
		return bad("GossipKey of %d bytes, want 16, 24 or 32", len(c.GossipKey))
	case c.JoinInterval < 0 || c.DepartGrace < 0:
		return bad("negative JoinInterval or DepartGrace")
	case len(cfg.Listen) == 0 && len(c.Endpoints) == 0:
		return bad("no Listen and no Endpoints: the other members could not reach this node")
	case len(cfg.Transport.Net.Credential) > 0 || cfg.Transport.Net.AdmitCredential != nil:
		return bad("Transport.Net.Credential and AdmitCredential are the node's to set")
	case len(c.Endpoints) > cluster.MaxEndpoints:
		return bad("%d Endpoints, at most %d", len(c.Endpoints), cluster.MaxEndpoints)
	}
	if err := c.Certificate.Verify(); err != nil {
		return bad("certificate: %v", err)
	}
	host, port, err := net.SplitHostPort(c.gossip())
	if p, perr := strconv.Atoi(port); err != nil || host == "" || perr != nil || p < 0 || p > 65535 {
		return bad("Gossip %q: want HOST:PORT", c.Gossip)
	}
	for _, ep := range c.Endpoints {
		if _, _, err := transport.ParseEndpoint(ep); err != nil {
			return bad("endpoint %q: %v", ep, err)
		}
	}
	return nil
}

// clusterVerifier checks the node's own certificate against its router and
// the clock, and returns the verifier the transport and the membership
// share.
func clusterVerifier(c *Cluster, router keyholder.Address) (*cluster.Verifier, error) {
	cert := c.Certificate
	if cert.Router != router {
		return nil, fmt.Errorf("%w: it names %s (node %q), this node's router is %s", ErrWrongCertificate, cert.Router, cert.Node, router)
	}
	v, err := cluster.NewVerifier(cluster.VerifierConfig{Cluster: cert.Cluster, Deny: c.Deny})
	if err != nil {
		return nil, err
	}
	if _, err := v.Check(router, cert.Bytes()); err != nil {
		return nil, fmt.Errorf("node: own cluster certificate: %w", err)
	}
	return v, nil
}

// checkGossip binds the gossip address, TCP and UDP, once and lets it go,
// so that a busy port fails Start before anything starts.
func checkGossip(addr string) error {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return netErr(err)
	}
	defer ln.Close()
	if _, port, _ := net.SplitHostPort(addr); port == "0" {
		return nil // memberlist picks a port free for both
	}
	pc, err := net.ListenPacket("udp", addr)
	if err != nil {
		return netErr(err)
	}
	return pc.Close()
}

// startCluster starts the cluster agent: the membership (joining through
// Discovery) and the mesh that keeps a connection to every member.
func (n *Node) startCluster(v *cluster.Verifier) error {
	c := n.cfg.Cluster
	host, portText, _ := net.SplitHostPort(c.gossip())
	port, _ := strconv.Atoi(portText)
	eps := c.Endpoints
	if len(eps) == 0 {
		if eps = advertised(n.listen); len(eps) == 0 {
			return fmt.Errorf("%w: Cluster: no listen address other members can dial (%s): set Cluster.Endpoints", ErrBadConfig, strings.Join(n.listen, ", "))
		}
	}
	a, err := cluster.NewAgent(cluster.AgentConfig{
		Config: cluster.Config{
			Certificate:  c.Certificate,
			Verifier:     v,
			GossipKey:    c.GossipKey,
			Endpoints:    eps,
			BindAddr:     host,
			BindPort:     port,
			Discovery:    c.Discovery,
			JoinInterval: c.JoinInterval,
			Tune:         c.Tune,
			Logger:       n.log.With().Str("component", "cluster").Logger(),
		},
		Connector:   n.tr,
		DepartGrace: c.DepartGrace,
	})
	if err != nil {
		return fmt.Errorf("node: cluster: %w", err)
	}
	if n.clusterRun, err = startBackground(a, n.ended("cluster agent")); err != nil {
		return fmt.Errorf("node: cluster gossip at %s: %w", c.gossip(), err)
	}
	n.cluster = a
	n.log.Info().Str("event", "cluster").Str("gossip", a.Membership().Addr()).Str("node", c.Certificate.Node).
		Stringer("cluster", c.Certificate.Cluster).Msg("cluster member")
	return nil
}

// advertised picks, from the bound listen addresses, those other members
// can dial: TCP ones first (the mesh dials the first), then Unix sockets
// (for members on the same machine); not a wildcard address such as
// 0.0.0.0, which would make the dialler connect to itself. At most
// cluster.MaxEndpoints.
func advertised(listen []string) []string {
	var tcp, other []string
	for _, ep := range listen {
		network, addr, err := transport.ParseEndpoint(ep)
		if err != nil {
			continue
		}
		if network != "tcp" {
			other = append(other, ep)
			continue
		}
		host, _, err := net.SplitHostPort(addr)
		if ip := net.ParseIP(host); err != nil || host == "" || (ip != nil && ip.IsUnspecified()) {
			continue
		}
		tcp = append(tcp, ep)
	}
	eps := append(tcp, other...)
	return eps[:min(len(eps), cluster.MaxEndpoints)]
}

// clusterReady is the admin server's readiness check of a cluster node:
// it has a connection to every member the gossip knows (the mesh has
// caught up). A node alone in its cluster is ready.
func (n *Node) clusterReady() error {
	if n.cluster == nil {
		return nil
	}
	up := map[keyholder.Address]bool{}
	for _, c := range n.tr.Connections() {
		up[c.Peer] = true
	}
	var missing []string
	for _, m := range n.cluster.Members() {
		if !m.Self && !up[m.Router] {
			missing = append(missing, m.Node+" ("+m.Router.String()+")")
		}
	}
	if len(missing) > 0 {
		return fmt.Errorf("%w: no connection yet to cluster member %s", admin.ErrNotReady, strings.Join(missing, ", "))
	}
	return nil
}

// Cluster is the node's cluster agent (members, gossip address, mesh and
// counters), nil without Config.Cluster.
func (n *Node) Cluster() *cluster.Agent { return n.cluster }

// adminMembers is the admin Source's Members of a cluster node: the
// gossip's members joined with the transport's live connections.
func (n *Node) adminMembers() []admin.Member {
	remote := map[keyholder.Address]string{}
	for _, c := range n.tr.Connections() {
		if _, ok := remote[c.Peer]; !ok || c.Remote != "" {
			remote[c.Peer] = c.Remote
		}
	}
	ms := n.cluster.Members()
	out := make([]admin.Member, 0, len(ms))
	for _, m := range ms {
		r, up := remote[m.Router]
		v := admin.Member{Node: m.Node, Router: m.Router.String(), Gossip: m.Gossip,
			Endpoints: slices.Clone(m.Endpoints), Connected: up || m.Self, Remote: r, Self: m.Self}
		if m.Certificate != nil {
			v.CertExpires = m.Certificate.Expires
		}
		out = append(out, v)
	}
	return out
}

// adminClusterStats is the admin Source's ClusterStats: the verifier's
// answers by reason, the membership's and the mesh's counters.
func (n *Node) adminClusterStats() admin.ClusterStats {
	v := n.cluster.Membership().Verifier().Stats()
	ms := n.cluster.Membership().Stats()
	mesh := n.cluster.Mesh().Stats()
	return admin.ClusterStats{
		Admitted: v.Admitted,
		Refused: map[string]uint64{
			"malformed":       v.Malformed,
			"foreign":         v.Foreign,
			"bad_signature":   v.BadSignature,
			"router_mismatch": v.RouterMismatch,
			"expired":         v.Expired,
			"not_yet_valid":   v.NotYetValid,
			"denied":          v.Denied,
		},
		RefusedAlive:      ms.RefusedAlive,
		Joins:             ms.Joins,
		JoinErrors:        ms.JoinErrors,
		MeshConnects:      mesh.Connects,
		MeshConnectErrors: mesh.ConnectErrors,
		MeshDisconnects:   mesh.Disconnects,
	}
}
