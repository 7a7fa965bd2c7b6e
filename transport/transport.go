package transport

import (
	"context"
	"errors"
	"fmt"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/enginekit/enginekit/callbridge"
	"github.com/enginekit/enginekit/events"
	"github.com/enginekit/enginekit/genserver"
	"github.com/enginekit/enginekit/keyholder"
	"github.com/enginekit/enginekit/netconn"
	"github.com/enginekit/enginekit/supervisor"
	"github.com/enginekit/enginekit/wire"
	"github.com/rs/zerolog"
	"github.com/thejerf/suture/v4"
)

// Errors of this package.
var (
	// ErrNoConnection: the foreign engine has no live route (also what
	// pending calls fail with when their route dies).
	ErrNoConnection = callbridge.ErrNoConnection
	// ErrNotRunning: Listen, Connect or an engine start before Start/Serve,
	// or after the transport stopped.
	ErrNotRunning = errors.New("transport: not running")
	// ErrAlreadyRunning: Serve called twice.
	ErrAlreadyRunning = errors.New("transport: already running")
	// ErrConfig: the Config is not usable.
	ErrConfig = errors.New("transport: bad config")
	// ErrTooManyCalls answers a call beyond MaxIncomingCalls (it reaches
	// the remote caller as a RemoteError with this text).
	ErrTooManyCalls = errors.New("transport: too many concurrent calls from this peer")
)

// Config configures a Transport. System, Keyholder and Registry are
// required; zero values elsewhere take the documented defaults.
type Config struct {
	// System is where local engines and the proxies of foreign engines live.
	System *genserver.System
	// Keyholder holds the router key and the keys of the local engines.
	Keyholder *keyholder.Keyholder
	// Registry names the payload types engines exchange. Both nodes must
	// register the same names.
	Registry *wire.Registry
	// Broker is the System's event broker. With one, the proxy of each
	// foreign engine that asked for events (its learn message carries a
	// filter spec) subscribes to it and forwards the matching events.
	// Without one, foreign engines get no events. Optional.
	Broker *events.Broker
	// Auth is the per-message authentication: netconn.Signatures (the
	// default) or netconn.MACs. Both ends of a connection must agree.
	Auth netconn.Auth
	// ForgetGrace is how long a proxy whose last route went down waits for
	// a route to come back before it is forgotten and its name released.
	// Calls made meanwhile fail at once with ErrNoConnection. Default 5 s.
	ForgetGrace time.Duration
	// MaxIncomingCalls bounds the calls from one connection being served
	// at once (each holds a dummy caller until the reply); beyond it a
	// call is answered at once with ErrTooManyCalls. Default 10,000.
	MaxIncomingCalls int
	// MaxCallDeadline caps how far in the future a peer may set a call's
	// deadline, so a peer cannot pin dummy callers for ever. Default 10 min.
	MaxCallDeadline time.Duration
	// Net tunes connections: frame and queue sizes, timeouts, redial
	// backoff. Its Keyholder, Auth, callbacks, Replay and Logger are set by
	// the transport.
	Net netconn.Config
	// Logger gets learn/forget and connection events. Default: discard.
	Logger zerolog.Logger
	// OnLearn, when set, is called each time a connection teaches us a
	// foreign engine (its proxy is registered by then); OnForget after a
	// proxy is gone and its name released. They run on transport
	// goroutines; keep them short and do not call the transport from them.
	OnLearn  func(engine keyholder.Address, peer keyholder.Address)
	OnForget func(engine keyholder.Address)
	// OnConnection, when set, is called when a connection comes up (err nil,
	// up true) and when it goes down (up false, err the reason or nil).
	OnConnection func(peer keyholder.Address, up bool, err error)
}

