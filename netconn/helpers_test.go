package netconn

import (
	"bytes"
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/hkdf"
	"crypto/sha256"
	"crypto/tls"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/enginekit/enginekit/keyholder"
	"github.com/enginekit/enginekit/wire"
	"go.uber.org/goleak"
)

// waitTimeout bounds every wait in these tests. It is generous because a
// loaded 2-core machine running -race can be slow; no test sleeps for it
// when things work.
const waitTimeout = 20 * time.Second

// connType is one kind of socket the tests run over, after yamux's
// testConnTypes.
type connType struct {
	name    string
	network string
	address func(t testing.TB) string
	pipe    bool // in memory: a PipeListener served by NewListenerOn
}

var (
	tcpType  = connType{"tcp", "tcp", func(testing.TB) string { return "127.0.0.1:0" }, false}
	unixType = connType{"unix", "unix", sockPath, false}
	pipeType = connType{"pipe", "pipe", pipeName, true}

	connTypes   = []connType{tcpType, unixType, pipeType}
	socketTypes = []connType{tcpType, unixType} // for tests of sockets as such
)

// pipes holds the PipeListeners of the running tests by name, so dialers
// can find them as they find a socket by its address.
var (
	pipes   sync.Map // name -> *PipeListener
	pipeSeq atomic.Int64
)

func pipeName(testing.TB) string { return fmt.Sprintf("pipe-%d", pipeSeq.Add(1)) }

func pipeListener(t testing.TB, addr net.Addr) *PipeListener {
	t.Helper()
	pl, ok := pipes.Load(addr.String())
	if !ok {
		t.Fatalf("no pipe listener %s", addr)
	}
	return pl.(*PipeListener)
}

// listenOn makes a Listener of type ct.
func listenOn(t testing.TB, ct connType, cfg Config, accept AcceptPolicy) (*Listener, error) {
	if !ct.pipe {
		return NewListener(cfg, ct.network, ct.address(t), accept)
	}
	pl := NewPipeListener(ct.address(t))
	pipes.Store(pl.Addr().String(), pl)
	t.Cleanup(func() { pipes.Delete(pl.Addr().String()) })
	return NewListenerOn(cfg, pl, accept)
}

// dialTo connects a raw stream to a listener of type ct at addr.
func dialTo(t testing.TB, ct connType, addr net.Addr) (net.Conn, error) {
	if !ct.pipe {
		return net.Dial(ct.network, addr.String())
	}
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()
	return pipeListener(t, addr).Dial(ctx)
}

// sockPath returns a fresh Unix socket path, short enough for sun_path.
func sockPath(t testing.TB) string {
	dir := t.TempDir()
	if len(dir) > 80 {
		var err error
		dir, err = os.MkdirTemp("", "nc")
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { os.RemoveAll(dir) })
	}
	return filepath.Join(dir, "s.sock")
}

func forEachConnType(t *testing.T, f func(t *testing.T, ct connType)) {
	for _, ct := range connTypes {
		t.Run(ct.name, func(t *testing.T) { f(t, ct) })
	}
}

func forEachSocketType(t *testing.T, f func(t *testing.T, ct connType)) {
	for _, ct := range socketTypes {
		t.Run(ct.name, func(t *testing.T) { f(t, ct) })
	}
}

func forEachAuth(t *testing.T, f func(t *testing.T, auth Auth)) {
	for _, a := range []Auth{Signatures, MACs} {
		t.Run(a.String(), func(t *testing.T) { f(t, a) })
	}
}

type downEvent struct {
	c   *Conn
	err error
}

type hsEvent struct {
	remote net.Addr
	err    error
}

// node is one side of a test: a keyholder with an engine, and channels fed
// by the Config callbacks.
type node struct {
	t         testing.TB
	kh        *keyholder.Keyholder
	engine    keyholder.Address
	delivered chan *wire.Envelope
	ups       chan *Conn
	downs     chan downEvent
	hsErrs    chan hsEvent
}

