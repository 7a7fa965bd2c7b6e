package keyholder

import (
	"bytes"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/binary"
	"errors"
	"fmt"
	"github.com/enginekit/enginekit/internal/atomicfile"
	"io"
	"maps"
	"os"
	"runtime"
	"slices"
	"strings"

	"golang.org/x/crypto/argon2"
	"golang.org/x/crypto/chacha20poly1305"
)

// The key file format is specified in keyfile.md.
const (
	keyFileMagic = "\x89EKKEYS\n"
	// keyFileVersion is what Save writes: version 2 lists the public
	// addresses in clear after the header. Version 1 (keys only, all
	// encrypted) is still read.
	keyFileVersion   = 2
	keyFileVersionV1 = 1

	saltSize      = 16
	checkSize     = 16
	headerSumSize = 16
	headerSize    = 96

	offVersion  = 8
	offThreads  = 10
	offReserved = 11
	offTime     = 12
	offMemory   = 16
	offSalt     = 20
	offNonce    = offSalt + saltSize                     // 36
	offCTLen    = offNonce + chacha20poly1305.NonceSizeX // 60
	offCheck    = offCTLen + 4                           // 64
	offHdrSum   = offCheck + checkSize                   // 80

	aeadKeySize = chacha20poly1305.KeySize
)

// MaxKeyFileSize is the largest key file Load reads. It allows for tens of
// thousands of engines.
const MaxKeyFileSize = 16 << 20

// KDFParams are the argon2id parameters that turn a passphrase into the key
// file's encryption key. Each zero field takes its default. They are stored in
// the key file, so they can differ from file to file and change over time.
//
// Accepted ranges, for saving and loading alike (a key file asking for more is
// refused as corrupt, so a hostile file cannot make Load allocate or compute
// without bound): Threads 1..MaxKDFThreads, MemoryKiB 8×Threads..MaxKDFMemoryKiB,
// Time 1..MaxKDFTime, and Time × MemoryKiB at most MaxKDFWork.
type KDFParams struct {
	// Time is the number of passes over memory. Default 3.
	Time uint32
	// MemoryKiB is the memory size in KiB. Default 65536 (64 MiB).
	MemoryKiB uint32
	// Threads is the degree of parallelism. Default 4.
	Threads uint8
}

// Limits on KDFParams; see there.
const (
	MaxKDFTime      = 16
	MaxKDFMemoryKiB = 1 << 20 // 1 GiB
	MaxKDFThreads   = 64
	MaxKDFWork      = 4 << 20 // in pass × KiB: e.g. 4 passes over 1 GiB
)

// DefaultKDFParams returns the parameters Save uses: argon2id with 3 passes
// over 64 MiB in 4 lanes, the second recommended option of RFC 9106 (section
// 4), for machines that cannot spare 2 GiB. Save or Load then takes about
// 0.2 s on the 2-core development machine.
func DefaultKDFParams() KDFParams {
	return KDFParams{Time: 3, MemoryKiB: 64 << 10, Threads: 4}
}

func (p KDFParams) withDefaults() KDFParams {
	d := DefaultKDFParams()
	if p.Time == 0 {
		p.Time = d.Time
	}
	if p.MemoryKiB == 0 {
		p.MemoryKiB = d.MemoryKiB
	}
	if p.Threads == 0 {
		p.Threads = d.Threads
	}
	return p
}

// validate checks p against the limits, without defaults.
func (p KDFParams) validate() error {
	switch {
	case p.Threads < 1 || p.Threads > MaxKDFThreads:
		return fmt.Errorf("%w: threads %d not in 1..%d", ErrBadKDFParams, p.Threads, MaxKDFThreads)
	case p.Time < 1 || p.Time > MaxKDFTime:
		return fmt.Errorf("%w: time %d not in 1..%d", ErrBadKDFParams, p.Time, MaxKDFTime)
	case p.MemoryKiB < 8*uint32(p.Threads) || p.MemoryKiB > MaxKDFMemoryKiB:
		return fmt.Errorf("%w: memory %d KiB not in %d..%d", ErrBadKDFParams, p.MemoryKiB, 8*uint32(p.Threads), MaxKDFMemoryKiB)
	case uint64(p.Time)*uint64(p.MemoryKiB) > MaxKDFWork:
		return fmt.Errorf("%w: time × memory = %d × %d KiB exceeds %d", ErrBadKDFParams, p.Time, p.MemoryKiB, MaxKDFWork)
	}
	return nil
}