// Transport is the supervisor of the design note: it runs the listeners and
// dialers (which hold the connections), the proxies of foreign engines, and
// the bookkeeping of which engines are ours. It is a suture.Service.
type Transport struct {
	cfg    Config
	sys    *genserver.System
	kh     *keyholder.Keyholder
	reg    *wire.Registry
	router keyholder.Address
	net    netconn.Config
	log    zerolog.Logger

	sup      *supervisor.Supervisor
	incoming *callbridge.Incoming
	watcher  genserver.PID

	running atomic.Bool
	stop    func() error    // set by Start
	ctx     context.Context // ends when the transport stops
	cancel  context.CancelFunc

	mu      sync.RWMutex
	engines map[keyholder.Address]*localEngine
	byPID   map[genserver.PID]keyholder.Address
	proxies map[keyholder.Address]*proxy
	routes  sync.Map // *netconn.Conn -> *route

	stats counters
}

// New checks cfg and returns a Transport that does nothing until Serve or
// Start.
func New(cfg Config) (*Transport, error) {
	if cfg.System == nil || cfg.Keyholder == nil || cfg.Registry == nil {
		return nil, fmt.Errorf("%w: System, Keyholder and Registry are required", ErrConfig)
	}
	if cfg.ForgetGrace == 0 {
		cfg.ForgetGrace = 5 * time.Second
	}
	if cfg.MaxIncomingCalls == 0 {
		cfg.MaxIncomingCalls = 10_000
	}
	if cfg.MaxCallDeadline == 0 {
		cfg.MaxCallDeadline = 10 * time.Minute
	}
	if cfg.ForgetGrace < 0 || cfg.MaxIncomingCalls < 0 || cfg.MaxCallDeadline < 0 {
		return nil, fmt.Errorf("%w: negative ForgetGrace, MaxIncomingCalls or MaxCallDeadline", ErrConfig)
	}
	t := &Transport{
		cfg:     cfg,
		sys:     cfg.System,
		kh:      cfg.Keyholder,
		reg:     cfg.Registry,
		router:  cfg.Keyholder.Router(),
		log:     cfg.Logger,
		engines: make(map[keyholder.Address]*localEngine),
		byPID:   make(map[genserver.PID]keyholder.Address),
		proxies: make(map[keyholder.Address]*proxy),
	}
	t.net = cfg.Net
	t.net.Keyholder = cfg.Keyholder
	t.net.Auth = cfg.Auth
	t.net.Logger = cfg.Logger
	t.net.Deliver = t.deliver
	t.net.OnUp = t.connUp
	t.net.OnDown = t.connDown
	guard, err := netconn.NewReplayGuard(netconn.ReplayConfig{})
	if err != nil {
		return nil, err
	}
	t.net.Replay = guard
	if err := t.net.Verify(); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrConfig, err)
	}
	sup, err := supervisor.New(supervisor.Spec{
		Name:        "transport",
		Strategy:    supervisor.OneForOne,
		MaxRestarts: 10,
		Period:      10 * time.Second,
		EventHook:   supervisor.LogEvents(cfg.Logger),
	})
	if err != nil {
		return nil, err
	}
	t.sup = sup
	return t, nil
}

// Connection is a snapshot of one live connection.
type Connection struct {
	Peer  keyholder.Address // the router authenticated on it
	Stats netconn.Stats
}

// Connections returns the live connections and their counters.
func (t *Transport) Connections() []Connection {
	var out []Connection
	t.eachRoute(func(r *route) { out = append(out, Connection{Peer: r.peer, Stats: r.conn.Stats()}) })
	return out
}

// Router returns this node's router address.
func (t *Transport) Router() keyholder.Address { return t.router }

// String names the transport in supervisor logs.
func (t *Transport) String() string { return "transport" }

// Serve runs the transport until ctx ends. Then it tells every peer to
// forget our engines, closes the connections, stops the proxies and returns
// nil.
func (t *Transport) Serve(ctx context.Context) error {
	return t.ServeReady(ctx, func() {})
}

