package wire

import (
	"encoding/binary"
	"fmt"

	"github.com/enginekit/enginekit/internal/safetext"
)

// Version is the protocol version this package speaks, sent in the hello.
const Version = 1

// Magic starts every hello body.
const Magic = "EKIT"

// ALPN is the TLS application protocol name both sides must negotiate.
const ALPN = "enginekit/1"

// AuthMode is how the envelopes of a connection are authenticated
// (spec.md, "Authentication").
type AuthMode uint8

const (
	// AuthSignatures: an ed25519 signature by the sending engine.
	AuthSignatures AuthMode = 1
	// AuthMACs: a GMAC under a key derived from the TLS session, the two
	// routers and the sending engine's address.
	AuthMACs AuthMode = 2
)

// Tag sizes per AuthMode.
const (
	SignatureSize = 64
	MACSize       = 16
)

// Valid reports whether m is a mode this version defines.
func (m AuthMode) Valid() bool { return m == AuthSignatures || m == AuthMACs }

// TagSize returns the length of a batch's tag under m, or 0 if m is not valid.
func (m AuthMode) TagSize() int {
	switch m {
	case AuthSignatures:
		return SignatureSize
	case AuthMACs:
		return MACSize
	}
	return 0
}

func (m AuthMode) String() string {
	switch m {
	case AuthSignatures:
		return "signatures"
	case AuthMACs:
		return "macs"
	}
	return fmt.Sprintf("auth(%d)", uint8(m))
}

// Hello is the body of the first frame each side sends after the TLS
// handshake.
type Hello struct {
	Version uint8
	Auth    AuthMode
	// MaxFrameSize is the longest frame the sender of the hello accepts; the
	// other side must not send longer ones.
	MaxFrameSize uint32
	// Credential is an optional opaque statement about the sender, at most
	// MaxCredentialSize bytes, for admission by the receiver (a cluster
	// membership certificate, spec.md). Empty means none; a hello with one
	// carries it in an extension (spec.md §3.1).
	Credential []byte
}

// Hello sizes and extensions (spec.md §3).
const (
	// HelloSize is the length of the fixed part of a hello body, all of a
	// hello without extensions.
	HelloSize = 12
	// MaxHelloSize is the longest hello body, extensions included. A
	// receiver accepts a HELLO frame this long whatever its max frame size.
	MaxHelloSize = 16384
	// MaxCredentialSize is the longest credential a hello may carry.
	MaxCredentialSize = 8192

	// HelloFlagExtensions, in the hello's flags, says that extensions
	// follow the fixed part.
	HelloFlagExtensions = 0x0001
	// HelloExtCredential is the extension type of Hello.Credential.
	HelloExtCredential = 1
	// helloExtHeader is an extension's type (2) and length (2).
	helloExtHeader = 4
)

// AppendHello appends h as a whole hello frame. A credential goes into an
// extension; one over MaxCredentialSize makes a hello that receivers
// refuse (netconn's Config.Verify prevents that).
func AppendHello(dst []byte, h Hello) []byte {
	n, flags := HelloSize, uint16(0)
	if len(h.Credential) > 0 {
		n += helloExtHeader + len(h.Credential)
		flags |= HelloFlagExtensions
	}
	dst = AppendFrameHeader(dst, FrameHello, n)
	dst = append(dst, Magic...)
	dst = append(dst, h.Version, byte(h.Auth))
	dst = binary.BigEndian.AppendUint16(dst, flags)
	dst = binary.BigEndian.AppendUint32(dst, h.MaxFrameSize)
	if len(h.Credential) > 0 {
		dst = binary.BigEndian.AppendUint16(dst, HelloExtCredential)
		dst = binary.BigEndian.AppendUint16(dst, uint16(len(h.Credential)))
		dst = append(dst, h.Credential...)
	}
	return dst
}

