package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"strings"
	"time"

	"github.com/enginekit/enginekit/admin"
	"github.com/enginekit/enginekit/keyholder"
	"github.com/enginekit/enginekit/netconn"
	"github.com/enginekit/enginekit/node"
	"github.com/enginekit/enginekit/transport"
	"github.com/enginekit/enginekit/wire"
	"github.com/rs/zerolog"
)

// The node command is a long-running node.Node: a System, a key file, a
// transport with its listeners and dialers, and the example engines under a
// one-for-one supervisor. The node package decides the order of start-up
// and shutdown (see its doc); this file turns flags into a node.Config,
// prints what the node is, and waits for a signal.

const nodeSynopsis = `node --keys PATH [--listen ENDPOINT]... [--peer ENDPOINT=ROUTER]... [flags]
       node --keys PATH --listen ENDPOINT --cluster-cert FILE --gossip-key FILE [--join HOST:PORT] [flags]

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
  admin URL               the admin server, with --admin
  gossip HOST:PORT        the cluster gossip address, with --cluster-cert
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
	for _, e := range exampleEngines() {
		fmt.Fprintf(&b, "  %-6s %s\n", e.name, strings.ReplaceAll(e.summary, "\n", "\n         "))
	}
	return strings.Replace(nodeSynopsis, "{{engines}}", strings.TrimSuffix(b.String(), "\n"), 1) + "\n" + clusterNodeHelp
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
	if err := checkEndpoint("--peer", ep); err != nil {
		return peerFlag{}, err
	}
	router, err := keyholder.ParseAddress(r)
	if err != nil {
		return peerFlag{}, fmt.Errorf("%w: --peer %s: router: %v", errUsage, ep, err)
	}
	return peerFlag{ep, router}, nil
}

// checkEndpoint checks the endpoint given to flag, and on error shows the
// form wanted, with the value rewritten in it when that is a plain
// HOST:PORT or socket path.
func checkEndpoint(flag, v string) error {
	if _, _, err := transport.ParseEndpoint(v); err == nil {
		return nil
	}
	hint := ""
	switch {
	case strings.HasPrefix(v, "/"):
		hint = fmt.Sprintf(" (a socket? unix://%s)", v)
	case !strings.Contains(v, "://"):
		if _, _, err := net.SplitHostPort(v); err == nil {
			hint = fmt.Sprintf(" (did you mean tcp://%s?)", v)
		}
	}
	return fmt.Errorf("%w: %s %q: want tcp://HOST:PORT or unix:///path/to.sock%s", errUsage, flag, v, hint)
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
	authName := fs.String("auth", "signatures", "per-message authentication: `signatures` (ed25519) or macs (GMAC keyed\nfrom the TLS session); both ends of a connection must agree")
	engineList := fs.String("engines", "echo,kv", "comma-separated built-in `engines` to run (listed above; \"\" for none)")
	level := fs.String("log-level", "info", "log `level`: debug, info, warn, error or disabled (debug adds the transport's\nown log)")
	grace := fs.Duration("forget-grace", 5*time.Second, "how long a foreign engine whose last connection went down is kept for a\nconnection to come back before it is forgotten")
	redialMax := fs.Duration("redial-max", netconn.DefaultBackoffMax, "longest wait between re-dials of a peer (exponential backoff from 100ms)")
	adminAddr := fs.String("admin", "", "run the node's admin server at `HOST:PORT` (loopback only; port 0 picks one):\nmetrics, pprof, health, the observer page; what 'enginekit ps' and 'status' read")
	adminPublic := fs.Bool("admin-public", false, "let --admin listen on an address other than loopback; the admin server has no\nauthentication: put it behind a firewall or an authenticating proxy")
	clusterArgs := addClusterFlags(fs)
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
		if err := checkEndpoint("--listen", ep); err != nil {
			return err
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
	clusterCfg, err := clusterArgs.config()
	if err != nil {
		return err
	}
	if len(listens) > 0 && len(accepts) == 0 && len(peers) == 0 && clusterCfg == nil {
		return fmt.Errorf("%w: --listen would admit no one: pass --accept any, --accept ROUTER,... or --peer", errUsage)
	}
	if clusterCfg != nil && len(listens) == 0 {
		return fmt.Errorf("%w: --cluster-cert needs a --listen, for the other members to connect to", errUsage)
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

	var listeners []node.Listener
	for _, ep := range listens {
		listeners = append(listeners, node.Listener{Endpoint: ep, Accept: accept})
	}
	var nodePeers []node.Peer
	for _, p := range peers {
		nodePeers = append(nodePeers, node.Peer{Endpoint: p.endpoint, Router: p.router})
	}
	trLog := log.With().Str("component", "transport").Logger()
	if lvl > zerolog.DebugLevel {
		trLog = trLog.Level(max(lvl, zerolog.WarnLevel))
	}
	tcfg := transport.Config{
		Auth: auth, ForgetGrace: *grace, Logger: trLog,
		OnLearn: func(engine, peer keyholder.Address) {
			log.Info().Str("event", "learn").Stringer("engine", engine).Stringer("peer", peer).Msg("learned engine")
		},
		OnForget: func(engine keyholder.Address) {
			log.Info().Str("event", "forget").Stringer("engine", engine).Msg("forgot engine")
		},
		OnConnectionEvent: func(e transport.ConnectionEvent) { logConnection(log, e) },
	}
	tcfg.Net.Backoff = netconn.Backoff{Min: min(netconn.DefaultBackoffMin, *redialMax), Max: *redialMax}
	tcfg.Net.OnHandshakeError = func(remote net.Addr, err error) {
		ev := log.Warn()
		if errors.Is(err, io.EOF) { // hung up before TLS: a reachability probe, a port scan
			ev = log.Debug()
		}
		ev.Str("event", "refused").Str("remote", remote.String()).Err(err).Msg("connection failed before it came up")
	}
	var adminCfg *admin.Config
	if *adminPublic && *adminAddr == "" {
		return fmt.Errorf("%w: --admin-public without --admin", errUsage)
	}
	if *adminAddr != "" {
		adminCfg = &admin.Config{Addr: *adminAddr, AllowNonLoopback: *adminPublic, RuntimeMetrics: true}
		if err := adminCfg.Verify(); err != nil {
			return fmt.Errorf("%w: --admin: %v", errUsage, err)
		}
	}
	cfg := node.Config{
		Name:   *name,
		Admin:  adminCfg,
		Logger: log,
		Keys: node.Keys{
			File:       *keys,
			Passphrase: func(create bool) ([]byte, error) { return ps.get(ctx, stderr, create) },
			KDF:        keyholder.KDFParams{Time: uint32(*kdfTime), MemoryKiB: uint32(*kdfMem)},
		},
		Register:     builtinRegister,
		Engines:      nodeEngines(engines),
		Listen:       listeners,
		Peers:        nodePeers,
		RequirePeers: !*allowDown,
		Transport:    tcfg,
		Cluster:      clusterCfg,
	}
	start := log.Info().Str("name", *name).Str("auth", auth.String())
	if len(listens) > 0 {
		start = start.Str("accept", acceptDesc)
	}
	start.Msg("starting")
	n, err := node.Start(ctx, cfg)
	switch {
	case errors.Is(err, node.ErrPeerDown):
		return fmt.Errorf("%v; start it first, or pass --allow-down-peers", strings.TrimPrefix(err.Error(), node.ErrPeerDown.Error()+": "))
	case errors.Is(err, keyholder.ErrBadKDFParams):
		return fmt.Errorf("%w: %v", errUsage, err)
	case err != nil && ctx.Err() != nil:
		return nil // interrupted while starting
	case err != nil:
		return clusterStartErr(err, *clusterArgs.cert)
	}
	return runningNode(ctx, n, log, stdout)
}

// runningNode prints what the node is, then waits for a signal (or for
// the node to fail) and stops it.
func runningNode(ctx context.Context, n *node.Node, log zerolog.Logger, stdout io.Writer) (err error) {
	defer func() {
		if serr := n.Stop(context.Background()); serr != nil && err == nil {
			err = serr
		}
	}()
	var out strings.Builder
	fmt.Fprintf(&out, "router %s\n", n.Router())
	for _, ep := range n.ListenAddrs() {
		fmt.Fprintf(&out, "listen %s\n", ep)
	}
	for _, e := range n.Engines() {
		fmt.Fprintf(&out, "engine %s %s\n", e.Address, displayName(e.Name))
	}
	if a := n.Admin(); a != nil {
		fmt.Fprintf(&out, "admin %s\n", a.URL())
	}
	if c := n.Cluster(); c != nil {
		fmt.Fprintf(&out, "gossip %s\n", c.Membership().Addr())
	}
	out.WriteString("ready\n")
	if _, err := io.WriteString(stdout, out.String()); err != nil {
		return err
	}
	log.Info().Str("event", "ready").Msg("ready")
	select {
	case <-ctx.Done():
		log.Info().Str("event", "shutdown").Msg("shutting down")
		return nil
	case <-n.Done():
		return n.Err()
	}
}

// closedByPeer reports a connection the peer closed in order, which needs
// no error in the log.
func closedByPeer(err error) bool {
	var g wire.GoAway
	return errors.As(err, &g) && g.Code == wire.GoAwayNormal
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