// deriveFileKeys runs argon2id and splits its output into the AEAD key and
// the passphrase check value. The caller zeroes the result.
func deriveFileKeys(passphrase, salt []byte, p KDFParams) []byte {
	return argon2.IDKey(passphrase, salt, p.Time, p.MemoryKiB, p.Threads, aeadKeySize+checkSize)
}

// SaveOptions tune SaveWith. The zero value gives Save's behaviour.
type SaveOptions struct {
	// KDF are the argon2id parameters; zero fields take their defaults (see
	// KDFParams). Lower values than the defaults make the passphrase easier
	// to guess from a stolen file; tests use them to run fast.
	KDF KDFParams
}

// Save writes the router key and all engine keys to the file at path,
// encrypted with a key derived from passphrase (argon2id, default
// parameters, then XChaCha20-Poly1305; format in keyfile.md). passphrase must
// not be empty.
//
// The write is atomic and durable: a temporary file with mode 0600 in the same
// directory is written, synced and renamed over path, and the directory is
// synced. A reader sees the old file or the new one, never a mixture.
func (k *Keyholder) Save(path string, passphrase []byte) error {
	return k.SaveWith(path, passphrase, SaveOptions{})
}

// SaveWith is Save with options.
func (k *Keyholder) SaveWith(path string, passphrase []byte, opts SaveOptions) error {
	if len(passphrase) == 0 {
		return ErrEmptyPassphrase
	}
	p := opts.KDF.withDefaults()
	if err := p.validate(); err != nil {
		return err
	}
	plain, public, err := k.marshalKeys()
	if err != nil {
		return err
	}
	defer clear(plain)
	if size := headerSize + len(public) + len(plain) + chacha20poly1305.Overhead; size > MaxKeyFileSize {
		return fmt.Errorf("keyholder: too many engines to save: %d byte file, at most %d", size, MaxKeyFileSize)
	}

	var saltNonce [saltSize + chacha20poly1305.NonceSizeX]byte
	if err := k.readRand(saltNonce[:]); err != nil {
		return fmt.Errorf("keyholder: saving keys: %w", err)
	}
	file, err := encodeKeyFile(plain, public, passphrase, p, saltNonce[:saltSize], saltNonce[saltSize:])
	if err != nil {
		return err
	}
	if err := atomicfile.Write(path, file, 0o600); err != nil {
		return fmt.Errorf("keyholder: saving keys to %s: %w", path, err)
	}
	return nil
}

// encodeKeyFile builds a version-2 key file: the header, the public
// section in clear, and plain encrypted (see keyfile.md). With a nil public
// section it builds a version-1 file, as older builds wrote (for tests).
func encodeKeyFile(plain, public, passphrase []byte, p KDFParams, salt, nonce []byte) ([]byte, error) {
	file := make([]byte, headerSize, headerSize+len(public)+len(plain)+chacha20poly1305.Overhead)
	hdr := file[:headerSize]
	copy(hdr, keyFileMagic)
	version := uint16(keyFileVersion)
	if public == nil {
		version = keyFileVersionV1
	}
	binary.BigEndian.PutUint16(hdr[offVersion:], version)
	hdr[offThreads] = p.Threads
	binary.BigEndian.PutUint32(hdr[offTime:], p.Time)
	binary.BigEndian.PutUint32(hdr[offMemory:], p.MemoryKiB)
	copy(hdr[offSalt:offNonce], salt)
	copy(hdr[offNonce:offCTLen], nonce)
	binary.BigEndian.PutUint32(hdr[offCTLen:], uint32(len(plain)+chacha20poly1305.Overhead))

	dk := deriveFileKeys(passphrase, hdr[offSalt:offNonce], p)
	defer clear(dk)
	copy(hdr[offCheck:offHdrSum], dk[aeadKeySize:])
	sum := headerSum(hdr, public)
	copy(hdr[offHdrSum:], sum[:headerSumSize])
	file = append(file, public...)

	aead, err := chacha20poly1305.NewX(dk[:aeadKeySize])
	if err != nil {
		return nil, fmt.Errorf("keyholder: saving keys: %w", err)
	}
	// The additional data is everything before the ciphertext: the header
	// and the public section.
	return aead.Seal(file, hdr[offNonce:offCTLen], plain, file), nil
}

