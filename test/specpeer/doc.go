// Package specpeer is a second, independent implementation of the enginekit
// wire protocol, written from wire/spec.md alone, to check that the spec is
// complete: it imports nothing of enginekit (only the standard library,
// golang.org/x/crypto and fxamacker/cbor).
//
// It has the byte formats (frames §2, hello §3, batches §4, tags §5–6,
// addresses §13, engine proofs §14, payloads §9, the control payloads) and a
// minimal peer: Dial opens TLS 1.3 with a self-signed Ed25519 router
// certificate and the pinned router key of the node (§1), exchanges the
// hellos, and then sends and receives batches, verifying every tag itself.
// Its test runs it against a real enginekit node in both auth modes and
// against the golden vectors of wire/testdata. It is test code, not a
// product: it keeps no routes, and its replay check is per connection.
package specpeer
