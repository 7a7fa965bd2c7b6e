package specpeer

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"fmt"
	"math/big"
	"net"
	"sync"
	"syscall"
	"time"
)

// ALPN is the protocol name of §1.
const ALPN = "enginekit/1"

// exporterLabel is the TLS exporter label of the channel secret (§1).
const exporterLabel = "enginekit mac v1"

// Certificate makes the self-signed certificate of a router key (§1).
func Certificate(router ed25519.PrivateKey) (tls.Certificate, error) {
	pub := router.Public().(ed25519.PublicKey)
	var a Address
	copy(a[:], pub)
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		Subject:      pkix.Name{CommonName: a.String()},
		NotBefore:    time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC),
		NotAfter:     time.Date(9999, 12, 31, 23, 59, 59, 0, time.UTC),
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, pub, router)
	if err != nil {
		return tls.Certificate{}, err
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: router}, nil
}

// peerKey checks the peer's chain (exactly one certificate, an Ed25519 key)
// and returns its key (§1).
func peerKey(rawCerts [][]byte) (Address, error) {
	var a Address
	if len(rawCerts) != 1 {
		return a, fmt.Errorf("specpeer: peer sent %d certificates", len(rawCerts))
	}
	c, err := x509.ParseCertificate(rawCerts[0])
	if err != nil {
		return a, err
	}
	k, ok := c.PublicKey.(ed25519.PublicKey)
	if !ok {
		return a, fmt.Errorf("specpeer: peer key is %T, not Ed25519", c.PublicKey)
	}
	copy(a[:], k)
	return a, nil
}

// Config says who the peer is and how it talks.
type Config struct {
	Router   ed25519.PrivateKey // its router key
	Mode     byte               // ModeSignatures or ModeMACs
	MaxFrame uint32             // announced; 0: DefaultFrameSize
	// Credential and Extensions go in the hello (§3.1).
	Credential []byte
	Extensions []Extension
}

// Conn is an up connection: TLS done, hellos exchanged.
type Conn struct {
	tls      *tls.Conn
	mode     byte
	router   ed25519.PrivateKey
	me, peer Address
	secret   []byte // channel secret, MAC mode
	maxIn    uint32 // our max frame size
	maxOut   uint32 // the peer's

	wmu     sync.Mutex
	highest map[Address]uint64 // replay check: highest seq accepted per src
}

// Dial connects to the node at addr (host:port) whose router must be
// want, as the TLS client, and exchanges hellos (§1, §3).
func Dial(ctx context.Context, addr string, want Address, cfg Config) (*Conn, error) {
	if cfg.MaxFrame == 0 {
		cfg.MaxFrame = DefaultFrameSize
	}
	cert, err := Certificate(cfg.Router)
	if err != nil {
		return nil, err
	}
	var me Address
	copy(me[:], cfg.Router.Public().(ed25519.PublicKey))
	tc := &tls.Config{
		MinVersion:             tls.VersionTLS13,
		MaxVersion:             tls.VersionTLS13,
		Certificates:           []tls.Certificate{cert},
		NextProtos:             []string{ALPN},
		InsecureSkipVerify:     true, // names and dates are not checked: the key is pinned below
		SessionTicketsDisabled: true,
		VerifyPeerCertificate: func(raw [][]byte, _ [][]*x509.Certificate) error {
			k, err := peerKey(raw)
			if err != nil {
				return err
			}
			if k == me {
				return errors.New("specpeer: the peer has our own router key")
			}
			if k != want {
				return fmt.Errorf("specpeer: peer router %v, want %v", k, want)
			}
			return nil
		},
	}
	d := tls.Dialer{Config: tc}
	nc, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, err
	}
	c := &Conn{tls: nc.(*tls.Conn), mode: cfg.Mode, router: cfg.Router, me: me, peer: want, maxIn: cfg.MaxFrame, highest: map[Address]uint64{}}
	if dl, ok := ctx.Deadline(); ok {
		_ = c.tls.SetDeadline(dl)
	}
	hello := Hello{Mode: c.mode, MaxFrame: c.maxIn, Credential: cfg.Credential, Extensions: cfg.Extensions}
	if err := c.handshake(hello); err != nil {
		_ = c.tls.Close()
		return nil, err
	}
	_ = c.tls.SetDeadline(time.Time{})
	return c, nil
}

