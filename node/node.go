package node

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"reflect"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/enginekit/enginekit/admin"
	"github.com/enginekit/enginekit/cluster"
	"github.com/enginekit/enginekit/events"
	"github.com/enginekit/enginekit/genserver"
	"github.com/enginekit/enginekit/keyholder"
	"github.com/enginekit/enginekit/payload"
	"github.com/enginekit/enginekit/supervisor"
	"github.com/enginekit/enginekit/transport"
	"github.com/rs/zerolog"
	"github.com/thejerf/suture/v4"
)

// ErrStopped is what Err returns after Stop when nothing failed before it.
var ErrStopped = errors.New("node: stopped")

// Node is a running node. Its accessors may be called from any goroutine.
type Node struct {
	cfg     Config
	log     zerolog.Logger
	sys     *genserver.System
	kh      *keyholder.Keyholder
	ownKeys bool
	reg     *payload.Registry
	broker  *events.Broker
	tr      *transport.Transport
	sup     *supervisor.Supervisor
	engines []EngineInfo
	listen  []string

	trRun, supRun *background
	admin         *admin.Server
	cluster       *cluster.Agent
	clusterRun    *background

	done     chan struct{} // closed when the transport or the supervisor ended, or on Stop
	doneOnce sync.Once
	errMu    sync.Mutex
	err      error

	stopOnce sync.Once
	stopErr  error
}

// EngineInfo names one running engine.
type EngineInfo struct {
	Name    string
	Address keyholder.Address
}

