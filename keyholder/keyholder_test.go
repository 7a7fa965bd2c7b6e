package keyholder

import (
	"bytes"
	"crypto/ed25519"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"testing"
)

func TestNewDefaults(t *testing.T) {
	k := newKH(t)
	if k.Router().IsZero() {
		t.Fatal("router address is zero")
	}
	if !k.Owns(k.Router()) {
		t.Error("keyholder does not own its router")
	}
	if n := len(k.Engines()); n != 0 {
		t.Errorf("new keyholder has %d engines", n)
	}
	if k2 := newKH(t); k2.Router() == k.Router() {
		t.Error("two keyholders have the same router key")
	}
}

func TestDeterministicRand(t *testing.T) {
	mk := func() *Keyholder {
		k, err := New(Config{Rand: rand.NewChaCha8([32]byte{1})})
		if err != nil {
			t.Fatal(err)
		}
		return k
	}
	a, b := mk(), mk()
	if a.Router() != b.Router() {
		t.Fatal("same Rand, different routers")
	}
	if mustEngine(t, a, "x") != mustEngine(t, b, "x") {
		t.Fatal("same Rand, different engines")
	}
}

func TestRandFailure(t *testing.T) {
	if _, err := New(Config{Rand: strings.NewReader("short")}); !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Fatalf("New with a failing Rand: %v", err)
	}
	k, err := New(Config{Rand: io.MultiReader(bytes.NewReader(make([]byte, 32)), strings.NewReader(""))})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := k.NewEngine("x"); err == nil {
		t.Fatal("NewEngine with an exhausted Rand succeeded")
	}
	if _, ok := k.Engine("x"); ok {
		t.Fatal("failed NewEngine left an engine behind")
	}
}

func TestEngines(t *testing.T) {
	k := newKH(t)
	names := []string{"counter", "alpha", "zeta", "ünïcode", strings.Repeat("n", MaxNameLen)}
	addrs := map[string]Address{}
	for _, n := range names {
		addrs[n] = mustEngine(t, k, n)
	}
	if _, err := k.NewEngine("counter"); !errors.Is(err, ErrDuplicateEngine) {
		t.Errorf("duplicate name: %v", err)
	}
	for _, n := range names {
		a, ok := k.Engine(n)
		if !ok || a != addrs[n] {
			t.Errorf("Engine(%q) = %v, %v", n, a, ok)
		}
		if got, ok := k.EngineName(a); !ok || got != n {
			t.Errorf("EngineName(%v) = %q, %v", a, got, ok)
		}
		if !k.Owns(a) {
			t.Errorf("Owns(%q) false", n)
		}
	}
	if _, ok := k.Engine("nobody"); ok {
		t.Error("Engine(nobody) found")
	}
	if _, ok := k.EngineName(k.Router()); ok {
		t.Error("the router has an engine name")
	}
	if k.Owns(randAddress(t)) {
		t.Error("Owns a random address")
	}

	es := k.Engines()
	if len(es) != len(names) {
		t.Fatalf("Engines() has %d, want %d", len(es), len(names))
	}
	if !slices.IsSortedFunc(es, func(a, b Engine) int { return strings.Compare(a.Name, b.Name) }) {
		t.Errorf("Engines() not sorted: %v", es)
	}
	for _, e := range es {
		if addrs[e.Name] != e.Address {
			t.Errorf("Engines() has %v", e)
		}
	}

	// EnsureEngine: stable for existing names, creates new ones.
	if a, err := k.EnsureEngine("alpha"); err != nil || a != addrs["alpha"] {
		t.Errorf("EnsureEngine(alpha) = %v, %v", a, err)
	}
	b, err := k.EnsureEngine("beta")
	if err != nil {
		t.Fatal(err)
	}
	if b2, _ := k.EnsureEngine("beta"); b2 != b {
		t.Error("EnsureEngine(beta) not stable")
	}

	// RemoveEngine: gone, not ours, name reusable with a new key.
	if err := k.RemoveEngine("alpha"); err != nil {
		t.Fatal(err)
	}
	if k.Owns(addrs["alpha"]) {
		t.Error("removed engine still owned")
	}
	if _, err := k.Sign(addrs["alpha"], []byte("m")); !errors.Is(err, ErrNotOurs) {
		t.Errorf("Sign by removed engine: %v", err)
	}
	if err := k.RemoveEngine("alpha"); !errors.Is(err, ErrNoEngine) {
		t.Errorf("second RemoveEngine: %v", err)
	}
	if a, _ := k.EnsureEngine("alpha"); a == addrs["alpha"] {
		t.Error("recreated engine reuses the old key")
	}
}

