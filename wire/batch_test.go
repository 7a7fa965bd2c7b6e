package wire_test

import (
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"crypto/hkdf"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"math"
	"testing"

	"github.com/enginekit/enginekit/keyholder"
	"github.com/enginekit/enginekit/wire"
)

func addr(b byte) keyholder.Address {
	var a keyholder.Address
	for i := range a {
		a[i] = b
	}
	return a
}

func sampleEnvelopes() []wire.Envelope {
	return []wire.Envelope{
		{Kind: wire.Call, Flags: 3, Dst: addr(0xd1), Ref: 99, Deadline: 1_700_000_000_000_000_000, Payload: []byte("hello")},
		{Kind: wire.Cast, Dst: addr(0xd2), Payload: nil},
		{Kind: wire.Reply, Dst: addr(0xd1), Ref: math.MaxUint64, Deadline: -1, Payload: bytes.Repeat([]byte{7}, 300)},
	}
}

func TestBatchRoundTrip(t *testing.T) {
	for _, mode := range []wire.AuthMode{wire.AuthSignatures, wire.AuthMACs} {
		t.Run(mode.String(), func(t *testing.T) {
			src := addr(0x5c)
			envs := sampleEnvelopes()
			frame := wire.AppendBatch([]byte("prefix"), src, 1000, envs, mode.TagSize())[len("prefix"):]
			copy(wire.BatchTag(frame, mode.TagSize()), bytes.Repeat([]byte{0xaa}, mode.TagSize()))

			size := wire.BatchOverhead(mode)
			for _, e := range envs {
				size += wire.RecordSize(len(e.Payload))
			}
			if len(frame) != size {
				t.Fatalf("frame of %d bytes, want %d", len(frame), size)
			}
			typ, body := readOne(t, frame)
			if typ != wire.FrameBatch {
				t.Fatal(typ)
			}
			b, err := wire.DecodeBatch(body, mode.TagSize())
			if err != nil {
				t.Fatal(err)
			}
			if b.Src != src || b.Seq != 1000 || b.Count != len(envs) || !bytes.Equal(b.Tag, bytes.Repeat([]byte{0xaa}, mode.TagSize())) {
				t.Fatalf("%+v", b)
			}
			if !bytes.Equal(b.Signed, wire.BatchSigned(frame, mode.TagSize())) {
				t.Fatal("Signed differs from BatchSigned")
			}
			it := b.Envelopes()
			var e wire.Envelope
			for i, want := range envs {
				if !it.Next(&e) {
					t.Fatalf("only %d envelopes", i)
				}
				want.Src, want.Seq = src, 1000+uint64(i)
				if e.Kind != want.Kind || e.Flags != want.Flags || e.Src != want.Src || e.Dst != want.Dst ||
					e.Ref != want.Ref || e.Deadline != want.Deadline || e.Seq != want.Seq || !bytes.Equal(e.Payload, want.Payload) {
					t.Fatalf("envelope %d: %v, want %v", i, &e, &want)
				}
				if cap(e.Payload) != len(e.Payload) {
					t.Fatal("payload capacity reaches past the record")
				}
			}
			if it.Next(&e) {
				t.Fatal("extra envelope")
			}
		})
	}
}

func TestDecodeBatchMalformed(t *testing.T) {
	const tag = wire.MACSize
	good := wire.AppendBatch(nil, addr(1), 5, sampleEnvelopes(), tag)[wire.FrameHeaderSize:]
	if _, err := wire.DecodeBatch(good, tag); err != nil {
		t.Fatal(err)
	}
	mut := func(f func(b []byte) []byte) []byte { return f(append([]byte(nil), good...)) }
	for name, body := range map[string][]byte{
		"empty":          {},
		"short":          good[:wire.BatchHeaderSize+wire.RecordHeaderSize+tag-1],
		"count zero":     mut(func(b []byte) []byte { binary.BigEndian.PutUint32(b[40:], 0); return b }),
		"count high":     mut(func(b []byte) []byte { binary.BigEndian.PutUint32(b[40:], 4); return b }),
		"count huge":     mut(func(b []byte) []byte { binary.BigEndian.PutUint32(b[40:], math.MaxUint32); return b }),
		"count low":      mut(func(b []byte) []byte { binary.BigEndian.PutUint32(b[40:], 2); return b }),
		"seq overflow":   mut(func(b []byte) []byte { binary.BigEndian.PutUint64(b[32:], math.MaxUint64-1); return b }),
		"payload long":   mut(func(b []byte) []byte { binary.BigEndian.PutUint32(b[44+50:], 6); return b }),
		"payload huge":   mut(func(b []byte) []byte { binary.BigEndian.PutUint32(b[44+50:], math.MaxUint32); return b }),
		"truncated":      good[:len(good)-1],
		"trailing bytes": append(append([]byte(nil), good...), 0),
	} {
		if _, err := wire.DecodeBatch(body, tag); !errors.Is(err, wire.ErrMalformedFrame) {
			t.Errorf("%s: %v", name, err)
		}
	}
	// The last seq may be MaxUint64.
	body := mut(func(b []byte) []byte { binary.BigEndian.PutUint64(b[32:], math.MaxUint64-2); return b })
	if _, err := wire.DecodeBatch(body, tag); err != nil {
		t.Fatal(err)
	}
}

