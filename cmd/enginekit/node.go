package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"strings"
	"syscall"
	"time"

	"github.com/enginekit/enginekit/events"
	"github.com/enginekit/enginekit/genserver"
	"github.com/enginekit/enginekit/keyholder"
	"github.com/enginekit/enginekit/netconn"
	"github.com/enginekit/enginekit/supervisor"
	"github.com/enginekit/enginekit/transport"
	"github.com/enginekit/enginekit/wire"
	"github.com/rs/zerolog"
	"github.com/thejerf/suture/v4"
)

// The node command is a long-running node: a System, a key file, a
// transport with its listeners and dialers, and built-in engines under a
// one-for-one supervisor.
//
// Structure. The transport runs first (its own supervisor holds the
// listeners and dialers); the engines supervisor runs after it, as a sibling
// driven by runNode rather than as a child of one root supervisor: a failed
// transport cannot usefully be restarted under the same listeners, so either
// of them ending on its own ends the node with an error, and shutdown is
// the same reverse order in every case: engines first (each one's stop
// sends a forget to every peer), then the transport (which says farewell
// for anything left and closes the connections, flushing what is queued),
// then the System.

const nodeSynopsis = `node --keys PATH [--listen ENDPOINT]... [--peer ENDPOINT=ROUTER]... [flags]

Runs a node until SIGINT or SIGTERM: the engines named by --engines, each
under its own identity from the key file (created there on first use, so an
engine keeps its address across restarts), supervised one-for-one so a
crashed engine is restarted; listeners for other nodes and clients; and
connections to peer nodes, re-dialled with backoff whenever they drop.

The key file is created if it does not exist (the passphrase then comes
from --passphrase-file, else $` + passphraseEnv + `, else a prompt asked twice).

Once everything is up it prints, on stdout, one line per item and then
"ready":

  router ADDRESS          this node's router address (what peers pin)
  listen ENDPOINT         each listener as bound (port 0 shows the real port)
  engine ADDRESS NAME     each engine
  ready

Logs go to stderr: human-readable when stderr is a terminal, else one JSON
object per line. Learn, forget and connection events are logged at info with
an "event" field: "learn" (with "engine" and "peer"), "forget" ("engine"),
"up" and "down" ("peer", and "error" for a down).

On SIGINT or SIGTERM the node stops its engines (peers are told to forget
them), closes its connections and exits 0. Errors at start-up (bad flags,
a key file it cannot open, a wrong passphrase, a busy address, a --peer
that does not answer) are one line on stderr and exit status 1 (2 for bad
usage).

Endpoints are tcp://HOST:PORT or unix:///path/to.sock (a socket file left
by a killed node is replaced). --accept decides which routers may connect
to the listeners: by default only the routers given with --peer; "--accept
any" admits anyone who completes the TLS handshake, which 'enginekit call'
needs, as its keys are new on every run. A node that listens needs one or
the other. Each --peer must answer when the node starts, unless
--allow-down-peers; after that it is re-dialled for as long as the node runs.

Built-in engines:
` + "{{engines}}"

func nodeHelp() string {
	var b strings.Builder
	for _, e := range builtinEngines() {
		fmt.Fprintf(&b, "  %-6s %s\n", e.name, strings.ReplaceAll(e.summary, "\n", "\n         "))
	}
	return strings.Replace(nodeSynopsis, "{{engines}}", strings.TrimSuffix(b.String(), "\n"), 1)
}

// peerFlag is one --peer: an endpoint to dial and the router it must be.
type peerFlag struct {
	endpoint string
	router   keyholder.Address
}

func parsePeer(v string) (peerFlag, error) {
	i := strings.LastIndexByte(v, '=')
	if i < 0 {
		return peerFlag{}, fmt.Errorf("%w: --peer %q: want ENDPOINT=ROUTER", errUsage, v)
	}
	ep, r := v[:i], v[i+1:]
	if _, _, err := transport.ParseEndpoint(ep); err != nil {
		return peerFlag{}, fmt.Errorf("%w: --peer: %v", errUsage, err)
	}
	router, err := keyholder.ParseAddress(r)
	if err != nil {
		return peerFlag{}, fmt.Errorf("%w: --peer %s: router: %v", errUsage, ep, err)
	}
	return peerFlag{ep, router}, nil
}