func TestBadNames(t *testing.T) {
	k := newKH(t)
	for _, name := range []string{"", strings.Repeat("n", MaxNameLen+1), "bad\xffutf8", "new\nline", "nul\x00", "tab\t", "del\x7f"} {
		if _, err := k.NewEngine(name); !errors.Is(err, ErrBadName) {
			t.Errorf("NewEngine(%q): %v", name, err)
		}
		if _, err := k.EnsureEngine(name); !errors.Is(err, ErrBadName) {
			t.Errorf("EnsureEngine(%q): %v", name, err)
		}
	}
	if n := len(k.Engines()); n != 0 {
		t.Errorf("bad names left %d engines", n)
	}
}

func TestSignVerify(t *testing.T) {
	k := newKH(t)
	e := mustEngine(t, k, "e")
	other := newKH(t)
	msg := []byte("\x01envelope{src,dst,payload}")
	for _, signer := range []Address{k.Router(), e} {
		sig, err := k.Sign(signer, msg)
		if err != nil {
			t.Fatal(err)
		}
		if len(sig) != ed25519.SignatureSize {
			t.Fatalf("signature is %d bytes", len(sig))
		}
		if !Verify(signer, msg, sig) {
			t.Fatal("Verify rejects a good signature")
		}
		if !ed25519.Verify(signer.PublicKey(), msg, sig) {
			t.Fatal("not a standard ed25519 signature")
		}
		if Verify(signer, append(slices.Clone(msg), 0), sig) {
			t.Error("Verify accepts a changed message")
		}
		if Verify(other.Router(), msg, sig) {
			t.Error("Verify accepts another signer")
		}
		sig[5] ^= 1
		if Verify(signer, msg, sig) {
			t.Error("Verify accepts a changed signature")
		}
	}
	if _, err := k.Sign(other.Router(), msg); !errors.Is(err, ErrNotOurs) {
		t.Errorf("Sign for someone else: %v", err)
	}
	if _, err := k.Sign(Address{}, msg); !errors.Is(err, ErrNotOurs) {
		t.Errorf("Sign for zero address: %v", err)
	}
}

func TestSignReservedPrefixes(t *testing.T) {
	k := newKH(t)
	e := mustEngine(t, k, "e")
	for _, msg := range [][]byte{
		proofMessage(k.Router(), e),
		[]byte("enginekit keyholder anything"),
		append(bytes.Repeat([]byte(" "), 64), "TLS 1.3, server CertificateVerify\x00"...),
	} {
		for _, signer := range []Address{k.Router(), e} {
			if sig, err := k.Sign(signer, msg); !errors.Is(err, ErrReservedMessage) {
				t.Errorf("Sign(%q) = %x, %v; want ErrReservedMessage", msg, sig, err)
			}
		}
	}
	// Near misses are fine.
	for _, msg := range [][]byte{nil, []byte("enginekit keyholder"), bytes.Repeat([]byte(" "), 63)} {
		if _, err := k.Sign(e, msg); err != nil {
			t.Errorf("Sign(%q): %v", msg, err)
		}
	}
}

func TestEngineProof(t *testing.T) {
	k := newKH(t)
	e := mustEngine(t, k, "e")
	other := newKH(t)
	oe := mustEngine(t, other, "e")

	proof, err := k.EngineProof(e)
	if err != nil {
		t.Fatal(err)
	}
	if !VerifyEngineProof(k.Router(), e, proof) {
		t.Fatal("good proof rejected")
	}
	// The proof binds both the engine and the router.
	if VerifyEngineProof(other.Router(), e, proof) {
		t.Error("proof accepted for another router")
	}
	if VerifyEngineProof(k.Router(), oe, proof) {
		t.Error("proof accepted for another engine")
	}
	if VerifyEngineProof(k.Router(), e, proof[:63]) || VerifyEngineProof(k.Router(), e, nil) {
		t.Error("truncated proof accepted")
	}
	// A signature by the engine on something else is not a proof.
	sig, _ := k.Sign(e, append(k.Router().PublicKey(), e[:]...))
	if VerifyEngineProof(k.Router(), e, sig) {
		t.Error("plain signature accepted as a proof")
	}
	// Only local engines have proofs; the router is not an engine.
	for _, a := range []Address{k.Router(), oe, {}} {
		if _, err := k.EngineProof(a); !errors.Is(err, ErrNotOurs) {
			t.Errorf("EngineProof(%v): %v", a, err)
		}
	}
}