func (c *Conn) handshake(hello Hello) error {
	st := c.tls.ConnectionState()
	if st.Version != tls.VersionTLS13 || st.NegotiatedProtocol != ALPN {
		return fmt.Errorf("specpeer: TLS %#x, ALPN %q", st.Version, st.NegotiatedProtocol)
	}
	if c.mode == ModeMACs {
		s, err := st.ExportKeyingMaterial(exporterLabel, nil, 32)
		if err != nil {
			return err
		}
		c.secret = s
	}
	if err := WriteFrame(c.tls, FrameHello, hello.Marshal()); err != nil {
		return err
	}
	typ, body, err := ReadFrame(c.tls, c.maxIn)
	if err != nil {
		return err
	}
	switch typ {
	case FrameHello:
		h, err := ParseHello(body, c.mode)
		if err != nil {
			_ = WriteFrame(c.tls, FrameGoaway, Goaway(2, err.Error()))
			return err
		}
		c.maxOut = h.MaxFrame
		return nil
	case FrameGoaway:
		code, reason, err := ParseGoaway(body)
		if err != nil {
			return err
		}
		return &GoawayError{Code: code, Reason: reason}
	}
	return fmt.Errorf("specpeer: frame type %d before the hello", typ)
}

// Me is our router address; Peer the node's.
func (c *Conn) Me() Address   { return c.me }
func (c *Conn) Peer() Address { return c.peer }

// Secret is the channel secret (MAC mode).
func (c *Conn) Secret() []byte { return c.secret }

// PeerMaxFrame is the max frame size the node announced.
func (c *Conn) PeerMaxFrame() uint32 { return c.maxOut }

// Seal makes the BATCH body of envs from src (whose private key is key)
// starting at seq, with its tag for this connection's direction us → node
// (§4–§6).
func (c *Conn) Seal(src ed25519.PrivateKey, seq uint64, envs []Envelope) ([]byte, error) {
	var s Address
	copy(s[:], src.Public().(ed25519.PublicKey))
	return c.SealAs(s, src, seq, envs)
}

// SealAs is Seal for src s, whose private key is needed in signature mode
// only: in MAC mode anyone on the connection can tag for any src (§6),
// which the test uses to try to speak for the node's own engines.
func (c *Conn) SealAs(s Address, src ed25519.PrivateKey, seq uint64, envs []Envelope) ([]byte, error) {
	body := SignedBody(s, seq, envs)
	switch c.mode {
	case ModeSignatures:
		return append(body, ed25519.Sign(src, AuthMessage(c.me, c.peer, body))...), nil
	case ModeMACs:
		k, err := MACKey(c.secret, c.me, c.peer, s)
		if err != nil {
			return nil, err
		}
		t, err := GMAC(k, seq, body)
		if err != nil {
			return nil, err
		}
		return append(body, t...), nil
	}
	return nil, fmt.Errorf("specpeer: mode %d", c.mode)
}

// WriteFrame sends one frame, within the node's max frame size.
func (c *Conn) WriteFrame(typ byte, body []byte) error {
	if uint64(len(body))+1 > uint64(c.maxOut) {
		return fmt.Errorf("specpeer: frame of %d over the peer's %d", len(body)+1, c.maxOut)
	}
	c.wmu.Lock()
	defer c.wmu.Unlock()
	return WriteFrame(c.tls, typ, body)
}

// Send seals envs and sends them in one BATCH.
func (c *Conn) Send(src ed25519.PrivateKey, seq uint64, envs []Envelope) error {
	b, err := c.Seal(src, seq, envs)
	if err != nil {
		return err
	}
	return c.WriteFrame(FrameBatch, b)
}

// Verify checks a batch's tag for the direction node → us (§5, §6).
func (c *Conn) Verify(b Batch) error {
	switch c.mode {
	case ModeSignatures:
		if ed25519.Verify(b.Src[:], AuthMessage(c.peer, c.me, b.SignedBody), b.Tag) {
			return nil
		}
	case ModeMACs:
		k, err := MACKey(c.secret, c.peer, c.me, b.Src)
		if err != nil {
			return err
		}
		t, err := GMAC(k, b.Seq, b.SignedBody)
		if err != nil {
			return err
		}
		if bytes.Equal(t, b.Tag) {
			return nil
		}
	}
	return fmt.Errorf("specpeer: bad tag on a batch of %v at seq %d", b.Src, b.Seq)
}

