// Package wire is the byte format spoken between enginekit nodes: frames,
// the hello, batches of envelopes, what their tags authenticate, and
// payloads. The format is specified in spec.md, next to this file, precisely
// enough for a second implementation; this package is the Go one. It does
// no I/O beyond reading frames from an io.Reader and holds no keys: package
// netconn runs connections and asks the keyholder for tags.
//
// # Frames
//
// A connection carries frames: a 4-byte big-endian length, a type byte, a
// body (spec.md, "Frames"). FrameReader reads them through its own buffer,
// checks every length against a configured maximum before reading or
// allocating, and returns bodies without copying. Hello, ping, pong and
// go-away frames have Append*/Parse* functions. A Hello may carry an opaque
// Credential (at most MaxCredentialSize bytes) in a hello extension, which
// version-1 peers that predate it ignore.
//
// # Envelopes and batches
//
// An Envelope is one message between engines: Kind (Cast, Call, Reply, Info,
// Learn, Forget, Event, Synced, Learns), Flags, Src, Dst, Ref, Deadline, Seq and an opaque
// Payload. Envelopes travel in batch frames: one batch holds consecutive
// envelopes of one Src, carries Src and the first Seq once, and ends with one
// tag. In signature mode it is an ed25519 signature over
//
//	AuthDomain || 1 || sender router || receiver router || SHA-256(batch body without tag)
//
// (AppendAuthMessage); in MAC mode it is a 16-byte GMAC (AES-256-GCM) of the
// batch body without tag itself, with the first Seq as nonce, under a key
// for this connection, direction and Src (keyholder.MACSession), so the
// body is authenticated in place. Under light load a batch holds one envelope; under
// load a sender batches whatever is queued, which is what lets ed25519
// signatures keep up. Writers build batches in place with AppendBatchStart,
// AppendRecord, FinishBatch and SetBatchSeq, without allocating; readers
// check a whole batch with DecodeBatch and then iterate its envelopes, whose
// payloads alias the frame.
//
// # Payloads
//
// An envelope's Payload is opaque bytes here. What they hold, the
// deterministic CBOR array [name, value], the names applications register
// for their types and the limits a decoder applies, is package payload's
// (github.com/enginekit/enginekit/payload), which sits below wire. The
// byte format of payloads and type names stays specified in spec.md,
// "Payloads", so that a peer written in another language needs only that
// file.
//
// # Golden vectors
//
// testdata/ holds hex of real frames, payloads, engine proofs and address
// text forms made from keys with fixed seeds (spec.md, "Golden vectors");
// TestGoldenVectors and TestGoldenFiles keep them true, and another
// implementation can check itself against the same files.
package wire
