package cluster

import (
	"context"
	"fmt"
	"net"
	"slices"
	"strconv"
	"strings"
)

// Discovery finds seeds: gossip addresses ("host:port") of some members of
// the cluster, to join through. One is enough; the gossip finds the rest.
// Implementations are called from one goroutine at a time, whenever the
// member is alone (at start, and after losing everyone), and must honour ctx.
type Discovery interface {
	Seeds(ctx context.Context) ([]string, error)
}

// Static is a fixed seed list.
type Static []string

// Seeds returns the list.
func (s Static) Seeds(context.Context) ([]string, error) { return slices.Clone(s), nil }

// Resolver is the part of *net.Resolver that DNS uses; tests inject their
// own.
type Resolver interface {
	LookupHost(ctx context.Context, host string) ([]string, error)
	LookupSRV(ctx context.Context, service, proto, name string) (string, []*net.SRV, error)
}

// DNS finds seeds in DNS, as a Kubernetes headless service publishes its
// pods: with Port set, every A/AAAA address of Name at that port; with Port
// zero, the targets and ports of Name's SRV records (Name being the full
// record name, such as "_gossip._udp.nodes.default.svc.cluster.local").
type DNS struct {
	Name     string
	Port     int
	Resolver Resolver // default net.DefaultResolver
}

// MaxSeeds bounds how many seeds one discovery round uses.
const MaxSeeds = 64

// Seeds looks Name up.
func (d DNS) Seeds(ctx context.Context) ([]string, error) {
	r := d.Resolver
	if r == nil {
		r = net.DefaultResolver
	}
	var out []string
	if d.Port != 0 {
		addrs, err := r.LookupHost(ctx, d.Name)
		if err != nil {
			return nil, fmt.Errorf("cluster: discovering %s: %w", d.Name, err)
		}
		for _, a := range addrs {
			out = append(out, net.JoinHostPort(a, strconv.Itoa(d.Port)))
		}
	} else {
		_, srvs, err := r.LookupSRV(ctx, "", "", d.Name)
		if err != nil {
			return nil, fmt.Errorf("cluster: discovering SRV %s: %w", d.Name, err)
		}
		for _, s := range srvs {
			out = append(out, net.JoinHostPort(strings.TrimSuffix(s.Target, "."), strconv.Itoa(int(s.Port))))
		}
	}
	if len(out) > MaxSeeds {
		out = out[:MaxSeeds]
	}
	return out, nil
}

// ParseDiscovery reads a discovery source as the command line gives it:
//
//	dns:NAME:PORT       A/AAAA records of NAME, at PORT
//	dns+srv:NAME        SRV records of NAME
//	HOST:PORT[,HOST:PORT...]  a static list
func ParseDiscovery(s string) (Discovery, error) {
	switch {
	case strings.HasPrefix(s, "dns+srv:"):
		name := strings.TrimPrefix(s, "dns+srv:")
		if name == "" {
			return nil, fmt.Errorf("%w: %q: no name", ErrBadConfig, s)
		}
		return DNS{Name: name}, nil
	case strings.HasPrefix(s, "dns:"):
		host, port, err := net.SplitHostPort(strings.TrimPrefix(s, "dns:"))
		if err != nil || host == "" {
			return nil, fmt.Errorf("%w: %q: want dns:NAME:PORT", ErrBadConfig, short(s))
		}
		p, err := strconv.Atoi(port)
		if err != nil || p < 1 || p > 65535 {
			return nil, fmt.Errorf("%w: %q: bad port", ErrBadConfig, short(s))
		}
		return DNS{Name: host, Port: p}, nil
	}
	var st Static
	for _, hp := range strings.Split(s, ",") {
		if _, _, err := net.SplitHostPort(hp); err != nil {
			return nil, fmt.Errorf("%w: seed %q: want HOST:PORT", ErrBadConfig, short(hp))
		}
		st = append(st, hp)
	}
	return st, nil
}
