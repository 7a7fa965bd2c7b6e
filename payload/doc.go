// Package payload is the registry of the types whose values engines send
// each other: which names they travel under, how they are encoded (CBOR),
// and the limits a decoder applies to what a peer sent. It owns nothing
// else: frames, envelopes and what is signed are package wire's, which
// carries a payload as opaque bytes; this package knows no network, no keys
// and no processes, and sits below wire.
//
// # Registering types
//
// A Registry maps Go types to names, once, at start-up:
//
//	reg, err := payload.NewRegistry(payload.Limits{})
//	err = payload.Register[counter.Inc](reg, "counter.Inc")
//	b, err := reg.Marshal(counter.Inc{By: 2})   // CBOR ["counter.Inc", {"By": 2}]
//	v, err := reg.Unmarshal(b)                  // counter.Inc{By: 2}
//
// A new Registry already knows nil, bool, int, int64, uint64, float64,
// string and bytes. There is no global registry: each node (or test) makes
// its own, and every node that sends or receives a type registers it under
// the same name. Registering is safe at any time; Marshal and Unmarshal are
// lock-free and safe for concurrent use.
//
// # Type names
//
// A type's name is whatever it is registered under; it is never derived
// from the Go type by reflection, because package paths differ between
// programs and languages. The convention is "<package>.<Type>" (for example
// "storage.Put"); names beginning with "enginekit." are reserved. Names are
// at most MaxTypeName bytes of UTF-8 and are compared byte for byte.
//
// A Go struct travels as a CBOR map keyed by its exported field names (or
// the name in its `cbor` tag); unknown keys are ignored and missing fields
// keep their zero value, so a type can gain fields compatibly.
//
// A peer written in another language takes part the same way: it names
// each of its own types (say "myapp.Order" for an Elixir %MyApp.Order{}),
// and the Go side registers a Go type of the same shape under that name;
// values the Go side sends arrive under the names the Go side registered,
// which the peer maps to its own types. The name and the shape of the value
// are the whole contract. wire/spec.md, §9 "Payloads" and §9.1 "Type names",
// specifies the encoding precisely enough for a second implementation.
//
// # Encoding and limits
//
// A payload is the two-element array [name, value] in deterministic CBOR
// (RFC 8949 core deterministic encoding, github.com/fxamacker/cbor/v2).
// Unmarshal decodes within Limits: the total size (DefaultMaxSize, what one
// default frame carries), checked first, then the nesting depth and the
// length of any array or map, checked before the decoder allocates for them
// (decoded values still take up to about 16 times the payload's size; see
// Limits). NewRegistry refuses Limits that fail Limits.Verify, with
// ErrBadConfig. An unknown name, an
// oversize payload or bad CBOR is an error for that payload
// (ErrUnknownType, ErrPayloadTooLarge, ErrPayloadLimits,
// ErrMalformedPayload), never a panic; the caller decides what to count and
// drop. Generic containers such as map[string]any are not built in, because
// they let a peer choose the shape of what is decoded; register them
// explicitly if you want them.
//
// Unmarshal copies what it keeps; UnmarshalOwned, for an input the caller
// hands over, returns a large []byte as a slice of it instead (netconn
// hands over large payloads, see wire.Envelope.Owned). A []byte, the usual
// raw payload, is marshalled and unmarshalled without the CBOR encoder or a
// table lookup.
package payload
