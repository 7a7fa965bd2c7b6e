package events

import (
	"testing"

	"github.com/enginekit/enginekit/genserver"
)

// BenchmarkMatchPerEvent is the matching cost of one event against 1,000
// subscriptions with mixed specs, without delivering: through the topic
// index (what Publish does) and by evaluating every spec.
func BenchmarkMatchPerEvent(b *testing.B) {
	filters := MixedFilters(1000)
	evs := MixedEvents(1000)
	tab := newTable()
	for i, f := range filters {
		tab.add(&subscription{id: SubID(i + 1), pid: genserver.PID{}, prog: f.prog()})
	}
	b.Run("index", func(b *testing.B) {
		sc := new(scratch)
		matches, cands := 0, 0
		b.ReportAllocs()
		for i := 0; b.Loop(); i++ {
			ev := &evs[i%len(evs)]
			tab.candidates(ev.Topic, sc)
			cands += len(sc.cands)
			for _, s := range sc.cands {
				if s.prog.eval(0, ev) {
					matches++
				}
			}
		}
		b.ReportMetric(float64(cands)/float64(b.N), "candidates/event")
		b.ReportMetric(float64(matches)/float64(b.N), "matches/event")
	})
	b.Run("brute", func(b *testing.B) {
		matches := 0
		b.ReportAllocs()
		for i := 0; b.Loop(); i++ {
			ev := &evs[i%len(evs)]
			for _, f := range filters {
				if f.Match(ev) {
					matches++
				}
			}
		}
		b.ReportMetric(float64(matches)/float64(b.N), "matches/event")
	})
}
