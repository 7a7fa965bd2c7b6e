package keyholder

import (
	"bytes"
	"crypto/hkdf"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
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

func TestMACSymmetric(t *testing.T) {
	alice, bob := newKH(t), newKH(t)
	secret := newSecret()
	sa, err := alice.NewMACSession(secret)
	if err != nil {
		t.Fatal(err)
	}
	sb, err := bob.NewMACSession(bytes.Clone(secret))
	if err != nil {
		t.Fatal(err)
	}
	e := mustEngine(t, alice, "e")
	f := mustEngine(t, alice, "f")
	msg := []byte("a 128-byte-ish message")

	for _, signer := range []Address{e, f, alice.Router()} {
		tag, err := sa.MAC(signer, nil, msg)
		if err != nil {
			t.Fatal(err)
		}
		if len(tag) != MACSize {
			t.Fatalf("tag is %d bytes", len(tag))
		}
		for range 2 { // cached the second time
			if !sb.Verify(signer, msg, tag) {
				t.Fatal("peer rejects a good tag")
			}
		}
		if sb.Verify(signer, append(bytes.Clone(msg), '!'), tag) {
			t.Error("changed message accepted")
		}
		bad := bytes.Clone(tag)
		bad[MACSize-1] ^= 1
		if sb.Verify(signer, msg, bad) {
			t.Error("changed tag accepted")
		}
		if sb.Verify(signer, msg, tag[:MACSize-1]) || sb.Verify(signer, msg, append(bytes.Clone(tag), 0)) || sb.Verify(signer, msg, nil) {
			t.Error("tag of wrong length accepted")
		}
		if sb.Verify(mustOther(signer, e, f), msg, tag) {
			t.Error("tag accepted for another signer")
		}
	}

	// Another channel: different keys.
	sc, _ := bob.NewMACSession(newSecret())
	tag, _ := sa.MAC(e, nil, msg)
	if sc.Verify(e, msg, tag) {
		t.Error("tag accepted on another channel")
	}

	// Only our own signers.
	bobEngine := mustEngine(t, bob, "b")
	for _, a := range []Address{bob.Router(), bobEngine, {}} {
		dst := []byte("keep")
		got, err := sa.MAC(a, dst, msg)
		if !errors.Is(err, ErrNotOurs) || string(got) != "keep" {
			t.Errorf("MAC for %v = %q, %v; want ErrNotOurs and dst unchanged", a, got, err)
		}
	}
	// No peer may speak for our engines: reflected tags are refused.
	if sa.Verify(e, msg, tag) {
		t.Error("Verify accepts a tag of our own engine")
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
	s, _ := k.NewMACSession(newSecret())
	dst := make([]byte, 3, 64)
	copy(dst, "hdr")
	out, err := s.MAC(k.Router(), dst, []byte("m"))
	if err != nil {
		t.Fatal(err)
	}
	if len(out) != 3+MACSize || string(out[:3]) != "hdr" || &out[0] != &dst[0] {
		t.Errorf("MAC did not append in place: %q", out)
	}
}

// TestMACKnownAnswer pins the key derivation documented on MACSession, so a
// second implementation can be checked against it.
func TestMACKnownAnswer(t *testing.T) {
	k := newKH(t)
	e := mustEngine(t, k, "e")
	secret := bytes.Repeat([]byte{7}, 48)
	s, _ := k.NewMACSession(secret)
	msg := []byte("known answer")
	got, err := s.MAC(e, nil, msg)
	if err != nil {
		t.Fatal(err)
	}
	prk, _ := hkdf.Extract(sha256.New, secret, []byte("enginekit keyholder mac v1"))
	key, _ := hkdf.Expand(sha256.New, prk, "enginekit keyholder mac v1 engine key\x00"+string(e[:]), 32)
	h := hmac.New(sha256.New, key)
	h.Write(msg)
	if want := h.Sum(nil); !bytes.Equal(got, want) {
		t.Fatalf("MAC = %x, want %x", got, want)
	}
}

func TestMACShortSecret(t *testing.T) {
	k := newKH(t)
	for _, n := range []int{0, 16, MinChannelSecret - 1} {
		if _, err := k.NewMACSession(make([]byte, n)); !errors.Is(err, ErrBadChannelSecret) {
			t.Errorf("%d byte secret: %v", n, err)
		}
	}
}

func TestMACAfterRemoveAndClose(t *testing.T) {
	k := newKH(t)
	e := mustEngine(t, k, "e")
	f := mustEngine(t, k, "f")
	s, _ := k.NewMACSession(newSecret())
	for _, a := range []Address{e, f, k.Router()} {
		if _, err := s.MAC(a, nil, []byte("m")); err != nil {
			t.Fatal(err)
		}
	}
	k.RemoveEngine("e")
	if _, err := s.MAC(e, nil, []byte("m")); !errors.Is(err, ErrNotOurs) {
		t.Errorf("MAC for removed engine: %v", err)
	}
	if _, err := s.MAC(f, nil, []byte("m")); err != nil {
		t.Errorf("MAC for remaining engine: %v", err)
	}
	k.Close()
	for _, a := range []Address{f, k.Router()} {
		if _, err := s.MAC(a, nil, []byte("m")); !errors.Is(err, ErrClosed) {
			t.Errorf("MAC after Close: %v", err)
		}
	}
}

func TestMACPeerCacheBounded(t *testing.T) {
	alice, bob := newKH(t), newKH(t)
	secret := newSecret()
	sa, _ := alice.NewMACSession(secret)
	sb, _ := bob.NewMACSession(secret)
	msg := []byte("m")
	for i := range maxPeerKeys + 10 {
		var a Address
		copy(a[:], fmt.Sprint(i))
		if sb.Verify(a, msg, make([]byte, MACSize)) {
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
	tag, _ := sa.MAC(e, nil, msg)
	for range 2 {
		if !sb.Verify(e, msg, tag) {
			t.Fatal("uncached signer rejected")
		}
	}
	sb.Forget(e)
	if !sb.Verify(e, msg, tag) {
		t.Fatal("signer rejected after Forget")
	}
}

func TestMACNoAllocs(t *testing.T) {
	alice, bob := newKH(t), newKH(t)
	secret := newSecret()
	sa, _ := alice.NewMACSession(secret)
	sb, _ := bob.NewMACSession(secret)
	e := mustEngine(t, alice, "e")
	msg := make([]byte, 128)
	dst := make([]byte, 0, MACSize)
	tag, _ := sa.MAC(e, nil, msg)
	sb.Verify(e, msg, tag)
	if n := testing.AllocsPerRun(100, func() { sa.MAC(e, dst[:0], msg) }); n != 0 {
		t.Errorf("MAC allocates %v times", n)
	}
	if n := testing.AllocsPerRun(100, func() { sb.Verify(e, msg, tag) }); n != 0 {
		t.Errorf("Verify allocates %v times", n)
	}
}

// TestMACConcurrent has a writer and a reader per direction share sessions,
// as a connection's goroutines do; it is for the race detector.
func TestMACConcurrent(t *testing.T) {
	alice, bob := newKH(t), newKH(t)
	secret := newSecret()
	sa, _ := alice.NewMACSession(secret)
	sb, _ := bob.NewMACSession(secret)
	ae := []Address{mustEngine(t, alice, "a1"), mustEngine(t, alice, "a2"), alice.Router()}
	be := []Address{mustEngine(t, bob, "b1"), mustEngine(t, bob, "b2"), bob.Router()}
	type frame struct {
		src      Address
		msg, tag []byte
	}
	run := func(wg *sync.WaitGroup, from *MACSession, srcs []Address, to *MACSession, ch chan frame) {
		wg.Go(func() {
			defer close(ch)
			for i := range 300 {
				src := srcs[i%len(srcs)]
				msg := []byte(fmt.Sprint("msg ", i))
				tag, err := from.MAC(src, nil, msg)
				if err != nil {
					t.Error(err)
					return
				}
				ch <- frame{src, msg, tag}
			}
		})
		wg.Go(func() {
			for f := range ch {
				if !to.Verify(f.src, f.msg, f.tag) {
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
