package events

import (
	"slices"

	"github.com/enginekit/enginekit/genserver"
)

// The subscription table indexes subscriptions by what their spec requires
// of an event's topic, so a publish evaluates only the specs that can match:
//
//   - a spec that needs an exact topic (Topic(t), or an And with one) is
//     filed under t;
//   - one that needs a topic prefix is filed under the prefix, and a publish
//     looks up the event topic's prefixes of the lengths in use;
//   - an Or whose every operand needs a topic is filed under each of them
//     (such a "multi" subscription can be a candidate twice, so a publish
//     remembers which it has evaluated);
//   - a spec that can never match (Nothing) is filed nowhere;
//   - anything else (All, attribute predicates alone, Not) is evaluated for
//     every event.

type keyKind uint8

const (
	keyExact keyKind = iota
	keyPrefix
	keyAny
)

type indexKey struct {
	kind keyKind
	s    string
}

// topicKeys returns the keys under which the subtree at nodes[i] must be
// filed: ok is false when it can match events of any topic; ok with no keys
// means it matches nothing.
func (p *program) topicKeys(i int32) (keys []indexKey, ok bool) {
	n := &p.nodes[i]
	switch n.op {
	case opNone:
		return nil, true
	case opTopic:
		return []indexKey{{keyExact, n.val}}, true
	case opTopicPrefix:
		return []indexKey{{keyPrefix, n.val}}, true
	case opAnd:
		// Every operand must match: any operand's keys will do; take the
		// most selective (fewest keys, exact before prefix, longer prefix).
		var best []indexKey
		found := false
		for j := i + 1; j < n.end; j = p.nodes[j].end {
			k, ok := p.topicKeys(j)
			if !ok {
				continue
			}
			if len(k) == 0 {
				return nil, true
			}
			if !found || selectivity(k) > selectivity(best) {
				best, found = k, true
			}
		}
		return best, found
	case opOr:
		var all []indexKey
		for j := i + 1; j < n.end; j = p.nodes[j].end {
			k, ok := p.topicKeys(j)
			if !ok {
				return nil, false
			}
			for _, key := range k {
				if !slices.Contains(all, key) {
					all = append(all, key)
				}
			}
		}
		return all, true
	}
	return nil, false
}

func selectivity(keys []indexKey) int {
	s := -len(keys) * 1024
	for _, k := range keys {
		if k.kind == keyExact {
			s += 512
		} else {
			s += min(len(k.s), 511)
		}
	}
	return s
}

func indexKeys(p *program) []indexKey {
	keys, ok := p.topicKeys(0)
	if !ok {
		return []indexKey{{kind: keyAny}}
	}
	return keys
}

// table is the broker's subscription table, guarded by Broker.mu.
type table struct {
	subs   []*subscription // dense: subs[s.idx] == s
	byID   map[SubID]*subscription
	byPID  map[genserver.PID][]*subscription
	exact  map[string][]*subscription
	prefix map[string][]*subscription
	plens  []int       // distinct prefix lengths in use, ascending
	plenN  map[int]int // prefix length -> number of prefix keys of that length
	any    []*subscription
}

func newTable() table {
	return table{
		byID:   make(map[SubID]*subscription),
		byPID:  make(map[genserver.PID][]*subscription),
		exact:  make(map[string][]*subscription),
		prefix: make(map[string][]*subscription),
		plenN:  make(map[int]int),
	}
}

// add files s; it reports whether s is its subscriber's first.
func (t *table) add(s *subscription) (first bool) {
	s.idx = len(t.subs)
	t.subs = append(t.subs, s)
	t.byID[s.id] = s
	first = len(t.byPID[s.pid]) == 0
	t.byPID[s.pid] = append(t.byPID[s.pid], s)
	t.file(s)
	return first
}

// remove unfiles s; it reports whether s was its subscriber's last.
func (t *table) remove(s *subscription) (last bool) {
	t.unfile(s)
	end := len(t.subs) - 1
	moved := t.subs[end]
	t.subs[s.idx], moved.idx = moved, s.idx
	t.subs[end] = nil
	t.subs = t.subs[:end]
	delete(t.byID, s.id)
	list := deleteSub(t.byPID[s.pid], s)
	if len(list) == 0 {
		delete(t.byPID, s.pid)
		return true
	}
	t.byPID[s.pid] = list
	return false
}

// refile moves s to the keys of its current program.
func (t *table) refile(s *subscription) {
	t.unfile(s)
	t.file(s)
}

func (t *table) file(s *subscription) {
	s.keys = indexKeys(s.prog)
	s.multi = len(s.keys) > 1
	for _, k := range s.keys {
		switch k.kind {
		case keyExact:
			t.exact[k.s] = append(t.exact[k.s], s)
		case keyPrefix:
			t.prefix[k.s] = append(t.prefix[k.s], s)
			if t.plenN[len(k.s)]++; t.plenN[len(k.s)] == 1 {
				i, _ := slices.BinarySearch(t.plens, len(k.s))
				t.plens = slices.Insert(t.plens, i, len(k.s))
			}
		case keyAny:
			t.any = append(t.any, s)
		}
	}
}

func (t *table) unfile(s *subscription) {
	for _, k := range s.keys {
		switch k.kind {
		case keyExact:
			if l := deleteSub(t.exact[k.s], s); len(l) > 0 {
				t.exact[k.s] = l
			} else {
				delete(t.exact, k.s)
			}
		case keyPrefix:
			if l := deleteSub(t.prefix[k.s], s); len(l) > 0 {
				t.prefix[k.s] = l
			} else {
				delete(t.prefix, k.s)
			}
			if t.plenN[len(k.s)]--; t.plenN[len(k.s)] == 0 {
				delete(t.plenN, len(k.s))
				if i, ok := slices.BinarySearch(t.plens, len(k.s)); ok {
					t.plens = slices.Delete(t.plens, i, i+1)
				}
			}
		case keyAny:
			t.any = deleteSub(t.any, s)
		}
	}
	s.keys = nil
}

// deleteSub removes s from l keeping the order (which is the order of
// delivery among the subscriptions of one bucket).
func deleteSub(l []*subscription, s *subscription) []*subscription {
	if i := slices.Index(l, s); i >= 0 {
		return slices.Delete(l, i, i+1)
	}
	return l
}

// scratch is one publish's working memory, pooled by the Broker.
type scratch struct {
	cands []*subscription
	seen  []uint64 // bitset over table.subs indices, for multi subscriptions
	used  bool     // seen has bits set
}

// candidates collects in sc.cands every subscription whose spec may match
// an event with this topic, each once.
func (t *table) candidates(topic string, sc *scratch) {
	sc.cands = sc.cands[:0]
	if l, ok := t.exact[topic]; ok {
		t.collect(l, sc)
	}
	for _, n := range t.plens {
		if n > len(topic) {
			break
		}
		if l, ok := t.prefix[topic[:n]]; ok {
			t.collect(l, sc)
		}
	}
	t.collect(t.any, sc)
	if sc.used {
		clear(sc.seen)
		sc.used = false
	}
}

func (t *table) collect(l []*subscription, sc *scratch) {
	for _, s := range l {
		if s.multi {
			if w := (len(t.subs) + 63) / 64; len(sc.seen) < w {
				sc.seen = make([]uint64, w)
			}
			word, bit := s.idx/64, uint64(1)<<(s.idx%64)
			if sc.seen[word]&bit != 0 {
				continue
			}
			sc.seen[word] |= bit
			sc.used = true
		}
		sc.cands = append(sc.cands, s)
	}
}