// headerSum is the header checksum: SHA-256 over header bytes 0..79 and,
// in version 2, the public section.
func headerSum(hdr, public []byte) [sha256.Size]byte {
	h := sha256.New()
	h.Write(hdr[:offHdrSum])
	h.Write(public)
	var sum [sha256.Size]byte
	h.Sum(sum[:0])
	return sum
}

// marshalKeys encodes a consistent snapshot of the keys as the key file
// plaintext and the public section (see keyfile.md). The caller zeroes
// plain.
func (k *Keyholder) marshalKeys() (plain, public []byte, err error) {
	k.mu.RLock()
	defer k.mu.RUnlock()
	if k.closed {
		return nil, nil, ErrClosed
	}
	names := slices.Sorted(maps.Keys(k.byName))
	n := ed25519.SeedSize + 4
	for _, name := range names {
		n += 1 + len(name) + ed25519.SeedSize
	}
	plain = make([]byte, 0, n)
	plain = append(plain, k.router.priv[:ed25519.SeedSize]...)
	plain = binary.BigEndian.AppendUint32(plain, uint32(len(names)))
	public = make([]byte, 4, 4+n)
	public = append(public, k.router.addr[:]...)
	public = binary.BigEndian.AppendUint32(public, uint32(len(names)))
	for _, name := range names {
		kk := k.byName[name]
		plain = append(plain, byte(len(name)))
		plain = append(plain, name...)
		plain = append(plain, kk.priv[:ed25519.SeedSize]...)
		public = append(public, byte(len(name)))
		public = append(public, name...)
		public = append(public, kk.addr[:]...)
	}
	binary.BigEndian.PutUint32(public, uint32(len(public)-4))
	return plain, public, nil
}

// Load reads a key file written by Save and returns a Keyholder with its router
// and engine keys. It returns a complete keyholder or none:
//   - ErrEmptyPassphrase for an empty passphrase;
//   - ErrWrongPassphrase if passphrase does not open the file;
//   - ErrCorruptKeyFile, wrapped with what is wrong, for a file that is
//     empty, truncated, too long, damaged, not a key file, of an unknown
//     version, or that asks for argon2id parameters beyond the limits of
//     KDFParams (then also ErrBadKDFParams);
//   - ErrInsecureKeyFile if, on a Unix system, the file's mode grants any
//     access to group or others: like OpenSSH with private keys, we would
//     rather stop than use keys others may have read (even encrypted ones
//     can be attacked offline). Fix it with chmod 600.
//
// Otherwise the error is the one from the file system. The keyholder draws new
// keys from crypto/rand.
func Load(path string, passphrase []byte) (*Keyholder, error) {
	if len(passphrase) == 0 {
		return nil, ErrEmptyPassphrase
	}
	data, err := readKeyFile(path)
	if err != nil {
		return nil, err
	}
	k, err := decodeKeyFile(data, passphrase)
	if err != nil {
		return nil, fmt.Errorf("%w (%s)", err, path)
	}
	return k, nil
}