// ServeReady is Serve that calls ready once Listen and Connect can be used.
func (t *Transport) ServeReady(ctx context.Context, ready func()) error {
	if !t.running.CompareAndSwap(false, true) {
		return ErrAlreadyRunning
	}
	t.ctx, t.cancel = context.WithCancel(context.Background())
	t.incoming = callbridge.NewIncoming(t.sys)
	w, err := t.sys.Spawn(func() genserver.Server { return &watcher{t: t} })
	if err != nil {
		t.cancel()
		t.running.Store(false)
		return err
	}
	t.watcher = w

	supCtx, stopSup := context.WithCancel(context.Background())
	supDone := make(chan error, 1)
	supReady := make(chan struct{})
	go func() { supDone <- t.sup.ServeReady(supCtx, func() { close(supReady) }) }()
	var supErr error
	select {
	case <-supReady:
		ready()
		select {
		case <-ctx.Done():
		case supErr = <-supDone:
			supDone <- supErr
		}
	case supErr = <-supDone:
		supDone <- supErr
	}

	t.farewell()
	stopSup()
	if err := <-supDone; err != nil && supErr == nil {
		supErr = err
	}
	t.cancel()
	t.incoming.Close()
	t.stopProxies()
	stopCtx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	_ = t.sys.StopProcess(stopCtx, t.watcher, nil)
	cancel()
	t.running.Store(false)
	return supErr
}

// Start runs Serve on a goroutine of its own and returns once the
// transport is ready; Close stops it.
func (t *Transport) Start() error {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	ready := make(chan struct{})
	go func() { done <- t.ServeReady(ctx, func() { close(ready) }) }()
	select {
	case <-ready:
		t.stop = func() error { cancel(); return <-done }
		return nil
	case err := <-done:
		cancel()
		return err
	}
}

// Close stops a transport started with Start and waits for it.
func (t *Transport) Close() error {
	if t.stop == nil {
		return nil
	}
	stop := t.stop
	t.stop = nil
	return stop()
}

// Listen accepts connections at endpoint ("tcp://127.0.0.1:7001",
// "unix:///run/node.sock"; port 0 picks a free port) from routers that
// accept allows (netconn.AcceptAny, netconn.AllowOnly(...)). It returns the
// address actually bound.
func (t *Transport) Listen(ctx context.Context, endpoint string, accept netconn.AcceptPolicy) (net.Addr, error) {
	if !t.running.Load() {
		return nil, ErrNotRunning
	}
	network, address, err := ParseEndpoint(endpoint)
	if err != nil {
		return nil, err
	}
	l, err := netconn.NewListener(t.net, network, address, accept)
	if err != nil {
		return nil, err
	}
	first := true
	id := "listen " + Endpoint(l.Addr().Network(), l.Addr().String())
	err = t.sup.StartChild(ctx, supervisor.ChildSpec{
		ID:      id,
		Restart: supervisor.Transient,
		Start: func() suture.Service {
			if first {
				first = false
				return l
			}
			// A restart binds the address it got the first time (a
			// port 0 stays the port it picked).
			l2, err := netconn.NewListener(t.net, network, l.Addr().String(), accept)
			if err != nil {
				return failed{err}
			}
			return l2
		},
	})
	if err != nil {
		_ = l.Close()
		_ = t.sup.DeleteChild(context.Background(), id)
		return nil, fmt.Errorf("transport: listen %s: %w", endpoint, err)
	}
	return l.Addr(), nil
}

// Connect keeps a connection to the router peer at endpoint, re-dialling
// with exponential backoff and jitter whenever it drops. It returns at once;
// OnConnection and OnLearn tell when the peer's engines are reachable.
func (t *Transport) Connect(ctx context.Context, endpoint string, peer keyholder.Address) error {
	if !t.running.Load() {
		return ErrNotRunning
	}
	network, address, err := ParseEndpoint(endpoint)
	if err != nil {
		return err
	}
	d, err := netconn.NewDialer(t.net, network, address, peer) // checks the arguments now
	if err != nil {
		return err
	}
	return t.sup.StartChild(ctx, supervisor.ChildSpec{
		ID: "connect " + endpoint + " " + peer.String(),
		Start: func() suture.Service {
			if d != nil { // the first start uses the dialer made above
				first := d
				d = nil
				return first
			}
			d2, err := netconn.NewDialer(t.net, network, address, peer)
			if err != nil {
				return failed{err}
			}
			return d2
		},
	})
}

// failed is a service that fails at once: a child whose construction
// failed on restart.
type failed struct{ err error }

func (f failed) Serve(context.Context) error { return f.err }