// acceptPolicy builds the listeners' policy from --accept and --peer.
func acceptPolicy(accept []string, peers []peerFlag) (policy netconn.AcceptPolicy, desc string, err error) {
	var routers []keyholder.Address
	anyone := false
	for _, v := range accept {
		for _, s := range strings.Split(v, ",") {
			s = strings.TrimSpace(s)
			if s == "any" {
				anyone = true
				continue
			}
			r, err := keyholder.ParseAddress(s)
			if err != nil {
				return nil, "", fmt.Errorf("%w: --accept: want \"any\" or router addresses: %v", errUsage, err)
			}
			routers = append(routers, r)
		}
	}
	if anyone {
		if len(routers) > 0 {
			return nil, "", fmt.Errorf("%w: --accept any cannot be combined with a list of routers", errUsage)
		}
		return netconn.AcceptAny, "any", nil
	}
	for _, p := range peers {
		routers = append(routers, p.router)
	}
	return netconn.AllowOnly(routers...), fmt.Sprintf("%d listed routers", len(routers)), nil
}

func parseAuth(s string) (netconn.Auth, error) {
	switch s {
	case "signatures":
		return netconn.Signatures, nil
	case "macs":
		return netconn.MACs, nil
	}
	return 0, fmt.Errorf("%w: --auth %q: want signatures or macs", errUsage, s)
}

// newLogger logs to w: zerolog's console writer when w is a terminal, JSON
// lines otherwise.
func newLogger(w io.Writer, level string) (zerolog.Logger, zerolog.Level, error) {
	lvl, err := zerolog.ParseLevel(level)
	if err != nil || level == "" {
		return zerolog.Logger{}, 0, fmt.Errorf("%w: --log-level %q: want debug, info, warn, error or disabled", errUsage, level)
	}
	out := zerolog.SyncWriter(w)
	if f, ok := w.(*os.File); ok && isTerminal(f) {
		out = zerolog.ConsoleWriter{Out: out, TimeFormat: "15:04:05"}
	}
	return zerolog.New(out).Level(lvl).With().Timestamp().Logger(), lvl, nil
}

