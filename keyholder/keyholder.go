package keyholder

import (
	"bytes"
	"crypto/ed25519"
	"crypto/rand"
	"fmt"
	"io"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"unicode"
	"unicode/utf8"
)

// MaxNameLen is the longest engine name, in bytes.
const MaxNameLen = 255

// Engine is one of the local engines whose key a Keyholder holds.
type Engine struct {
	Name    string
	Address Address
}

// Config configures New. The zero Config is valid.
type Config struct {
	// Rand is the source of key seeds, and of salts and nonces when saving.
	// Default: crypto/rand.Reader. Tests may pass a deterministic reader; it
	// is only ever read by one goroutine at a time.
	Rand io.Reader
}

// Keyholder holds the ed25519 private keys of a node's router and of its
// local engines, and uses them on their behalf. Private keys never leave it.
// Make one with New or Load; a Keyholder is safe for concurrent use.
type Keyholder struct {
	router *key // immutable after construction, but zeroed by Close

	randMu sync.Mutex
	rand   io.Reader

	mu     sync.RWMutex
	byName map[string]*key
	byAddr map[Address]*key
	closed bool

	// gen changes whenever an address stops being ours (RemoveEngine, Close),
	// so a MACSession can cache "this signer is ours" and recheck only then.
	gen atomic.Uint64

	certMu sync.Mutex
	cert   *tlsCert
}

// key is one private key. priv is seed || public key, as ed25519 wants it;
// the slice stays put for the key's lifetime, which also lets crypto/ed25519
// cache its expanded form.
type key struct {
	name string // "" for the router
	addr Address
	priv ed25519.PrivateKey
}

func (kk *key) zero() {
	clear(kk.priv)
}

// New returns an in-memory Keyholder with a fresh router key and no engines.
func New(cfg Config) (*Keyholder, error) {
	r := cfg.Rand
	if r == nil {
		r = rand.Reader
	}
	k := newKeyholder(r)
	router, err := k.generate("")
	if err != nil {
		return nil, err
	}
	k.router = router
	return k, nil
}

func newKeyholder(r io.Reader) *Keyholder {
	return &Keyholder{
		rand:   r,
		byName: make(map[string]*key),
		byAddr: make(map[Address]*key),
	}
}

// generate makes a new key from k.rand.
func (k *Keyholder) generate(name string) (*key, error) {
	var seed [ed25519.SeedSize]byte
	defer clear(seed[:])
	if err := k.readRand(seed[:]); err != nil {
		return nil, fmt.Errorf("keyholder: generating key: %w", err)
	}
	return keyFromSeed(name, seed[:]), nil
}

func (k *Keyholder) readRand(p []byte) error {
	k.randMu.Lock()
	defer k.randMu.Unlock()
	_, err := io.ReadFull(k.rand, p)
	return err
}

func keyFromSeed(name string, seed []byte) *key {
	priv := ed25519.NewKeyFromSeed(seed)
	kk := &key{name: name, priv: priv}
	copy(kk.addr[:], priv[ed25519.SeedSize:])
	return kk
}

// String describes k by its router address; it never shows key material.
func (k *Keyholder) String() string {
	return "keyholder(router " + k.Router().String() + ")"
}

// Router returns the address of the node's router.
func (k *Keyholder) Router() Address {
	return k.router.addr
}

// checkName reports whether name is acceptable as an engine name.
func checkName(name string) error {
	switch {
	case name == "":
		return fmt.Errorf("%w: empty", ErrBadName)
	case len(name) > MaxNameLen:
		return fmt.Errorf("%w: %d bytes, at most %d allowed", ErrBadName, len(name), MaxNameLen)
	case !utf8.ValidString(name):
		return fmt.Errorf("%w: %s is not valid UTF-8", ErrBadName, quoteShort(name))
	case strings.ContainsFunc(name, unicode.IsControl):
		return fmt.Errorf("%w: %s contains control characters", ErrBadName, quoteShort(name))
	}
	return nil
}