func readKeyFile(path string) ([]byte, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("keyholder: %w", err)
	}
	if !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("keyholder: key file %s is not a regular file (%v)", path, fi.Mode().Type())
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("keyholder: %w", err)
	}
	defer f.Close()
	fi2, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("keyholder: %w", err)
	}
	if !os.SameFile(fi, fi2) {
		return nil, fmt.Errorf("keyholder: key file %s changed while opening it", path)
	}
	if perm := fi2.Mode().Perm(); perm&0o077 != 0 && runtime.GOOS != "windows" && runtime.GOOS != "plan9" {
		return nil, fmt.Errorf("%w: %s has mode %04o", ErrInsecureKeyFile, path, perm)
	}
	if fi2.Size() > MaxKeyFileSize {
		return nil, fmt.Errorf("%w: %s is %d bytes, larger than the maximum %d", ErrCorruptKeyFile, path, fi2.Size(), MaxKeyFileSize)
	}
	data, err := io.ReadAll(io.LimitReader(f, MaxKeyFileSize+1))
	if err != nil {
		return nil, fmt.Errorf("keyholder: reading %s: %w", path, err)
	}
	if len(data) > MaxKeyFileSize {
		return nil, fmt.Errorf("%w: %s is larger than the maximum %d bytes", ErrCorruptKeyFile, path, MaxKeyFileSize)
	}
	return data, nil
}

func corrupt(format string, args ...any) error {
	return fmt.Errorf("%w: "+format, append([]any{ErrCorruptKeyFile}, args...)...)
}

// keyFileParts is a key file split and checked as far as it can be without
// the passphrase.
type keyFileParts struct {
	version uint16
	hdr     []byte
	kdf     KDFParams
	aad     []byte // the AEAD's additional data: header, and public section in v2
	ct      []byte
	addrs   *KeyFileAddresses // v2 only
}

// parseKeyFile checks everything that can be checked before running
// argon2id: steps 1 to 4 of "Reading" in keyfile.md.
func parseKeyFile(data []byte) (*keyFileParts, error) {
	switch {
	case len(data) == 0:
		return nil, corrupt("empty file")
	case len(data) < len(keyFileMagic) && bytes.HasPrefix([]byte(keyFileMagic), data):
		return nil, corrupt("truncated in the header: %d of %d bytes", len(data), headerSize)
	case !bytes.HasPrefix(data, []byte(keyFileMagic)):
		return nil, corrupt("not an enginekit key file (bad magic)")
	case len(data) < offVersion+2:
		return nil, corrupt("truncated in the header: %d of %d bytes", len(data), headerSize)
	}
	f := &keyFileParts{version: binary.BigEndian.Uint16(data[offVersion:])}
	if f.version != keyFileVersion && f.version != keyFileVersionV1 {
		return nil, corrupt("unsupported version %d (this build reads versions 1 and %d)", f.version, keyFileVersion)
	}
	if len(data) < headerSize {
		return nil, corrupt("truncated in the header: %d of %d bytes", len(data), headerSize)
	}
	f.hdr = data[:headerSize]
	rest := data[headerSize:]
	var public []byte
	if f.version >= 2 {
		if len(rest) < 4 {
			return nil, corrupt("truncated before the public section")
		}
		n := binary.BigEndian.Uint32(rest)
		if uint64(n) > uint64(len(rest)-4) {
			return nil, corrupt("truncated in the public section: %d of %d bytes", len(rest)-4, n)
		}
		public, rest = rest[:4+n], rest[4+n:]
	}
	sum := headerSum(f.hdr, public)
	if subtle.ConstantTimeCompare(sum[:headerSumSize], f.hdr[offHdrSum:headerSize]) != 1 {
		return nil, corrupt("header checksum mismatch (damaged header or address list)")
	}
	if f.hdr[offReserved] != 0 {
		return nil, corrupt("reserved header byte is %d, want 0", f.hdr[offReserved])
	}
	f.kdf = KDFParams{
		Threads:   f.hdr[offThreads],
		Time:      binary.BigEndian.Uint32(f.hdr[offTime:]),
		MemoryKiB: binary.BigEndian.Uint32(f.hdr[offMemory:]),
	}
	if err := f.kdf.validate(); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrCorruptKeyFile, err)
	}
	if public != nil {
		addrs, err := parsePublic(public[4:])
		if err != nil {
			return nil, err
		}
		f.addrs = addrs
	}
	ctLen := binary.BigEndian.Uint32(f.hdr[offCTLen:])
	f.ct = rest
	f.aad = data[:len(data)-len(rest)]
	switch {
	case uint64(len(f.ct)) < uint64(ctLen):
		return nil, corrupt("truncated: %d of %d ciphertext bytes", len(f.ct), ctLen)
	case uint64(len(f.ct)) > uint64(ctLen):
		return nil, corrupt("%d bytes of trailing garbage", uint64(len(f.ct))-uint64(ctLen))
	case len(f.ct) < chacha20poly1305.Overhead+ed25519.SeedSize+4:
		return nil, corrupt("ciphertext of %d bytes is too short", len(f.ct))
	}
	return f, nil
}