func runNode(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("node", nodeHelp(), stdout)
	name := fs.String("name", "node", "`name` of the node's System (in logs and PIDs)")
	keys := fs.String("keys", "", "`path` of the key file; created if missing (required)")
	ps := addPassphraseFlag(fs)
	kdfMem := fs.Uint("kdf-memory-kib", 0, "argon2id memory in `KiB` when the node creates the key file or adds engine identities\nto it (default 65536); see 'enginekit keygen --help'")
	kdfTime := fs.Uint("kdf-time", 0, "argon2id `passes` when the node writes the key file (default 3)")
	var listens, peerArgs, accepts stringsFlag
	fs.Var(&listens, "listen", "accept connections at `ENDPOINT` (repeatable): tcp://127.0.0.1:7001, unix:///run/node.sock")
	fs.Var(&peerArgs, "peer", "keep a connection to the node at `ENDPOINT=ROUTER` (repeatable), whose router\nmust be ROUTER (TLS-pinned); re-dialled with backoff whenever it drops")
	fs.Var(&accepts, "accept", "which routers the listeners admit: `any`, or ROUTER[,ROUTER...] (repeatable)\n(default: the routers of --peer)")
	authName := fs.String("auth", "signatures", "per-message authentication: `signatures` (ed25519) or macs (HMAC keyed\nfrom the TLS session); both ends of a connection must agree")
	engineList := fs.String("engines", "echo,kv", "comma-separated built-in `engines` to run (listed above; \"\" for none)")
	level := fs.String("log-level", "info", "log `level`: debug, info, warn, error or disabled (debug adds the transport's\nown log)")
	grace := fs.Duration("forget-grace", 5*time.Second, "how long a foreign engine whose last connection went down is kept for a\nconnection to come back before it is forgotten")
	redialMax := fs.Duration("redial-max", netconn.DefaultBackoffMax, "longest wait between re-dials of a peer (exponential backoff from 100ms)")
	allowDown := fs.Bool("allow-down-peers", false, "start even if a --peer does not answer, and keep dialling it in the background\n(default: a peer that cannot be reached at start-up is an error)")
	if err := parse(fs, args); err != nil {
		return err
	}

	// Check every word before touching the key file.
	if *keys == "" {
		return fmt.Errorf("%w: --keys is required", errUsage)
	}
	if *kdfMem > 1<<32-1 || *kdfTime > 1<<32-1 {
		return fmt.Errorf("%w: --kdf-memory-kib and --kdf-time must fit in 32 bits", errUsage)
	}
	engines, err := parseEngines(*engineList)
	if err != nil {
		return err
	}
	for _, ep := range listens {
		if _, _, err := transport.ParseEndpoint(ep); err != nil {
			return fmt.Errorf("%w: --listen: %v", errUsage, err)
		}
	}
	var peers []peerFlag
	for _, v := range peerArgs {
		p, err := parsePeer(v)
		if err != nil {
			return err
		}
		peers = append(peers, p)
	}
	accept, acceptDesc, err := acceptPolicy(accepts, peers)
	if err != nil {
		return err
	}
	if len(listens) > 0 && len(accepts) == 0 && len(peers) == 0 {
		return fmt.Errorf("%w: --listen would admit no one: pass --accept any, --accept ROUTER,... or --peer", errUsage)
	}
	auth, err := parseAuth(*authName)
	if err != nil {
		return err
	}
	if *grace <= 0 {
		return fmt.Errorf("%w: --forget-grace must be positive", errUsage)
	}
	if *redialMax <= 0 {
		return fmt.Errorf("%w: --redial-max must be positive", errUsage)
	}
	log, lvl, err := newLogger(stderr, *level)
	if err != nil {
		return err
	}

	if !*allowDown {
		for _, p := range peers {
			if err := probe(ctx, p.endpoint, 5*time.Second); err != nil {
				return fmt.Errorf("peer %s is unreachable (%v); start it first, or pass --allow-down-peers", p.endpoint, err)
			}
		}
	}

	names := make([]string, len(engines))
	for i, e := range engines {
		names[i] = e.name
	}
	kdf := keyholder.KDFParams{Time: uint32(*kdfTime), MemoryKiB: uint32(*kdfMem)}
	kh, err := nodeKeys(ctx, *keys, ps, stderr, names, kdf, log)
	if err != nil {
		return err
	}
	defer kh.Close()

	n := &node{
		log: log, kh: kh, engines: engines, listens: listens, peers: peers, accept: accept,
		stdout: stdout,
	}
	sysLog := log.With().Str("component", "genserver").Logger()
	n.sys = genserver.NewSystem(genserver.Config{Name: *name, Logger: &sysLog})
	reg, err := builtinRegistry()
	if err != nil {
		return err
	}
	trLog := log.With().Str("component", "transport").Logger()
	if lvl > zerolog.DebugLevel {
		trLog = trLog.Level(max(lvl, zerolog.WarnLevel))
	}
	if n.env.broker, err = events.NewBroker(n.sys, events.Config{Name: *name}); err != nil {
		return err
	}
	cfg := transport.Config{
		System: n.sys, Keyholder: kh, Registry: reg, Auth: auth, Broker: n.env.broker,
		ForgetGrace: *grace, Logger: trLog,
		OnLearn: func(engine, peer keyholder.Address) {
			log.Info().Str("event", "learn").Stringer("engine", engine).Stringer("peer", peer).Msg("learned engine")
		},
		OnForget: func(engine keyholder.Address) {
			log.Info().Str("event", "forget").Stringer("engine", engine).Msg("forgot engine")
		},
		OnConnection: func(peer keyholder.Address, up bool, err error) {
			switch {
			case up:
				log.Info().Str("event", "up").Stringer("peer", peer).Msg("connection up")
			case err == nil:
				log.Info().Str("event", "down").Stringer("peer", peer).Msg("connection closed")
			case closedByPeer(err):
				log.Info().Str("event", "down").Stringer("peer", peer).Msg("connection closed by the peer")
			default:
				log.Info().Str("event", "down").Stringer("peer", peer).AnErr("error", err).Msg("connection down")
			}
		},
	}
	cfg.Net.Backoff = netconn.Backoff{Min: min(netconn.DefaultBackoffMin, *redialMax), Max: *redialMax}
	cfg.Net.OnHandshakeError = func(remote net.Addr, err error) {
		ev := log.Warn()
		if errors.Is(err, io.EOF) { // hung up before TLS: a reachability probe, a port scan
			ev = log.Debug()
		}
		ev.Str("event", "refused").Str("remote", remote.String()).Err(err).Msg("connection failed before it came up")
	}
	if n.tr, err = transport.New(cfg); err != nil {
		return err
	}
	start := log.Info().Str("name", *name).Stringer("router", kh.Router()).Str("auth", auth.String())
	if len(listens) > 0 {
		start = start.Str("accept", acceptDesc)
	}
	start.Msg("starting")
	return n.run(ctx)
}

