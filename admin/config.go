package admin

import (
	"context"
	"errors"
	"fmt"
	"net"
	"time"

	"github.com/enginekit/enginekit/genserver"
	"github.com/enginekit/enginekit/supervisor"
	"github.com/enginekit/enginekit/transport"
	"github.com/rs/zerolog"
)

// Errors of this package.
var (
	// ErrBadConfig: the Config is not usable.
	ErrBadConfig = errors.New("admin: bad config")
	// ErrNotLoopback: Addr reaches beyond this machine and AllowNonLoopback
	// is not set. The error also matches ErrBadConfig.
	ErrNotLoopback = errors.New("admin: address is not loopback")
)

// Defaults for zero Config fields.
const (
	DefaultStateTimeout     = time.Second
	DefaultMaxProcessSeries = 200
	DefaultReadTimeout      = 10 * time.Second
	DefaultShutdownTimeout  = 5 * time.Second
)

// Source is what the admin server and the Collector look at. Every field is
// optional: what is nil is neither served nor exported.
type Source struct {
	// System lists the processes: counts by status, mailbox lengths,
	// messages handled, one process's info and reported state.
	System *genserver.System
	// Supervisors are the roots of the supervision trees to show, in
	// order. Their restarts and intensity are exported as metrics.
	Supervisors []*supervisor.Supervisor
	// Transport gives the connections, the engines learned from each peer,
	// the bytes and frames each way and the drop counters.
	Transport *transport.Transport
	// Members lists the node's cluster members, this node included
	// (Member.Self), for /api/members, the observer's members panel and the
	// enginekit_cluster_* series; nil when the node is not in a cluster,
	// and then none of those is shown. It is called on the requesting
	// goroutine and must be safe for concurrent use.
	Members func() []Member
	// ClusterStats returns the membership counters (certificates admitted
	// and refused by reason, mesh connects and disconnects). Read only
	// when Members is set; nil: all zero.
	ClusterStats func() ClusterStats
}

// Config configures a Server. Zero fields take the defaults documented on
// them (DefaultConfig shows them); only Addr is required.
type Config struct {
	// Addr is the TCP address to listen on, HOST:PORT; port 0 picks a free
	// one (Server.Addr tells which). HOST must be loopback (127.0.0.1,
	// [::1], localhost) unless AllowNonLoopback is set. Required.
	Addr string

	// AllowNonLoopback lets Addr be reachable from other machines. The
	// admin server has no authentication and shows process state, pprof
	// profiles and peer addresses to whoever reaches it, so the default
	// refuses anything but loopback; set this only behind a firewall or an
	// authenticating proxy.
	AllowNonLoopback bool

	// Source is what is shown and exported.
	Source Source

	// Ready reports whether the node is ready to work (listeners up,
	// required peers connected): /readyz answers 200 when it returns nil,
	// and 503 with the error's text otherwise. Default: always ready.
	Ready func() error

	// StateTimeout bounds how long /api/process/{pid} waits for a process
	// to report its state (a stuck process cannot hang the page). The
	// request stays in the process's mailbox for up to a minute after; asking
	// again meanwhile waits for that one instead of queueing another.
	// Default 1 s.
	StateTimeout time.Duration

	// MaxProcessSeries bounds the processes exported one by one in
	// /metrics (supervisor children and named processes, those with the
	// longest mailboxes first); every process is counted in the aggregates. It keeps the
	// number of series bounded however many processes a node runs.
	// Default 200; negative exports none one by one.
	MaxProcessSeries int

	// RuntimeMetrics also exports the Go runtime and OS process collectors
	// (go_* and process_* series) at /metrics. Default off: every series is
	// then named enginekit_*.
	RuntimeMetrics bool

	// ReadTimeout bounds reading a request, headers and body. Default 10 s.
	ReadTimeout time.Duration

	// ShutdownTimeout bounds how long Close waits for requests in flight
	// (a pprof profile can take a while) before cutting them. Default 5 s.
	ShutdownTimeout time.Duration

	// Logger gets the server's start, stop and errors. Default: discard.
	Logger zerolog.Logger
}

// DefaultConfig returns a Config with every default filled in, listening on
// 127.0.0.1 on a port the system picks.
func DefaultConfig() Config {
	return Config{Addr: "127.0.0.1:0"}.withDefaults()
}

func (c Config) withDefaults() Config {
	if c.StateTimeout == 0 {
		c.StateTimeout = DefaultStateTimeout
	}
	if c.MaxProcessSeries == 0 {
		c.MaxProcessSeries = DefaultMaxProcessSeries
	}
	if c.ReadTimeout == 0 {
		c.ReadTimeout = DefaultReadTimeout
	}
	if c.ShutdownTimeout == 0 {
		c.ShutdownTimeout = DefaultShutdownTimeout
	}
	if c.Ready == nil {
		c.Ready = func() error { return nil }
	}
	return c
}

// Verify reports what is wrong with c once defaults are applied, as an error
// wrapping ErrBadConfig (and ErrNotLoopback for an address it refuses), or
// nil. It resolves a host name in Addr to check that every address it
// names is loopback.
func (c Config) Verify() error {
	c = c.withDefaults()
	bad := func(format string, args ...any) error {
		return fmt.Errorf("%w: "+format, append([]any{ErrBadConfig}, args...)...)
	}
	switch {
	case c.Addr == "":
		return bad("no Addr")
	case c.StateTimeout < 0 || c.ReadTimeout < 0 || c.ShutdownTimeout < 0:
		return bad("negative timeout")
	}
	host, _, err := net.SplitHostPort(c.Addr)
	if err != nil {
		return bad("Addr %q: %v", c.Addr, err)
	}
	if c.AllowNonLoopback {
		return nil
	}
	return checkLoopback(c.Addr, host)
}

// checkLoopback refuses a host that is empty (every interface), not an IP
// on the loopback network, or a name that resolves to anything else.
func checkLoopback(addr, host string) error {
	refuse := func(why string) error {
		return fmt.Errorf("%w: %w: %q %s; the admin server has no authentication and exposes process state and profiles, "+
			"so it listens on loopback (127.0.0.1, [::1], localhost) unless AllowNonLoopback is set (--admin-public on the command line)",
			ErrBadConfig, ErrNotLoopback, addr, why)
	}
	if host == "" {
		return refuse("listens on every interface")
	}
	if ip := net.ParseIP(host); ip != nil {
		if !ip.IsLoopback() {
			return refuse("is not a loopback address")
		}
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	ips, err := net.DefaultResolver.LookupIPAddr(ctx, host)
	if err != nil {
		return fmt.Errorf("%w: %q: %v", ErrBadConfig, addr, err)
	}
	for _, ip := range ips {
		if !ip.IP.IsLoopback() {
			return refuse(fmt.Sprintf("resolves to %v, which is not loopback", ip.IP))
		}
	}
	return nil
}