// parsePublic parses the public section after its length (keyfile.md,
// "Public section"), as strictly as the plaintext.
func parsePublic(b []byte) (*KeyFileAddresses, error) {
	if len(b) < len(Address{})+4 {
		return nil, corrupt("address list truncated")
	}
	a := &KeyFileAddresses{}
	copy(a.Router[:], b)
	b = b[len(Address{}):]
	n := binary.BigEndian.Uint32(b)
	b = b[4:]
	if uint64(n) > uint64(len(b))/(2+uint64(len(Address{}))) { // each entry takes at least 34 bytes
		return nil, corrupt("address list claims %d engines in %d bytes", n, len(b))
	}
	seen := map[Address]bool{a.Router: true}
	for i := uint32(0); i < n; i++ {
		if len(b) < 1 || len(b) < 1+int(b[0])+len(Address{}) {
			return nil, corrupt("address list truncated at engine %d of %d", i, n)
		}
		l := int(b[0])
		e := NamedAddress{Name: string(b[1 : 1+l])}
		copy(e.Address[:], b[1+l:])
		if err := checkName(e.Name); err != nil {
			return nil, corrupt("address list, engine %d: %w", i, err)
		}
		if i > 0 && strings.Compare(a.Engines[i-1].Name, e.Name) >= 0 {
			return nil, corrupt("address list: names out of order or repeated at engine %d", i)
		}
		if seen[e.Address] {
			return nil, corrupt("address list repeats an address at engine %d", i)
		}
		seen[e.Address] = true
		a.Engines = append(a.Engines, e)
		b = b[1+l+len(Address{}):]
	}
	if len(b) != 0 {
		return nil, corrupt("%d bytes after the last address", len(b))
	}
	return a, nil
}

// decodeKeyFile checks everything that can be checked before running
// argon2id, then decrypts and parses. It is the whole of Load's parsing, and
// the fuzz target.
func decodeKeyFile(data, passphrase []byte) (*Keyholder, error) {
	f, err := parseKeyFile(data)
	if err != nil {
		return nil, err
	}
	dk := deriveFileKeys(passphrase, f.hdr[offSalt:offNonce], f.kdf)
	defer clear(dk)
	if subtle.ConstantTimeCompare(dk[aeadKeySize:], f.hdr[offCheck:offHdrSum]) != 1 {
		return nil, ErrWrongPassphrase
	}
	aead, err := chacha20poly1305.NewX(dk[:aeadKeySize])
	if err != nil {
		return nil, fmt.Errorf("keyholder: %w", err)
	}
	plain, err := aead.Open(nil, f.hdr[offNonce:offCTLen], f.ct, f.aad)
	if err != nil {
		return nil, corrupt("encrypted keys fail authentication (damaged or altered file)")
	}
	defer clear(plain)
	k, err := unmarshalKeys(plain)
	if err != nil {
		return nil, err
	}
	// The AEAD has authenticated the address list; that it matches the
	// keys is what a writer promised, checked all the same.
	if f.addrs != nil && !f.addrs.equal(k) {
		k.Close()
		return nil, corrupt("the address list does not match the keys")
	}
	return k, nil
}

