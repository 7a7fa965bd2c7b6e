package main

import (
	"errors"
	"fmt"
	"net"
	"os"
	"strings"

	"github.com/enginekit/enginekit/cluster"
	"github.com/enginekit/enginekit/node"
)

// The cluster flags of `enginekit node`: they turn into a node.Cluster.

const clusterNodeHelp = `
In a cluster (docs/clusters.md), --cluster-cert and --gossip-key make the
node a member: it presents its certificate to every peer and admits every
peer presenting a valid certificate of the same cluster, so its listeners
need no --accept and no --peer between members ('enginekit call' clients
still need --accept any: their keys are new on every run). It finds the
other members by gossip, through one --join seed (any member's gossip
address) or --discover, and keeps one connection to each of them. The
first node of a cluster needs no seed; given its own gossip address as
--join it skips it, so every node can be given the same seed. In a
cluster the node also prints

  gossip HOST:PORT        the gossip address as bound (what others --join)

before "ready".`

// clusterFlags are the cluster flags of `enginekit node`.
type clusterFlags struct {
	cert, gossipKey, discover, gossip, deny *string
	joins, advertise                        stringsFlag
}

func addClusterFlags(fs *flags) *clusterFlags {
	c := &clusterFlags{
		cert:      fs.String("cluster-cert", "", "join a cluster with this membership certificate `file` ('enginekit cluster admit')"),
		gossipKey: fs.String("gossip-key", "", "the cluster's gossip key `file` (mode 0600); required with --cluster-cert"),
		discover:  fs.String("discover", "", "find members in DNS: `dns:NAME:PORT` (A/AAAA records at PORT) or dns+srv:NAME"),
		gossip:    fs.String("gossip", node.DefaultGossip, "bind the cluster gossip (UDP and TCP) at `HOST:PORT`; port 0 picks one"),
		deny:      fs.String("deny", "", "deny list `file` of revoked routers and certificates ('router ADDRESS', 'cert ID' lines)"),
	}
	fs.Var(&c.joins, "join", "join the cluster through the member gossiping at `HOST:PORT` (repeatable)")
	fs.Var(&c.advertise, "advertise", "tell the other members to dial this `ENDPOINT` (repeatable, preferred first; default:\nthe --listen addresses, TCP first, without wildcard addresses such as 0.0.0.0)")
	return c
}

// set reports whether any cluster flag was given.
func (c *clusterFlags) set() bool {
	return *c.cert != "" || *c.gossipKey != "" || *c.discover != "" || *c.deny != "" || len(c.joins) > 0 || len(c.advertise) > 0 || *c.gossip != node.DefaultGossip
}

// config checks the flags and reads their files: nil without
// --cluster-cert. Errors are one line naming the flag.
func (c *clusterFlags) config() (*node.Cluster, error) {
	if *c.cert == "" {
		if c.set() {
			return nil, fmt.Errorf("%w: --gossip-key, --join, --discover, --gossip, --advertise and --deny need --cluster-cert", errUsage)
		}
		return nil, nil
	}
	switch {
	case *c.gossipKey == "":
		return nil, fmt.Errorf("%w: --cluster-cert needs --gossip-key (the cluster's, from 'enginekit cluster init --gossip-key-out')", errUsage)
	case len(c.joins) > 0 && *c.discover != "":
		return nil, fmt.Errorf("%w: give --join or --discover, not both", errUsage)
	}
	if host, port, err := net.SplitHostPort(*c.gossip); err != nil || host == "" || port == "" {
		return nil, fmt.Errorf("%w: --gossip %q: want HOST:PORT", errUsage, *c.gossip)
	}
	var disc cluster.Discovery
	if len(c.joins) > 0 {
		var seeds cluster.Static
		for _, j := range c.joins {
			if strings.Contains(j, "://") {
				return nil, fmt.Errorf("%w: --join %q: want the gossip HOST:PORT of a member, not a transport endpoint", errUsage, j)
			}
			if _, _, err := net.SplitHostPort(j); err != nil {
				return nil, fmt.Errorf("%w: --join %q: want HOST:PORT", errUsage, j)
			}
			seeds = append(seeds, j)
		}
		disc = seeds
	}
	if *c.discover != "" {
		if !strings.HasPrefix(*c.discover, "dns:") && !strings.HasPrefix(*c.discover, "dns+srv:") {
			return nil, fmt.Errorf("%w: --discover %q: want dns:NAME:PORT or dns+srv:NAME (seed addresses go to --join)", errUsage, *c.discover)
		}
		d, err := cluster.ParseDiscovery(*c.discover)
		if err != nil {
			return nil, fmt.Errorf("%w: --discover: %v", errUsage, strings.TrimPrefix(err.Error(), cluster.ErrBadConfig.Error()+": "))
		}
		disc = d
	}
	if len(c.advertise) > cluster.MaxEndpoints {
		return nil, fmt.Errorf("%w: --advertise given %d times, at most %d", errUsage, len(c.advertise), cluster.MaxEndpoints)
	}
	for _, ep := range c.advertise {
		if err := checkEndpoint("--advertise", ep); err != nil {
			return nil, err
		}
	}
	cert, err := cluster.ReadCertFile(*c.cert)
	if err != nil {
		return nil, fmt.Errorf("--cluster-cert: %w", fileErr(err))
	}
	gk, err := cluster.ReadGossipKeyFile(*c.gossipKey)
	if err != nil {
		return nil, fmt.Errorf("--gossip-key: %w", fileErr(err))
	}
	cfg := &node.Cluster{Certificate: cert, GossipKey: gk, Discovery: disc, Gossip: *c.gossip, Endpoints: c.advertise}
	if *c.deny != "" {
		if cfg.Deny, err = cluster.ReadDenyListFile(*c.deny); err != nil {
			return nil, fmt.Errorf("--deny: %w", fileErr(err))
		}
	}
	return cfg, nil
}

// fileErr shortens a missing file's error to its path.
func fileErr(err error) error {
	var pe *os.PathError
	if errors.As(err, &pe) && errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("no such file %s", pe.Path)
	}
	return err
}

// clusterStartErr turns node.Start's cluster errors into what to do.
func clusterStartErr(err error, certPath string) error {
	switch {
	case errors.Is(err, node.ErrWrongCertificate):
		return fmt.Errorf("--cluster-cert %s: %v; issue one for this node's router with 'enginekit cluster admit --router ROUTER'", certPath,
			strings.TrimPrefix(err.Error(), node.ErrWrongCertificate.Error()+": "))
	case errors.Is(err, cluster.ErrExpired), errors.Is(err, cluster.ErrNotYetValid), errors.Is(err, cluster.ErrDenied):
		return fmt.Errorf("--cluster-cert %s: %v", certPath, err)
	}
	return err
}
