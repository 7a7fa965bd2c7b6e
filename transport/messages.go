package transport

import (
	"errors"
	"fmt"
	"net/url"
	"strings"

	"github.com/enginekit/enginekit/callbridge"
	"github.com/enginekit/enginekit/events"
	"github.com/fxamacker/cbor/v2"
)

// The transport's own payloads (learn, forget, reply) are CBOR maps with
// small integer keys, encoded deterministically and decoded with tight
// limits; they are described in wire/spec.md next to the envelope layout.

// learnMsg is the payload of a Learn envelope, signed by the router.
type learnMsg struct {
	Engine [32]byte `cbor:"1,keyasint"`
	Proof  []byte   `cbor:"2,keyasint"`           // the engine's signature: it belongs to the router
	Name   string   `cbor:"3,keyasint,omitempty"` // informational only
	Filter []byte   `cbor:"4,keyasint,omitempty"` // event filter spec the engine asks for (events.Filter encoding)
}

// forgetMsg is the payload of a Forget envelope. Reason, when present, is
// the engine's exit reason (for remote monitors and links).
type forgetMsg struct {
	Engine [32]byte              `cbor:"1,keyasint"`
	Reason *callbridge.WireError `cbor:"2,keyasint,omitempty"`
}

// maxLearnsPerEnvelope bounds the learns one Learns envelope carries (and
// what a receiver accepts in one); maxLearnsBytes bounds its payload.
const (
	maxLearnsPerEnvelope = 1024
	maxLearnsBytes       = 256 << 10
)

// appendLearns appends a Learns payload: a CBOR array of learn payloads,
// each already encoded (a learn map as in a Learn envelope).
func appendLearns(dst []byte, learns [][]byte) []byte {
	n := len(learns)
	switch {
	case n < 24:
		dst = append(dst, 0x80|byte(n))
	case n < 256:
		dst = append(dst, 0x98, byte(n))
	default:
		dst = append(dst, 0x99, byte(n>>8), byte(n))
	}
	for _, l := range learns {
		dst = append(dst, l...)
	}
	return dst
}

// decodeLearns decodes a Learns payload.
func decodeLearns(b []byte) ([]learnMsg, error) {
	var ms []learnMsg
	if err := learnsDec.Unmarshal(b, &ms); err != nil {
		return nil, fmt.Errorf("%w: %v", errBadControl, err)
	}
	return ms, nil
}

// replyMsg is the payload of a Reply envelope: a registry-encoded value, or
// an error.
type replyMsg struct {
	Value []byte                `cbor:"1,keyasint,omitempty"`
	Err   *callbridge.WireError `cbor:"2,keyasint,omitempty"`
}

// eventMsg is the payload of an Event envelope: one event a foreign
// engine subscribed to.
type eventMsg struct {
	Topic   string   `cbor:"1,keyasint"`
	Attrs   []string `cbor:"2,keyasint,omitempty"` // key, value, key, value...
	Payload []byte   `cbor:"3,keyasint,omitempty"` // registry-encoded
	Dropped uint64   `cbor:"4,keyasint,omitempty"` // events the sender's window dropped before this one
}

var (
	ctlEnc    cbor.EncMode
	ctlDec    cbor.DecMode
	eventDec  cbor.DecMode
	learnsDec cbor.DecMode
)

func init() {
	var err error
	if ctlEnc, err = cbor.CoreDetEncOptions().EncMode(); err != nil {
		panic(err)
	}
	if ctlDec, err = (cbor.DecOptions{
		MaxNestedLevels:   4,
		MaxArrayElements:  16,
		MaxMapPairs:       16,
		DupMapKey:         cbor.DupMapKeyEnforcedAPF,
		ExtraReturnErrors: cbor.ExtraDecErrorUnknownField,
	}).DecMode(); err != nil {
		panic(err)
	}
	if learnsDec, err = (cbor.DecOptions{
		MaxNestedLevels:   4,
		MaxArrayElements:  maxLearnsPerEnvelope,
		MaxMapPairs:       16,
		DupMapKey:         cbor.DupMapKeyEnforcedAPF,
		ExtraReturnErrors: cbor.ExtraDecErrorUnknownField,
	}).DecMode(); err != nil {
		panic(err)
	}
	if eventDec, err = (cbor.DecOptions{
		MaxNestedLevels:   4,
		MaxArrayElements:  2 * events.MaxEventAttrs,
		MaxMapPairs:       16,
		DupMapKey:         cbor.DupMapKeyEnforcedAPF,
		ExtraReturnErrors: cbor.ExtraDecErrorUnknownField,
	}).DecMode(); err != nil {
		panic(err)
	}
}

// errBadControl: a learn, forget or reply payload that does not decode.
var errBadControl = errors.New("transport: malformed control payload")

func decodeControl(b []byte, v any) error {
	if err := ctlDec.Unmarshal(b, v); err != nil {
		return fmt.Errorf("%w: %v", errBadControl, err)
	}
	return nil
}

// ParseEndpoint splits "tcp://host:port" or "unix:///path/to.sock" into the
// network and address that net.Dial and net.Listen take.
func ParseEndpoint(s string) (network, address string, err error) {
	u, err := url.Parse(s)
	if err != nil {
		return "", "", fmt.Errorf("transport: endpoint %q: %w", s, err)
	}
	switch u.Scheme {
	case "tcp":
		if u.Host == "" || u.Path != "" && u.Path != "/" {
			return "", "", fmt.Errorf("transport: endpoint %q: want tcp://host:port", s)
		}
		return "tcp", u.Host, nil
	case "unix":
		p := u.Path
		if u.Host != "" { // unix://relative/path
			p = u.Host + u.Path
		}
		if p == "" {
			return "", "", fmt.Errorf("transport: endpoint %q: want unix:///path/to.sock", s)
		}
		return "unix", p, nil
	}
	return "", "", fmt.Errorf("transport: endpoint %q: scheme must be tcp:// or unix://", s)
}

// Endpoint is the inverse of ParseEndpoint.
func Endpoint(network, address string) string {
	if network == "unix" && !strings.HasPrefix(address, "/") {
		return "unix://" + address
	}
	return network + "://" + address
}