func newNode(t testing.TB) *node {
	t.Helper()
	kh, err := keyholder.New(keyholder.Config{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { kh.Close() })
	e, err := kh.NewEngine("e")
	if err != nil {
		t.Fatal(err)
	}
	return &node{
		t:         t,
		kh:        kh,
		engine:    e,
		delivered: make(chan *wire.Envelope, 10000),
		ups:       make(chan *Conn, 100),
		downs:     make(chan downEvent, 100),
		hsErrs:    make(chan hsEvent, 100),
	}
}

func (n *node) router() keyholder.Address { return n.kh.Router() }

func (n *node) config(auth Auth) Config {
	return Config{
		Keyholder:        n.kh,
		Auth:             auth,
		HandshakeTimeout: waitTimeout,
		Deliver:          func(c *Conn, env *wire.Envelope) { n.delivered <- env.Clone() },
		OnUp:             func(c *Conn) { n.ups <- c },
		OnDown:           func(c *Conn, err error) { n.downs <- downEvent{c, err} },
		OnHandshakeError: func(remote net.Addr, err error) { n.hsErrs <- hsEvent{remote, err} },
		Backoff:          Backoff{Min: time.Millisecond, Max: 20 * time.Millisecond},
	}
}

func recv[T any](t testing.TB, ch <-chan T, what string) T {
	t.Helper()
	select {
	case v := <-ch:
		return v
	case <-time.After(waitTimeout):
		t.Fatalf("timed out waiting for %s", what)
		panic("unreachable")
	}
}

// none checks that nothing arrives on ch while the caller's other waits
// happen; call it after those.
func none[T any](t testing.TB, ch <-chan T, what string) {
	t.Helper()
	select {
	case v := <-ch:
		t.Fatalf("unexpected %s: %v", what, v)
	default:
	}
}

// service runs a Serve method in a goroutine; stop cancels it and waits.
type service struct {
	cancel context.CancelFunc
	done   chan error
}

func runService(t testing.TB, serve func(context.Context) error) *service {
	ctx, cancel := context.WithCancel(context.Background())
	s := &service{cancel: cancel, done: make(chan error, 1)}
	go func() { s.done <- serve(ctx) }()
	t.Cleanup(func() { s.stop(t) })
	return s
}

func (s *service) stop(t testing.TB) error {
	t.Helper()
	s.cancel()
	select {
	case err, ok := <-s.done:
		if ok {
			close(s.done)
		}
		return err
	case <-time.After(waitTimeout):
		t.Fatal("service did not stop")
		return nil
	}
}

// pair is a listener on one node and a dialer to it on another.
type pair struct {
	srv, cli         *node
	l                *Listener
	d                *Dialer
	lsvc, dsvc       *service
	srvConn, cliConn *Conn
}

func startListener(t testing.TB, ct connType, n *node, cfg Config, accept AcceptPolicy) (*Listener, *service) {
	t.Helper()
	l, err := listenOn(t, ct, cfg, accept)
	if err != nil {
		t.Fatal(err)
	}
	return l, runService(t, l.Serve)
}

func startDialer(t testing.TB, ct connType, cfg Config, addr net.Addr, peer keyholder.Address) (*Dialer, *service) {
	t.Helper()
	var d *Dialer
	var err error
	if ct.pipe {
		d, err = NewDialerFunc(cfg, addr.String(), pipeListener(t, addr).Dial, peer)
	} else {
		d, err = NewDialer(cfg, ct.network, addr.String(), peer)
	}
	if err != nil {
		t.Fatal(err)
	}
	return d, runService(t, d.Serve)
}

// startPair connects two nodes and waits until both ends are up.
func startPair(t testing.TB, ct connType, auth Auth, tweak func(srv, cli *Config)) *pair {
	t.Helper()
	p := &pair{srv: newNode(t), cli: newNode(t)}
	scfg, ccfg := p.srv.config(auth), p.cli.config(auth)
	if tweak != nil {
		tweak(&scfg, &ccfg)
	}
	p.l, p.lsvc = startListener(t, ct, p.srv, scfg, AcceptAny)
	p.d, p.dsvc = startDialer(t, ct, ccfg, p.l.Addr(), p.srv.router())
	p.srvConn = recv(t, p.srv.ups, "server up")
	p.cliConn = recv(t, p.cli.ups, "client up")
	return p
}

func cast(src, dst keyholder.Address, payload string) *wire.Envelope {
	return &wire.Envelope{Kind: wire.Cast, Src: src, Dst: dst, Payload: []byte(payload)}
}

func mustSend(t testing.TB, c *Conn, env *wire.Envelope) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()
	if err := c.Send(ctx, env); err != nil {
		t.Fatalf("send: %v", err)
	}
}