func TestClose(t *testing.T) {
	k := newKH(t)
	e := mustEngine(t, k, "e")
	router := k.Router()
	if err := k.Close(); err != nil {
		t.Fatal(err)
	}
	if err := k.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	if k.Router() != router {
		t.Error("router address changed on Close")
	}
	for _, a := range []Address{router, e} {
		if k.Owns(a) {
			t.Errorf("Owns(%v) after Close", a)
		}
		if _, err := k.Sign(a, []byte("m")); !errors.Is(err, ErrClosed) {
			t.Errorf("Sign after Close: %v", err)
		}
	}
	if _, err := k.EngineProof(e); !errors.Is(err, ErrClosed) {
		t.Errorf("EngineProof after Close: %v", err)
	}
	if _, err := k.NewEngine("f"); !errors.Is(err, ErrClosed) {
		t.Errorf("NewEngine after Close: %v", err)
	}
	if _, err := k.EnsureEngine("f"); !errors.Is(err, ErrClosed) {
		t.Errorf("EnsureEngine after Close: %v", err)
	}
	if err := k.RemoveEngine("e"); !errors.Is(err, ErrClosed) {
		t.Errorf("RemoveEngine after Close: %v", err)
	}
	if n := len(k.Engines()); n != 0 {
		t.Errorf("%d engines after Close", n)
	}
	if err := k.SaveWith(t.TempDir()+"/keys", []byte("pw"), SaveOptions{KDF: fastKDF}); !errors.Is(err, ErrClosed) {
		t.Errorf("Save after Close: %v", err)
	}
}

func TestNoKeyMaterialInStrings(t *testing.T) {
	k := newKH(t)
	cert, err := k.TLSCertificate()
	if err != nil {
		t.Fatal(err)
	}
	seed := k.router.priv.Seed()
	for _, v := range []any{k, cert.PrivateKey, cert} {
		for _, verb := range []string{"%v", "%+v", "%#v", "%s", "%x"} {
			s := fmt.Sprintf(verb, v)
			for _, enc := range []string{string(seed), fmt.Sprintf("%x", seed), fmt.Sprint(seed), fmt.Sprint([]byte(seed))} {
				if strings.Contains(s, enc) {
					t.Fatalf("fmt %s of %T shows the router seed", verb, v)
				}
			}
		}
	}
	if got := fmt.Sprint(k); !strings.Contains(got, k.Router().String()) {
		t.Errorf("String() = %q", got)
	}
}

// TestConcurrent exercises signing, proofs, MACs and engine changes at once;
// it is for the race detector.
func TestConcurrent(t *testing.T) {
	k := newKH(t)
	s, err := k.NewMACSession(make([]byte, 32), Address{1})
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	for g := range 4 {
		wg.Go(func() {
			name := fmt.Sprint("e", g%2) // two goroutines per engine
			for i := range 50 {
				a, err := k.EnsureEngine(name)
				if err != nil {
					t.Error(err)
					return
				}
				msg := []byte(fmt.Sprint("m", i))
				// The engine may be removed by another goroutine at any
				// point; then these must fail cleanly, never half work.
				if sig, err := k.Sign(a, msg); err == nil && !Verify(a, msg, sig) {
					t.Error("bad signature")
				} else if err != nil && !errors.Is(err, ErrNotOurs) {
					t.Error(err)
				}
				if _, err := s.MAC(a, uint64(g*1000+i), nil, msg); err != nil && !errors.Is(err, ErrNotOurs) {
					t.Error(err)
				}
				if p, err := k.EngineProof(a); err == nil && !VerifyEngineProof(k.Router(), a, p) {
					t.Error("bad proof")
				}
				_ = k.Engines()
				if i%7 == 0 {
					k.RemoveEngine(name)
				}
			}
		})
	}
	wg.Wait()
}
