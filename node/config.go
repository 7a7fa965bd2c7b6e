package node

import (
	"errors"
	"fmt"
	"time"

	"github.com/enginekit/enginekit/admin"
	"github.com/enginekit/enginekit/genserver"
	"github.com/enginekit/enginekit/keyholder"
	"github.com/enginekit/enginekit/netconn"
	"github.com/enginekit/enginekit/payload"
	"github.com/enginekit/enginekit/transport"
	"github.com/rs/zerolog"
)

// ErrBadConfig is wrapped by every error of Config.Verify.
var ErrBadConfig = errors.New("node: bad config")

// Defaults of Config's zero fields.
const (
	DefaultName        = "node"
	DefaultMaxRestarts = 10
	DefaultPeriod      = 10 * time.Second
)

// Config configures a node. Its zero value is valid: a node called "node"
// with keys in memory, no engines, no listeners and no peers.
type Config struct {
	// Name names the node's System, its broker and its engines' supervisor
	// in PIDs and logs. Default "node".
	Name string

	// Logger gets the node's own events (key file written, listening,
	// dialling, engines supervised), with a "component" field those of its
	// System, broker and engines' supervisor, and, unless Transport.Logger
	// (Admin.Logger) is set, the transport's (admin server's). Default: the
	// zero zerolog.Logger, which discards.
	Logger zerolog.Logger

	// Keys says where the router and engine keys come from. Default: new
	// keys in memory, gone when the node stops.
	Keys Keys

	// Registry names the payload types engines exchange; both ends of a
	// connection must register the same names. Default: a new registry
	// with payload.Limits{} defaults. Register functions (such as
	// echo.Register) are applied to it in order.
	Registry *payload.Registry
	Register []func(*payload.Registry) error

	// Engines run under a one-for-one supervisor, in this order, each with
	// the identity the keyholder holds under its Name (created on first
	// use, and kept in the key file when there is one), so an engine keeps
	// its address across restarts of the engine and, with a key file, of
	// the node.
	Engines []Engine

	// MaxRestarts and Period are the restart intensity of the engines'
	// supervisor: more than MaxRestarts restarts within Period and it gives
	// up (Done is closed). Defaults 10 and 10 s.
	MaxRestarts int
	Period      time.Duration

	// Listen are the listeners for other nodes and clients.
	Listen []Listener

	// Peers are the nodes to keep a connection to.
	Peers []Peer

	// RequirePeers makes Start dial each peer once, before anything starts,
	// and fail if one does not answer. Default false: peers that are down are
	// dialled in the background until they come up.
	RequirePeers bool

	// Admin, when set, runs an admin server for the node (package admin:
	// Prometheus metrics, pprof, health and readiness, the observer page,
	// what `enginekit ps` and `status` read). The node fills in whatever of
	// Admin.Source is empty with its System, its engines' supervisor and its
	// transport (with Cluster, also Members and ClusterStats: the gossip's
	// members joined with the live connections), and an unset Admin.Ready with a check that the node runs
	// and has a connection to every one of Peers and, with Cluster, to
	// every member the gossip knows (/readyz answers 503 and names the
	// missing ones). Its address is checked with the listeners,
	// before anything starts; the server starts last and stops first.
	// Default: none.
	Admin *admin.Config

	// Cluster, when set, makes the node a member of a cluster: admitted by
	// its membership certificate, admitting by theirs, finding the other
	// members by gossip and keeping a connection to each (see Cluster). A
	// listener without Accept then admits cluster members (and Peers).
	// Default: none.
	Cluster *Cluster

	// Transport configures the transport. Leave System, Keyholder, Registry
	// and Broker nil: the node sets them. Zero fields take the transport's
	// documented defaults (Auth: signatures; ForgetGrace: 5 s).
	Transport transport.Config
}

// Keys says where a node's keys come from: a Holder the caller made, else a
// key file, else new keys in memory.
type Keys struct {
	// Holder is a keyholder the caller owns: the node uses it and does not
	// close it. File must then be empty.
	Holder *keyholder.Keyholder

	// File is the path of an encrypted key file (keyholder/keyfile.md). It
	// is created on first use with a new router key; identities of engines
	// missing from it are added and the file rewritten, before any engine
	// starts.
	File string

	// Passphrase returns the key file's passphrase; create says whether the
	// file is about to be created (a prompt may then ask twice). It is
	// called at most once per Start, only when File is set. The node zeroes
	// the returned slice after use. Required with File.
	Passphrase func(create bool) ([]byte, error)

	// KDF is the argon2id cost used when the node writes the key file.
	// Default keyholder.DefaultKDFParams().
	KDF keyholder.KDFParams
}

