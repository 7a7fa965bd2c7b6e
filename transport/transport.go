package transport

import (
	"context"
	"fmt"
	"net"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"github.com/enginekit/enginekit/callbridge"
	"github.com/enginekit/enginekit/genserver"
	"github.com/enginekit/enginekit/keyholder"
	"github.com/enginekit/enginekit/netconn"
	"github.com/enginekit/enginekit/payload"
	"github.com/rs/zerolog"
	"go.opentelemetry.io/otel/trace"
)

// Transport is the supervisor of the design note: it runs the listeners and
// dialers (which hold the connections) and the proxies of foreign engines,
// around one synchronous core (core.go) that holds all of its routing
// state. It is a suture.Service.
type Transport struct {
	cfg    Config
	sys    *genserver.System
	kh     *keyholder.Keyholder
	reg    *payload.Registry
	router keyholder.Address
	net    netconn.Config
	log    zerolog.Logger
	epoch  time.Time // logical time 0 of the core

	incoming *callbridge.Incoming
	watcher  genserver.PID

	running atomic.Bool
	stopMu  sync.Mutex
	stop    func() error    // set by Start
	ctx     context.Context // ends when the transport stops
	cancel  context.CancelFunc
	wg      sync.WaitGroup // listeners, dialers, proxy stops, the ticker

	// mu guards the core and the runtime handles that follow its actions.
	mu       sync.Mutex
	core     *core
	nextConn connID
	inCancel map[uint64]func()                   // dummy callers, by core call id
	stopping map[keyholder.Address]chan struct{} // proxies on their way out
	subs     map[keyholder.Address]*proxySub
	names    map[keyholder.Address]string // local engines' keyholder names
	dialers  map[string]*dialerEntry

	routes sync.Map // *netconn.Conn -> *route

	bufs sync.Pool // *encBuf: the proxies' encoding buffers

	// Outgoing calls waiting for the combiner (see combineCalls): callers
	// never queue on mu, which with thousands of them would convoy.
	callq     atomic.Pointer[callReq]
	combining atomic.Bool
	callReqs  sync.Pool // *callReq
	combActs  []action  // the combiner's; only it touches them

	proofMu sync.Mutex
	proofs  map[keyholder.Address]cachedProof // engine proofs verified
	// verifySlots bounds the learn pipeline's verifier goroutines checking
	// proofs at once, over all this Transport's connections (proofs.go).
	verifySlots chan struct{}

	delivered      atomic.Uint64
	connDowns      atomic.Uint64
	listenErrors   atomic.Uint64
	dialerRestarts atomic.Uint64
	proofChecks    atomic.Uint64
	refusals       [numDrops]atomic.Uint64 // for logging only; the core counts
	lns            listenerSet             // the listeners running, for Listeners

	tracer trace.Tracer          // Config.Tracer; nil: no tracing
	spans  map[uint64]clientCall // client spans of calls pending, by ref; guarded by mu
	synced []byte                // our synced payload: the features we understand
}

// New checks cfg and returns a Transport that does nothing until Serve or
// Start.
func New(cfg Config) (*Transport, error) {
	if err := cfg.Verify(); err != nil {
		return nil, err
	}
	cfg = cfg.withDefaults()
	t := &Transport{
		cfg:      cfg,
		sys:      cfg.System,
		kh:       cfg.Keyholder,
		reg:      cfg.Registry,
		router:   cfg.Keyholder.Router(),
		log:      cfg.Logger,
		epoch:    time.Now(),
		inCancel: make(map[uint64]func()),
		stopping: make(map[keyholder.Address]chan struct{}),
		subs:     make(map[keyholder.Address]*proxySub),
		names:    make(map[keyholder.Address]string),
		dialers:  make(map[string]*dialerEntry),
		proofs:   make(map[keyholder.Address]cachedProof),
		tracer:   cfg.Tracer,
		spans:    make(map[uint64]clientCall),
		synced:   syncedPayload(cfg.Tracer != nil),
	}
	t.verifySlots = make(chan struct{}, runtime.GOMAXPROCS(0))
	t.core = newCore(t.router, coreLimits{
		Grace:      int64(cfg.ForgetGrace),
		MaxLearned: cfg.MaxLearnedPerPeer,
		MaxCallsIn: cfg.MaxCallsInPerPeer,
		MaxCalls:   cfg.MaxCallsOutPerPeer,
		MaxConns:   cfg.MaxConnsPerPeer,
	})
	t.net = cfg.Net
	t.net.Keyholder = cfg.Keyholder
	t.net.Auth = cfg.Auth
	t.net.Logger = cfg.Logger
	t.net.Deliver = t.deliver
	t.net.OnUp = t.connUp
	t.net.OnDown = t.connDown
	t.net.OnListenError = t.listenError
	guard, err := netconn.NewReplayGuard(netconn.ReplayConfig{})
	if err != nil {
		return nil, err
	}
	t.net.Replay = guard
	if err := t.net.Verify(); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrBadConfig, err)
	}
	return t, nil
}

