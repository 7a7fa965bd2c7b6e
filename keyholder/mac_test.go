package keyholder

import (
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"crypto/hkdf"
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"sync"
	"testing"
)

func newSecret() []byte {
	s := make([]byte, 32)
	rand.Read(s)
	return s
}

// macPeers returns the two ends of one channel between alice and bob.
func macPeers(t testing.TB, alice, bob *Keyholder, secret []byte) (sa, sb *MACSession) {
	t.Helper()
	sa, err := alice.NewMACSession(secret, bob.Router())
	if err != nil {
		t.Fatal(err)
	}
	sb, err = bob.NewMACSession(bytes.Clone(secret), alice.Router())
	if err != nil {
		t.Fatal(err)
	}
	return sa, sb
}

func TestMACSymmetric(t *testing.T) {
	alice, bob := newKH(t), newKH(t)
	sa, sb := macPeers(t, alice, bob, newSecret())
	e := mustEngine(t, alice, "e")
	f := mustEngine(t, alice, "f")
	msg := []byte("a 128-byte-ish message")
	const n = 1234

	for _, signer := range []Address{e, f, alice.Router()} {
		tag, err := sa.MAC(signer, n, nil, msg)
		if err != nil {
			t.Fatal(err)
		}
		if len(tag) != MACSize {
			t.Fatalf("tag is %d bytes", len(tag))
		}
		for range 2 { // cached the second time
			if !sb.Verify(signer, n, msg, tag) {
				t.Fatal("peer rejects a good tag")
			}
		}
		if sb.Verify(signer, n, append(bytes.Clone(msg), '!'), tag) || sb.Verify(signer, n, msg[1:], tag) {
			t.Error("changed message accepted")
		}
		if sb.Verify(signer, n+1, msg, tag) || sb.Verify(signer, n|1<<32, msg, tag) {
			t.Error("tag accepted under another sequence number")
		}
		if sb.Verify(signer, n, msg[:len(msg):len(msg)], tag[:MACSize-1]) || sb.Verify(signer, n, msg, append(bytes.Clone(tag), 0)) || sb.Verify(signer, n, msg, nil) {
			t.Error("tag of wrong length accepted")
		}
		if sb.Verify(mustOther(signer, e, f), n, msg, tag) {
			t.Error("tag accepted for another signer")
		}
	}

	// Another channel: different keys.
	sc, _ := bob.NewMACSession(newSecret(), alice.Router())
	tag, _ := sa.MAC(e, n, nil, msg)
	if sc.Verify(e, n, msg, tag) {
		t.Error("tag accepted on another channel")
	}

	// Only our own signers.
	bobEngine := mustEngine(t, bob, "b")
	for _, a := range []Address{bob.Router(), bobEngine, {}} {
		dst := []byte("keep")
		got, err := sa.MAC(a, n, dst, msg)
		if !errors.Is(err, ErrNotOurs) || string(got) != "keep" {
			t.Errorf("MAC for %v = %q, %v; want ErrNotOurs and dst unchanged", a, got, err)
		}
	}
	// No peer may speak for our engines: reflected tags are refused.
	if sa.Verify(e, n, msg, tag) {
		t.Error("Verify accepts a tag of our own engine")
	}
}

// TestMACTamper flips every bit of message and tag in turn: each flip must
// fail.
func TestMACTamper(t *testing.T) {
	alice, bob := newKH(t), newKH(t)
	sa, sb := macPeers(t, alice, bob, newSecret())
	e := mustEngine(t, alice, "e")
	msg := make([]byte, 200)
	rand.Read(msg)
	tag, _ := sa.MAC(e, 99, nil, msg)
	for i := range 8 * (len(msg) + len(tag)) {
		m, g := bytes.Clone(msg), bytes.Clone(tag)
		if i < 8*len(m) {
			m[i/8] ^= 1 << (i % 8)
		} else {
			j := i - 8*len(m)
			g[j/8] ^= 1 << (j % 8)
		}
		if sb.Verify(e, 99, m, g) {
			t.Fatalf("bit %d flipped, still verifies", i)
		}
	}
	if !sb.Verify(e, 99, msg, tag) {
		t.Fatal("the good tag fails")
	}
}

