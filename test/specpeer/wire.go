package specpeer

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/ed25519"
	"crypto/hkdf"
	"crypto/sha256"
	"encoding/base32"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"strings"
)

// Address is an Ed25519 public key: a router or an engine (spec conventions).
type Address [32]byte

// Frame types (§2).
const (
	FrameHello  = 1
	FrameBatch  = 2
	FramePing   = 3
	FramePong   = 4
	FrameGoaway = 5
)

// Envelope kinds (§4.2).
const (
	KindCast   = 1
	KindCall   = 2
	KindReply  = 3
	KindInfo   = 4
	KindLearn  = 5
	KindForget = 6
	KindEvent  = 7
	KindSynced = 8
	KindLearns = 9
)

// Auth modes (§3) and their tag sizes (§4.1).
const (
	ModeSignatures = 1
	ModeMACs       = 2
)

// TagSize is T of §4.1.
func TagSize(mode byte) int {
	if mode == ModeMACs {
		return 16
	}
	return 64
}

// Limits (§2, §3, §11).
const (
	MinFrameSize      = 4096
	MaxFrameSizeLimit = 1 << 26
	MaxHelloSize      = 16384
	DefaultFrameSize  = 1114112
)

var errFormat = errors.New("specpeer: malformed")

// WriteFrame writes one frame: length L = 1 + len(body), type, body (§2).
func WriteFrame(w io.Writer, typ byte, body []byte) error {
	b := make([]byte, 5+len(body))
	binary.BigEndian.PutUint32(b, uint32(1+len(body)))
	b[4] = typ
	copy(b[5:], body)
	_, err := w.Write(b)
	return err
}

// ReadFrame reads one frame, checking L against max before reading the body
// (a HELLO may be up to MaxHelloSize+1 whatever max is, §3).
func ReadFrame(r io.Reader, max uint32) (typ byte, body []byte, err error) {
	var h [5]byte
	if _, err := io.ReadFull(r, h[:4]); err != nil {
		return 0, nil, err
	}
	l := binary.BigEndian.Uint32(h[:4])
	if l == 0 {
		return 0, nil, fmt.Errorf("%w: frame length 0", errFormat)
	}
	if _, err := io.ReadFull(r, h[4:5]); err != nil {
		return 0, nil, err
	}
	limit := max
	if h[4] == FrameHello && limit < MaxHelloSize+1 {
		limit = MaxHelloSize + 1
	}
	if l > limit {
		return 0, nil, fmt.Errorf("%w: frame length %d over %d", errFormat, l, limit)
	}
	body = make([]byte, l-1)
	if _, err := io.ReadFull(r, body); err != nil {
		return 0, nil, err
	}
	return h[4], body, nil
}

// Hello is a HELLO body (§3, §3.1).
type Hello struct {
	Mode       byte
	MaxFrame   uint32
	Credential []byte // nil: no credential extension
	// Extensions are sent after the credential, as they are (types other
	// than 1, which receivers skip).
	Extensions []Extension
}

// Extension is one hello extension (§3.1).
type Extension struct {
	Type  uint16
	Value []byte
}

// Marshal encodes h.
func (h Hello) Marshal() []byte {
	b := []byte{'E', 'K', 'I', 'T', 1, h.Mode, 0, 0}
	if h.Credential != nil || len(h.Extensions) > 0 {
		b[7] = 1
	}
	b = binary.BigEndian.AppendUint32(b, h.MaxFrame)
	exts := h.Extensions
	if h.Credential != nil {
		exts = append([]Extension{{1, h.Credential}}, exts...)
	}
	for _, e := range exts {
		b = binary.BigEndian.AppendUint16(b, e.Type)
		b = binary.BigEndian.AppendUint16(b, uint16(len(e.Value)))
		b = append(b, e.Value...)
	}
	return b
}

