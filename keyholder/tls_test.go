package keyholder

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"fmt"
	"math/big"
	"net"
	"testing"
	"time"
)

type connPair func(t *testing.T) (client, server net.Conn)

// connTypes are the transports TLS runs over. net.Pipe is unbuffered, so a
// failed handshake can deadlock on it (each side blocked writing to the other)
// until the context times out; failure tests use only the buffered ones.
var connTypes = []struct {
	name string
	pair connPair
}{
	{"pipe", func(*testing.T) (net.Conn, net.Conn) { return net.Pipe() }},
	{"tcp", func(t *testing.T) (net.Conn, net.Conn) { return socketPair(t, "tcp", "127.0.0.1:0") }},
	{"unix", func(t *testing.T) (net.Conn, net.Conn) { return socketPair(t, "unix", t.TempDir()+"/s") }},
}

func socketPair(t *testing.T, network, addr string) (net.Conn, net.Conn) {
	t.Helper()
	ln, err := net.Listen(network, addr)
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	type result struct {
		c   net.Conn
		err error
	}
	accepted := make(chan result)
	go func() {
		c, err := ln.Accept()
		accepted <- result{c, err}
	}()
	c1, err := net.Dial(network, ln.Addr().String())
	r := <-accepted
	if err != nil || r.err != nil {
		t.Fatalf("dial: %v, accept: %v", err, r.err)
	}
	return c1, r.c
}

// handshake runs a mutual TLS handshake over a connection pair between a dialer
// holding client and pinning wantServer, and a listener holding server that
// accepts any router and records it. It returns both ends (nil on failure),
// the server's view of the client's router, and both handshake errors.
func handshake(t *testing.T, pair connPair, client, server *Keyholder, wantServer Address, maxVersion uint16) (cc, sc *tls.Conn, seenClient Address, cerr, serr error) {
	t.Helper()
	ccert, err := client.TLSCertificate()
	if err != nil {
		t.Fatal(err)
	}
	scert, err := server.TLSCertificate()
	if err != nil {
		t.Fatal(err)
	}
	c1, c2 := pair(t)
	cc = tls.Client(c1, &tls.Config{
		Certificates:       []tls.Certificate{ccert},
		MinVersion:         tls.VersionTLS12,
		MaxVersion:         maxVersion,
		InsecureSkipVerify: true, // we pin the router key instead
		VerifyPeerCertificate: func(raw [][]byte, _ [][]*x509.Certificate) error {
			got, err := RouterFromRawCerts(raw)
			if err != nil {
				return err
			}
			if got != wantServer {
				return fmt.Errorf("peer is router %v, want %v", got, wantServer)
			}
			return nil
		},
	})
	sc = tls.Server(c2, &tls.Config{
		Certificates: []tls.Certificate{scert},
		MinVersion:   tls.VersionTLS12,
		MaxVersion:   maxVersion,
		ClientAuth:   tls.RequireAnyClientCert,
		VerifyPeerCertificate: func(raw [][]byte, _ [][]*x509.Certificate) error {
			var err error
			seenClient, err = RouterFromRawCerts(raw)
			return err
		},
	})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	done := make(chan error)
	go func() {
		err := sc.HandshakeContext(ctx)
		if err != nil {
			sc.Close() // unblocks the client
		}
		done <- err
	}()
	cerr = cc.HandshakeContext(ctx)
	if cerr != nil {
		cc.Close() // unblocks the server
	}
	serr = <-done
	if cerr != nil || serr != nil {
		cc.Close()
		sc.Close()
		return nil, nil, seenClient, cerr, serr
	}
	// Close the transports, not the TLS layers: on an unbuffered pipe a TLS
	// close_notify nobody reads would block each Close for 5 s.
	t.Cleanup(func() { c1.Close(); c2.Close() })
	return cc, sc, seenClient, nil, nil
}

func TestTLSMutualHandshake(t *testing.T) {
	for _, ct := range connTypes {
		t.Run(ct.name, func(t *testing.T) { testTLSMutualHandshake(t, ct.pair) })
	}
}