func TestUnknownKindDecodes(t *testing.T) {
	envs := []wire.Envelope{{Kind: 200, Dst: addr(2)}, {Kind: wire.Event, Dst: addr(3)}}
	frame := wire.AppendBatch(nil, addr(1), 1, envs, wire.MACSize)
	b, err := wire.DecodeBatch(frame[wire.FrameHeaderSize:], wire.MACSize)
	if err != nil {
		t.Fatal(err)
	}
	it := b.Envelopes()
	var e wire.Envelope
	it.Next(&e)
	if e.Kind.Valid() || e.Kind.String() != "kind(200)" {
		t.Fatal(e.Kind)
	}
	it.Next(&e)
	if !e.Kind.Valid() || e.Kind.String() != "event" {
		t.Fatal(e.Kind)
	}
}

func TestAuthMessage(t *testing.T) {
	sender, receiver := addr(0xa0), addr(0xb0)
	signed := []byte("batch body")
	m := wire.AppendAuthMessage(nil, &sender, &receiver, signed)
	d := sha256.Sum256(signed)
	want := append([]byte("enginekit/wire batch v1\x00\x01"), sender[:]...)
	want = append(append(want, receiver[:]...), d[:]...)
	if !bytes.Equal(m, want) || len(m) != wire.AuthMessageSize {
		t.Fatalf("%x", m)
	}
}

// TestGoldenBatch pins the byte layout, key, nonce and tag given as the
// worked example in spec.md (computed here from the spec's formulas with
// the standard library), so the spec and the code cannot drift apart.
func TestGoldenBatch(t *testing.T) {
	env := []wire.Envelope{{Kind: wire.Cast, Flags: 0, Dst: addr(0x22), Ref: 0, Deadline: 0, Payload: []byte{0x82, 0x63, 'i', 'n', 't', 0x05}}}
	frame := wire.AppendBatch(nil, addr(0x11), 0x0102030405060708, env, wire.MACSize)
	const want = "00000079" + "02" +
		"1111111111111111111111111111111111111111111111111111111111111111" +
		"0102030405060708" + "00000001" +
		"01" + "00" + "2222222222222222222222222222222222222222222222222222222222222222" +
		"0000000000000000" + "0000000000000000" + "00000006" + "8263696e7405" +
		"00000000000000000000000000000000"
	if got := hex.EncodeToString(frame); got != want {
		t.Fatalf("got  %s\nwant %s", got, want)
	}
	sender, receiver, src := addr(0xa0), addr(0xb0), addr(0x11)
	signed := wire.BatchSigned(frame, wire.MACSize)
	key, tag := gmacTag(bytes.Repeat([]byte{0x5c}, 32), sender, receiver, src, 0x0102030405060708, signed)
	const (
		wantKey = "4694aa0e229211843606d8b644e70fdffc9a70a80508ab1039de453daa819bea"
		wantTag = "2539ea0722d436ca8f095351b1bf6379"
	)
	if got := hex.EncodeToString(key); got != wantKey {
		t.Errorf("key %s", got)
	}
	if got := hex.EncodeToString(tag); got != wantTag {
		t.Errorf("tag %s", got)
	}
	// The same body in signature mode: the digest in the authentication
	// message.
	m := wire.AppendAuthMessage(nil, &sender, &receiver, signed)
	const wantDigest = "eec67a7f9e987d15d1f310282577398482847eab604e59d5d2162ec57b1a78c1"
	if got := hex.EncodeToString(m[len(m)-32:]); got != wantDigest {
		t.Fatalf("digest %s", got)
	}
}

// gmacTag computes a MAC-mode tag from spec.md §6 with the standard
// library: the key of src from sender to receiver on a channel with secret,
// and the GMAC of signed with nonce 0x00000000 || seq.
func gmacTag(secret []byte, sender, receiver, src keyholder.Address, seq uint64, signed []byte) (key, tag []byte) {
	prk, err := hkdf.Extract(sha256.New, secret, []byte("enginekit keyholder gmac v1"))
	if err != nil {
		panic(err)
	}
	info := "enginekit keyholder gmac v1 engine key\x00" + string(sender[:]) + string(receiver[:]) + string(src[:])
	if key, err = hkdf.Expand(sha256.New, prk, info, 32); err != nil {
		panic(err)
	}
	block, err := aes.NewCipher(key)
	if err != nil {
		panic(err)
	}
	gcm, err := cipher.NewGCM(block)
	if err != nil {
		panic(err)
	}
	nonce := binary.BigEndian.AppendUint64(make([]byte, 4), seq)
	return key, gcm.Seal(nil, nonce, nil, signed)
}
