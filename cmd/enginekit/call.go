package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/enginekit/enginekit/callbridge"
	"github.com/enginekit/enginekit/examples/echo"
	"github.com/enginekit/enginekit/examples/ordering"
	"github.com/enginekit/enginekit/examples/storage"
	"github.com/enginekit/enginekit/genserver"
	"github.com/enginekit/enginekit/keyholder"
	"github.com/enginekit/enginekit/netconn"
	"github.com/enginekit/enginekit/node"
	"github.com/enginekit/enginekit/transport"
)

// call and cast are one-shot client nodes: new keys in memory, one
// connection to the node, one request.
//
// Finding the engine. A node announces all its engines as soon as a
// connection is up, then sends an end-of-burst marker (wire.Synced), which
// the transport reports with Config.OnSynced. So the client waits for the
// learns: if the target has not been learned when the marker arrives, the
// node has no such engine, and the client says so at once (also when the
// node runs no engine at all).
//
// An acknowledgement call follows a cast: a read-only request of the cast's
// engine kind (echo: count; ordering: stats), which every enginekit node
// decodes, so nothing is counted as dropped. The node hands the cast to the
// engine's mailbox before it reads the call that follows it on the same
// connection, and the engine answers the call after handling the cast, so
// when cast prints "sent" the cast has been handled, ahead of any request
// that anyone sends afterwards. An engine of another kind answers the call
// with an error of its own ("unknown request"), which acknowledges the
// cast just as well.

const requestHelp = `Requests (on the built-in engines of 'enginekit node'):
  echo TEXT                      echo: the reply is TEXT (cast: counted by the engine)
  count                          echo: how many echo casts the engine has received
  get KEY [--wait]               kv: KEY's value; --wait defers the reply until KEY is put
  put KEY VALUE [--if-version N] kv: set KEY; with --if-version, only if KEY is at version N
  delete KEY                     kv: remove KEY
  submit TXID DATA               ordering: order a transaction; the reply is its height
  read TXID                      ordering: the transaction and its height; waits until it is ordered`

const callSynopsis = `call --node ENDPOINT --router ROUTER --to ENGINE [flags] REQUEST [ARG...]

Sends one request to an engine of a running node and prints its reply. The
client is a node of its own with keys made up for this run: the node must
admit unknown routers (enginekit node --accept any). It connects to --node
(TLS 1.3, the node's router key pinned to --router), waits until the node
has announced the engine --to, calls it and prints the reply. A node that
does not run that engine makes call fail at once with "no such engine".

` + requestHelp + `

Flags may come before or after the request; "--" ends them (echo -- -x).

Output: a get or put prints "KEY = VALUE (version N)", a missing key "KEY not
found", a delete "KEY deleted (version N)" or "KEY not found"; echo prints
TEXT and count the number. Values are printed as text when they are
printable UTF-8, else quoted Go-style. With --json, one JSON object:
{"text"} for echo, {"count"} for count, {"key", "value", "version",
"found"} for get/put/delete, where "value" is the value as a string when it
is valid UTF-8 and "value_base64" replaces it otherwise.

Exit status: 0 with a reply; 1 with one line on stderr when the node cannot
be reached, refuses the connection (wrong --router, its --accept policy,
another --auth), has no such engine, the engine fails the request, or
--timeout passes; 2 for bad usage.`

const castSynopsis = `cast --node ENDPOINT --router ROUTER --to ENGINE [flags] echo TEXT | submit TXID DATA

Sends one cast (a message that gets no reply) to an engine of a running
node, as 'enginekit call' sends a call (see 'enginekit call --help'), and
prints "sent" ({"sent": true} with --json) once the node has handed it to
the engine: a request sent afterwards, by anyone, is handled after it.

The echo engine counts the casts it gets ('enginekit call ... count'); the
ordering engine orders a cast submit as it does a called one.
Exit status as for call.`

// verb is one request the CLI can send.
type verb struct {
	name  string
	nargs int
	cast  bool // may be cast; every verb may be called
	// ack is the read-only request that acknowledges a cast (cast verbs).
	ack   any
	build func(args []string, o verbOpts) any
	print func(w io.Writer, reply any, asJSON bool) error
}

// verbOpts are the flags that belong to one verb.
type verbOpts struct {
	wait      bool
	ifVersion uint64
}