func expectPayload(t testing.TB, n *node, want string) *wire.Envelope {
	t.Helper()
	e := recv(t, n.delivered, "delivery of "+want)
	if string(e.Payload) != want {
		t.Fatalf("delivered %q, want %q", e.Payload, want)
	}
	return e
}

// rawPeer speaks the protocol by hand over TLS, so tests can send what a
// well-behaved Conn never would. It is also a second, minimal
// implementation of spec.md.
type rawPeer struct {
	t      testing.TB
	n      *node
	tc     *tls.Conn
	fr     *wire.FrameReader
	mode   wire.AuthMode
	peer   keyholder.Address // the listener's router
	mac    *keyholder.MACSession
	secret []byte // TLS exported keying material, MACs only
	seq    uint64
	closed sync.Once
}

func rawTLSConfig(n *node) *tls.Config {
	return &tls.Config{
		MinVersion:         tls.VersionTLS13,
		NextProtos:         []string{wire.ALPN},
		InsecureSkipVerify: true,
		GetClientCertificate: func(*tls.CertificateRequestInfo) (*tls.Certificate, error) {
			c, err := n.kh.TLSCertificate()
			return &c, err
		},
	}
}

// dialRaw connects to l as n and completes TLS and the hello exchange.
func dialRaw(t testing.TB, ct connType, l *Listener, n *node, auth Auth) *rawPeer {
	t.Helper()
	p := dialRawTLS(t, ct, l, n, auth)
	p.write(wire.AppendHello(nil, wire.Hello{Version: wire.Version, Auth: p.mode, MaxFrameSize: wire.DefaultMaxFrameSize}))
	typ, body := p.read()
	if typ != wire.FrameHello {
		t.Fatalf("got %v, want hello", typ)
	}
	if _, err := wire.ParseHello(body); err != nil {
		t.Fatal(err)
	}
	return p
}

func dialRawTLS(t testing.TB, ct connType, l *Listener, n *node, auth Auth) *rawPeer {
	t.Helper()
	raw, err := dialTo(t, ct, l.Addr())
	if err != nil {
		t.Fatal(err)
	}
	tc := tls.Client(raw, rawTLSConfig(n))
	if err := tc.Handshake(); err != nil {
		t.Fatal(err)
	}
	cs := tc.ConnectionState()
	peer, err := keyholder.RouterFromCertificate(cs.PeerCertificates[0])
	if err != nil {
		t.Fatal(err)
	}
	p := &rawPeer{t: t, n: n, tc: tc, fr: wire.NewFrameReader(tc, wire.DefaultMaxFrameSize), mode: auth.mode(), peer: peer, seq: uint64(time.Now().UnixNano())}
	if auth == MACs {
		secret, err := cs.ExportKeyingMaterial(macLabel, nil, 32)
		if err != nil {
			t.Fatal(err)
		}
		p.secret = secret
		if p.mac, err = n.kh.NewMACSession(secret, peer); err != nil {
			t.Fatal(err)
		}
	}
	t.Cleanup(p.close)
	return p
}

func (p *rawPeer) close() { p.closed.Do(func() { p.tc.Close() }) }

func (p *rawPeer) write(b []byte) {
	p.t.Helper()
	if _, err := p.tc.Write(b); err != nil {
		p.t.Fatalf("raw write: %v", err)
	}
}

func (p *rawPeer) read() (wire.FrameType, []byte) {
	p.t.Helper()
	p.tc.SetReadDeadline(time.Now().Add(waitTimeout))
	typ, body, err := p.fr.ReadFrame()
	if err != nil {
		p.t.Fatalf("raw read: %v", err)
	}
	return typ, body
}

// readGoAway reads until a go-away frame (answering nothing) and returns it.
func (p *rawPeer) readGoAway() wire.GoAway {
	p.t.Helper()
	for {
		typ, body := p.read()
		if typ == wire.FrameGoAway {
			g, err := wire.ParseGoAway(body)
			if err != nil {
				p.t.Fatal(err)
			}
			return g
		}
	}
}

