// Package keyholder holds the identities of a node: the ed25519 private keys
// of its router and of its local engines, and everything that uses them.
// Nothing outside this package ever sees a private key.
//
// # Identities
//
// An engine's address (Address) is its ed25519 public key; a node's router has
// an address of the same kind. Addresses print as "ek1" followed by 52 lowercase
// base32 characters, a canonical form that ParseAddress inverts exactly.
//
// A Keyholder knows "all our engines" (Engines, Owns), creates and removes
// engine keys by name (NewEngine, EnsureEngine, RemoveEngine), and acts for its
// router and engines:
//
//   - Sign: an ed25519 signature anyone can check with Verify. This is the
//     default per-message authentication between nodes.
//   - EngineProof: an engine's own signature that it belongs to this router,
//     which a peer checks with VerifyEngineProof before it accepts a "learn
//     engine" message, so a router cannot claim another node's engine.
//     VerifyEngineProofs checks many at once (batch verification with a
//     Pippenger multi-scalar multiplication, about three times as fast per
//     proof in batches of a thousand), refusing exactly the proofs that
//     VerifyEngineProof refuses except for the cofactor case its doc
//     describes.
//   - TLSCertificate: a self-signed certificate of the router key for mutual
//     TLS 1.3; RouterFromCertificate and RouterFromRawCerts read the peer's
//     router address back out of its certificate.
//   - NewMACSession: per-engine GMAC (AES-256-GCM) keys derived from a TLS
//     connection's exported keying material and the two routers, the fast
//     alternative to signatures, valid on that connection in one direction
//     only.
//
// The three uses of the router key are kept apart: Sign refuses messages that
// begin with the prefix of the keyholder's own statements ("enginekit keyholder
// ") or with the 64 spaces that begin every TLS 1.3 CertificateVerify, and the
// TLS signer signs nothing else. Envelope encodings should start with a type
// or version byte, which they want anyway.
//
// A Keyholder is safe for concurrent use. Signing takes a read lock, so signers
// never wait for each other, and uses the cached ed25519.PrivateKey, which
// crypto/ed25519 expands once. MACSession caches ready AEADs per engine
// and does not allocate in steady state.
//
// # Keys at rest
//
// New makes an in-memory keyholder. Save writes all keys to a file encrypted
// with a passphrase (argon2id, then XChaCha20-Poly1305, the header
// authenticated; mode 0600; replaced atomically), and Load reads it back,
// all or nothing, so engines keep their addresses across restarts of their
// node (EnsureEngine). The format is specified in keyfile.md. Load tells a
// wrong passphrase (ErrWrongPassphrase) from a damaged file
// (ErrCorruptKeyFile), refuses argon2id parameters beyond fixed limits before
// running argon2id, and refuses files that group or others can access
// (ErrInsecureKeyFile), as OpenSSH does: an encrypted key file that others can
// read invites an offline attack on its passphrase, and the fix is one chmod.
// Getting the passphrase (environment, terminal, secret store) is the
// command's business, not this package's.
//
// # Keys in memory
//
// Private keys live in unexported fields; the keyholder and its TLS signer
// print as their router address. RemoveEngine and Close zero the keys they
// drop, and Save and Load zero their plaintext buffers and derived keys. In Go
// this is best effort: the garbage collector may move or copy memory,
// crypto/ed25519 keeps an expanded copy of each key it has used until that key
// is collected, and crypto/aes and x/crypto keep key-derived state we cannot
// reach. The keyholder removes the copies it owns; it does not protect against
// an attacker who can read the process's memory.
package keyholder
