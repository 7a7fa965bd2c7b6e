package keyholder

import (
	"crypto/rand"
	"testing"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// fastKDF makes argon2id cheap so key file tests run fast.
var fastKDF = KDFParams{Time: 1, MemoryKiB: 64, Threads: 1}

func newKH(t testing.TB) *Keyholder {
	t.Helper()
	k, err := New(Config{})
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func mustEngine(t testing.TB, k *Keyholder, name string) Address {
	t.Helper()
	a, err := k.NewEngine(name)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

func randAddress(t testing.TB) Address {
	t.Helper()
	var a Address
	rand.Read(a[:])
	return a
}