// ParseHello decodes and checks a HELLO body for a receiver of the given
// mode (§3 "acceptable").
func ParseHello(b []byte, mode byte) (Hello, error) {
	if len(b) < 12 || string(b[:4]) != "EKIT" {
		return Hello{}, fmt.Errorf("%w: hello magic", errFormat)
	}
	if len(b) > MaxHelloSize {
		return Hello{}, fmt.Errorf("%w: hello of %d bytes", errFormat, len(b))
	}
	if b[4] != 1 {
		return Hello{}, fmt.Errorf("%w: version %d", errFormat, b[4])
	}
	h := Hello{Mode: b[5], MaxFrame: binary.BigEndian.Uint32(b[8:12])}
	if h.Mode != mode {
		return Hello{}, fmt.Errorf("%w: auth mode %d, want %d", errFormat, h.Mode, mode)
	}
	if h.MaxFrame < MinFrameSize || h.MaxFrame > MaxFrameSizeLimit {
		return Hello{}, fmt.Errorf("%w: max frame %d", errFormat, h.MaxFrame)
	}
	if binary.BigEndian.Uint16(b[6:8])&1 == 0 {
		return h, nil
	}
	ext := b[12:]
	for len(ext) > 0 {
		if len(ext) < 4 {
			return Hello{}, fmt.Errorf("%w: extension header", errFormat)
		}
		typ, m := binary.BigEndian.Uint16(ext), int(binary.BigEndian.Uint16(ext[2:]))
		if len(ext)-4 < m {
			return Hello{}, fmt.Errorf("%w: truncated extension", errFormat)
		}
		if typ == 1 {
			if h.Credential != nil || m < 1 || m > 8192 {
				return Hello{}, fmt.Errorf("%w: credential", errFormat)
			}
			h.Credential = append([]byte(nil), ext[4:4+m]...)
		}
		ext = ext[4+m:]
	}
	return h, nil
}

// Goaway is a GOAWAY body (§8).
func Goaway(code uint32, reason string) []byte {
	if len(reason) > 256 {
		reason = reason[:256]
	}
	return append(binary.BigEndian.AppendUint32(nil, code), reason...)
}

// ParseGoaway decodes a GOAWAY body.
func ParseGoaway(b []byte) (code uint32, reason string, err error) {
	if len(b) < 4 || len(b) > 4+256 {
		return 0, "", fmt.Errorf("%w: goaway of %d bytes", errFormat, len(b))
	}
	return binary.BigEndian.Uint32(b), strings.ToValidUTF8(string(b[4:]), "\uFFFD"), nil
}

// Envelope is one record of a batch; src and seq are the batch's (§4).
type Envelope struct {
	Kind     byte
	Flags    byte
	Dst      Address
	Ref      uint64
	Deadline int64
	Payload  []byte
}

// Batch is a decoded BATCH body (§4.1).
type Batch struct {
	Src        Address
	Seq        uint64
	Envelopes  []Envelope
	SignedBody []byte // the body without the tag (§5)
	Tag        []byte
}

// SignedBody encodes src, seq, count and records: the BATCH body without
// its tag (§4.1, §5).
func SignedBody(src Address, seq uint64, envs []Envelope) []byte {
	b := append([]byte(nil), src[:]...)
	b = binary.BigEndian.AppendUint64(b, seq)
	b = binary.BigEndian.AppendUint32(b, uint32(len(envs)))
	for _, e := range envs {
		b = append(b, e.Kind, e.Flags)
		b = append(b, e.Dst[:]...)
		b = binary.BigEndian.AppendUint64(b, e.Ref)
		b = binary.BigEndian.AppendUint64(b, uint64(e.Deadline))
		b = binary.BigEndian.AppendUint32(b, uint32(len(e.Payload)))
		b = append(b, e.Payload...)
	}
	return b
}

// ParseBatch decodes a BATCH body with a tag of tagSize bytes and checks it
// is well-formed (§4.1). It does not check the tag.
func ParseBatch(b []byte, tagSize int) (Batch, error) {
	if len(b) < 44+54+tagSize {
		return Batch{}, fmt.Errorf("%w: batch of %d bytes", errFormat, len(b))
	}
	var bt Batch
	copy(bt.Src[:], b)
	bt.Seq = binary.BigEndian.Uint64(b[32:])
	n := binary.BigEndian.Uint32(b[40:])
	if n == 0 || bt.Seq+uint64(n-1) < bt.Seq {
		return Batch{}, fmt.Errorf("%w: count %d at seq %d", errFormat, n, bt.Seq)
	}
	end := len(b) - tagSize
	bt.SignedBody, bt.Tag = b[:end], b[end:]
	off := 44
	for i := uint32(0); i < n; i++ {
		if end-off < 54 {
			return Batch{}, fmt.Errorf("%w: record %d", errFormat, i)
		}
		r := b[off:]
		e := Envelope{Kind: r[0], Flags: r[1], Ref: binary.BigEndian.Uint64(r[34:]), Deadline: int64(binary.BigEndian.Uint64(r[42:]))}
		copy(e.Dst[:], r[2:34])
		p := binary.BigEndian.Uint32(r[50:])
		if uint64(end-off-54) < uint64(p) {
			return Batch{}, fmt.Errorf("%w: payload of record %d", errFormat, i)
		}
		e.Payload = r[54 : 54+int(p)]
		off += 54 + int(p)
		bt.Envelopes = append(bt.Envelopes, e)
	}
	if off != end {
		return Batch{}, fmt.Errorf("%w: %d bytes left over", errFormat, end-off)
	}
	return bt, nil
}

