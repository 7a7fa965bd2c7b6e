package cluster

import (
	"crypto/sha256"
	"fmt"
	"io"
	"time"

	"github.com/enginekit/enginekit/keyholder"
)

// Authority holds a cluster's private key and issues membership
// certificates with it. Only the operator's admission tool needs one; running
// nodes never do (they hold their certificate and the cluster's public key).
//
// The cluster key is kept in a keyholder.Keyholder as its router key and
// nothing else, so it is saved and loaded exactly like a node's key file
// (argon2id + XChaCha20-Poly1305, mode 0600, atomic write, hostile KDF
// parameters refused; see keyholder/keyfile.md), and the private key never
// leaves the keyholder. Every signature it makes starts with a label of this
// package ("enginekit cluster certificate v1\x00", "enginekit cluster gossip
// key v1\x00"), which the keyholder's reserved prefixes and TLS 1.3 signatures
// cannot collide with. Do not use a cluster key file as a node's key file.
//
// An Authority is safe for concurrent use.
type Authority struct {
	kh *keyholder.Keyholder
}

// NewAuthority makes a new cluster key drawn from r (crypto/rand when nil;
// tests pass a fixed seed).
func NewAuthority(r io.Reader) (*Authority, error) {
	kh, err := keyholder.New(keyholder.Config{Rand: r})
	if err != nil {
		return nil, fmt.Errorf("cluster: new cluster key: %w", err)
	}
	return &Authority{kh: kh}, nil
}

// LoadAuthority reads a cluster key file written by Authority.Save. Its
// errors are keyholder.Load's (wrong passphrase, corrupt or insecure file),
// plus ErrBadFile for a key file that holds engine keys: that is a node's
// key file, not a cluster's.
func LoadAuthority(path string, passphrase []byte) (*Authority, error) {
	kh, err := keyholder.Load(path, passphrase)
	if err != nil {
		return nil, err
	}
	if n := len(kh.Engines()); n != 0 {
		kh.Close()
		return nil, fmt.Errorf("%w: %s holds %d engine keys: it is a node's key file, not a cluster key file", ErrBadFile, path, n)
	}
	return &Authority{kh: kh}, nil
}

// Save writes the cluster key to path, encrypted with passphrase; zero kdf
// fields take keyholder's defaults.
func (a *Authority) Save(path string, passphrase []byte, kdf keyholder.KDFParams) error {
	return a.kh.SaveWith(path, passphrase, keyholder.SaveOptions{KDF: kdf})
}

// Cluster returns the cluster's public key, its identity.
func (a *Authority) Cluster() keyholder.Address { return a.kh.Router() }

// Issue signs a certificate admitting router under the name node, valid from
// issuedAt (rounded down to the second) for valid (rounded down to the
// second, 1 s .. MaxValidity).
func (a *Authority) Issue(router keyholder.Address, node string, issuedAt time.Time, valid time.Duration) (*Certificate, error) {
	if router.IsZero() {
		return nil, fmt.Errorf("%w: zero router address", ErrBadCertificate)
	}
	if err := checkName(node); err != nil {
		return nil, err
	}
	if valid < time.Second || valid > MaxValidity {
		return nil, fmt.Errorf("%w: %v not in 1s..%v", ErrBadValidity, valid, MaxValidity)
	}
	from := time.Unix(issuedAt.Unix(), 0).UTC()
	c := &Certificate{
		Cluster:  a.Cluster(),
		Router:   router,
		Node:     node,
		IssuedAt: from,
		Expires:  from.Add(valid.Truncate(time.Second)),
	}
	tbs, err := encodeTBS(c)
	if err != nil {
		return nil, fmt.Errorf("cluster: encoding certificate: %w", err)
	}
	sig, err := a.kh.Sign(a.Cluster(), signedMessage(tbs))
	if err != nil {
		return nil, fmt.Errorf("cluster: signing certificate: %w", err)
	}
	if err := c.assemble(tbs, sig); err != nil {
		return nil, err
	}
	return c, nil
}

// gossipLabel domain-separates the gossip key derivation.
const gossipLabel = "enginekit cluster gossip key v1\x00"

// GossipKeySize is the size of the gossip key: AES-256-GCM in memberlist's
// keyring.
const GossipKeySize = 32

// GossipKey derives the cluster's gossip encryption key (see Membership):
//
//	sig = Ed25519-Sign(cluster key, "enginekit cluster gossip key v1\x00" || cluster public key)
//	key = SHA-256("enginekit cluster gossip key v1\x00" || sig)
//
// Ed25519 signatures are deterministic, so the same cluster key always gives
// the same gossip key, and nobody without the cluster key can compute it
// (that would mean forging the signature). The key is secret: store it with
// WriteGossipKeyFile (mode 0600).
func (a *Authority) GossipKey() ([]byte, error) {
	c := a.Cluster()
	sig, err := a.kh.Sign(c, append([]byte(gossipLabel), c[:]...))
	if err != nil {
		return nil, fmt.Errorf("cluster: deriving the gossip key: %w", err)
	}
	h := sha256.New()
	h.Write([]byte(gossipLabel))
	h.Write(sig)
	return h.Sum(nil), nil
}

// Close zeroes the cluster key. Safe to call twice.
func (a *Authority) Close() error { return a.kh.Close() }
