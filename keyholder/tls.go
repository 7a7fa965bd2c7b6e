package keyholder

import (
	"bytes"
	"crypto"
	"crypto/ed25519"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"fmt"
	"io"
	"math/big"
	"time"
)

type tlsCert struct {
	der  []byte
	leaf *x509.Certificate
}

// TLSCertificate returns a self-signed X.509 certificate for the router key,
// for mutual TLS 1.3 between nodes. Peers identify each other by the key
// alone (RouterFromCertificate), not by names or chains, so the certificate is
// a plain carrier: subject common name = the router address, valid from
// 2000-01-01 to 9999-12-31 (RFC 5280's "no expiration date"), serial number
// derived from the address. It is therefore deterministic, and built once.
//
// The PrivateKey of the result is a crypto.Signer wrapping the keyholder: it
// has no fields or methods that reveal the key, prints as its address, and
// signs only TLS 1.3 CertificateVerify messages (those starting with 64
// spaces), which Sign in turn refuses. So use it with
// tls.Config.MinVersion = tls.VersionTLS13; a TLS 1.2 handshake fails.
// After Close it fails every signature.
//
// Typical use, on both sides (the dialer also sets InsecureSkipVerify, the
// listener sets ClientAuth to tls.RequireAnyClientCert):
//
//	VerifyPeerCertificate: func(raw [][]byte, _ [][]*x509.Certificate) error {
//		peer, err := keyholder.RouterFromRawCerts(raw)
//		if err != nil { return err }
//		return checkPeer(peer) // pinned router, or accept policy
//	},
func (k *Keyholder) TLSCertificate() (tls.Certificate, error) {
	k.certMu.Lock()
	defer k.certMu.Unlock()
	if k.cert == nil {
		c, err := k.makeCert()
		if err != nil {
			return tls.Certificate{}, err
		}
		k.cert = c
	}
	return tls.Certificate{
		Certificate: [][]byte{k.cert.der},
		PrivateKey:  &routerSigner{k: k},
		Leaf:        k.cert.leaf,
	}, nil
}

func (k *Keyholder) makeCert() (*tlsCert, error) {
	router := k.Router()
	h := sha256.Sum256(router[:])
	h[0] &= 0x7f // RFC 5280: positive, at most 20 octets
	tmpl := &x509.Certificate{
		SerialNumber:          new(big.Int).SetBytes(h[:16]),
		Subject:               pkix.Name{CommonName: router.String()},
		NotBefore:             time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC),
		NotAfter:              time.Date(9999, 12, 31, 23, 59, 59, 0, time.UTC),
		KeyUsage:              x509.KeyUsageDigitalSignature,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
		BasicConstraintsValid: true,
	}
	// Ed25519 signing reads no randomness; the reader only satisfies the API.
	der, err := x509.CreateCertificate(zeroReader{}, tmpl, tmpl, router.PublicKey(), certSigner{k: k})
	if err != nil {
		return nil, fmt.Errorf("keyholder: creating TLS certificate: %w", err)
	}
	leaf, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, fmt.Errorf("keyholder: parsing own TLS certificate: %w", err)
	}
	return &tlsCert{der: der, leaf: leaf}, nil
}

type zeroReader struct{}

func (zeroReader) Read(p []byte) (int, error) {
	clear(p)
	return len(p), nil
}

// checkPureEd25519 rejects Ed25519ph and Ed25519ctx: the router key only makes
// pure Ed25519 signatures.
func checkPureEd25519(opts crypto.SignerOpts) error {
	if opts.HashFunc() != crypto.Hash(0) {
		return errors.New("keyholder: router key signs only pure Ed25519")
	}
	if o, ok := opts.(*ed25519.Options); ok && (o.Hash != crypto.Hash(0) || o.Context != "") {
		return errors.New("keyholder: router key signs only pure Ed25519")
	}
	return nil
}

// routerSigner is the tls.Certificate PrivateKey: a handle on the keyholder's
// router key that signs TLS 1.3 CertificateVerify content only.
type routerSigner struct{ k *Keyholder }

func (s *routerSigner) Public() crypto.PublicKey { return s.k.Router().PublicKey() }

func (s *routerSigner) Sign(_ io.Reader, msg []byte, opts crypto.SignerOpts) ([]byte, error) {
	if err := checkPureEd25519(opts); err != nil {
		return nil, err
	}
	if !bytes.HasPrefix(msg, tls13SignaturePadding) {
		return nil, errors.New("keyholder: TLS certificate key signs only TLS 1.3 CertificateVerify messages")
	}
	return s.k.sign(s.k.Router(), msg)
}

func (s *routerSigner) String() string   { return "keyholder router signer " + s.k.Router().String() }
func (s *routerSigner) GoString() string { return s.String() }

// certSigner signs our own certificate once, in makeCert.
type certSigner struct{ k *Keyholder }

func (s certSigner) Public() crypto.PublicKey { return s.k.Router().PublicKey() }

func (s certSigner) Sign(_ io.Reader, msg []byte, opts crypto.SignerOpts) ([]byte, error) {
	if err := checkPureEd25519(opts); err != nil {
		return nil, err
	}
	return s.k.sign(s.k.Router(), msg)
}

// RouterFromCertificate returns the router address carried by a peer's
// certificate: its ed25519 public key. Any other key type fails with
// ErrBadCertificate. It checks nothing else: the TLS handshake has already
// proved that the peer holds the key, and whether that router is welcome is
// the caller's policy.
func RouterFromCertificate(cert *x509.Certificate) (Address, error) {
	if cert == nil {
		return Address{}, fmt.Errorf("%w: no certificate", ErrBadCertificate)
	}
	pub, ok := cert.PublicKey.(ed25519.PublicKey)
	if !ok || len(pub) != ed25519.PublicKeySize {
		return Address{}, fmt.Errorf("%w: public key is %T", ErrBadCertificate, cert.PublicKey)
	}
	var a Address
	copy(a[:], pub)
	return a, nil
}

// RouterFromRawCerts is RouterFromCertificate for the rawCerts argument of
// tls.Config.VerifyPeerCertificate: it wants exactly one certificate.
func RouterFromRawCerts(rawCerts [][]byte) (Address, error) {
	if len(rawCerts) != 1 {
		return Address{}, fmt.Errorf("%w: peer sent %d certificates, want 1", ErrBadCertificate, len(rawCerts))
	}
	cert, err := x509.ParseCertificate(rawCerts[0])
	if err != nil {
		return Address{}, fmt.Errorf("%w: %w", ErrBadCertificate, err)
	}
	return RouterFromCertificate(cert)
}
