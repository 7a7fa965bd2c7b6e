package events

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/enginekit/enginekit/genserver"
)

func TestIndexKeys(t *testing.T) {
	ex := func(s string) indexKey { return indexKey{keyExact, s} }
	px := func(s string) indexKey { return indexKey{keyPrefix, s} }
	anyKey := []indexKey{{kind: keyAny}}
	tests := []struct {
		f    Filter
		want []indexKey
	}{
		{Filter{}, nil},
		{All(), anyKey},
		{Topic("a"), []indexKey{ex("a")}},
		{TopicPrefix("a."), []indexKey{px("a.")}},
		{AttrEquals("k", "v"), anyKey},
		{Not(Topic("a")), anyKey},
		{And(AttrEquals("k", "v"), Topic("a")), []indexKey{ex("a")}},
		{And(TopicPrefix("a."), Topic("a.b")), []indexKey{ex("a.b")}},
		{And(TopicPrefix("a"), TopicPrefix("a.b")), []indexKey{px("a.b")}},
		{And(Or(Topic("a"), Topic("b")), TopicPrefix("c")), []indexKey{px("c")}},
		{And(Topic("a"), Filter{}), nil},
		{And(), anyKey},
		{Or(), nil},
		{Or(Topic("a"), TopicPrefix("b."), Topic("a")), []indexKey{ex("a"), px("b.")}},
		{Or(Topic("a"), AttrEquals("k", "v")), anyKey},
		{Or(Filter{}, Topic("a")), []indexKey{ex("a")}},
		{Or(And(Topic("a"), AttrEquals("k", "v")), And(AttrEquals("k", "w"), Topic("b"))), []indexKey{ex("a"), ex("b")}},
	}
	for _, tt := range tests {
		if got := indexKeys(tt.f.prog()); !slices.Equal(got, tt.want) {
			t.Errorf("%v: keys %v, want %v", tt.f, got, tt.want)
		}
	}
}

var (
	genTopics   = []string{"a", "a.b", "a.c", "ab", "b", "b.x.y", "c"}
	genPrefixes = []string{"", "a", "a.", "a.b", "b.", "b.x", "zz"}
	genValues   = []string{"", "1", "2", "12"}
)

func genFilter(r *rand.Rand, depth int) Filter {
	pick := func(l []string) string { return l[r.IntN(len(l))] }
	k := r.IntN(10)
	if depth >= 4 && k >= 7 {
		k = r.IntN(7)
	}
	switch k {
	case 0:
		if r.IntN(4) == 0 {
			return All()
		}
		return Filter{}
	case 1, 2:
		return Topic(pick(genTopics))
	case 3:
		return TopicPrefix(pick(genPrefixes))
	case 4:
		return AttrEquals(pick([]string{"k", "j"}), pick(genValues))
	case 5:
		return AttrPrefix("k", pick(genValues))
	case 6:
		return AttrOneOf("k", pick(genValues), pick(genValues))
	case 7, 8:
		ops := make([]Filter, r.IntN(4))
		for i := range ops {
			ops[i] = genFilter(r, depth+1)
		}
		if k == 7 {
			return And(ops...)
		}
		return Or(ops...)
	}
	return Not(genFilter(r, depth+1))
}

func genEvent(r *rand.Rand) Event {
	ev := Event{Topic: genTopics[r.IntN(len(genTopics))]}
	if r.IntN(3) > 0 {
		ev.Attrs = append(ev.Attrs, Attr{"k", genValues[r.IntN(len(genValues))]})
	}
	if r.IntN(2) > 0 {
		ev.Attrs = append(ev.Attrs, Attr{"j", genValues[r.IntN(len(genValues))]})
	}
	return ev
}

// checkTable verifies the table's invariants and that, for random events,
// the index yields each matching subscription exactly once.
func checkTable(t *testing.T, tab *table, r *rand.Rand, sc *scratch) {
	t.Helper()
	for i, s := range tab.subs {
		if s.idx != i || tab.byID[s.id] != s || !slices.Contains(tab.byPID[s.pid], s) {
			t.Fatalf("sub %d misfiled", s.id)
		}
	}
	lens := map[int]int{}
	filed := 0
	for p, l := range tab.prefix {
		lens[len(p)] += len(l)
		filed += len(l)
	}
	for _, l := range tab.exact {
		filed += len(l)
	}
	filed += len(tab.any)
	keys := 0
	for _, s := range tab.subs {
		keys += len(s.keys)
	}
	if filed != keys || len(lens) != len(tab.plens) || len(tab.plenN) != len(lens) || !slices.IsSorted(tab.plens) {
		t.Fatalf("index inconsistent: %d filed, %d keys, plens %v, plenN %v", filed, keys, tab.plens, tab.plenN)
	}
	for range 200 {
		ev := genEvent(r)
		tab.candidates(ev.Topic, sc)
		var got, want []SubID
		for _, s := range sc.cands {
			if s.prog.eval(0, &ev) {
				got = append(got, s.id)
			}
		}
		for _, s := range tab.subs {
			if (Filter{s.prog}).Match(&ev) {
				want = append(want, s.id)
			}
		}
		slices.Sort(got)
		slices.Sort(want)
		if !slices.Equal(got, want) {
			t.Fatalf("event %+v: index gives %v, brute force %v", ev, got, want)
		}
	}
}

func TestIndexAgreesWithBruteForce(t *testing.T) {
	sys := genserver.NewSystem(genserver.Config{})
	pid, err := sys.Spawn(func() genserver.Server { return &brokerServer{} })
	if err != nil {
		t.Fatal(err)
	}
	defer sys.Stop(t.Context())

	r := rand.New(rand.NewPCG(1, 2))
	tab := newTable()
	sc := new(scratch)
	var live []*subscription
	id := SubID(0)
	for round := range 30 {
		for range 40 {
			f := genFilter(r, 1)
			if f.Validate() != nil {
				continue
			}
			id++
			s := &subscription{id: id, pid: pid, prog: f.prog()}
			tab.add(s)
			live = append(live, s)
		}
		for range 15 {
			if len(live) == 0 {
				break
			}
			i := r.IntN(len(live))
			if r.IntN(2) == 0 {
				tab.remove(live[i])
				live = slices.Delete(live, i, i+1)
			} else if f := genFilter(r, 1); f.Validate() == nil {
				live[i].prog = f.prog()
				tab.refile(live[i])
			}
		}
		t.Run(fmt.Sprint("round", round), func(t *testing.T) { checkTable(t, &tab, r, sc) })
	}
	for _, s := range live {
		tab.remove(s)
	}
	if len(tab.subs)+len(tab.exact)+len(tab.prefix)+len(tab.any)+len(tab.plens)+len(tab.plenN)+len(tab.byPID)+len(tab.byID) != 0 {
		t.Errorf("table not empty: %+v", tab)
	}
}
