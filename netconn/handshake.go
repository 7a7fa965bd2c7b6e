package netconn

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/enginekit/enginekit/keyholder"
	"github.com/enginekit/enginekit/wire"
)

// macLabel is the TLS exporter label of the MAC channel secret (RFC 8446
// §7.5); spec.md, "Authentication".
const macLabel = "enginekit mac v1"

// aLongTimeAgo is a deadline in the past, to interrupt blocked I/O.
var aLongTimeAgo = time.Unix(1, 0)

// handshake runs TLS and the hello exchange within HandshakeTimeout. On
// success the connection is up.
func (c *Conn) handshake(ctx context.Context) (err error) {
	defer func() {
		if err != nil {
			if ctx.Err() != nil {
				err = fmt.Errorf("%w: %w", ErrHandshake, ErrClosed)
			} else if errors.Is(err, os.ErrDeadlineExceeded) {
				err = fmt.Errorf("%w: %w after %v", ErrHandshake, ErrHandshakeTimeout, c.cfg.HandshakeTimeout)
			} else if !errors.Is(err, ErrHandshake) {
				err = fmt.Errorf("%w: %w", ErrHandshake, err)
			}
		}
	}()
	if err := c.raw.SetDeadline(time.Now().Add(c.cfg.HandshakeTimeout)); err != nil {
		return err
	}
	stop := context.AfterFunc(ctx, func() { _ = c.raw.SetDeadline(aLongTimeAgo) })
	defer stop()

	if c.server {
		c.tls = tls.Server(c.raw, c.serverTLS())
	} else {
		c.tls = tls.Client(c.raw, c.clientTLS())
	}
	if err := c.tls.Handshake(); err != nil {
		return err
	}
	st := c.tls.ConnectionState()
	c.peer, err = keyholder.RouterFromCertificate(st.PeerCertificates[0]) // checked in VerifyConnection
	if err != nil {
		return err
	}
	if c.mode == wire.AuthMACs {
		secret, err := st.ExportKeyingMaterial(macLabel, nil, 32)
		if err != nil {
			return err
		}
		if c.mac, err = c.cfg.Keyholder.NewMACSession(secret, c.peer); err != nil {
			return err
		}
	}

	// A hello may be longer than a small max frame size (spec.md §3).
	c.fr = wire.NewFrameReader(c.tls, max(c.cfg.MaxFrameSize, wire.MaxHelloSize+1))
	ours := wire.Hello{Version: wire.Version, Auth: c.mode, MaxFrameSize: uint32(c.cfg.MaxFrameSize), Credential: c.cfg.Credential}
	var theirs wire.Hello
	if c.server {
		// The client speaks first, so the server can refuse with a reason.
		if theirs, err = c.readHello(); err != nil {
			return err
		}
		if _, err := c.tls.Write(wire.AppendHello(nil, ours)); err != nil {
			return err
		}
	} else {
		if _, err := c.tls.Write(wire.AppendHello(nil, ours)); err != nil {
			return err
		}
		if theirs, err = c.readHello(); err != nil {
			return err
		}
	}
	c.fr.SetMaxFrameSize(c.cfg.MaxFrameSize)
	c.peerCred = theirs.Credential
	if !stop() {
		return ctx.Err()
	}
	if err := c.raw.SetDeadline(time.Time{}); err != nil {
		return err
	}
	c.q.init(c.cfg.MaxQueueBytes, int(theirs.MaxFrameSize), c.tagSize)
	c.log = c.log.With().Str("peer", c.peer.String()).Logger()
	c.upSince = time.Now()
	c.mu.Lock()
	c.wasUp = true
	c.mu.Unlock()
	close(c.up)
	return nil
}

// readHello reads the peer's hello and checks it against ours. It refuses
// an unacceptable one with a go-away frame that says why.
func (c *Conn) readHello() (wire.Hello, error) {
	typ, body, err := c.fr.ReadFrame()
	if err != nil {
		return wire.Hello{}, err
	}
	switch typ {
	case wire.FrameHello:
		h, err := wire.ParseHello(body)
		if err == nil {
			err = c.checkHello(h)
		}
		if err == nil && c.admitByCredential {
			err = c.admit(h.Credential)
		}
		if err != nil {
			_, _ = c.tls.Write(wire.AppendGoAway(nil, wire.GoAway{Code: wire.GoAwayRefused, Reason: err.Error()}))
		}
		return h, err
	case wire.FrameGoAway:
		g, err := wire.ParseGoAway(body)
		if err != nil {
			return wire.Hello{}, err
		}
		return wire.Hello{}, fmt.Errorf("%w: %w", ErrPeerClosed, g)
	}
	return wire.Hello{}, fmt.Errorf("%w: %v frame before hello", ErrProtocol, typ)
}