// closedByPeer reports a connection the peer closed in order, which needs
// no error in the log.
func closedByPeer(err error) bool {
	var g wire.GoAway
	return errors.As(err, &g) && g.Code == wire.GoAwayNormal
}

// node is a running `enginekit node`.
type node struct {
	log     zerolog.Logger
	sys     *genserver.System
	kh      *keyholder.Keyholder
	tr      *transport.Transport
	engines []builtin
	env     nodeEnv
	listens []string
	peers   []peerFlag
	accept  netconn.AcceptPolicy
	stdout  io.Writer
}

func (n *node) run(ctx context.Context) (err error) {
	defer func() {
		stopCtx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if serr := n.sys.Stop(stopCtx); serr != nil && err == nil {
			err = serr
		}
		n.log.Info().Str("event", "stopped").Msg("stopped")
	}()

	tr, err := startBackground(n.tr)
	if err != nil {
		return fmt.Errorf("starting the transport: %w", err)
	}
	var eng *background
	defer func() {
		// Reverse order: the engines (each sends a forget to every peer),
		// then the transport (farewell, then the connections close).
		if eng != nil {
			if serr := eng.stop(); serr != nil && err == nil {
				err = serr
			}
			n.log.Info().Msg("engines stopped")
		}
		if serr := tr.stop(); serr != nil && err == nil {
			err = serr
		}
	}()

	sup, addrs, err := n.engineSupervisor()
	if err != nil {
		return err
	}
	if eng, err = startBackground(sup); err != nil {
		return fmt.Errorf("starting the engines: %w", err)
	}

	var bound []string
	for _, ep := range n.listens {
		clearStaleSocket(ep)
		a, err := n.tr.Listen(ctx, ep, n.accept)
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return fmt.Errorf("--listen %s: %w", ep, netErr(err))
		}
		ep := transport.Endpoint(a.Network(), a.String())
		bound = append(bound, ep)
		n.log.Info().Str("event", "listen").Str("endpoint", ep).Msg("listening")
	}
	for _, p := range n.peers {
		if err := n.tr.Connect(ctx, p.endpoint, p.router); err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return fmt.Errorf("--peer %s: %w", p.endpoint, err)
		}
		n.log.Info().Str("event", "dial").Str("endpoint", p.endpoint).Stringer("router", p.router).Msg("dialling peer")
	}

	var out strings.Builder
	fmt.Fprintf(&out, "router %s\n", n.kh.Router())
	for _, ep := range bound {
		fmt.Fprintf(&out, "listen %s\n", ep)
	}
	for i, e := range n.engines {
		fmt.Fprintf(&out, "engine %s %s\n", addrs[i], displayName(e.name))
	}
	out.WriteString("ready\n")
	if _, err := io.WriteString(n.stdout, out.String()); err != nil {
		return err
	}
	n.log.Info().Str("event", "ready").Msg("ready")

	select {
	case <-ctx.Done():
		n.log.Info().Str("event", "shutdown").Msg("shutting down")
		return nil
	case <-tr.done:
		return fmt.Errorf("transport stopped: %v", tr.err)
	case <-eng.done:
		return fmt.Errorf("engines supervisor gave up: %v", eng.err)
	}
}

// engineSupervisor returns the one-for-one supervisor of the node's
// engines and their addresses, in --engines order.
func (n *node) engineSupervisor() (*supervisor.Supervisor, []keyholder.Address, error) {
	var children []supervisor.ChildSpec
	var addrs []keyholder.Address
	for _, b := range n.engines {
		e, err := n.tr.Engine(b.name, b.factory(n.env))
		if err != nil {
			return nil, nil, fmt.Errorf("engine %s: %w", b.name, err)
		}
		addrs = append(addrs, e.Address())
		children = append(children, supervisor.ChildSpec{
			ID:    b.name,
			Start: func() suture.Service { return e },
		})
	}
	sup, err := supervisor.New(supervisor.Spec{
		Name:        "engines",
		Strategy:    supervisor.OneForOne,
		MaxRestarts: 10,
		Period:      10 * time.Second,
		Children:    children,
		EventHook:   supervisor.LogEvents(n.log.With().Str("component", "supervisor").Logger()),
	})
	return sup, addrs, err
}

// readyService is what the transport and a supervisor both are.
type readyService interface {
	ServeReady(ctx context.Context, ready func()) error
}