// Start starts a node as cfg says (see the package doc for the order) and
// returns once it is ready: every engine started, every listener bound,
// every peer being dialled. ctx bounds the start only; the node runs until
// Stop.
func Start(ctx context.Context, cfg Config) (_ *Node, err error) {
	if err := cfg.Verify(); err != nil {
		return nil, err
	}
	cfg = cfg.withDefaults()
	n := &Node{cfg: cfg, log: cfg.Logger, done: make(chan struct{})}

	// 1. Keys, without writing anything yet.
	kf, err := n.openKeys()
	if err != nil {
		return nil, err
	}
	defer func() {
		if err != nil && n.ownKeys {
			n.kh.Close()
		}
	}()

	// 2. Everything that can fail from outside, before anything runs or is
	// written.
	for _, l := range cfg.Listen {
		if err := checkListen(l.Endpoint); err != nil {
			return nil, fmt.Errorf("listen %s: %w", l.Endpoint, err)
		}
	}
	if cfg.Admin != nil {
		if err := checkListen("tcp://" + cfg.Admin.Addr); err != nil {
			return nil, fmt.Errorf("admin %s: %w", cfg.Admin.Addr, err)
		}
	}
	var verifier *cluster.Verifier
	if cfg.Cluster != nil {
		if verifier, err = clusterVerifier(cfg.Cluster, n.kh.Router()); err != nil {
			return nil, err
		}
		if err := checkGossip(cfg.Cluster.gossip()); err != nil {
			return nil, fmt.Errorf("cluster gossip %s: %w", cfg.Cluster.gossip(), err)
		}
	}
	if cfg.RequirePeers {
		for _, p := range cfg.Peers {
			if err := probe(ctx, p.Endpoint); err != nil {
				return nil, fmt.Errorf("%w: peer %s is unreachable: %v", ErrPeerDown, p.Endpoint, err)
			}
		}
	}

	// 3. The key file.
	if err := kf.save(n); err != nil {
		return nil, err
	}

	// 4. System, registry, broker, transport.
	n.sys = genserver.NewSystem(genserver.Config{Name: cfg.Name, Logger: n.log.With().Str("component", "genserver").Logger()})
	defer func() {
		if err != nil {
			n.stopStarted()
		}
	}()
	if n.reg = cfg.Registry; n.reg == nil {
		if n.reg, err = payload.NewRegistry(payload.Limits{}); err != nil {
			return nil, err
		}
	}
	for _, r := range cfg.Register {
		if err := r(n.reg); err != nil {
			return nil, fmt.Errorf("node: registering payload types: %w", err)
		}
	}
	if n.broker, err = events.NewBroker(n.sys, events.Config{Name: cfg.Name, Logger: n.log.With().Str("component", "events").Logger()}); err != nil {
		return nil, err
	}
	tcfg := cfg.Transport
	tcfg.System, tcfg.Keyholder, tcfg.Registry, tcfg.Broker = n.sys, n.kh, n.reg, n.broker
	if reflect.ValueOf(tcfg.Logger).IsZero() { // not set: the node's
		tcfg.Logger = n.log.With().Str("component", "transport").Logger()
	}
	if verifier != nil { // we present our certificate and admit members by theirs
		tcfg.Net.Credential = cfg.Cluster.Certificate.Bytes()
		tcfg.Net.AdmitCredential = verifier.Admit
	}
	if n.tr, err = transport.New(tcfg); err != nil {
		return nil, err
	}
	if n.trRun, err = startBackground(n.tr, n.ended("transport")); err != nil {
		return nil, fmt.Errorf("node: starting the transport: %w", err)
	}

	// 5. Engines.
	if err := n.startEngines(); err != nil {
		return nil, err
	}

	// 6. Listeners and peers.
	for _, l := range cfg.Listen {
		clearStaleSocket(l.Endpoint)
		accept := l.Accept
		if accept == nil {
			accept = peersPolicy(cfg.Peers)
		}
		a, err := n.tr.Listen(ctx, l.Endpoint, accept)
		if err != nil {
			return nil, fmt.Errorf("listen %s: %w", l.Endpoint, netErr(err))
		}
		ep := transport.Endpoint(a.Network(), a.String())
		n.listen = append(n.listen, ep)
		n.log.Info().Str("event", "listen").Str("endpoint", ep).Msg("listening")
	}
	for _, p := range cfg.Peers {
		if err := n.tr.Connect(ctx, p.Endpoint, p.Router); err != nil {
			return nil, fmt.Errorf("peer %s: %w", p.Endpoint, err)
		}
		n.log.Info().Str("event", "dial").Str("endpoint", p.Endpoint).Stringer("router", p.Router).Msg("dialling peer")
	}
	if cfg.Cluster != nil {
		if err := n.startCluster(verifier); err != nil {
			return nil, err
		}
	}

	// 7. The admin server.
	if cfg.Admin != nil {
		acfg := *cfg.Admin
		if acfg.Source.System == nil {
			acfg.Source.System = n.sys
		}
		if acfg.Source.Supervisors == nil {
			acfg.Source.Supervisors = []*supervisor.Supervisor{n.sup}
		}
		if acfg.Source.Transport == nil {
			acfg.Source.Transport = n.tr
		}
		if acfg.Source.Members == nil && n.cluster != nil {
			acfg.Source.Members = n.adminMembers
			if acfg.Source.ClusterStats == nil {
				acfg.Source.ClusterStats = n.adminClusterStats
			}
		}
		if reflect.ValueOf(acfg.Logger).IsZero() {
			acfg.Logger = n.log.With().Str("component", "admin").Logger()
		}
		if acfg.Ready == nil { // /readyz: the node runs, every listener is bound and every peer is connected
			routers := make([]keyholder.Address, 0, len(cfg.Peers))
			for _, p := range cfg.Peers {
				routers = append(routers, p.Router)
			}
			acfg.Ready = admin.AllReady(n.running, admin.RequireListeners(n.tr), admin.RequirePeers(n.tr, routers...), n.clusterReady)
		}
		if n.admin, err = admin.New(acfg); err != nil {
			return nil, fmt.Errorf("admin %s: %w", acfg.Addr, netErr(err))
		}
		n.log.Info().Str("event", "admin").Str("url", n.admin.URL()).Msg("admin server")
	}
	return n, nil
}

// ErrPeerDown is wrapped by Start's error when RequirePeers is set and a
// peer does not answer.
var ErrPeerDown = errors.New("node: peer unreachable")

func (n *Node) startEngines() error {
	children := make([]supervisor.ChildSpec, 0, len(n.cfg.Engines))
	for _, e := range n.cfg.Engines {
		factory := e.Factory
		if e.NewFactory != nil {
			var err error
			if factory, err = e.NewFactory(n); err != nil {
				return fmt.Errorf("node: engine %s: %w", e.Name, err)
			}
			if factory == nil {
				return fmt.Errorf("node: engine %s: NewFactory returned no factory", e.Name)
			}
		}
		eng, err := n.tr.Engine(e.Name, factory, e.Options...)
		if err != nil {
			return fmt.Errorf("node: engine %s: %w", e.Name, err)
		}
		n.engines = append(n.engines, EngineInfo{Name: e.Name, Address: eng.Address()})
		children = append(children, supervisor.ChildSpec{ID: e.Name, Start: func() suture.Service { return eng }})
	}
	sup, err := supervisor.New(supervisor.Spec{
		Name:        "engines",
		Strategy:    supervisor.OneForOne,
		MaxRestarts: n.cfg.MaxRestarts,
		Period:      n.cfg.Period,
		Children:    children,
		EventHook:   supervisor.LogEvents(n.log.With().Str("component", "supervisor").Logger()),
	})
	if err != nil {
		return err
	}
	n.sup = sup
	if n.supRun, err = startBackground(sup, n.ended("engines supervisor")); err != nil {
		return fmt.Errorf("node: starting the engines: %w", err)
	}
	return nil
}