func (c *Conn) checkHello(h wire.Hello) error {
	switch {
	case h.Version != wire.Version:
		return fmt.Errorf("%w: peer speaks version %d, we speak %d", ErrIncompatible, h.Version, wire.Version)
	case h.Auth != c.mode:
		return fmt.Errorf("%w: peer authenticates with %v, we with %v", ErrIncompatible, h.Auth, c.mode)
	}
	return nil
}

// admit decides, from the credential in its hello, on a client whose
// router the AcceptPolicy refused.
func (c *Conn) admit(credential []byte) error {
	if c.cfg.AdmitCredential(c.peer, credential) {
		c.log.Debug().Str("peer", c.peer.String()).Msg("admitted by credential")
		return nil
	}
	if len(credential) == 0 {
		return fmt.Errorf("%w: %w: %v, and no credential", ErrHandshake, ErrNotAccepted, c.peer)
	}
	return fmt.Errorf("%w: %w: %v, and its credential is refused", ErrHandshake, ErrNotAccepted, c.peer)
}

func (c *Conn) serverTLS() *tls.Config {
	kh := c.cfg.Keyholder
	return &tls.Config{
		MinVersion:             tls.VersionTLS13,
		MaxVersion:             tls.VersionTLS13,
		ClientAuth:             tls.RequireAnyClientCert,
		NextProtos:             []string{wire.ALPN},
		SessionTicketsDisabled: true,
		GetCertificate: func(*tls.ClientHelloInfo) (*tls.Certificate, error) {
			cert, err := kh.TLSCertificate()
			return &cert, err
		},
		VerifyConnection: func(cs tls.ConnectionState) error {
			peer, err := c.checkPeerState(cs)
			if err != nil {
				return err
			}
			if !c.accept(peer) {
				if c.cfg.AdmitCredential == nil {
					return fmt.Errorf("%w: %w: %v", ErrHandshake, ErrNotAccepted, peer)
				}
				// Decided on the credential in its hello (admit).
				c.admitByCredential = true
			}
			return nil
		},
	}
}

func (c *Conn) clientTLS() *tls.Config {
	kh := c.cfg.Keyholder
	return &tls.Config{
		MinVersion: tls.VersionTLS13,
		MaxVersion: tls.VersionTLS13,
		NextProtos: []string{wire.ALPN},
		ServerName: "enginekit",
		// Peers are identified by their router key, not by names or CAs:
		// VerifyConnection checks the key against the pinned one.
		InsecureSkipVerify: true,
		GetClientCertificate: func(*tls.CertificateRequestInfo) (*tls.Certificate, error) {
			cert, err := kh.TLSCertificate()
			return &cert, err
		},
		VerifyConnection: func(cs tls.ConnectionState) error {
			peer, err := c.checkPeerState(cs)
			if err != nil {
				return err
			}
			if peer != c.pinned {
				return fmt.Errorf("%w: %w: got %v, want %v", ErrHandshake, ErrWrongPeer, peer, c.pinned)
			}
			return nil
		},
	}
}

// checkPeerState extracts the peer's router key from a finished TLS
// handshake and checks what both sides require.
func (c *Conn) checkPeerState(cs tls.ConnectionState) (keyholder.Address, error) {
	if cs.Version != tls.VersionTLS13 {
		return keyholder.Address{}, fmt.Errorf("%w: TLS version %x", ErrHandshake, cs.Version)
	}
	if cs.NegotiatedProtocol != wire.ALPN {
		return keyholder.Address{}, fmt.Errorf("%w: %w: peer does not speak %s", ErrHandshake, ErrIncompatible, wire.ALPN)
	}
	if len(cs.PeerCertificates) != 1 {
		return keyholder.Address{}, fmt.Errorf("%w: peer sent %d certificates, want 1", ErrHandshake, len(cs.PeerCertificates))
	}
	peer, err := keyholder.RouterFromCertificate(cs.PeerCertificates[0])
	if err != nil {
		return keyholder.Address{}, fmt.Errorf("%w: %w", ErrHandshake, err)
	}
	if peer == c.router {
		return keyholder.Address{}, fmt.Errorf("%w: %w", ErrHandshake, ErrSelf)
	}
	return peer, nil
}