// background runs a readyService on a goroutine it owns.
type background struct {
	cancel context.CancelFunc
	done   chan struct{}
	err    error // set before done is closed
}

// startBackground starts svc and returns once it is ready, or its error if
// it ends first.
func startBackground(svc readyService) (*background, error) {
	ctx, cancel := context.WithCancel(context.Background())
	b := &background{cancel: cancel, done: make(chan struct{})}
	ready := make(chan struct{})
	go func() {
		defer close(b.done)
		b.err = svc.ServeReady(ctx, func() { close(ready) })
	}()
	select {
	case <-ready:
		return b, nil
	case <-b.done:
		cancel()
		if b.err == nil {
			return nil, errors.New("stopped before it was ready")
		}
		return nil, b.err
	}
}

// stop cancels the service and waits for it.
func (b *background) stop() error {
	b.cancel()
	<-b.done
	return b.err
}

// nodeKeys opens the key file at path, or creates it when there is none,
// and makes sure it holds an identity for each engine named, saving it
// when it had to add one.
func nodeKeys(ctx context.Context, path string, ps *passphraseSource, prompt io.Writer, engines []string, kdf keyholder.KDFParams, log zerolog.Logger) (*keyholder.Keyholder, error) {
	opts := keyholder.SaveOptions{KDF: kdf}
	_, err := os.Lstat(path)
	if errors.Is(err, os.ErrNotExist) {
		pass, err := ps.get(ctx, prompt, true)
		if err != nil {
			return nil, err
		}
		defer clear(pass)
		kh, err := keyholder.New(keyholder.Config{})
		if err != nil {
			return nil, err
		}
		for _, name := range engines {
			if _, err := kh.EnsureEngine(name); err != nil {
				kh.Close()
				return nil, err
			}
		}
		if err := kh.SaveWith(path, pass, opts); err != nil {
			kh.Close()
			if errors.Is(err, keyholder.ErrBadKDFParams) {
				return nil, fmt.Errorf("%w: %v", errUsage, err)
			}
			return nil, fmt.Errorf("creating key file: %w", err)
		}
		log.Info().Str("event", "keys").Str("file", path).Msg("created the key file")
		return kh, nil
	} else if err != nil {
		return nil, err
	}

	pass, err := ps.get(ctx, prompt, false)
	if err != nil {
		return nil, err
	}
	defer clear(pass)
	kh, err := keyholder.Load(path, pass)
	switch {
	case errors.Is(err, keyholder.ErrWrongPassphrase):
		return nil, fmt.Errorf("wrong passphrase for key file %s", path)
	case err != nil:
		return nil, err // keyholder's errors name the file and what is wrong with it
	}
	var added []string
	for _, name := range engines {
		if _, ok := kh.Engine(name); ok {
			continue
		}
		if _, err := kh.EnsureEngine(name); err != nil {
			kh.Close()
			return nil, err
		}
		added = append(added, name)
	}
	if len(added) > 0 {
		if err := kh.SaveWith(path, pass, opts); err != nil {
			kh.Close()
			if errors.Is(err, keyholder.ErrBadKDFParams) {
				return nil, fmt.Errorf("%w: %v", errUsage, err)
			}
			return nil, fmt.Errorf("adding engines %s to the key file: %w", strings.Join(added, ", "), err)
		}
		log.Info().Str("event", "keys").Str("file", path).Strs("added", added).Msg("added engine identities to the key file")
	}
	return kh, nil
}

// probe dials endpoint and hangs up: it tells an unreachable node (nothing
// listening, no such socket, no route) from one that is there.
func probe(ctx context.Context, endpoint string, timeout time.Duration) error {
	network, address, err := transport.ParseEndpoint(endpoint)
	if err != nil {
		return err
	}
	d := net.Dialer{Timeout: timeout}
	c, err := d.DialContext(ctx, network, address)
	if err != nil {
		return netErr(err)
	}
	return c.Close()
}

// netErr drops the operation and address from a *net.OpError ("dial tcp
// 127.0.0.1:7001: connect: connection refused" becomes "connect: connection
// refused"), for messages that already name the endpoint.
func netErr(err error) error {
	var op *net.OpError
	if errors.As(err, &op) && op.Err != nil {
		return op.Err
	}
	return err
}

// clearStaleSocket removes a Unix socket file that no process listens on
// any more (left by a node that was killed), so that listening there works
// again. Anything else is left for Listen to report.
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