// TestMACDirection checks that the key depends on the direction: a tag made
// from alice to bob does not verify as a tag from bob to alice, even for a
// signer address both regard as the peer's, and the two ends' keys for one
// direction agree while those of a third node's channel do not.
func TestMACDirection(t *testing.T) {
	alice, bob, carol := newKH(t), newKH(t), newKH(t)
	secret := newSecret()
	sa, sb := macPeers(t, alice, bob, secret)
	e := mustEngine(t, alice, "e")
	msg := []byte("direction")
	tag, _ := sa.MAC(e, 5, nil, msg)
	if !sb.Verify(e, 5, msg, tag) {
		t.Fatal("good tag rejected")
	}
	// The key alice→bob differs from bob→alice for the same signer.
	ab := sa.newState(&sa.out, e)
	ba := sa.newState(&sa.in, e)
	t1 := ab.aead.Seal(nil, ab.setNonce(5), nil, msg)
	t2 := ba.aead.Seal(nil, ba.setNonce(5), nil, msg)
	if !bytes.Equal(t1, tag) || bytes.Equal(t1, t2) {
		t.Fatalf("direction keys: %x %x (tag %x)", t1, t2, tag)
	}
	// Reflection: bob's session with the same secret but alice's own view
	// of the channel rejects what alice sent.
	sa2, _ := alice.NewMACSession(secret, bob.Router())
	if sa2.Verify(e, 5, msg, tag) {
		t.Error("own tag accepted back")
	}
	// A tag made for bob does not verify at carol, even with the same
	// channel secret (carol names alice as her peer).
	sc, _ := carol.NewMACSession(secret, alice.Router())
	if sc.Verify(e, 5, msg, tag) {
		t.Error("tag for bob accepted by carol")
	}
	// The other direction: bob's engine to alice.
	f := mustEngine(t, bob, "f")
	tb, _ := sb.MAC(f, 5, nil, msg)
	if !sa.Verify(f, 5, msg, tb) {
		t.Fatal("good tag from bob rejected")
	}
}

func mustOther(a, e, f Address) Address {
	if a == e {
		return f
	}
	return e
}

func TestMACAppends(t *testing.T) {
	k := newKH(t)
	s, _ := k.NewMACSession(newSecret(), newKH(t).Router())
	dst := make([]byte, 3, 64)
	copy(dst, "hdr")
	out, err := s.MAC(k.Router(), 1, dst, []byte("m"))
	if err != nil {
		t.Fatal(err)
	}
	if len(out) != 3+MACSize || string(out[:3]) != "hdr" || &out[0] != &dst[0] {
		t.Errorf("MAC did not append in place: %q", out)
	}
	// In place after the message, as a connection tags a frame.
	frame := make([]byte, 100+MACSize)
	copy(frame, "body")
	slot := frame[100 : 100+MACSize : 100+MACSize]
	got, _ := s.MAC(k.Router(), 1, slot[:0], frame[:100])
	want, _ := s.MAC(k.Router(), 1, nil, bytes.Clone(frame[:100]))
	if &got[0] != &slot[0] || !bytes.Equal(slot, want) {
		t.Errorf("in-place tag %x, want %x", slot, want)
	}
}

// TestMACKnownAnswer pins the key derivation and tag documented on
// MACSession with the standard library's HKDF and AES-GCM, so a second
// implementation can be checked against it.
func TestMACKnownAnswer(t *testing.T) {
	k := newKH(t)
	peer := newKH(t).Router()
	e := mustEngine(t, k, "e")
	secret := bytes.Repeat([]byte{7}, 48)
	s, _ := k.NewMACSession(secret, peer)
	msg := []byte("known answer")
	const n = 0x0102030405060708
	got, err := s.MAC(e, n, nil, msg)
	if err != nil {
		t.Fatal(err)
	}
	us := k.Router()
	prk, _ := hkdf.Extract(sha256.New, secret, []byte("enginekit keyholder gmac v1"))
	key, _ := hkdf.Expand(sha256.New, prk, "enginekit keyholder gmac v1 engine key\x00"+string(us[:])+string(peer[:])+string(e[:]), 32)
	block, _ := aes.NewCipher(key)
	gcm, _ := cipher.NewGCM(block)
	nonce := binary.BigEndian.AppendUint64(make([]byte, 4), n)
	if want := gcm.Seal(nil, nonce, nil, msg); !bytes.Equal(got, want) {
		t.Fatalf("MAC = %x, want %x", got, want)
	}
}

func TestMACShortSecret(t *testing.T) {
	k := newKH(t)
	for _, n := range []int{0, 16, MinChannelSecret - 1} {
		if _, err := k.NewMACSession(make([]byte, n), Address{1}); !errors.Is(err, ErrBadChannelSecret) {
			t.Errorf("%d byte secret: %v", n, err)
		}
	}
}