// ended returns what runs when a part of the node ends on its own.
func (n *Node) ended(what string) func(error) {
	return func(err error) {
		if err == nil {
			err = errors.New("stopped")
		}
		n.fail(fmt.Errorf("node: %s: %w", what, err))
	}
}

func (n *Node) fail(err error) {
	n.errMu.Lock()
	if n.err == nil {
		n.err = err
	}
	n.errMu.Unlock()
	n.doneOnce.Do(func() { close(n.done) })
}

// Done is closed when the node stops: by Stop, or because its transport or
// its engines' supervisor ended on its own (see Err).
func (n *Node) Done() <-chan struct{} { return n.done }

// running is the admin server's readiness check that the node has not
// ended.
func (n *Node) running() error {
	select {
	case <-n.done:
		return fmt.Errorf("node ended: %v", n.Err())
	default:
		return nil
	}
}

// Err says why Done was closed: ErrStopped after Stop, or what ended the
// node; nil while it runs.
func (n *Node) Err() error {
	n.errMu.Lock()
	defer n.errMu.Unlock()
	return n.err
}

// Stop stops the node in order: admin server, engines, transport, System,
// keyholder (if the node made it). ctx bounds the System's stop (default 10 s if ctx has no
// deadline). It returns the first error, and the same on every later call.
func (n *Node) Stop(ctx context.Context) error {
	n.stopOnce.Do(func() {
		n.fail(ErrStopped)
		if _, ok := ctx.Deadline(); !ok {
			var cancel context.CancelFunc
			ctx, cancel = context.WithTimeout(ctx, 10*time.Second)
			defer cancel()
		}
		n.stopErr = n.stopParts(ctx)
		if n.ownKeys {
			n.kh.Close()
		}
		n.log.Info().Str("event", "stopped").Msg("stopped")
	})
	return n.stopErr
}

// stopStarted undoes a Start that failed part way.
func (n *Node) stopStarted() {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_ = n.stopParts(ctx)
}

func (n *Node) stopParts(ctx context.Context) error {
	var errs []error
	if n.admin != nil {
		if err := n.admin.Close(); err != nil {
			errs = append(errs, fmt.Errorf("admin: %w", err))
		}
	}
	if n.supRun != nil {
		if err := n.supRun.stop(); err != nil && !errors.Is(err, context.Canceled) {
			errs = append(errs, fmt.Errorf("engines: %w", err))
		}
		n.log.Info().Msg("engines stopped")
	}
	if n.clusterRun != nil { // leave the cluster, drop the mesh's connections
		if err := n.clusterRun.stop(); err != nil && !errors.Is(err, context.Canceled) {
			errs = append(errs, fmt.Errorf("cluster: %w", err))
		}
	}
	if n.trRun != nil {
		if err := n.trRun.stop(); err != nil && !errors.Is(err, context.Canceled) {
			errs = append(errs, fmt.Errorf("transport: %w", err))
		}
	}
	if n.sys != nil {
		if err := n.sys.Stop(ctx); err != nil {
			errs = append(errs, fmt.Errorf("system: %w", err))
		}
	}
	return errors.Join(errs...)
}

// System is the node's System: local engines, proxies of foreign engines.
func (n *Node) System() *genserver.System { return n.sys }

// Transport is the node's transport.
func (n *Node) Transport() *transport.Transport { return n.tr }

// Keyholder holds the node's router and engine keys.
func (n *Node) Keyholder() *keyholder.Keyholder { return n.kh }

// Registry names the payload types the node understands.
func (n *Node) Registry() *payload.Registry { return n.reg }

// Broker is the node's event broker, shared with the transport, so engines
// on other nodes may subscribe to what local engines publish.
func (n *Node) Broker() *events.Broker { return n.broker }

// Supervisor is the engines' one-for-one supervisor; engines added at run
// time with StartChild are stopped with the others.
func (n *Node) Supervisor() *supervisor.Supervisor { return n.sup }

