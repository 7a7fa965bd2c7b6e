package cluster

import (
	"bytes"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/enginekit/enginekit/keyholder"
	"github.com/fxamacker/cbor/v2"
)

// The certificate format is specified in wire/spec.md, section "Cluster
// membership certificates".
const (
	// CertificateVersion is the only certificate version this build reads
	// and writes.
	CertificateVersion = 1

	// MaxCertificateSize bounds an encoded certificate; anything longer is
	// refused before decoding. A version 1 certificate is at most 223 bytes.
	MaxCertificateSize = 384

	// MaxNodeName is the longest node name in a certificate, in bytes.
	MaxNodeName = 64

	// MaxValidity is the longest validity period Issue accepts: ten years.
	MaxValidity = 10 * 366 * 24 * time.Hour

	// signLabel domain-separates certificate signatures from everything
	// else a cluster key could sign (see Authority).
	signLabel = "enginekit cluster certificate v1\x00"
)

// Certificate states that the cluster whose public key is Cluster admits the
// router Router, named Node, from IssuedAt until Expires. Certificates are
// values: make them with Authority.Issue, read them with ParseCertificate.
// The zero Certificate is not valid.
type Certificate struct {
	// Cluster is the cluster's ed25519 public key: its identity.
	Cluster keyholder.Address
	// Router is the admitted node's router address.
	Router keyholder.Address
	// Node is the node's human-readable name (1..MaxNodeName bytes).
	Node string
	// IssuedAt and Expires bound validity, at one-second resolution
	// (IssuedAt ≤ t < Expires).
	IssuedAt, Expires time.Time

	raw []byte // the whole encoding; never modified
	tbs []byte // the signed part, a sub-slice of raw
	sig []byte // the signature, a sub-slice of raw
}

// wireCert is the outer CBOR array: [tbs, signature].
type wireCert struct {
	_   struct{} `cbor:",toarray"`
	TBS []byte
	Sig []byte
}

// wireTBS is the signed CBOR array:
// [version, cluster, router, node, issued-at, expires].
type wireTBS struct {
	_        struct{} `cbor:",toarray"`
	Version  uint64
	Cluster  []byte
	Router   []byte
	Node     string
	IssuedAt int64
	Expires  int64
}

var (
	certEnc cbor.EncMode
	certDec cbor.DecMode
)

func init() {
	var err error
	certEnc, err = cbor.CoreDetEncOptions().EncMode()
	if err != nil {
		panic(err) // static options: cannot fail
	}
	certDec, err = cbor.DecOptions{
		DupMapKey:         cbor.DupMapKeyEnforcedAPF,
		MaxNestedLevels:   4,
		MaxArrayElements:  16,
		MaxMapPairs:       16,
		IndefLength:       cbor.IndefLengthForbidden,
		TagsMd:            cbor.TagsForbidden,
		IntDec:            cbor.IntDecConvertNone,
		UTF8:              cbor.UTF8RejectInvalid,
		ExtraReturnErrors: cbor.ExtraDecErrorUnknownField,
	}.DecMode()
	if err != nil {
		panic(err)
	}
}

// signedMessage is what the cluster key signs: the label, then the TBS bytes.
func signedMessage(tbs []byte) []byte {
	msg := make([]byte, 0, len(signLabel)+len(tbs))
	msg = append(msg, signLabel...)
	return append(msg, tbs...)
}

// checkName enforces the node name rules.
func checkName(name string) error {
	switch {
	case name == "":
		return fmt.Errorf("%w: empty", ErrBadName)
	case len(name) > MaxNodeName:
		return fmt.Errorf("%w: %d bytes, at most %d", ErrBadName, len(name), MaxNodeName)
	case !utf8.ValidString(name):
		return fmt.Errorf("%w: not UTF-8", ErrBadName)
	case strings.ContainsFunc(name, unicode.IsControl):
		return fmt.Errorf("%w: %q holds control characters", ErrBadName, name)
	}
	return nil
}

// encodeTBS encodes the part of c that is signed.
func encodeTBS(c *Certificate) ([]byte, error) {
	return certEnc.Marshal(wireTBS{
		Version:  CertificateVersion,
		Cluster:  c.Cluster[:],
		Router:   c.Router[:],
		Node:     c.Node,
		IssuedAt: c.IssuedAt.Unix(),
		Expires:  c.Expires.Unix(),
	})
}

// assemble sets c's encoding from tbs and sig.
func (c *Certificate) assemble(tbs, sig []byte) error {
	raw, err := certEnc.Marshal(wireCert{TBS: tbs, Sig: sig})
	if err != nil {
		return fmt.Errorf("cluster: encoding certificate: %w", err)
	}
	// Re-parse so that tbs and sig are sub-slices of raw, as for a parsed
	// certificate.
	p, err := ParseCertificate(raw)
	if err != nil {
		return err
	}
	*c = *p
	return nil
}

