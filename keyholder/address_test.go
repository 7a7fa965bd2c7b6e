package keyholder

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"
)

func TestAddressRoundTrip(t *testing.T) {
	var ff Address
	for i := range ff {
		ff[i] = 0xff
	}
	addrs := []Address{{}, ff, newKH(t).Router()}
	for range 100 {
		addrs = append(addrs, randAddress(t))
	}
	for _, a := range addrs {
		s := a.String()
		if len(s) != 55 || !strings.HasPrefix(s, AddressPrefix) {
			t.Fatalf("String() = %q: want %q and 52 characters", s, AddressPrefix)
		}
		if strings.ToLower(s) != s {
			t.Fatalf("String() = %q is not lower case", s)
		}
		b, err := ParseAddress(s)
		if err != nil {
			t.Fatalf("ParseAddress(%q): %v", s, err)
		}
		if b != a {
			t.Fatalf("ParseAddress(%q) = %x, want %x", s, b, a)
		}
	}
	if got := (Address{}).String(); got != "ek1"+strings.Repeat("a", 52) {
		t.Errorf("zero address = %q", got)
	}
}

func TestAddressTextAndJSON(t *testing.T) {
	a, b := randAddress(t), randAddress(t)
	type doc struct {
		Dst   Address
		Peers map[Address]string
	}
	in := doc{Dst: a, Peers: map[Address]string{b: "bob"}}
	js, err := json.Marshal(in)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(js), a.String()) || !strings.Contains(string(js), b.String()) {
		t.Fatalf("JSON %s does not use the text form", js)
	}
	var out doc
	if err := json.Unmarshal(js, &out); err != nil {
		t.Fatal(err)
	}
	if out.Dst != a || out.Peers[b] != "bob" {
		t.Fatalf("round trip: got %+v", out)
	}
	if err := json.Unmarshal([]byte(`{"Dst":"ek1zz"}`), &out); !errors.Is(err, ErrBadAddress) {
		t.Fatalf("bad JSON address: err = %v", err)
	}
}

func TestParseAddressBad(t *testing.T) {
	good := randAddress(t).String()
	body := good[3:]
	// The last character carries one bit and four zero padding bits.
	nonCanonical := good[:54] + map[byte]string{'a': "b", 'q': "r"}[good[54]]
	tests := []struct {
		name, in string
	}{
		{"empty", ""},
		{"prefix only", "ek1"},
		{"no prefix", body},
		{"wrong prefix", "ek2" + body},
		{"upper case prefix", "EK1" + body},
		{"upper case body", "ek1" + strings.ToUpper(body)},
		{"one short", good[:54]},
		{"one long", good + "a"},
		{"padding", good + "===="},
		{"digit 1", good[:10] + "1" + good[11:]},
		{"digit 0", good[:10] + "0" + good[11:]},
		{"digit 8", good[:10] + "8" + good[11:]},
		{"space", good[:10] + " " + good[11:]},
		{"newline inside", good[:10] + "\n" + good[11:]},
		{"trailing newline", good[:54] + "\n"},
		{"non-canonical last char", nonCanonical},
		{"non-ASCII", good[:52] + "é"},
		{"hex", "ek1" + strings.Repeat("0f", 26)[:52]},
		{"huge", "ek1" + strings.Repeat("a", 1<<20)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a, err := ParseAddress(tt.in)
			if !errors.Is(err, ErrBadAddress) {
				t.Fatalf("ParseAddress(%q) = %v, %v; want ErrBadAddress", tt.in, a, err)
			}
			if !a.IsZero() {
				t.Errorf("ParseAddress returned %v with its error", a)
			}
			if len(err.Error()) > 300 {
				t.Errorf("error message is %d bytes long", len(err.Error()))
			}
			keep := randAddress(t)
			b := keep
			if err := b.UnmarshalText([]byte(tt.in)); !errors.Is(err, ErrBadAddress) || b != keep {
				t.Errorf("UnmarshalText: err = %v, address changed: %v", err, b != keep)
			}
		})
	}
}

func TestAddressIsZero(t *testing.T) {
	if !(Address{}).IsZero() {
		t.Error("zero address: IsZero false")
	}
	if newKH(t).Router().IsZero() {
		t.Error("router address: IsZero true")
	}
}

func TestVerifyMalformed(t *testing.T) {
	k := newKH(t)
	msg := []byte("hello")
	sig, err := k.Sign(k.Router(), msg)
	if err != nil {
		t.Fatal(err)
	}
	for _, bad := range [][]byte{nil, {}, sig[:63], append(sig[:64:64], 0), make([]byte, 64)} {
		if Verify(k.Router(), msg, bad) {
			t.Errorf("Verify accepted a %d byte bad signature", len(bad))
		}
	}
	// Not every 32-byte string is a valid public key; Verify must just say no.
	var notAPoint Address
	for i := range notAPoint {
		notAPoint[i] = 0xff
	}
	if Verify(notAPoint, msg, sig) || Verify(Address{}, msg, sig) {
		t.Error("Verify accepted a signature under an invalid key")
	}
}