// NewEngine creates a key for a new local engine called name and returns its
// address. It fails with ErrDuplicateEngine if name is taken and with
// ErrBadName if name is empty, longer than MaxNameLen bytes, not UTF-8 or
// contains control characters.
func (k *Keyholder) NewEngine(name string) (Address, error) {
	if err := checkName(name); err != nil {
		return Address{}, err
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.closed {
		return Address{}, ErrClosed
	}
	if _, ok := k.byName[name]; ok {
		return Address{}, fmt.Errorf("%w: %s", ErrDuplicateEngine, quoteShort(name))
	}
	return k.addLocked(name)
}

func (k *Keyholder) addLocked(name string) (Address, error) {
	kk, err := k.generate(name)
	if err != nil {
		return Address{}, err
	}
	k.byName[name] = kk
	k.byAddr[kk.addr] = kk
	return kk.addr, nil
}

// Engine returns the address of the local engine called name.
func (k *Keyholder) Engine(name string) (Address, bool) {
	k.mu.RLock()
	defer k.mu.RUnlock()
	kk, ok := k.byName[name]
	if !ok {
		return Address{}, false
	}
	return kk.addr, true
}

// EngineName returns the name of the local engine whose address is a.
func (k *Keyholder) EngineName(a Address) (string, bool) {
	k.mu.RLock()
	defer k.mu.RUnlock()
	kk, ok := k.byAddr[a]
	if !ok {
		return "", false
	}
	return kk.name, true
}

// EnsureEngine returns the address of the local engine called name, creating
// its key first if there is none. With a key file (Load, Save) this gives an
// engine the same identity across restarts of its node.
func (k *Keyholder) EnsureEngine(name string) (Address, error) {
	if a, ok := k.Engine(name); ok {
		return a, nil
	}
	if err := checkName(name); err != nil {
		return Address{}, err
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.closed {
		return Address{}, ErrClosed
	}
	if kk, ok := k.byName[name]; ok {
		return kk.addr, nil
	}
	return k.addLocked(name)
}

// RemoveEngine forgets the local engine called name and zeroes its private
// key. Its address is no longer ours: Sign, EngineProof and MACSession.MAC
// refuse it from now on. Removal is permanent; a later engine of the same name
// gets a new address.
func (k *Keyholder) RemoveEngine(name string) error {
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.closed {
		return ErrClosed
	}
	kk, ok := k.byName[name]
	if !ok {
		return fmt.Errorf("%w: %s", ErrNoEngine, quoteShort(name))
	}
	delete(k.byName, name)
	delete(k.byAddr, kk.addr)
	k.gen.Add(1)
	kk.zero() // no signer holds it: they sign under k.mu.RLock
	return nil
}

// Engines returns all local engines, sorted by name. The router is not an
// engine and is not included.
func (k *Keyholder) Engines() []Engine {
	k.mu.RLock()
	es := make([]Engine, 0, len(k.byName))
	for _, kk := range k.byName {
		es = append(es, Engine{Name: kk.name, Address: kk.addr})
	}
	k.mu.RUnlock()
	slices.SortFunc(es, func(a, b Engine) int { return strings.Compare(a.Name, b.Name) })
	return es
}

// Owns reports whether a is the router or one of the local engines, that is,
// whether this keyholder can sign for it.
func (k *Keyholder) Owns(a Address) bool {
	k.mu.RLock()
	defer k.mu.RUnlock()
	return k.lookupLocked(a) != nil
}

// lookupLocked returns the key of a, or nil. k.mu must be held.
func (k *Keyholder) lookupLocked(a Address) *key {
	if k.closed {
		return nil
	}
	if a == k.router.addr {
		return k.router
	}
	return k.byAddr[a]
}

// Messages that Sign refuses, because the keys it holds also sign them for
// other purposes:
//   - reservedPrefix starts every statement the keyholder makes itself
//     (engine proofs);
//   - tls13SignaturePadding (64 spaces) starts everything signed in a TLS 1.3
//     CertificateVerify, which the router key signs (RFC 8446, section 4.4.3).
//
// So no signature from Sign can be passed off as an engine proof or as a TLS
// handshake signature, whatever the message.
const reservedPrefix = "enginekit keyholder "

var tls13SignaturePadding = bytes.Repeat([]byte{0x20}, 64)

// Sign returns signer's ed25519 signature of msg, where signer is the router
// or a local engine (ErrNotOurs otherwise). Anyone can check it with Verify.
//
// Sign refuses (ErrReservedMessage) messages that start with
// "enginekit keyholder " or with 64 spaces: those prefixes are reserved for the
// keyholder's own statements (EngineProof) and for TLS 1.3 handshake
// signatures made with the router key. Envelope encodings must therefore begin
// with something else, such as a type or version tag; callers should domain
// separate their own message kinds the same way.
func (k *Keyholder) Sign(signer Address, msg []byte) ([]byte, error) {
	if bytes.HasPrefix(msg, []byte(reservedPrefix)) || bytes.HasPrefix(msg, tls13SignaturePadding) {
		return nil, ErrReservedMessage
	}
	return k.sign(signer, msg)
}

// sign signs without the reserved-prefix check.
func (k *Keyholder) sign(signer Address, msg []byte) ([]byte, error) {
	// Sign under the read lock so that RemoveEngine and Close, which zero
	// keys under the write lock, never zero a key in use.
	k.mu.RLock()
	defer k.mu.RUnlock()
	kk := k.lookupLocked(signer)
	if kk == nil {
		return nil, k.notOursLocked(signer)
	}
	return ed25519.Sign(kk.priv, msg), nil
}

// checkOurs returns nil if k owns a, else why not.
func (k *Keyholder) checkOurs(a Address) error {
	k.mu.RLock()
	defer k.mu.RUnlock()
	if k.lookupLocked(a) != nil {
		return nil
	}
	return k.notOursLocked(a)
}

func (k *Keyholder) notOursLocked(a Address) error {
	if k.closed {
		return ErrClosed
	}
	return fmt.Errorf("%w: %v", ErrNotOurs, a)
}

// proofMessage is what an engine signs to say it belongs to a router.
func proofMessage(router, engine Address) []byte {
	const label = reservedPrefix + "engine proof v1\x00"
	msg := make([]byte, 0, len(label)+2*len(Address{}))
	msg = append(msg, label...)
	msg = append(msg, router[:]...)
	return append(msg, engine[:]...)
}

// EngineProof returns the local engine's own signature stating that it belongs
// to this keyholder's router: ed25519 over
//
//	"enginekit keyholder engine proof v1\x00" || router address || engine address
//
// A router announcing an engine sends this proof along, so a peer can check
// with VerifyEngineProof that the engine's key holder agrees, and a router
// cannot claim someone else's engine. It fails with ErrNotOurs if engine is not
// a local engine (the router is not an engine). The label is 36 bytes (35
// characters and a zero byte), the message 100; wire/spec.md, "Engine
// proofs", specifies it for other implementations, and
// wire/testdata/engine_proof.txt has a vector.
func (k *Keyholder) EngineProof(engine Address) ([]byte, error) {
	k.mu.RLock()
	defer k.mu.RUnlock()
	kk := k.byAddr[engine]
	if kk == nil || k.closed {
		return nil, k.notOursLocked(engine)
	}
	return ed25519.Sign(kk.priv, proofMessage(k.router.addr, engine)), nil
}

// VerifyEngineProof reports whether proof is engine's statement, made with
// EngineProof, that it belongs to router.
func VerifyEngineProof(router, engine Address, proof []byte) bool {
	return Verify(engine, proofMessage(router, engine), proof)
}

// Close zeroes all private keys and makes k refuse further work: Sign,
// EngineProof, MAC and TLS handshakes fail with ErrClosed (or ErrNotOurs), and
// Owns reports false. Addresses stay readable. Close is safe to call twice.
//
// Zeroing is best effort, as it must be in Go: the garbage collector may have
// copied memory, crypto/ed25519 caches the expanded form of a key in memory we
// cannot reach, and x509/tls internals keep their own state. Close removes
// the copies the keyholder owns.
func (k *Keyholder) Close() error {
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.closed {
		return nil
	}
	k.closed = true
	k.gen.Add(1)
	for _, kk := range k.byName {
		kk.zero()
	}
	k.router.zero()
	clear(k.byName)
	clear(k.byAddr)
	return nil
}