func TestMACAfterRemoveAndClose(t *testing.T) {
	k := newKH(t)
	e := mustEngine(t, k, "e")
	f := mustEngine(t, k, "f")
	s, _ := k.NewMACSession(newSecret(), Address{1})
	for i, a := range []Address{e, f, k.Router()} {
		if _, err := s.MAC(a, uint64(i), nil, []byte("m")); err != nil {
			t.Fatal(err)
		}
	}
	k.RemoveEngine("e")
	if _, err := s.MAC(e, 10, nil, []byte("m")); !errors.Is(err, ErrNotOurs) {
		t.Errorf("MAC for removed engine: %v", err)
	}
	if _, err := s.MAC(f, 11, nil, []byte("m")); err != nil {
		t.Errorf("MAC for remaining engine: %v", err)
	}
	k.Close()
	for _, a := range []Address{f, k.Router()} {
		if _, err := s.MAC(a, 12, nil, []byte("m")); !errors.Is(err, ErrClosed) {
			t.Errorf("MAC after Close: %v", err)
		}
	}
}

func TestMACPeerCacheBounded(t *testing.T) {
	alice, bob := newKH(t), newKH(t)
	sa, sb := macPeers(t, alice, bob, newSecret())
	msg := []byte("m")
	for i := range maxPeerKeys + 10 {
		var a Address
		copy(a[:], fmt.Sprint(i))
		if sb.Verify(a, 1, msg, make([]byte, MACSize)) {
			t.Fatal("zero tag accepted")
		}
	}
	sb.peer.mu.RLock()
	n := len(sb.peer.m)
	sb.peer.mu.RUnlock()
	if n > maxPeerKeys {
		t.Fatalf("peer cache grew to %d", n)
	}
	// Beyond the cache, verification still works.
	e := mustEngine(t, alice, "e")
	tag, _ := sa.MAC(e, 1, nil, msg)
	for range 2 {
		if !sb.Verify(e, 1, msg, tag) {
			t.Fatal("uncached signer rejected")
		}
	}
	sb.Forget(e)
	if !sb.Verify(e, 1, msg, tag) {
		t.Fatal("signer rejected after Forget")
	}
}

func TestMACNoAllocs(t *testing.T) {
	alice, bob := newKH(t), newKH(t)
	sa, sb := macPeers(t, alice, bob, newSecret())
	e := mustEngine(t, alice, "e")
	msg := make([]byte, 128)
	dst := make([]byte, 0, MACSize)
	tag, _ := sa.MAC(e, 1, nil, msg)
	sb.Verify(e, 1, msg, tag)
	var n uint64
	if a := testing.AllocsPerRun(100, func() { n++; sa.MAC(e, n, dst[:0], msg) }); a != 0 {
		t.Errorf("MAC allocates %v times", a)
	}
	if a := testing.AllocsPerRun(100, func() { sb.Verify(e, 1, msg, tag) }); a != 0 {
		t.Errorf("Verify allocates %v times", a)
	}
	bad := make([]byte, MACSize)
	if a := testing.AllocsPerRun(100, func() { sb.Verify(e, 1, msg, bad) }); a != 0 {
		t.Errorf("failing Verify allocates %v times", a)
	}
}

// TestMACConcurrent has a writer and a reader per direction share sessions,
// as a connection's goroutines do; it is for the race detector.
func TestMACConcurrent(t *testing.T) {
	alice, bob := newKH(t), newKH(t)
	sa, sb := macPeers(t, alice, bob, newSecret())
	ae := []Address{mustEngine(t, alice, "a1"), mustEngine(t, alice, "a2"), alice.Router()}
	be := []Address{mustEngine(t, bob, "b1"), mustEngine(t, bob, "b2"), bob.Router()}
	type frame struct {
		src      Address
		n        uint64
		msg, tag []byte
	}
	run := func(wg *sync.WaitGroup, from *MACSession, srcs []Address, to *MACSession, ch chan frame) {
		wg.Go(func() {
			defer close(ch)
			for i := range 300 {
				src := srcs[i%len(srcs)]
				msg := []byte(fmt.Sprint("msg ", i))
				tag, err := from.MAC(src, uint64(i), nil, msg)
				if err != nil {
					t.Error(err)
					return
				}
				ch <- frame{src, uint64(i), msg, tag}
			}
		})
		wg.Go(func() {
			for f := range ch {
				if !to.Verify(f.src, f.n, f.msg, f.tag) {
					t.Error("good frame rejected")
				}
			}
		})
	}
	var wg sync.WaitGroup
	run(&wg, sa, ae, sb, make(chan frame, 8))
	run(&wg, sb, be, sa, make(chan frame, 8))
	wg.Wait()
}
