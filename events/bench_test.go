package events_test

import (
	"context"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/enginekit/enginekit/events"
	"github.com/enginekit/enginekit/genserver"
)

func BenchmarkMatch(b *testing.B) {
	ev := events.Event{
		Topic: "orders.eu.created",
		Attrs: []events.Attr{{"region", "eu-west-1"}, {"tier", "gold"}, {"customer", "c-1234"}, {"channel", "web"}},
	}
	many := make([]string, events.MaxOneOf)
	for i := range many {
		many[i] = "value-" + strings.Repeat("x", i)
	}
	many[len(many)-1] = "web"
	var big []events.Filter
	for range events.MaxFilterNodes/2 - 1 {
		big = append(big, events.Not(events.AttrOneOf("channel", many[:8]...)))
	}
	worst := events.Or(events.And(big...)) // 64 nodes, each one-of scanned in full
	tests := []struct {
		name string
		f    events.Filter
		want bool
	}{
		{"Topic", events.Topic("orders.eu.created"), true},
		{"TopicPrefix", events.TopicPrefix("orders.eu."), true},
		{"AttrEquals", events.AttrEquals("channel", "web"), true},
		{"AttrPrefix", events.AttrPrefix("region", "eu-"), true},
		{"AttrOneOf4", events.AttrOneOf("tier", "bronze", "silver", "platinum", "gold"), true},
		{"AttrOneOf32", events.AttrOneOf("channel", many...), true},
		{"Not", events.Not(events.Topic("orders.us.created")), true},
		{"And3", events.And(events.TopicPrefix("orders."), events.AttrEquals("region", "eu-west-1"), events.AttrEquals("tier", "gold")), true},
		{"Or3", events.Or(events.Topic("a"), events.AttrEquals("tier", "silver"), events.AttrPrefix("customer", "c-")), true},
		{"Nested", events.And(
			events.TopicPrefix("orders."),
			events.Or(events.AttrEquals("region", "us-east-1"), events.AttrPrefix("region", "eu-")),
			events.Not(events.AttrOneOf("channel", "test", "internal")),
		), true},
		{"Worst64Nodes", worst, true},
	}
	for _, tt := range tests {
		if tt.f.Match(&ev) != tt.want {
			b.Fatalf("%s: Match != %v", tt.name, tt.want)
		}
		b.Run(tt.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				tt.f.Match(&ev)
			}
		})
	}
}

// BenchmarkPublish1000Subscribers publishes from one goroutine to 1,000
// subscriber processes holding mixed specs (events.MixedFilters), which
// acknowledge each delivery, and waits until every delivery is handled.
func BenchmarkPublish1000Subscribers(b *testing.B) {
	for _, bc := range []struct {
		name string
		max  int
	}{{"bounded", 0}, {"unbounded", -1}} {
		b.Run(bc.name, func(b *testing.B) {
			ctx := context.Background()
			sys := genserver.NewSystem(genserver.Config{Name: "bench"})
			defer sys.Stop(ctx)
			br, err := events.NewBroker(sys, events.Config{MaxPending: bc.max})
			if err != nil {
				b.Fatal(err)
			}
			var handled atomic.Uint64
			target := new(atomic.Uint64)
			target.Store(^uint64(0))
			done := make(chan struct{}, 1)
			for _, f := range events.MixedFilters(1000) {
				pid, err := sys.Spawn(func() genserver.Server { return &benchSub{handled: &handled, target: target, done: done} })
				if err != nil {
					b.Fatal(err)
				}
				if _, err := br.Subscribe(pid, f); err != nil {
					b.Fatal(err)
				}
			}
			evs := events.MixedEvents(1000)
			pub, _ := sys.Spawn(func() genserver.Server { return &benchSub{} })
			before := br.Stats()
			b.ReportAllocs()
			b.ResetTimer()
			for i := range b.N {
				if _, err := br.Publish(pub, evs[i%len(evs)]); err != nil {
					b.Fatal(err)
				}
			}
			st := br.Stats()
			delivered := st.Delivered - before.Delivered
			target.Store(delivered)
			if handled.Load() < delivered {
				<-done
			}
			b.StopTimer()
			sec := b.Elapsed().Seconds()
			b.ReportMetric(float64(b.N)/sec, "events/s")
			b.ReportMetric(float64(delivered)/sec, "deliveries/s")
			b.ReportMetric(float64(delivered)/float64(b.N), "deliveries/event")
			b.ReportMetric(float64(st.DroppedPending-before.DroppedPending)/float64(b.N), "dropped/event")
		})
	}
}

type benchSub struct {
	handled, target *atomic.Uint64
	done            chan struct{}
}

func (s *benchSub) HandleCall(p *genserver.Process, from genserver.From, req any) (any, error) {
	return nil, nil
}
func (s *benchSub) HandleCast(p *genserver.Process, msg any) {}
func (s *benchSub) HandleInfo(p *genserver.Process, msg any) {
	if d, ok := msg.(events.Delivery); ok {
		d.Done()
		if s.handled.Add(1) == s.target.Load() {
			select {
			case s.done <- struct{}{}:
			default:
			}
		}
	}
}