// batch returns a batch frame of casts with the given payloads from src,
// numbered from the next seq and authenticated.
func (p *rawPeer) batch(src keyholder.Address, dst keyholder.Address, payloads ...string) []byte {
	p.t.Helper()
	envs := make([]wire.Envelope, len(payloads))
	for i, pl := range payloads {
		envs[i] = wire.Envelope{Kind: wire.Cast, Dst: dst, Payload: []byte(pl)}
	}
	return p.batchOf(src, envs)
}

func (p *rawPeer) batchOf(src keyholder.Address, envs []wire.Envelope) []byte {
	p.t.Helper()
	ts := p.mode.TagSize()
	seq := p.seq
	frame := wire.AppendBatch(nil, src, seq, envs, ts)
	p.seq += uint64(len(envs))
	signed := wire.BatchSigned(frame, ts)
	var tag []byte
	var err error
	if p.mac != nil {
		tag, err = p.mac.MAC(src, seq, nil, signed)
	} else {
		router := p.n.router()
		tag, err = p.n.kh.Sign(src, wire.AppendAuthMessage(nil, &router, &p.peer, signed))
	}
	if err != nil {
		p.t.Fatal(err)
	}
	copy(wire.BatchTag(frame, ts), tag)
	return frame
}

func expectErr(t testing.TB, err, want error) {
	t.Helper()
	if !errors.Is(err, want) {
		t.Fatalf("got error %v, want %v", err, want)
	}
}

func netPipe() (net.Conn, net.Conn) { return net.Pipe() }

func bytesReader(b []byte) *bytes.Reader { return bytes.NewReader(b) }

func goleakVerifyNone(t *testing.T) {
	t.Helper()
	goleak.VerifyNone(t)
}

// specBatch builds a one-cast batch from src exactly as spec.md says, with
// the tag made by tag from the batch's first seq and what the mode
// authenticates: the authentication message in signature mode, the body
// without the tag in MAC mode. reversed names the routers the wrong way
// round in the authentication message (sender = p's peer), as a batch
// reflected back to its sender would.
func (p *rawPeer) specBatch(src, dst keyholder.Address, payload string, reversed bool, tag func(seq uint64, msg []byte) []byte) []byte {
	ts := p.mode.TagSize()
	seq := p.seq
	frame := wire.AppendBatch(nil, src, seq, []wire.Envelope{{Kind: wire.Cast, Dst: dst, Payload: []byte(payload)}}, ts)
	p.seq++
	signed := frame[wire.FrameHeaderSize : len(frame)-ts]
	msg := signed
	if p.mode == wire.AuthSignatures {
		digest := sha256.Sum256(signed)
		sender, receiver := p.n.router(), p.peer
		if reversed {
			sender, receiver = receiver, sender
		}
		msg = []byte("enginekit/wire batch v1\x00")
		msg = append(msg, byte(p.mode))
		msg = append(msg, sender[:]...)
		msg = append(msg, receiver[:]...)
		msg = append(msg, digest[:]...)
	}
	copy(frame[len(frame)-ts:], tag(seq, msg))
	return frame
}

// specMAC computes signer's MAC of the batch body signed with first seq seq
// on p's channel from spec.md, without the keyholder (which would refuse
// addresses that are not its own). reversed uses the key of the other
// direction (from p's peer to p).
func (p *rawPeer) specMAC(signer keyholder.Address, seq uint64, signed []byte, reversed bool) []byte {
	prk, err := hkdf.Extract(sha256.New, p.secret, []byte("enginekit keyholder gmac v1"))
	if err != nil {
		p.t.Fatal(err)
	}
	sender, receiver := p.n.router(), p.peer
	if reversed {
		sender, receiver = receiver, sender
	}
	info := "enginekit keyholder gmac v1 engine key\x00" + string(sender[:]) + string(receiver[:]) + string(signer[:])
	key, err := hkdf.Expand(sha256.New, prk, info, 32)
	if err != nil {
		p.t.Fatal(err)
	}
	block, err := aes.NewCipher(key)
	if err != nil {
		p.t.Fatal(err)
	}
	gcm, err := cipher.NewGCM(block)
	if err != nil {
		p.t.Fatal(err)
	}
	nonce := binary.BigEndian.AppendUint64(make([]byte, 4), seq)
	return gcm.Seal(nil, nonce, nil, signed)
}