// Engine is one engine of the node. Exactly one of Factory and NewFactory is
// set.
type Engine struct {
	// Name is the engine's name in the keyholder (its identity) and its
	// child ID under the supervisor: 1 to 255 bytes, unique in the node.
	Name string

	// Factory makes a fresh server for each incarnation.
	Factory func() genserver.Server

	// NewFactory, for engines that need the node (its Broker, its System),
	// is called once per Start, after the transport is up and before the
	// engine first starts; what the factory it returns closes over outlives
	// the engine's incarnations.
	NewFactory func(n *Node) (func() genserver.Server, error)

	// Options go to transport.Transport.Engine (e.g. a subscription).
	Options []transport.EngineOption
}

// Listener is one listening endpoint.
type Listener struct {
	// Endpoint is tcp://HOST:PORT (port 0 picks a free port) or
	// unix:///path (a socket file that no process listens on any more is
	// replaced).
	Endpoint string

	// Accept says which routers may connect. Default: only the routers of
	// Config.Peers; with no peers that admits no one, which Verify refuses.
	Accept netconn.AcceptPolicy
}

// Peer is a node to keep a connection to.
type Peer struct {
	// Endpoint is where it listens: tcp://HOST:PORT or unix:///path.
	Endpoint string
	// Router is the router key it must prove (pinned in TLS 1.3).
	Router keyholder.Address
}

// DefaultConfig returns the Config that a zero Config stands for, with
// the defaults written out: Name DefaultName, MaxRestarts
// DefaultMaxRestarts, Period DefaultPeriod; new keys in memory, no
// listeners, peers or engines.
func DefaultConfig() Config { return Config{}.withDefaults() }

func (c Config) withDefaults() Config {
	if c.Name == "" {
		c.Name = DefaultName
	}
	if c.MaxRestarts == 0 {
		c.MaxRestarts = DefaultMaxRestarts
	}
	if c.Period == 0 {
		c.Period = DefaultPeriod
	}
	return c
}

// Verify returns an error wrapping ErrBadConfig that names the first thing
// wrong with c, or nil. Start calls it before it touches anything.
func (c Config) Verify() error {
	c = c.withDefaults()
	bad := func(format string, args ...any) error {
		return fmt.Errorf("%w: "+format, append([]any{ErrBadConfig}, args...)...)
	}
	switch {
	case c.Keys.Holder != nil && c.Keys.File != "":
		return bad("Keys.Holder and Keys.File are both set")
	case c.Keys.File != "" && c.Keys.Passphrase == nil:
		return bad("Keys.File %s needs Keys.Passphrase", c.Keys.File)
	case c.Period < 0:
		return bad("negative Period")
	case c.Transport.System != nil || c.Transport.Keyholder != nil || c.Transport.Registry != nil || c.Transport.Broker != nil:
		return bad("Transport.System, Keyholder, Registry and Broker are the node's to set")
	case c.Transport.Auth != netconn.Signatures && c.Transport.Auth != netconn.MACs:
		return bad("unknown Transport.Auth %d", int(c.Transport.Auth))
	case c.Transport.ForgetGrace < 0:
		return bad("negative Transport.ForgetGrace")
	}
	if c.Cluster != nil {
		if err := c.Cluster.verify(c); err != nil {
			return err
		}
	}
	if c.Admin != nil {
		if err := c.Admin.Verify(); err != nil { // a non-loopback address, say, before anything starts
			return fmt.Errorf("%w: Admin: %w", ErrBadConfig, err)
		}
	}
	for i, r := range c.Register {
		if r == nil {
			return bad("Register[%d] is nil", i)
		}
	}
	seen := make(map[string]bool)
	for i, e := range c.Engines {
		switch {
		case e.Name == "" || len(e.Name) > 255:
			return bad("Engines[%d]: name %q must be 1 to 255 bytes", i, e.Name)
		case seen[e.Name]:
			return bad("engine %q given twice", e.Name)
		case (e.Factory == nil) == (e.NewFactory == nil):
			return bad("engine %q: set exactly one of Factory and NewFactory", e.Name)
		}
		seen[e.Name] = true
	}
	for _, l := range c.Listen {
		if _, _, err := transport.ParseEndpoint(l.Endpoint); err != nil {
			return bad("listen %q: %v", l.Endpoint, err)
		}
		if l.Accept == nil && len(c.Peers) == 0 && c.Cluster == nil {
			return bad("listen %s would admit no one: set its Accept (netconn.AcceptAny, netconn.AllowOnly) or give Peers", l.Endpoint)
		}
	}
	for _, p := range c.Peers {
		if _, _, err := transport.ParseEndpoint(p.Endpoint); err != nil {
			return bad("peer %q: %v", p.Endpoint, err)
		}
		if p.Router == (keyholder.Address{}) {
			return bad("peer %s: no Router", p.Endpoint)
		}
	}
	return nil
}