// ErrNoAddressList is returned by ReadAddresses for a key file of version
// 1, which keeps its addresses encrypted with the keys: open it with Load
// (Save then writes the current version, which lists them).
var ErrNoAddressList = errors.New("keyholder: key file of version 1 lists no addresses without the passphrase")

// NamedAddress is an engine's name and address.
type NamedAddress struct {
	Name    string
	Address Address
}

// KeyFileAddresses are the public addresses a key file lists: its router's
// and its engines', sorted by name.
type KeyFileAddresses struct {
	Router  Address
	Engines []NamedAddress
}

func (a *KeyFileAddresses) equal(k *Keyholder) bool {
	if a.Router != k.router.addr || len(a.Engines) != len(k.byName) {
		return false
	}
	for _, e := range a.Engines {
		kk, ok := k.byName[e.Name]
		if !ok || kk.addr != e.Address {
			return false
		}
	}
	return true
}

// ReadAddresses returns the addresses a key file lists, without the
// passphrase and without running argon2id. The list is checked against the
// header checksum (accidental damage) but is authenticated only by the
// encryption: a list someone altered on purpose is caught by the next Load,
// not here. Errors are Load's for the file itself (ErrCorruptKeyFile,
// ErrInsecureKeyFile, the file system's), and ErrNoAddressList for a
// version-1 file.
func ReadAddresses(path string) (KeyFileAddresses, error) {
	data, err := readKeyFile(path)
	if err != nil {
		return KeyFileAddresses{}, err
	}
	f, err := parseKeyFile(data)
	if err != nil {
		return KeyFileAddresses{}, fmt.Errorf("%w (%s)", err, path)
	}
	if f.addrs == nil {
		return KeyFileAddresses{}, fmt.Errorf("%w (%s)", ErrNoAddressList, path)
	}
	return *f.addrs, nil
}

// unmarshalKeys parses the key file plaintext into a new Keyholder.
func unmarshalKeys(plain []byte) (_ *Keyholder, err error) {
	k := newKeyholder(rand.Reader)
	defer func() {
		if err != nil {
			for _, kk := range k.byName {
				kk.zero()
			}
			if k.router != nil {
				k.router.zero()
			}
		}
	}()
	if len(plain) < ed25519.SeedSize+4 {
		return nil, corrupt("keys truncated")
	}
	k.router = keyFromSeed("", plain[:ed25519.SeedSize])
	rest := plain[ed25519.SeedSize:]
	n := binary.BigEndian.Uint32(rest)
	rest = rest[4:]
	prev := ""
	for i := uint32(0); i < n; i++ {
		if len(rest) < 1 {
			return nil, corrupt("keys truncated at engine %d of %d", i, n)
		}
		l := int(rest[0])
		if len(rest) < 1+l+ed25519.SeedSize {
			return nil, corrupt("keys truncated at engine %d of %d", i, n)
		}
		name := string(rest[1 : 1+l])
		if err := checkName(name); err != nil {
			return nil, corrupt("engine %d: %w", i, err)
		}
		if i > 0 && strings.Compare(prev, name) >= 0 {
			return nil, corrupt("engine names out of order or repeated at engine %d", i)
		}
		prev = name
		kk := keyFromSeed(name, rest[1+l:1+l+ed25519.SeedSize])
		if kk.addr == k.router.addr || k.byAddr[kk.addr] != nil {
			kk.zero()
			return nil, corrupt("engine %d repeats a key", i)
		}
		k.byName[name] = kk
		k.byAddr[kk.addr] = kk
		rest = rest[1+l+ed25519.SeedSize:]
	}
	if len(rest) != 0 {
		return nil, corrupt("%d bytes after the last key", len(rest))
	}
	return k, nil
}
