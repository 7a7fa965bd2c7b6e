package netconn

import (
	"errors"
	"testing"
	"time"

	"github.com/enginekit/enginekit/keyholder"
)

func guard(t *testing.T, cfg ReplayConfig) *ReplayGuard {
	t.Helper()
	g, err := NewReplayGuard(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return g
}

func accept1(g *ReplayGuard, src keyholder.Address, seq uint64) bool {
	var mask [1]uint64
	return g.accept(src, seq, 1, mask[:]) == 1
}

func TestReplayWindow(t *testing.T) {
	g := guard(t, ReplayConfig{Window: 100}) // rounded up to 128
	if g.window != 128 {
		t.Fatal(g.window)
	}
	a := keyholder.Address{1}
	steps := []struct {
		seq  uint64
		want bool
	}{
		{1000, true}, {1000, false}, {1001, true}, {999, true}, {999, false},
		{1001 - 127, true}, {1001 - 128, false}, {1001 - 127, false},
		{1100, true}, {1050, true}, {1050, false}, {1100 - 128, false},
		{1100 + 127, true}, {1100, false}, {1101, true}, // 1101's slot was cleared by the move
		{5000, true}, {1227, false}, {4999, true}, {4873, true}, {4872, false},
		{1<<64 - 1, true}, {5000, false},
	}
	for i, s := range steps {
		if got := accept1(g, a, s.seq); got != s.want {
			t.Fatalf("step %d: accept(%d) = %v, want %v", i, s.seq, got, s.want)
		}
	}
	// Sources are independent.
	if !accept1(g, keyholder.Address{2}, 1000) {
		t.Fatal("other source refused")
	}
}

func TestReplayRanges(t *testing.T) {
	g := guard(t, ReplayConfig{})
	a := keyholder.Address{1}
	mask := make([]uint64, 4)
	if n := g.accept(a, 100, 200, mask); n != 200 {
		t.Fatal(n)
	}
	// Overlap: 250..299 seen, 300..349 new.
	if n := g.accept(a, 250, 100, mask); n != 50 {
		t.Fatal(n)
	}
	for i := range 100 {
		if got, want := mask[i/64]&(1<<(i%64)) != 0, i >= 50; got != want {
			t.Fatalf("bit %d = %v", i, got)
		}
	}
	// A range longer than the window is accepted whole when fresh.
	if n := g.accept(a, 10_000, 5000, make([]uint64, 79)); n != 5000 {
		t.Fatal(n)
	}
}

func TestReplaySourcesBounded(t *testing.T) {
	g := guard(t, ReplayConfig{MaxSources: 2})
	a, b, c := keyholder.Address{1}, keyholder.Address{2}, keyholder.Address{3}
	accept1(g, a, 10)
	accept1(g, b, 10)
	accept1(g, c, 10) // evicts a or b
	if g.Sources() != 2 {
		t.Fatal(g.Sources())
	}
	// Exactly one of them starts afresh (and is back in, evicting another).
	if again := accept1(g, a, 10); again == accept1(g, b, 10) && !again {
		t.Fatal("nobody was evicted")
	}
	if g.Sources() != 2 {
		t.Fatal(g.Sources())
	}
}

func TestSequenceNumbers(t *testing.T) {
	now := time.Unix(0, 1_000_000)
	g := guard(t, ReplayConfig{MaxSources: 2, Now: func() time.Time { return now }})
	a, b, c := keyholder.Address{1}, keyholder.Address{2}, keyholder.Address{3}
	if s := g.nextSeq(a, 1); s != 1_000_000 {
		t.Fatal(s)
	}
	if s := g.nextSeq(a, 10); s != 1_000_001 {
		t.Fatal(s)
	}
	if s := g.nextSeq(a, 1); s != 1_000_011 {
		t.Fatal(s)
	}
	if s := g.nextSeq(b, 1); s != 1_000_012 { // the clock has not moved: above a's
		t.Fatal(s)
	}
	// The clock goes back and the counters are dropped (c is the third
	// source): numbers still go up.
	now = time.Unix(0, 5)
	g.nextSeq(c, 1)
	if s := g.nextSeq(a, 1); s <= 1_000_011 {
		t.Fatal(s)
	}
	// A restarted node (a new guard) starts from the clock.
	now = time.Unix(0, 2_000_000)
	if s := guard(t, ReplayConfig{Now: func() time.Time { return now }}).nextSeq(a, 1); s != 2_000_000 {
		t.Fatal(s)
	}
}

func TestReplayConfigErrors(t *testing.T) {
	for _, cfg := range []ReplayConfig{{Window: 8}, {Window: 1 << 21}, {MaxSources: -1}} {
		if _, err := NewReplayGuard(cfg); !errors.Is(err, ErrBadConfig) {
			t.Errorf("%+v: %v", cfg, err)
		}
	}
}