func verbs() []verb {
	return []verb{
		{name: "echo", nargs: 1, cast: true, ack: echo.Count{},
			build: func(a []string, _ verbOpts) any { return echo.Echo{Text: a[0]} },
			print: printEcho},
		{name: "count",
			build: func([]string, verbOpts) any { return echo.Count{} },
			print: printCount},
		{name: "get", nargs: 1,
			build: func(a []string, o verbOpts) any { return storage.Get{Key: a[0], Wait: o.wait} },
			print: printEntry("get")},
		{name: "put", nargs: 2,
			build: func(a []string, o verbOpts) any {
				return storage.Put{Key: a[0], Value: []byte(a[1]), IfVersion: o.ifVersion}
			},
			print: printEntry("put")},
		{name: "delete", nargs: 1,
			build: func(a []string, _ verbOpts) any { return storage.Delete{Key: a[0]} },
			print: printEntry("delete")},
		{name: "submit", nargs: 2, cast: true, ack: ordering.Stats{},
			build: func(a []string, _ verbOpts) any { return ordering.Submit{TxID: a[0], Data: []byte(a[1])} },
			print: printHeight},
		{name: "read", nargs: 1,
			build: func(a []string, _ verbOpts) any { return ordering.Read{TxID: a[0]} },
			print: printTx},
	}
}

func runCall(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	return runRequest(ctx, false, args, stdout)
}

func runCast(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	return runRequest(ctx, true, args, stdout)
}

func runRequest(ctx context.Context, cast bool, args []string, stdout io.Writer) error {
	name, synopsis := "call", callSynopsis
	if cast {
		name, synopsis = "cast", castSynopsis
	}
	fs := newFlags(name, synopsis, stdout)
	nodeEP := fs.String("node", "", "`endpoint` of the node: tcp://HOST:PORT or unix:///path.sock (required)")
	routerArg := fs.String("router", "", "the node's router `address`, as it printed it (required)")
	toArg := fs.String("to", "", "`address` of the engine, as the node printed it (required)")
	authName := fs.String("auth", "signatures", "per-message authentication, as the node's --auth: `signatures` or macs")
	timeout := fs.Duration("timeout", 5*time.Second, "give up after this `duration`: connecting, finding the engine and the reply together")
	asJSON := fs.Bool("json", false, "print the outcome as one JSON object (see above)")
	var o verbOpts
	via := new(string)
	if !cast {
		via = fs.String("via", "", "call through the relay engine at this `address` on --node, which calls --to from\nthat node: --to may then be any engine the node knows, e.g. a cluster member's")
		fs.BoolVar(&o.wait, "wait", false, "get: wait for the key to be put instead of replying \"not found\"")
		fs.Uint64Var(&o.ifVersion, "if-version", 0, "put: write only if the key is at this `version` (0: unconditionally)")
	}
	pos, err := parseInterleaved(fs, args)
	if err != nil {
		return err
	}

	if *nodeEP == "" || *routerArg == "" || *toArg == "" {
		return fmt.Errorf("%w: --node, --router and --to are required", errUsage)
	}
	if err := checkEndpoint("--node", *nodeEP); err != nil {
		return err
	}
	router, err := keyholder.ParseAddress(*routerArg)
	if err != nil {
		return fmt.Errorf("%w: --router: %v", errUsage, err)
	}
	to, err := keyholder.ParseAddress(*toArg)
	if err != nil {
		return fmt.Errorf("%w: --to: %v", errUsage, err)
	}
	auth, err := parseAuth(*authName)
	if err != nil {
		return err
	}
	if *timeout <= 0 {
		return fmt.Errorf("%w: --timeout must be positive", errUsage)
	}
	if len(pos) == 0 {
		return fmt.Errorf("%w: no request given", errUsage)
	}
	var v *verb
	for _, cand := range verbs() {
		if cand.name == pos[0] && (cand.cast || !cast) {
			v = &cand
			break
		}
	}
	switch {
	case v == nil && cast:
		return fmt.Errorf("%w: cannot cast %q; cast sends: echo TEXT, submit TXID DATA", errUsage, pos[0])
	case v == nil:
		return fmt.Errorf("%w: unknown request %q (want echo, count, get, put, delete, submit or read)", errUsage, pos[0])
	case len(pos)-1 != v.nargs:
		return fmt.Errorf("%w: %s takes %d argument(s), got %d", errUsage, v.name, v.nargs, len(pos)-1)
	case o.wait && v.name != "get":
		return fmt.Errorf("%w: --wait goes with get only", errUsage)
	case o.ifVersion != 0 && v.name != "put":
		return fmt.Errorf("%w: --if-version goes with put only", errUsage)
	}
	req := v.build(pos[1:], o)
	var relay keyholder.Address
	if *via != "" {
		if relay, err = keyholder.ParseAddress(*via); err != nil {
			return fmt.Errorf("%w: --via: %v", errUsage, err)
		}
	}

	ctx, cancel := context.WithTimeout(ctx, *timeout)
	defer cancel()
	c, err := dialClient(ctx, *nodeEP, router, auth)
	if err != nil {
		return err
	}
	defer c.close()
	if *via != "" { // the relay engine calls --to from its node
		if err := c.awaitEngine(ctx, relay, *timeout); err != nil {
			return err
		}
		rc, err := relayed(c.node.Registry(), to, req)
		if err != nil {
			return err
		}
		reply, err := c.sys.Call(ctx, genserver.Name(relay.String()), rc)
		if err != nil {
			return c.replyError(relay, *timeout, err)
		}
		if reply, err = unrelayed(c.node.Registry(), reply); err != nil {
			return err
		}
		return v.print(stdout, reply, *asJSON)
	}
	if err := c.awaitEngine(ctx, to, *timeout); err != nil {
		return err
	}
	dest := genserver.Name(to.String())
	if cast {
		if err := c.sys.Cast(dest, req); err != nil {
			return fmt.Errorf("cast: %w", err)
		}
		if err := c.ack(ctx, to, v.ack); err != nil {
			return c.replyError(to, *timeout, err)
		}
		if *asJSON {
			_, err = fmt.Fprintln(stdout, `{"sent":true}`)
		} else {
			_, err = fmt.Fprintln(stdout, "sent")
		}
		return err
	}
	reply, err := c.sys.Call(ctx, dest, req)
	if err != nil {
		return c.replyError(to, *timeout, err)
	}
	return v.print(stdout, reply, *asJSON)
}