// Recv reads frames until a batch whose tag verifies (see Next), skipping
// PONGs.
func (c *Conn) Recv() (Batch, error) {
	for {
		f, err := c.Next()
		if err != nil || f.Type == FrameBatch {
			return f.Batch, err
		}
	}
}

// Frame is a frame received: a verified batch, or a PONG's body.
type Frame struct {
	Type  byte
	Batch Batch
	Body  []byte
}

// Next reads the next BATCH or PONG, answering PINGs (§8). A batch is
// checked: well-formed, not from our own router, its tag, and its seqs
// against the highest accepted per src (§7: the node sends each src's
// envelopes in order on a connection, so a window is not needed here): a
// batch repeating or going back is an error. A GOAWAY is returned as a
// *GoawayError.
func (c *Conn) Next() (Frame, error) {
	for {
		typ, body, err := ReadFrame(c.tls, c.maxIn)
		if err != nil {
			return Frame{}, err
		}
		switch typ {
		case FramePing:
			if len(body) != 8 {
				return Frame{}, fmt.Errorf("%w: ping of %d bytes", errFormat, len(body))
			}
			if err := c.WriteFrame(FramePong, body); err != nil {
				return Frame{}, err
			}
		case FramePong:
			return Frame{Type: typ, Body: body}, nil
		case FrameGoaway:
			code, reason, err := ParseGoaway(body)
			if err != nil {
				return Frame{}, err
			}
			return Frame{}, &GoawayError{Code: code, Reason: reason}
		case FrameBatch:
			b, err := ParseBatch(body, TagSize(c.mode))
			if err != nil {
				return Frame{}, err
			}
			if b.Src == c.me {
				return Frame{}, fmt.Errorf("specpeer: a batch from our own router")
			}
			if err := c.Verify(b); err != nil {
				return Frame{}, err
			}
			if h, ok := c.highest[b.Src]; ok && b.Seq <= h {
				return Frame{}, fmt.Errorf("specpeer: seq %d of %v not above %d", b.Seq, b.Src, h)
			}
			c.highest[b.Src] = b.Seq + uint64(len(b.Envelopes)) - 1
			return Frame{Type: typ, Batch: b}, nil
		default:
			return Frame{}, fmt.Errorf("%w: frame type %d", errFormat, typ)
		}
	}
}

// WriteRaw sends bytes as they are: the test's malformed frames.
func (c *Conn) WriteRaw(b []byte) error {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	_, err := c.tls.Write(b)
	return err
}

// GoawayError is a GOAWAY received.
type GoawayError struct {
	Code   uint32
	Reason string
}

func (e *GoawayError) Error() string { return fmt.Sprintf("GOAWAY %d %q", e.Code, e.Reason) }

// SetDeadline bounds reads and writes.
func (c *Conn) SetDeadline(t time.Time) error { return c.tls.SetDeadline(t) }

// Close sends GOAWAY code 0 and closes (§8): it sends nothing after it,
// then waits (until the deadline) for the node to close its side, skipping
// what it still sends.
func (c *Conn) Close() error {
	c.wmu.Lock()
	err := WriteFrame(c.tls, FrameGoaway, Goaway(0, "bye"))
	c.wmu.Unlock()
	if err == nil {
		err = c.tls.CloseWrite()
	}
	if err == nil {
		for {
			if _, _, rerr := ReadFrame(c.tls, c.maxIn); rerr != nil {
				// The node closes after our GOAWAY, maybe before reading our
				// close_notify, which its kernel may answer with a reset.
				if !errors.Is(rerr, net.ErrClosed) && !isEOF(rerr) && !errors.Is(rerr, syscall.ECONNRESET) {
					err = rerr
				}
				break
			}
		}
	}
	if cerr := c.tls.Close(); err == nil && !errors.Is(cerr, net.ErrClosed) {
		err = cerr
	}
	return err
}