// Router is the node's router address, which peers pin.
func (n *Node) Router() keyholder.Address { return n.kh.Router() }

// Admin is the node's admin server, nil without Config.Admin.
func (n *Node) Admin() *admin.Server { return n.admin }

// ListenAddrs are the endpoints the node listens on, as bound (a port 0 is
// replaced by the real port), in Config.Listen order.
func (n *Node) ListenAddrs() []string { return append([]string(nil), n.listen...) }

// Engines are the node's engines in Config.Engines order.
func (n *Node) Engines() []EngineInfo { return append([]EngineInfo(nil), n.engines...) }

// Engine returns the address of the engine called name.
func (n *Node) Engine(name string) (keyholder.Address, bool) {
	for _, e := range n.engines {
		if e.Name == name {
			return e.Address, true
		}
	}
	return keyholder.Address{}, false
}

// watched runs a service for supervisor.StartReady and reports, through
// onEnd, an end that nobody asked for (its ctx still live).
type watched struct {
	svc   supervisor.ReadyServer
	ended *atomic.Bool
	onEnd func(error)
}

func (w watched) ServeReady(ctx context.Context, ready func()) error {
	var started atomic.Bool
	err := w.svc.ServeReady(ctx, func() { started.Store(true); ready() })
	if started.Load() && ctx.Err() == nil {
		w.ended.Store(true)
		w.onEnd(err)
	}
	return err
}

// background is a service started with supervisor.StartReady.
type background struct {
	stopFn func() error
	ended  atomic.Bool
}

// startBackground starts svc and returns once it is ready, or its error if
// it ends first. onEnd runs if svc ends later without being stopped.
func startBackground(svc supervisor.ReadyServer, onEnd func(error)) (*background, error) {
	b := &background{}
	stop, err := supervisor.StartReady(context.Background(), watched{svc, &b.ended, onEnd})
	if err != nil {
		return nil, err
	}
	b.stopFn = stop
	return b, nil
}

// stop stops the service and returns its error, unless it had ended on its
// own (onEnd reported that one).
func (b *background) stop() error {
	err := b.stopFn()
	if b.ended.Load() {
		return nil
	}
	return err
}

// peersPolicy admits the routers of peers.
func peersPolicy(peers []Peer) func(keyholder.Address) bool {
	allowed := make(map[keyholder.Address]bool, len(peers))
	for _, p := range peers {
		allowed[p.Router] = true
	}
	return func(r keyholder.Address) bool { return allowed[r] }
}

// checkListen binds endpoint once and lets it go, so that a busy address is
// found before anything starts. A stale Unix socket file (no process
// listens on it) is removed first, as Listen would.
func checkListen(endpoint string) error {
	network, address, err := transport.ParseEndpoint(endpoint)
	if err != nil {
		return err
	}
	clearStaleSocket(endpoint)
	ln, err := net.Listen(network, address)
	if err != nil {
		return netErr(err)
	}
	if ul, ok := ln.(*net.UnixListener); ok {
		ul.SetUnlinkOnClose(true)
	}
	return ln.Close()
}

// probe dials endpoint and hangs up: it tells an unreachable node (nothing
// listening, no such socket, no route) from one that is there.
func probe(ctx context.Context, endpoint string) error {
	network, address, err := transport.ParseEndpoint(endpoint)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	var d net.Dialer
	c, err := d.DialContext(ctx, network, address)
	if err != nil {
		return netErr(err)
	}
	return c.Close()
}

// netErr drops the operation and address from a *net.OpError ("listen tcp
// 127.0.0.1:7001: bind: address already in use" becomes "bind: address
// already in use"), for messages that already name the endpoint.
func netErr(err error) error {
	var op *net.OpError
	if errors.As(err, &op) && op.Err != nil {
		return op.Err
	}
	return err
}

// clearStaleSocket removes a Unix socket file that no process listens on
// any more (left by a node that was killed). Anything else is left alone.
func clearStaleSocket(endpoint string) {
	network, path, err := transport.ParseEndpoint(endpoint)
	if err != nil || network != "unix" {
		return
	}
	fi, err := os.Lstat(path)
	if err != nil || fi.Mode().Type() != os.ModeSocket {
		return
	}
	c, err := net.DialTimeout("unix", path, time.Second)
	if err == nil {
		c.Close()
		return
	}
	if errors.Is(err, syscall.ECONNREFUSED) {
		_ = os.Remove(path)
	}
}
