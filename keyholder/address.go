package keyholder

import (
	"crypto/ed25519"
	"encoding/base32"
	"fmt"
)

// Address is the identity of an engine or of a node's router: its ed25519
// public key. The zero Address is no one's address.
//
// Addresses are comparable and can be used as map keys. Their text form
// (String, MarshalText) is AddressPrefix followed by the 32 bytes in lowercase
// base32 (RFC 4648 alphabet, no padding): 3 + 52 = 55 characters, for example
//
//	ek1ox6mqqu6y2bsubht6anyurqcdbr2hefsrbzoejm65hpdqndiszga
//
// The form is canonical: every Address has exactly one text form, and
// ParseAddress accepts nothing else (no upper case, no padding, no spaces,
// the unused low bits of the last character must be zero), so text forms can
// be compared as strings. There is no checksum: a mistyped address parses as
// some other address, which no peer will be able to prove it owns.
// wire/spec.md, "Addresses", specifies the form for other implementations;
// wire/testdata/addresses.txt has valid forms and forms to refuse.
type Address [32]byte

// AddressPrefix starts the text form of every Address. It names the format
// ("ek" for enginekit, "1" for version one), so a future form can be told apart.
const AddressPrefix = "ek1"

// addressTextLen is the length of an Address's text form.
const addressTextLen = len(AddressPrefix) + 52

var addressEncoding = base32.NewEncoding("abcdefghijklmnopqrstuvwxyz234567").WithPadding(base32.NoPadding)

// String returns the canonical text form of a (see Address).
func (a Address) String() string {
	var buf [addressTextLen]byte
	copy(buf[:], AddressPrefix)
	addressEncoding.Encode(buf[len(AddressPrefix):], a[:])
	return string(buf[:])
}

// ParseAddress parses the text form produced by Address.String. Anything
// else fails with an error wrapping ErrBadAddress that says what is wrong.
func ParseAddress(s string) (Address, error) {
	var a Address
	if len(s) < len(AddressPrefix) || s[:len(AddressPrefix)] != AddressPrefix {
		return a, fmt.Errorf("%w: %s does not start with %q", ErrBadAddress, quoteShort(s), AddressPrefix)
	}
	if len(s) != addressTextLen {
		return a, fmt.Errorf("%w: %s has %d characters, want %d", ErrBadAddress, quoteShort(s), len(s), addressTextLen)
	}
	body := s[len(AddressPrefix):]
	// Check the alphabet ourselves: the base32 decoder silently skips
	// newlines, and its errors speak of offsets in the body only.
	for i := 0; i < len(body); i++ {
		c := body[i]
		if !('a' <= c && c <= 'z' || '2' <= c && c <= '7') {
			return a, fmt.Errorf("%w: %s has %q at offset %d; want a-z or 2-7", ErrBadAddress, quoteShort(s), c, len(AddressPrefix)+i)
		}
	}
	// 52 characters carry 260 bits; the last character has 1 bit of the
	// address and 4 padding bits, which must be zero for the form to be
	// canonical: it is 'a' or 'q'.
	if last := body[len(body)-1]; last != 'a' && last != 'q' {
		return a, fmt.Errorf("%w: %s is not canonical: its last character must be 'a' or 'q'", ErrBadAddress, quoteShort(s))
	}
	var buf [52]byte
	copy(buf[:], body)
	if n, err := addressEncoding.Decode(a[:], buf[:]); err != nil || n != len(a) {
		return Address{}, fmt.Errorf("%w: %s: %v", ErrBadAddress, quoteShort(s), err)
	}
	return a, nil
}

// quoteShort quotes s for an error message, eliding the middle of long input
// so a hostile string cannot blow up logs.
func quoteShort(s string) string {
	const max = 80
	if len(s) > max {
		return fmt.Sprintf("%q…(%d bytes)", s[:max], len(s))
	}
	return fmt.Sprintf("%q", s)
}

// MarshalText implements encoding.TextMarshaler with the String form.
func (a Address) MarshalText() ([]byte, error) {
	return []byte(a.String()), nil
}

// UnmarshalText implements encoding.TextUnmarshaler with ParseAddress. On
// error a is left unchanged.
func (a *Address) UnmarshalText(text []byte) error {
	p, err := ParseAddress(string(text))
	if err != nil {
		return err
	}
	*a = p
	return nil
}

// IsZero reports whether a is the zero Address.
func (a Address) IsZero() bool {
	return a == Address{}
}

// PublicKey returns a as an ed25519 public key (a fresh copy).
func (a Address) PublicKey() ed25519.PublicKey {
	return append(ed25519.PublicKey(nil), a[:]...)
}

// Verify reports whether sig is signer's ed25519 signature of msg, as made by
// Keyholder.Sign. It returns false, never panics, for a malformed signature
// or an address that is not a valid public key.
func Verify(signer Address, msg, sig []byte) bool {
	return len(sig) == ed25519.SignatureSize && ed25519.Verify(signer[:], msg, sig)
}