// now is the core's logical time: nanoseconds since New.
func (t *Transport) now() int64 { return int64(time.Since(t.epoch)) }

// logical converts a wall-clock time to the core's logical time.
func (t *Transport) logical(w time.Time) int64 { return int64(w.Sub(t.epoch)) }

// Router returns this node's router address.
func (t *Transport) Router() keyholder.Address { return t.router }

// String names the transport in supervisor logs.
func (t *Transport) String() string { return "transport" }

// Serve runs the transport until ctx ends. Then it tells every peer to
// forget our engines, closes the connections, stops the proxies and returns
// nil. A listener or dialer that fails is restarted with backoff; none
// stops the transport.
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
	t.sys.Relay().SetFromCodec(fromCodec{t})
	tickDone := make(chan struct{})
	go t.ticker(tickDone)
	ready()
	<-ctx.Done()

	t.running.Store(false)
	t.sys.Relay().SetFromCodec(nil)
	t.farewell()
	t.cancel()
	<-tickDone
	t.wg.Wait() // listeners and dialers: every connection is down now
	_ = t.incoming.Close()
	if t.tracer != nil {
		t.endClients(ErrNotRunning)
	}
	t.stopProxies()
	stopCtx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	_ = t.sys.StopProcess(stopCtx, t.watcher, nil)
	cancel()
	return nil
}

// ticker feeds the core its clock: grace periods and swept calls.
func (t *Transport) ticker(done chan struct{}) {
	defer close(done)
	every := min(max(t.cfg.ForgetGrace/8, 5*time.Millisecond), time.Second)
	tk := time.NewTicker(every)
	defer tk.Stop()
	for {
		select {
		case <-t.ctx.Done():
			return
		case <-tk.C:
			t.mu.Lock()
			acts := t.core.tick(nil, t.now())
			t.mu.Unlock()
			t.exec(acts)
			if t.tracer != nil {
				t.sweepClients(time.Now())
			}
		}
	}
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
		var once sync.Once
		t.stopMu.Lock()
		t.stop = func() (err error) {
			// The first Close gets Serve's result; every Close waits.
			once.Do(func() { cancel(); err = <-done })
			return err
		}
		t.stopMu.Unlock()
		return nil
	case err := <-done:
		cancel()
		return err
	}
}

// Close stops a transport started with Start and waits for it. It is safe
// to call more than once and from several goroutines: each call returns
// once the transport has stopped; the first returns Serve's error, the
// others nil.
func (t *Transport) Close() error {
	t.stopMu.Lock()
	stop := t.stop
	t.stopMu.Unlock()
	if stop == nil {
		return nil
	}
	return stop()
}

// Listen accepts connections at endpoint ("tcp://127.0.0.1:7001",
// "unix:///run/node.sock"; port 0 picks a free port) from routers that
// accept allows (netconn.AcceptAny, netconn.AllowOnly(...)). It returns the
// address actually bound. If the listener fails later, it is re-bound to
// the same address with backoff for as long as the transport runs
// (Config.OnListenError, Stats.ListenErrors).
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
	addr := l.Addr()
	rebind := func() (*netconn.Listener, error) { return netconn.NewListener(t.net, network, addr.String(), accept) }
	t.wg.Add(1)
	go t.runListener(l, addr, rebind, t.lns.add(Endpoint(addr.Network(), addr.String()), l))
	return addr, nil
}

// runListener serves l until the transport stops. netconn's Listener
// re-binds its own address when accepting fails (each failure reaches
// listenError); should Serve still end early, the listener is made again
// with backoff (rebind nil: one given to ListenOn, which cannot).
func (t *Transport) runListener(l *netconn.Listener, addr net.Addr, rebind func() (*netconn.Listener, error), e *listenerEntry) {
	defer t.wg.Done()
	defer t.lns.remove(e)
	failures := 0
	for {
		if l != nil {
			err := l.Serve(t.ctx)
			_ = l.Close()
			if t.ctx.Err() != nil || rebind == nil {
				return
			}
			t.listenError(addr.String(), fmt.Errorf("listener stopped: %v", err))
			e.set(nil, true)
		}
		if !sleepCtx(t.ctx, backoffDelay(t.net.Backoff, failures)) {
			return
		}
		failures++
		var err error
		if l, err = rebind(); err != nil {
			t.listenError(addr.String(), err)
			l = nil
			e.set(nil, true)
		} else {
			failures = 0
			e.set(l, false)
		}
	}
}

// listenError makes a listener's failure visible: counted, logged, told.
func (t *Transport) listenError(addr string, err error) {
	t.listenErrors.Add(1)
	t.log.Warn().Err(err).Str("addr", addr).Msg("listener failed; re-binding with backoff")
	if t.cfg.OnListenError != nil {
		t.cfg.OnListenError(addr, err)
	}
}