// ParseHello parses a hello body. It checks the magic, the auth mode, the
// frame size range and, when the extensions flag is set, the extensions;
// comparing the version is left to the caller, which can then say which
// versions disagree. Without the extensions flag, bytes after the first
// HelloSize are ignored, as version 1 has always done. The credential is
// copied out of body, after its length has been checked.
func ParseHello(body []byte) (Hello, error) {
	if len(body) < HelloSize {
		return Hello{}, fmt.Errorf("%w: %d bytes, want at least %d", ErrBadHello, len(body), HelloSize)
	}
	if len(body) > MaxHelloSize {
		return Hello{}, fmt.Errorf("%w: %d bytes, limit %d", ErrBadHello, len(body), MaxHelloSize)
	}
	if string(body[:4]) != Magic {
		return Hello{}, fmt.Errorf("%w: magic %q, want %q", ErrBadHello, body[:4], Magic)
	}
	h := Hello{
		Version:      body[4],
		Auth:         AuthMode(body[5]),
		MaxFrameSize: binary.BigEndian.Uint32(body[8:12]),
	}
	if !h.Auth.Valid() && h.Version == Version {
		return h, fmt.Errorf("%w: unknown auth mode %d", ErrBadHello, body[5])
	}
	if h.MaxFrameSize < MinFrameSize || h.MaxFrameSize > MaxFrameSizeLimit {
		return h, fmt.Errorf("%w: max frame size %d outside [%d, %d]", ErrBadHello, h.MaxFrameSize, MinFrameSize, MaxFrameSizeLimit)
	}
	if binary.BigEndian.Uint16(body[6:8])&HelloFlagExtensions == 0 {
		return h, nil
	}
	seen := false
	for ext := body[HelloSize:]; len(ext) > 0; {
		if len(ext) < helloExtHeader {
			return h, fmt.Errorf("%w: %d bytes left, too few for an extension", ErrBadHello, len(ext))
		}
		typ, n := binary.BigEndian.Uint16(ext), int(binary.BigEndian.Uint16(ext[2:]))
		ext = ext[helloExtHeader:]
		if n > len(ext) {
			return h, fmt.Errorf("%w: extension %d of %d bytes, %d left", ErrBadHello, typ, n, len(ext))
		}
		if typ == HelloExtCredential {
			switch {
			case seen:
				return h, fmt.Errorf("%w: two credentials", ErrBadHello)
			case n == 0 || n > MaxCredentialSize:
				return h, fmt.Errorf("%w: credential of %d bytes, want 1 to %d", ErrBadHello, n, MaxCredentialSize)
			}
			seen = true
			h.Credential = append([]byte(nil), ext[:n]...)
		}
		// Unknown extension types are skipped, so later ones can be added
		// without a new version.
		ext = ext[n:]
	}
	return h, nil
}

// PingSize is the length of a ping or pong body.
const PingSize = 8

// AppendPing appends a ping frame carrying data, which the peer echoes.
func AppendPing(dst []byte, data uint64) []byte {
	return binary.BigEndian.AppendUint64(AppendFrameHeader(dst, FramePing, PingSize), data)
}

// AppendPong appends the pong frame answering a ping that carried data.
func AppendPong(dst []byte, data uint64) []byte {
	return binary.BigEndian.AppendUint64(AppendFrameHeader(dst, FramePong, PingSize), data)
}

// ParsePing parses the body of a ping or pong.
func ParsePing(body []byte) (uint64, error) {
	if len(body) != PingSize {
		return 0, fmt.Errorf("%w: ping of %d bytes, want %d", ErrMalformedFrame, len(body), PingSize)
	}
	return binary.BigEndian.Uint64(body), nil
}

// GoAwayCode says why a side closes a connection.
type GoAwayCode uint32

// The go-away codes of version 1. Receivers treat unknown codes as
// GoAwayInternal.
const (
	GoAwayNormal        GoAwayCode = 0 // orderly shutdown
	GoAwayProtocolError GoAwayCode = 1 // malformed or unknown frame
	GoAwayRefused       GoAwayCode = 2 // hello not acceptable (version, auth mode, sizes)
	GoAwayFrameTooLarge GoAwayCode = 3 // a frame over the announced maximum
	GoAwayTooManyBad    GoAwayCode = 4 // too many batches failed authentication
	GoAwayIdleTimeout   GoAwayCode = 5 // nothing received for too long
	GoAwayInternal      GoAwayCode = 6 // local failure
	GoAwayOverLimit     GoAwayCode = 7 // the peer exceeded a bound kept per peer (engines, calls, bytes)
)

var goAwayNames = [...]string{"normal", "protocol error", "refused", "frame too large", "too many bad batches", "idle timeout", "internal error", "over limit"}

func (c GoAwayCode) String() string {
	if int(c) < len(goAwayNames) {
		return goAwayNames[c]
	}
	return fmt.Sprintf("code %d", uint32(c))
}

// MaxGoAwayReason is the longest reason a go-away carries; receivers
// truncate longer ones.
const MaxGoAwayReason = 256

// GoAway is the body of a go-away frame. It is also an error, describing a
// peer's decision to close.
type GoAway struct {
	Code   GoAwayCode
	Reason string // human-readable, UTF-8, at most MaxGoAwayReason bytes
}

func (g GoAway) Error() string {
	if g.Reason == "" {
		return "peer went away: " + g.Code.String()
	}
	return fmt.Sprintf("peer went away: %v: %q", g.Code, g.Reason)
}

// AppendGoAway appends g as a whole go-away frame, truncating its reason to
// MaxGoAwayReason bytes on a rune boundary.
func AppendGoAway(dst []byte, g GoAway) []byte {
	r := safetext.Truncate(g.Reason, MaxGoAwayReason)
	dst = AppendFrameHeader(dst, FrameGoAway, 4+len(r))
	dst = binary.BigEndian.AppendUint32(dst, uint32(g.Code))
	return append(dst, r...)
}

// ParseGoAway parses a go-away body. Invalid UTF-8 in the reason is replaced.
func ParseGoAway(body []byte) (GoAway, error) {
	if len(body) < 4 {
		return GoAway{}, fmt.Errorf("%w: go-away of %d bytes", ErrMalformedFrame, len(body))
	}
	r := body[4:]
	if len(r) > MaxGoAwayReason {
		r = r[:MaxGoAwayReason]
	}
	return GoAway{Code: GoAwayCode(binary.BigEndian.Uint32(body)), Reason: string(safetext.Sanitize(r))}, nil
}