// parseInterleaved parses flags placed anywhere among the positional
// arguments, which it returns; "--" makes the rest positional.
func parseInterleaved(fs *flags, args []string) ([]string, error) {
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				fs.help()
				return nil, err
			}
			return nil, fmt.Errorf("%w: %v", errUsage, err)
		}
		rest := fs.Args()
		if len(rest) == 0 {
			return pos, nil
		}
		if n := len(args) - len(rest); n > 0 && args[n-1] == "--" {
			return append(pos, rest...), nil
		}
		pos = append(pos, rest[0])
		args = rest[1:]
	}
}

// client is the one-shot node of call and cast.
type client struct {
	endpoint string
	router   keyholder.Address
	node     *node.Node
	sys      *genserver.System

	events chan connEvent // connection ups, downs and handshake failures

	mu      sync.Mutex
	learned map[keyholder.Address]bool
	learnCh chan struct{} // capacity 1: something was learned since the last look
	synced  chan struct{} // capacity 1: the node's end-of-burst marker arrived
}

type connEvent struct {
	up  bool
	err error
	tls bool // a handshake failure
}

// dialClient starts a client node connected to the node at endpoint,
// which must prove router. It fails at once when nothing answers there.
func dialClient(ctx context.Context, endpoint string, router keyholder.Address, auth netconn.Auth) (*client, error) {
	// The transport re-dials quietly with backoff; a first plain dial tells
	// an unreachable node at once.
	if err := probe(ctx, endpoint, time.Until(deadlineOf(ctx))); err != nil {
		if ctx.Err() != nil {
			return nil, timeoutOrInterrupt(ctx, "connecting to the node at "+endpoint)
		}
		return nil, fmt.Errorf("cannot reach the node at %s: %v", endpoint, err)
	}
	c := &client{
		endpoint: endpoint, router: router,
		events:  make(chan connEvent, 16),
		learned: make(map[keyholder.Address]bool),
		learnCh: make(chan struct{}, 1),
		synced:  make(chan struct{}, 1),
	}
	event := func(e connEvent) {
		select {
		case c.events <- e:
		default: // the first events are the ones that matter
		}
	}
	tcfg := transport.Config{
		Auth: auth,
		OnLearn: func(engine, _ keyholder.Address) {
			c.mu.Lock()
			c.learned[engine] = true
			c.mu.Unlock()
			select {
			case c.learnCh <- struct{}{}:
			default:
			}
		},
		OnSynced: func(keyholder.Address) {
			select {
			case c.synced <- struct{}{}:
			default:
			}
		},
		OnConnection: func(_ keyholder.Address, up bool, err error) { event(connEvent{up: up, err: err}) },
	}
	tcfg.Net.OnHandshakeError = func(_ net.Addr, err error) { event(connEvent{err: err, tls: true}) }
	n, err := node.Start(ctx, node.Config{
		Name:      "enginekit-client", // new keys in memory
		Register:  builtinRegister,
		Peers:     []node.Peer{{Endpoint: endpoint, Router: router}},
		Transport: tcfg,
	})
	if err != nil {
		return nil, err
	}
	c.node, c.sys = n, n.System()
	return c, nil
}

