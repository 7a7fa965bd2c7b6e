package specpeer

import (
	"fmt"

	"github.com/fxamacker/cbor/v2"
)

// enc encodes in core deterministic encoding (§9, RFC 8949 §4.2.1).
var enc = func() cbor.EncMode {
	m, err := cbor.CoreDetEncOptions().EncMode()
	if err != nil {
		panic(err)
	}
	return m
}()

// dec decodes strictly: no duplicate map keys, no indefinite lengths, valid
// UTF-8, the nesting and size limits of §9.
var dec = func() cbor.DecMode {
	m, err := cbor.DecOptions{
		DupMapKey:        cbor.DupMapKeyEnforcedAPF,
		IndefLength:      cbor.IndefLengthForbidden,
		MaxNestedLevels:  16,
		MaxArrayElements: 65536,
		MaxMapPairs:      65536,
		UTF8:             cbor.UTF8RejectInvalid,
	}.DecMode()
	if err != nil {
		panic(err)
	}
	return m
}()

// EncodePayload is the §9 payload [name, value].
func EncodePayload(name string, value any) ([]byte, error) {
	if len(name) < 1 || len(name) > 128 {
		return nil, fmt.Errorf("%w: name of %d bytes", errFormat, len(name))
	}
	return enc.Marshal([]any{name, value})
}

// DecodePayload splits a §9 payload into its name and the value's encoding.
// The name must be in shortest form and nothing may follow the array.
func DecodePayload(p []byte) (name string, value cbor.RawMessage, err error) {
	if len(p) < 2 || p[0] != 0x82 {
		return "", nil, fmt.Errorf("%w: payload does not start with 0x82", errFormat)
	}
	h := p[1]
	var n, off int
	switch {
	case h >= 0x60 && h <= 0x77:
		n, off = int(h-0x60), 2
	case h == 0x78 && len(p) > 2 && p[2] >= 24:
		n, off = int(p[2]), 3
	default:
		return "", nil, fmt.Errorf("%w: name head %#x", errFormat, h)
	}
	if n < 1 || n > 128 || len(p) < off+n {
		return "", nil, fmt.Errorf("%w: name of %d bytes", errFormat, n)
	}
	var arr []cbor.RawMessage
	if err := dec.Unmarshal(p, &arr); err != nil || len(arr) != 2 {
		return "", nil, fmt.Errorf("%w: payload: %v", errFormat, err)
	}
	return string(p[off : off+n]), arr[1], nil
}

// Learn is the learn map (kind 5; an element of learns, kind 9).
type Learn struct {
	Engine []byte `cbor:"1,keyasint"`
	Proof  []byte `cbor:"2,keyasint"`
	Name   string `cbor:"3,keyasint,omitempty"`
	Filter []byte `cbor:"4,keyasint,omitempty"`
}

// ErrorMap is an error of a reply (Control payloads, "Error maps").
type ErrorMap struct {
	Code    uint64 `cbor:"1,keyasint"`
	Message string `cbor:"2,keyasint,omitempty"`
}

// Reply is the reply map (kind 3).
type Reply struct {
	Value []byte    `cbor:"1,keyasint,omitempty"`
	Error *ErrorMap `cbor:"2,keyasint,omitempty"`
}

// Forget is the forget map (kind 6).
type Forget struct {
	Engine []byte    `cbor:"1,keyasint"`
	Reason *ErrorMap `cbor:"2,keyasint,omitempty"`
}

// Synced is the synced map (kind 8), when not empty.
type Synced struct {
	Features []string `cbor:"1,keyasint,omitempty"`
}

// control decodes control payloads: tight limits, unknown and duplicate
// keys rejected ("Control payloads").
var control = func() cbor.DecMode {
	m, err := cbor.DecOptions{
		DupMapKey:         cbor.DupMapKeyEnforcedAPF,
		IndefLength:       cbor.IndefLengthForbidden,
		MaxNestedLevels:   4,
		MaxArrayElements:  1024,
		MaxMapPairs:       16,
		UTF8:              cbor.UTF8RejectInvalid,
		ExtraReturnErrors: cbor.ExtraDecErrorUnknownField,
	}.DecMode()
	if err != nil {
		panic(err)
	}
	return m
}()

// DecodeControl decodes a control payload into v.
func DecodeControl(p []byte, v any) error { return control.Unmarshal(p, v) }

// EncodeControl encodes a control payload.
func EncodeControl(v any) ([]byte, error) { return enc.Marshal(v) }

// DecodeLearn decodes and checks one learn map: 32-byte engine, 64-byte proof.
func DecodeLearn(p []byte) (Learn, error) {
	var l Learn
	if err := DecodeControl(p, &l); err != nil {
		return l, err
	}
	if len(l.Engine) != 32 || len(l.Proof) != 64 {
		return l, fmt.Errorf("%w: learn engine %d bytes, proof %d", errFormat, len(l.Engine), len(l.Proof))
	}
	return l, nil
}

// DecodeLearns decodes a learns array of 1 to 1024 learn maps.
func DecodeLearns(p []byte) ([]Learn, error) {
	var raw []cbor.RawMessage
	if err := DecodeControl(p, &raw); err != nil {
		return nil, err
	}
	if len(raw) < 1 || len(raw) > 1024 || len(p) > 256<<10 {
		return nil, fmt.Errorf("%w: learns of %d", errFormat, len(raw))
	}
	ls := make([]Learn, len(raw))
	for i, r := range raw {
		l, err := DecodeLearn(r)
		if err != nil {
			return nil, err
		}
		ls[i] = l
	}
	return ls, nil
}