// ParseCertificate decodes an encoded certificate and checks its form: the
// structure, the canonical (deterministic) encoding, the version, the field
// lengths, the node name and IssuedAt < Expires. It does not check the
// signature or the time: see Verify and Verifier. data is copied.
//
// Errors wrap ErrBadCertificate. ParseCertificate never panics and reads at
// most MaxCertificateSize bytes, whatever data holds.
func ParseCertificate(data []byte) (*Certificate, error) {
	bad := func(format string, args ...any) (*Certificate, error) {
		return nil, fmt.Errorf("%w: "+format, append([]any{ErrBadCertificate}, args...)...)
	}
	if len(data) == 0 {
		return bad("empty")
	}
	if len(data) > MaxCertificateSize {
		return bad("%d bytes, at most %d", len(data), MaxCertificateSize)
	}
	raw := bytes.Clone(data)
	var w wireCert
	if err := certDec.Unmarshal(raw, &w); err != nil {
		return bad("%v", err)
	}
	if len(w.Sig) != ed25519.SignatureSize {
		return bad("signature of %d bytes, want %d", len(w.Sig), ed25519.SignatureSize)
	}
	if again, err := certEnc.Marshal(w); err != nil || !bytes.Equal(again, raw) {
		return bad("not in canonical encoding")
	}
	var t wireTBS
	if err := certDec.Unmarshal(w.TBS, &t); err != nil {
		return bad("signed part: %v", err)
	}
	if t.Version != CertificateVersion {
		return bad("version %d (this build reads version %d)", t.Version, CertificateVersion)
	}
	if len(t.Cluster) != len(keyholder.Address{}) || len(t.Router) != len(keyholder.Address{}) {
		return bad("cluster key of %d bytes and router of %d, want 32 each", len(t.Cluster), len(t.Router))
	}
	if err := checkName(t.Node); err != nil {
		return bad("%v", err)
	}
	if t.IssuedAt >= t.Expires {
		return bad("issued at %d, not before expiry %d", t.IssuedAt, t.Expires)
	}
	if again, err := certEnc.Marshal(t); err != nil || !bytes.Equal(again, w.TBS) {
		return bad("signed part not in canonical encoding")
	}
	// Locate tbs and sig inside raw: the outer encoding is the array head,
	// the tbs byte string, then the signature byte string (64 bytes, head
	// 0x58 0x40), so the signature is the last 64 bytes and tbs ends 66
	// bytes before the end.
	sigAt := len(raw) - ed25519.SignatureSize
	tbsEnd := sigAt - 2
	c := &Certificate{
		Node:     t.Node,
		IssuedAt: time.Unix(t.IssuedAt, 0).UTC(),
		Expires:  time.Unix(t.Expires, 0).UTC(),
		raw:      raw,
		tbs:      raw[tbsEnd-len(w.TBS) : tbsEnd],
		sig:      raw[sigAt:],
	}
	copy(c.Cluster[:], t.Cluster)
	copy(c.Router[:], t.Router)
	if !bytes.Equal(c.tbs, w.TBS) || !bytes.Equal(c.sig, w.Sig) {
		return bad("internal: layout") // cannot happen for a canonical encoding
	}
	return c, nil
}

// Bytes returns the certificate's encoding, as sent in the hello's
// credential and in member metadata. The caller must not modify it.
func (c *Certificate) Bytes() []byte { return c.raw }

// ID is the certificate's identity: the SHA-256 of its encoding. Deny lists
// name certificates by it.
func (c *Certificate) ID() CertID { return sha256.Sum256(c.raw) }

// Verify checks c's signature under its own Cluster key. A certificate from
// the network must also be checked against the trusted cluster key, the
// router that presented it, the time and the deny list: Verifier does all.
func (c *Certificate) Verify() error {
	if c == nil || len(c.sig) != ed25519.SignatureSize {
		return fmt.Errorf("%w: not a parsed or issued certificate", ErrBadCertificate)
	}
	if !keyholder.Verify(c.Cluster, signedMessage(c.tbs), c.sig) {
		return ErrBadSignature
	}
	return nil
}

// ValidAt reports whether t is within c's validity period, allowing skew for
// clocks that disagree: ErrNotYetValid, ErrExpired or nil.
func (c *Certificate) ValidAt(t time.Time, skew time.Duration) error {
	switch {
	case t.Add(skew).Before(c.IssuedAt):
		return fmt.Errorf("%w: issued at %s, now %s", ErrNotYetValid, c.IssuedAt.Format(time.RFC3339), t.UTC().Format(time.RFC3339))
	case !t.Before(c.Expires):
		return fmt.Errorf("%w: at %s, now %s", ErrExpired, c.Expires.Format(time.RFC3339), t.UTC().Format(time.RFC3339))
	}
	return nil
}

func (c *Certificate) String() string {
	return fmt.Sprintf("cluster certificate %s for router %s (node %q) from cluster %s, valid %s to %s",
		c.ID(), c.Router, c.Node, c.Cluster, c.IssuedAt.Format(time.RFC3339), c.Expires.Format(time.RFC3339))
}

// CertID is a certificate's SHA-256 (see Certificate.ID). Its text form is
// 64 lowercase hex digits.
type CertID [sha256.Size]byte

func (id CertID) String() string { return hex.EncodeToString(id[:]) }

// ParseCertID parses the text form of a CertID.
func ParseCertID(s string) (CertID, error) {
	var id CertID
	if len(s) != 2*len(id) {
		return id, fmt.Errorf("%w: certificate id %q is not 64 hex digits", ErrBadFile, short(s))
	}
	if _, err := hex.Decode(id[:], []byte(s)); err != nil || s != id.String() {
		return CertID{}, fmt.Errorf("%w: certificate id %q is not 64 lowercase hex digits", ErrBadFile, short(s))
	}
	return id, nil
}

// short trims s for an error message, so hostile input cannot flood logs.
func short(s string) string {
	if len(s) > 80 {
		return s[:80] + "…"
	}
	return s
}