func (c *client) close() {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_ = c.node.Stop(ctx)
}

// errNoSuchEngine is what a node without the engine makes call fail with.
var errNoSuchEngine = errors.New("no such engine")

// awaitEngine waits until the node has announced engine to, and fails as
// soon as it is clear that it will not: its end-of-burst marker came
// without it (see the comment at the top).
func (c *client) awaitEngine(ctx context.Context, to keyholder.Address, timeout time.Duration) error {
	up := false
	found := func() bool {
		c.mu.Lock()
		defer c.mu.Unlock()
		return c.learned[to]
	}
	for {
		select {
		case <-ctx.Done():
			switch {
			case errors.Is(ctx.Err(), context.Canceled):
				return errors.New("interrupted")
			case !up:
				return fmt.Errorf("timed out after %v connecting to the node at %s (TLS handshake not done)", timeout, c.endpoint)
			default:
				return fmt.Errorf("timed out after %v waiting for the node at %s to announce its engines", timeout, c.endpoint)
			}
		case e := <-c.events:
			switch {
			case e.tls:
				return c.refused(e.err)
			case e.up:
				up = true
			default:
				return fmt.Errorf("the connection to the node at %s went down: %v", c.endpoint, e.err)
			}
		case <-c.learnCh:
			if found() {
				return nil
			}
		case <-c.synced:
			if found() {
				return nil
			}
			return fmt.Errorf("%w %v at %s: the node runs no engine with that address", errNoSuchEngine, to, c.endpoint)
		}
	}
}

// ack calls engine with req, the acknowledgement of a cast (see the
// comment at the top), and returns nil once the engine answered, with a
// reply or an error of its own.
func (c *client) ack(ctx context.Context, engine keyholder.Address, req any) error {
	_, err := c.sys.Call(ctx, genserver.Name(engine.String()), req)
	var remote *callbridge.RemoteError
	if err == nil || errors.As(err, &remote) {
		return nil
	}
	return err
}

// refused turns a handshake failure into the reason the node refused us.
func (c *client) refused(err error) error {
	switch {
	case errors.Is(err, netconn.ErrWrongPeer):
		return fmt.Errorf("wrong --router for the node at %s: %v", c.endpoint, err)
	case errors.Is(err, netconn.ErrIncompatible), errors.Is(err, netconn.ErrPeerClosed):
		// Most likely a --auth mismatch, which the node gives as its reason.
		return fmt.Errorf("the node at %s refused the connection (same --auth on both sides?): %v", c.endpoint, err)
	}
	return fmt.Errorf("the node at %s refused the connection (does its --accept admit any router?): %v", c.endpoint, err)
}

// replyError explains a call that failed.
func (c *client) replyError(to keyholder.Address, timeout time.Duration, err error) error {
	var remote *callbridge.RemoteError
	switch {
	case errors.Is(err, genserver.ErrTimeout), errors.Is(err, context.DeadlineExceeded):
		return fmt.Errorf("timed out after %v waiting for the reply of %v", timeout, to)
	case errors.Is(err, context.Canceled):
		return errors.New("interrupted")
	case errors.Is(err, genserver.ErrNoProcess):
		return fmt.Errorf("%w %v at %s: it stopped", errNoSuchEngine, to, c.endpoint)
	case errors.Is(err, transport.ErrNoConnection):
		return fmt.Errorf("the connection to the node at %s went down before the reply", c.endpoint)
	case errors.Is(err, callbridge.ErrBadRequest):
		return fmt.Errorf("engine %v does not understand the request (is it the right kind of engine?)", to)
	case errors.Is(err, genserver.ErrExited):
		return fmt.Errorf("engine %v exited before replying: %v", to, err)
	case errors.As(err, &remote):
		return fmt.Errorf("engine %v: %s", to, remote.Message)
	}
	return fmt.Errorf("engine %v: %v", to, err)
}