// ListenOn accepts connections on ln (an in-memory netconn.PipeListener, a
// socket handed over by systemd) from routers that accept allows. The
// transport takes ln over. Such a listener cannot re-bind: if its Accept
// fails for good, the failure is reported as for Listen, and the
// connections it accepted go on serving.
func (t *Transport) ListenOn(ctx context.Context, ln net.Listener, accept netconn.AcceptPolicy) (net.Addr, error) {
	if !t.running.Load() {
		return nil, ErrNotRunning
	}
	l, err := netconn.NewListenerOn(t.net, ln, accept)
	if err != nil {
		return nil, err
	}
	t.wg.Add(1)
	go t.runListener(l, l.Addr(), nil, t.lns.add(Endpoint(l.Addr().Network(), l.Addr().String()), l))
	return l.Addr(), nil
}

// ConnectWith is Connect with a dial function of the caller's (a
// PipeListener's Dial, a relay): name says where it goes, for logs and
// Disconnect.
func (t *Transport) ConnectWith(ctx context.Context, name string, dial func(ctx context.Context) (net.Conn, error), peer keyholder.Address) error {
	if !t.running.Load() {
		return ErrNotRunning
	}
	d, err := netconn.NewDialerFunc(t.net, name, dial, peer)
	if err != nil {
		return err
	}
	return t.runDialer(name, peer, d, func() (*netconn.Dialer, error) {
		return netconn.NewDialerFunc(t.net, name, dial, peer)
	})
}

// Connect keeps a connection to the router peer at endpoint, re-dialling
// with exponential backoff and jitter whenever it drops. It returns at once;
// OnConnection, OnLearn and OnSynced tell when the peer's engines are
// reachable.
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
	return t.runDialer(endpoint, peer, d, func() (*netconn.Dialer, error) {
		return netconn.NewDialer(t.net, network, address, peer)
	})
}

func dialerKey(endpoint string, peer keyholder.Address) string { return endpoint + " " + peer.String() }

func (t *Transport) runDialer(endpoint string, peer keyholder.Address, d *netconn.Dialer, remake func() (*netconn.Dialer, error)) error {
	key := dialerKey(endpoint, peer)
	t.mu.Lock()
	if _, dup := t.dialers[key]; dup {
		t.mu.Unlock()
		return fmt.Errorf("transport: already connecting to %s at %s", peer, endpoint)
	}
	ctx, cancel := context.WithCancel(t.ctx)
	entry := &dialerEntry{cancel}
	t.dialers[key] = entry
	t.mu.Unlock()
	t.wg.Add(1)
	go func() {
		defer t.wg.Done()
		defer func() {
			t.mu.Lock()
			if t.dialers[key] == entry {
				delete(t.dialers, key)
			}
			t.mu.Unlock()
			cancel()
		}()
		failures := 0
		for ctx.Err() == nil {
			if d != nil {
				err := d.Serve(ctx)
				if ctx.Err() != nil {
					return
				}
				t.log.Warn().Err(err).Str("endpoint", endpoint).Msg("dialer failed; restarting it with backoff")
			}
			t.dialerRestarts.Add(1)
			if !sleepCtx(ctx, backoffDelay(t.net.Backoff, failures)) {
				return
			}
			failures++
			var err error
			if d, err = remake(); err != nil {
				d = nil
			}
		}
	}()
	return nil
}

// Disconnect stops a Connect to peer at endpoint and closes its connection.
func (t *Transport) Disconnect(endpoint string, peer keyholder.Address) error {
	t.mu.Lock()
	e, ok := t.dialers[dialerKey(endpoint, peer)]
	delete(t.dialers, dialerKey(endpoint, peer))
	t.mu.Unlock()
	if !ok {
		return ErrNotConnected
	}
	e.cancel()
	return nil
}

type dialerEntry struct{ cancel context.CancelFunc }

func sleepCtx(ctx context.Context, d time.Duration) bool {
	tm := time.NewTimer(d)
	defer tm.Stop()
	select {
	case <-tm.C:
		return true
	case <-ctx.Done():
		return false
	}
}

// Connection is a snapshot of one live connection.
type Connection struct {
	Peer    keyholder.Address // the router authenticated on it
	Remote  string            // the peer's endpoint, as Endpoint writes it
	Auth    netconn.Auth
	UpSince time.Time
	Stats   netconn.Stats // frames and bytes each way, drops
	// QueueBytes is what waits in the connection's send queue now.
	QueueBytes int
}

// Connections returns the live connections and their counters.
func (t *Transport) Connections() []Connection {
	var out []Connection
	t.routes.Range(func(_, v any) bool {
		r := v.(*route)
		ra := r.conn.RemoteAddr()
		out = append(out, Connection{Peer: r.peer, Remote: Endpoint(ra.Network(), ra.String()), Auth: r.conn.Auth(),
			UpSince: r.conn.UpSince(), Stats: r.conn.Stats(), QueueBytes: r.conn.QueueBytes()})
		return true
	})
	return out
}

// Learned returns the foreign engines learned, by peer router.
func (t *Transport) Learned() map[keyholder.Address][]keyholder.Address {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.core.learnedByPeer()
}