func testTLSMutualHandshake(t *testing.T, pair connPair) {
	alice, bob := newKH(t), newKH(t)
	cc, sc, seen, cerr, serr := handshake(t, pair, alice, bob, bob.Router(), tls.VersionTLS13)
	if cerr != nil || serr != nil {
		t.Fatalf("handshake: client %v, server %v", cerr, serr)
	}
	if seen != alice.Router() {
		t.Errorf("server saw client router %v, want %v", seen, alice.Router())
	}
	for _, c := range []struct {
		conn *tls.Conn
		want Address
	}{{cc, bob.Router()}, {sc, alice.Router()}} {
		st := c.conn.ConnectionState()
		if st.Version != tls.VersionTLS13 {
			t.Errorf("TLS version %x", st.Version)
		}
		got, err := RouterFromCertificate(st.PeerCertificates[0])
		if err != nil || got != c.want {
			t.Errorf("RouterFromCertificate = %v, %v; want %v", got, err, c.want)
		}
	}

	// The channel secret both sides export keys a MAC session that works
	// across the connection, and the connection carries data.
	secret := func(c *tls.Conn) []byte {
		st := c.ConnectionState()
		b, err := st.ExportKeyingMaterial("enginekit mac v1", nil, 32)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	cs, ss := secret(cc), secret(sc)
	if !bytes.Equal(cs, ss) {
		t.Fatal("exported keying material differs")
	}
	ma, _ := alice.NewMACSession(cs, bob.Router())
	mb, _ := bob.NewMACSession(ss, alice.Router())
	e := mustEngine(t, alice, "e")
	msg := []byte("cast from e")
	tag, err := ma.MAC(e, 1, nil, msg)
	if err != nil {
		t.Fatal(err)
	}
	written := make(chan error, 1)
	go func() {
		_, err := cc.Write(append(tag, msg...))
		written <- err
	}()
	buf := make([]byte, MACSize+len(msg))
	if _, err := readFull(sc, buf); err != nil {
		t.Fatal(err)
	}
	if err := <-written; err != nil {
		t.Fatal(err)
	}
	if !mb.Verify(e, 1, buf[MACSize:], buf[:MACSize]) {
		t.Error("MAC over the TLS channel does not verify")
	}
}

func readFull(c net.Conn, buf []byte) (int, error) {
	n := 0
	for n < len(buf) {
		m, err := c.Read(buf[n:])
		n += m
		if err != nil {
			return n, err
		}
	}
	return n, nil
}

func TestTLSPinMismatch(t *testing.T) {
	for _, ct := range connTypes[1:] {
		t.Run(ct.name, func(t *testing.T) {
			alice, bob, carol := newKH(t), newKH(t), newKH(t)
			_, _, _, cerr, serr := handshake(t, ct.pair, alice, bob, carol.Router(), tls.VersionTLS13)
			if cerr == nil || serr == nil {
				t.Fatalf("handshake with wrong pin: client %v, server %v", cerr, serr)
			}
		})
	}
}

func TestTLS12Refused(t *testing.T) {
	for _, ct := range connTypes[1:] {
		t.Run(ct.name, func(t *testing.T) {
			alice, bob := newKH(t), newKH(t)
			_, _, _, cerr, serr := handshake(t, ct.pair, alice, bob, bob.Router(), tls.VersionTLS12)
			if cerr == nil || serr == nil {
				t.Fatalf("TLS 1.2 handshake succeeded: client %v, server %v", cerr, serr)
			}
			t.Logf("client: %v; server: %v", cerr, serr)
		})
	}
}

func TestTLSAfterClose(t *testing.T) {
	for _, ct := range connTypes[1:] {
		t.Run(ct.name, func(t *testing.T) {
			alice, bob := newKH(t), newKH(t)
			if _, err := bob.TLSCertificate(); err != nil {
				t.Fatal(err)
			}
			bob.Close()
			if _, err := newKH(t).TLSCertificate(); err != nil {
				t.Fatal(err)
			}
			_, _, _, cerr, serr := handshake(t, ct.pair, alice, bob, bob.Router(), tls.VersionTLS13)
			if cerr == nil || serr == nil {
				t.Fatalf("handshake with a closed keyholder: client %v, server %v", cerr, serr)
			}
		})
	}
}

func TestTLSCertificate(t *testing.T) {
	k := newKH(t)
	c1, err := k.TLSCertificate()
	if err != nil {
		t.Fatal(err)
	}
	c2, _ := k.TLSCertificate()
	if !bytes.Equal(c1.Certificate[0], c2.Certificate[0]) {
		t.Error("certificate not stable")
	}
	leaf, err := x509.ParseCertificate(c1.Certificate[0])
	if err != nil {
		t.Fatal(err)
	}
	if err := leaf.CheckSignature(leaf.SignatureAlgorithm, leaf.RawTBSCertificate, leaf.Signature); err != nil {
		t.Errorf("self-signature: %v", err)
	}
	if leaf.Subject.CommonName != k.Router().String() {
		t.Errorf("CN = %q", leaf.Subject.CommonName)
	}
	if a, err := RouterFromCertificate(c1.Leaf); err != nil || a != k.Router() {
		t.Errorf("RouterFromCertificate(Leaf) = %v, %v", a, err)
	}
	if now := time.Now(); now.Before(leaf.NotBefore) || now.After(leaf.NotAfter) {
		t.Errorf("certificate not valid now: %v..%v", leaf.NotBefore, leaf.NotAfter)
	}

	signer := c1.PrivateKey.(crypto.Signer)
	if pub, ok := signer.Public().(ed25519.PublicKey); !ok || !pub.Equal(k.Router().PublicKey()) {
		t.Errorf("signer's public key is %v", signer.Public())
	}
	tlsMsg := append(bytes.Repeat([]byte(" "), 64), "TLS 1.3, server CertificateVerify\x00transcript"...)
	sig, err := signer.Sign(nil, tlsMsg, crypto.Hash(0))
	if err != nil || !Verify(k.Router(), tlsMsg, sig) {
		t.Errorf("TLS signer on a CertificateVerify message: %v", err)
	}
	if _, err := signer.Sign(nil, []byte("\x01envelope"), crypto.Hash(0)); err == nil {
		t.Error("TLS signer signs arbitrary messages")
	}
	if _, err := signer.Sign(nil, tlsMsg, crypto.SHA512); err == nil {
		t.Error("TLS signer makes Ed25519ph signatures")
	}
}

func TestRouterFromCertificateBad(t *testing.T) {
	if _, err := RouterFromCertificate(nil); !errors.Is(err, ErrBadCertificate) {
		t.Errorf("nil: %v", err)
	}
	priv, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "p256"}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &priv.PublicKey, priv)
	if err != nil {
		t.Fatal(err)
	}
	ecCert, _ := x509.ParseCertificate(der)
	if _, err := RouterFromCertificate(ecCert); !errors.Is(err, ErrBadCertificate) {
		t.Errorf("ECDSA certificate: %v", err)
	}
	good, _ := newKH(t).TLSCertificate()
	for _, raw := range [][][]byte{nil, {}, {der}, {[]byte("garbage")}, {good.Certificate[0], good.Certificate[0]}} {
		if _, err := RouterFromRawCerts(raw); !errors.Is(err, ErrBadCertificate) {
			t.Errorf("RouterFromRawCerts(%d certs): %v", len(raw), err)
		}
	}
}