func deadlineOf(ctx context.Context) time.Time {
	d, _ := ctx.Deadline()
	return d
}

func timeoutOrInterrupt(ctx context.Context, doing string) error {
	if errors.Is(ctx.Err(), context.Canceled) {
		return errors.New("interrupted")
	}
	return fmt.Errorf("timed out %s", doing)
}

// --- printing replies --------------------------------------------------------

func printEcho(w io.Writer, reply any, asJSON bool) error {
	e, ok := reply.(echo.Echo)
	if !ok {
		return fmt.Errorf("unexpected reply %T", reply)
	}
	if asJSON {
		return json.NewEncoder(w).Encode(struct {
			Text string `json:"text"`
		}{e.Text})
	}
	_, err := fmt.Fprintln(w, e.Text)
	return err
}

func printCount(w io.Writer, reply any, asJSON bool) error {
	n, ok := reply.(int64)
	if !ok {
		return fmt.Errorf("unexpected reply %T", reply)
	}
	if asJSON {
		return json.NewEncoder(w).Encode(struct {
			Count int64 `json:"count"`
		}{n})
	}
	_, err := fmt.Fprintln(w, n)
	return err
}

type entryJSON struct {
	Key         string  `json:"key"`
	Value       *string `json:"value,omitempty"`
	ValueBase64 []byte  `json:"value_base64,omitempty"`
	Version     uint64  `json:"version"`
	Found       bool    `json:"found"`
}

func printEntry(op string) func(w io.Writer, reply any, asJSON bool) error {
	return func(w io.Writer, reply any, asJSON bool) error {
		e, ok := reply.(storage.Entry)
		if !ok {
			return fmt.Errorf("unexpected reply %T", reply)
		}
		if asJSON {
			j := entryJSON{Key: e.Key, Version: e.Version, Found: e.Found}
			if e.Found {
				if utf8.Valid(e.Value) {
					s := string(e.Value)
					j.Value = &s
				} else {
					j.ValueBase64 = e.Value
				}
			}
			return json.NewEncoder(w).Encode(j)
		}
		var err error
		switch {
		case op == "delete" && e.Version > 0:
			_, err = fmt.Fprintf(w, "%s deleted (version %d)\n", printable(e.Key), e.Version)
		case !e.Found:
			_, err = fmt.Fprintf(w, "%s not found\n", printable(e.Key))
		default:
			_, err = fmt.Fprintf(w, "%s = %s (version %d)\n", printable(e.Key), printable(string(e.Value)), e.Version)
		}
		return err
	}
}

func printHeight(w io.Writer, reply any, asJSON bool) error {
	h, ok := reply.(ordering.Height)
	if !ok {
		return fmt.Errorf("unexpected reply %T", reply)
	}
	if asJSON {
		return json.NewEncoder(w).Encode(struct {
			Height uint64 `json:"height"`
		}{uint64(h)})
	}
	_, err := fmt.Fprintf(w, "height %d\n", h)
	return err
}

func printTx(w io.Writer, reply any, asJSON bool) error {
	tx, ok := reply.(ordering.Tx)
	if !ok {
		return fmt.Errorf("unexpected reply %T", reply)
	}
	if asJSON {
		return json.NewEncoder(w).Encode(struct {
			TxID   string `json:"txid"`
			Height uint64 `json:"height"`
			Data   string `json:"data"`
		}{tx.TxID, uint64(tx.Height), string(tx.Data)})
	}
	_, err := fmt.Fprintf(w, "%s at height %d: %s\n", printable(tx.TxID), tx.Height, printable(string(tx.Data)))
	return err
}

// printable returns s as is when it is printable UTF-8 without blanks at
// its ends, else quoted.
func printable(s string) string {
	if s == "" || !utf8.ValidString(s) || strings.TrimSpace(s) != s || strings.ContainsFunc(s, func(r rune) bool {
		return !unicode.IsPrint(r) && r != ' '
	}) {
		return strconv.Quote(s)
	}
	return s
}
