package cluster

import (
	"errors"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/enginekit/enginekit/keyholder"
)

// DefaultSkew is how far in the future a certificate's IssuedAt may be, for
// clocks that disagree between the admitting machine and the node.
const DefaultSkew = 5 * time.Minute

// VerifierConfig configures NewVerifier.
type VerifierConfig struct {
	// Cluster is the trusted cluster public key (usually the Cluster of
	// the node's own certificate). Required.
	Cluster keyholder.Address
	// Now is the clock. Default time.Now.
	Now func() time.Time
	// Skew is the clock skew allowed on IssuedAt. Default DefaultSkew;
	// negative means none.
	Skew time.Duration
	// Deny is the initial deny list. Default: none.
	Deny *DenyList
}

// Verifier decides whether a router presenting a certificate is a member of
// the cluster. It is safe for concurrent use; its Admit method has the
// signature of netconn's Config.AdmitCredential.
type Verifier struct {
	cluster keyholder.Address
	now     func() time.Time
	skew    time.Duration
	deny    atomic.Pointer[DenyList]

	admitted, malformed, foreign, badSig, mismatch, expired, early, denied atomic.Uint64
}

// VerifierStats counts Check's answers, one counter per reason.
type VerifierStats struct {
	Admitted       uint64 // valid certificates
	Malformed      uint64 // not a certificate (ErrBadCertificate)
	Foreign        uint64 // another cluster's (ErrForeignCluster)
	BadSignature   uint64 // forged or damaged (ErrBadSignature)
	RouterMismatch uint64 // someone else's certificate (ErrRouterMismatch)
	Expired        uint64 // ErrExpired
	NotYetValid    uint64 // ErrNotYetValid
	Denied         uint64 // on the deny list (ErrDenied)
}

// Refused is the sum of all refusals.
func (s VerifierStats) Refused() uint64 {
	return s.Malformed + s.Foreign + s.BadSignature + s.RouterMismatch + s.Expired + s.NotYetValid + s.Denied
}

// NewVerifier returns a Verifier trusting cfg.Cluster.
func NewVerifier(cfg VerifierConfig) (*Verifier, error) {
	if cfg.Cluster.IsZero() {
		return nil, fmt.Errorf("%w: no cluster key to trust", ErrBadConfig)
	}
	v := &Verifier{cluster: cfg.Cluster, now: cfg.Now, skew: cfg.Skew}
	if v.now == nil {
		v.now = time.Now
	}
	switch {
	case v.skew == 0:
		v.skew = DefaultSkew
	case v.skew < 0:
		v.skew = 0
	}
	v.deny.Store(cfg.Deny)
	return v, nil
}

// Cluster returns the trusted cluster key.
func (v *Verifier) Cluster() keyholder.Address { return v.cluster }

// SetDenyList replaces the deny list (nil: deny nothing). Connections
// already admitted stay up; the caller closes those it wants gone.
func (v *Verifier) SetDenyList(d *DenyList) { v.deny.Store(d) }

// Check parses credential as a certificate and returns it if it admits
// router now: it is well-formed, issued by the trusted cluster key, names
// router, is within its validity period and not denied. Otherwise the error
// wraps ErrBadCertificate, ErrForeignCluster, ErrBadSignature,
// ErrRouterMismatch, ErrExpired, ErrNotYetValid or ErrDenied, and is counted.
func (v *Verifier) Check(router keyholder.Address, credential []byte) (*Certificate, error) {
	c, err := v.check(router, credential)
	v.count(err)
	return c, err
}

func (v *Verifier) check(router keyholder.Address, credential []byte) (*Certificate, error) {
	c, err := v.checkStatic(router, credential)
	if err != nil {
		return nil, err
	}
	if err := v.checkNow(c); err != nil {
		return nil, err
	}
	return c, nil
}

// checkStatic does the checks whose answer never changes for given bytes:
// form, cluster, signature, router. Their result may be cached.
func (v *Verifier) checkStatic(router keyholder.Address, credential []byte) (*Certificate, error) {
	c, err := ParseCertificate(credential)
	if err != nil {
		return nil, err
	}
	if c.Cluster != v.cluster {
		return nil, fmt.Errorf("%w: issued by %s, we trust %s", ErrForeignCluster, c.Cluster, v.cluster)
	}
	if err := c.Verify(); err != nil {
		return nil, err
	}
	if c.Router != router {
		return nil, fmt.Errorf("%w: certificate for %s presented by %s", ErrRouterMismatch, c.Router, router)
	}
	return c, nil
}

// checkNow does the checks that change with time and the deny list.
func (v *Verifier) checkNow(c *Certificate) error {
	if err := c.ValidAt(v.now(), v.skew); err != nil {
		return err
	}
	if v.deny.Load().Denies(c) {
		return fmt.Errorf("%w: %s (router %s)", ErrDenied, c.ID(), c.Router)
	}
	return nil
}

func (v *Verifier) count(err error) {
	switch {
	case err == nil:
		v.admitted.Add(1)
	case errors.Is(err, ErrForeignCluster):
		v.foreign.Add(1)
	case errors.Is(err, ErrBadSignature):
		v.badSig.Add(1)
	case errors.Is(err, ErrRouterMismatch):
		v.mismatch.Add(1)
	case errors.Is(err, ErrExpired):
		v.expired.Add(1)
	case errors.Is(err, ErrNotYetValid):
		v.early.Add(1)
	case errors.Is(err, ErrDenied):
		v.denied.Add(1)
	default:
		v.malformed.Add(1)
	}
}

// Admit reports whether credential admits router (see Check). Use it as
// netconn's Config.AdmitCredential, so that a listener accepts, beside the
// routers its AcceptPolicy allows, every member of the cluster.
func (v *Verifier) Admit(router keyholder.Address, credential []byte) bool {
	_, err := v.Check(router, credential)
	return err == nil
}

// Stats returns the counters.
func (v *Verifier) Stats() VerifierStats {
	return VerifierStats{
		Admitted:       v.admitted.Load(),
		Malformed:      v.malformed.Load(),
		Foreign:        v.foreign.Load(),
		BadSignature:   v.badSig.Load(),
		RouterMismatch: v.mismatch.Load(),
		Expired:        v.expired.Load(),
		NotYetValid:    v.early.Load(),
		Denied:         v.denied.Load(),
	}
}
