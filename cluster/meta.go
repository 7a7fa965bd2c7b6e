package cluster

import (
	"bytes"
	"fmt"
	"strings"
	"unicode"

	"github.com/hashicorp/memberlist"
)

// Limits on what a member advertises. memberlist carries at most
// memberlist.MetaMaxSize (512) bytes of metadata per member.
const (
	// MaxEndpoints is the most transport endpoints a member advertises.
	MaxEndpoints = 4
	// MaxEndpointLen is the longest endpoint, in bytes.
	MaxEndpointLen = 108
	// MaxMetaSize is the largest encoded Meta.
	MaxMetaSize = memberlist.MetaMaxSize
)

const metaVersion = 1

// Meta is what a member advertises about itself in memberlist's node
// metadata (format in wire/spec.md, "Cluster membership certificates").
type Meta struct {
	// Certificate is the member's cluster certificate, encoded.
	Certificate []byte
	// Endpoints are the member's transport endpoints
	// ("tcp://127.0.0.1:7001"), preferred first.
	Endpoints []string
	// Incarnation tells two runs of one router apart: a node picks a new
	// one at every start (its start time in nanoseconds), and peers follow
	// the member with the highest.
	Incarnation uint64
}

type wireMeta struct {
	_           struct{} `cbor:",toarray"`
	Version     uint64
	Certificate []byte
	Endpoints   []string
	Incarnation uint64
}

func checkEndpoints(eps []string) error {
	if len(eps) == 0 || len(eps) > MaxEndpoints {
		return fmt.Errorf("%w: %d endpoints, want 1..%d", ErrBadMeta, len(eps), MaxEndpoints)
	}
	for _, e := range eps {
		if e == "" || len(e) > MaxEndpointLen || strings.ContainsFunc(e, func(r rune) bool { return unicode.IsControl(r) || unicode.IsSpace(r) }) {
			return fmt.Errorf("%w: endpoint %q: empty, longer than %d bytes or holding spaces or control characters", ErrBadMeta, short(e), MaxEndpointLen)
		}
	}
	return nil
}

func encodeMeta(m Meta) ([]byte, error) {
	if err := checkEndpoints(m.Endpoints); err != nil {
		return nil, err
	}
	b, err := certEnc.Marshal(wireMeta{Version: metaVersion, Certificate: m.Certificate, Endpoints: m.Endpoints, Incarnation: m.Incarnation})
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrBadMeta, err)
	}
	if len(b) > MaxMetaSize {
		return nil, fmt.Errorf("%w: %d bytes, at most %d: fewer or shorter endpoints", ErrBadMeta, len(b), MaxMetaSize)
	}
	return b, nil
}

// decodeMeta parses member metadata; the certificate is not checked here.
func decodeMeta(b []byte) (Meta, error) {
	if len(b) > MaxMetaSize {
		return Meta{}, fmt.Errorf("%w: %d bytes", ErrBadMeta, len(b))
	}
	var w wireMeta
	if err := certDec.Unmarshal(b, &w); err != nil {
		return Meta{}, fmt.Errorf("%w: %v", ErrBadMeta, err)
	}
	if w.Version != metaVersion {
		return Meta{}, fmt.Errorf("%w: version %d", ErrBadMeta, w.Version)
	}
	if err := checkEndpoints(w.Endpoints); err != nil {
		return Meta{}, err
	}
	if again, err := certEnc.Marshal(w); err != nil || !bytes.Equal(again, b) {
		return Meta{}, fmt.Errorf("%w: not in canonical encoding", ErrBadMeta)
	}
	return Meta{Certificate: w.Certificate, Endpoints: w.Endpoints, Incarnation: w.Incarnation}, nil
}