// AuthMessage is the 121-byte message signed in signature mode (§5).
func AuthMessage(sender, receiver Address, signedBody []byte) []byte {
	d := sha256.Sum256(signedBody)
	b := append([]byte("enginekit/wire batch v1\x00"), ModeSignatures)
	b = append(b, sender[:]...)
	b = append(b, receiver[:]...)
	return append(b, d[:]...)
}

// MACKey derives the AES-256 key of src for the direction sender→receiver
// from the channel secret (§6).
func MACKey(secret []byte, sender, receiver, src Address) ([]byte, error) {
	prk, err := MACPRK(secret)
	if err != nil {
		return nil, err
	}
	return hkdf.Expand(sha256.New, prk, string(MACInfo(sender, receiver, src)), 32)
}

// MACPRK is the HKDF-Extract step of §6, from the channel secret.
func MACPRK(secret []byte) ([]byte, error) {
	return hkdf.Extract(sha256.New, secret, []byte("enginekit keyholder gmac v1"))
}

// MACInfo is the HKDF info of §6.
func MACInfo(sender, receiver, src Address) []byte {
	b := []byte("enginekit keyholder gmac v1 engine key\x00")
	b = append(b, sender[:]...)
	b = append(b, receiver[:]...)
	return append(b, src[:]...)
}

// Nonce is the GCM nonce of a batch (§6).
func Nonce(seq uint64) []byte { return binary.BigEndian.AppendUint64(make([]byte, 4), seq) }

// GMAC is the 16-byte tag of §6: AES-256-GCM of an empty plaintext with the
// signed body as additional data.
func GMAC(key []byte, seq uint64, signedBody []byte) ([]byte, error) {
	blk, err := aes.NewCipher(key)
	if err != nil {
		return nil, err
	}
	g, err := cipher.NewGCM(blk)
	if err != nil {
		return nil, err
	}
	return g.Seal(nil, Nonce(seq), nil, signedBody), nil
}

// ProofMessage is the 100-byte message of an engine proof (§14).
func ProofMessage(router, engine Address) []byte {
	b := append([]byte("enginekit keyholder engine proof v1\x00"), router[:]...)
	return append(b, engine[:]...)
}

// Prove makes engine's proof for router (§14).
func Prove(engine ed25519.PrivateKey, router Address) []byte {
	var e Address
	copy(e[:], engine.Public().(ed25519.PublicKey))
	return ed25519.Sign(engine, ProofMessage(router, e))
}

// VerifyProof checks an engine proof (§14).
func VerifyProof(router, engine Address, proof []byte) bool {
	return len(proof) == 64 && ed25519.Verify(engine[:], ProofMessage(router, engine), proof)
}

var b32 = base32.NewEncoding("abcdefghijklmnopqrstuvwxyz234567").WithPadding(base32.NoPadding)

// String is the text form of a (§13).
func (a Address) String() string { return "ek1" + b32.EncodeToString(a[:]) }

// ParseAddress parses the only text form of an address (§13).
func ParseAddress(s string) (Address, error) {
	var a Address
	if len(s) != 55 || !strings.HasPrefix(s, "ek1") {
		return a, fmt.Errorf("%w: address %q", errFormat, s)
	}
	if last := s[54]; last != 'a' && last != 'q' {
		return a, fmt.Errorf("%w: address %q: last character", errFormat, s)
	}
	for _, c := range s[3:] {
		if !strings.ContainsRune("abcdefghijklmnopqrstuvwxyz234567", c) {
			return a, fmt.Errorf("%w: address %q: character %q", errFormat, s, c)
		}
	}
	b, err := b32.DecodeString(s[3:])
	if err != nil || len(b) != 32 {
		return a, fmt.Errorf("%w: address %q", errFormat, s)
	}
	copy(a[:], b)
	return a, nil
}

func isEOF(err error) bool { return errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) }
