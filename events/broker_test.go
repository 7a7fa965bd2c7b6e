package events_test

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"

	"github.com/enginekit/enginekit/events"
	"github.com/enginekit/enginekit/genserver"
)

func TestPublishDeliversToMatchingSubscriptions(t *testing.T) {
	sys, b := newBroker(t, events.Config{})
	s1, s2 := newSink(16, true), newSink(16, true)
	p1, p2 := spawnSink(t, sys, s1), spawnSink(t, sys, s2)
	pub := spawnSink(t, sys, newSink(1, true)) // a process to publish as
	id1 := subscribe(t, b, p1, events.TopicPrefix("orders."))
	id2 := subscribe(t, b, p2, events.And(events.Topic("orders.created"), events.AttrEquals("region", "eu")))
	id3 := subscribe(t, b, p2, events.All())
	subscribe(t, b, p2, events.Filter{}) // the empty spec: nothing

	if n := publish(t, b, pub, "orders.created", events.Attr{"region", "eu"}); n != 3 {
		t.Fatalf("delivered %d, want 3", n)
	}
	if n := publish(t, b, genserver.PID{}, "metrics.cpu"); n != 1 {
		t.Fatalf("delivered %d, want 1", n)
	}

	d, from := recvDelivery(t, s1.ch)
	if d.Sub != id1 || d.Event.Topic != "orders.created" || from != pub || d.Dropped != 0 {
		t.Errorf("s1 got %+v from %v", d, from)
	}
	seen := map[events.SubID]string{}
	for range 3 {
		d, from := recvDelivery(t, s2.ch)
		if d.Event.Topic == "orders.created" && from != pub || d.Event.Topic == "metrics.cpu" && !from.IsZero() {
			t.Errorf("%s came from %v", d.Event.Topic, from)
		}
		seen[d.Sub] += d.Event.Topic + ";"
	}
	if seen[id2] != "orders.created;" || seen[id3] != "orders.created;metrics.cpu;" || len(seen) != 2 {
		t.Errorf("s2 got %v", seen)
	}
	st := b.Stats()
	if st.Subscriptions != 4 || st.Subscribers != 2 || st.Published != 2 || st.Delivered != 4 {
		t.Errorf("stats %+v", st)
	}
}

func TestPublishKeepsEventIntact(t *testing.T) {
	sys, b := newBroker(t, events.Config{})
	s := newSink(4, true)
	subscribe(t, b, spawnSink(t, sys, s), events.All())
	payload := map[string]int{"n": 1}
	ev := events.Event{Topic: "t", Attrs: []events.Attr{{"b", "2"}, {"a", "1"}}, Payload: payload}
	if _, err := b.Publish(genserver.PID{}, ev); err != nil {
		t.Fatal(err)
	}
	d, _ := recvDelivery(t, s.ch)
	if fmt.Sprint(*d.Event) != fmt.Sprint(ev) {
		t.Errorf("got %+v, want %+v", d.Event, ev)
	}
}

func TestPublishRefusesMalformedEvents(t *testing.T) {
	_, b := newBroker(t, events.Config{})
	many := make([]events.Attr, events.MaxEventAttrs+1)
	for i := range many {
		many[i] = events.Attr{Key: strconv.Itoa(i)}
	}
	for _, ev := range []events.Event{
		{},
		{Attrs: []events.Attr{{"k", "v"}}},
		{Topic: "t", Attrs: []events.Attr{{"", "v"}}},
		{Topic: "t", Attrs: []events.Attr{{"k", "v"}, {"j", "v"}, {"k", "w"}}},
		{Topic: "t", Attrs: many},
	} {
		if _, err := b.Publish(genserver.PID{}, ev); !errors.Is(err, events.ErrBadEvent) {
			t.Errorf("Publish(%+v) = %v", ev, err)
		}
	}
	if _, err := b.Publish(genserver.PID{}, events.Event{Topic: "t", Attrs: many[:events.MaxEventAttrs]}); err != nil {
		t.Errorf("Publish with MaxEventAttrs attributes: %v", err)
	}
	if st := b.Stats(); st.Published != 1 {
		t.Errorf("Published = %d", st.Published)
	}
}

func TestSubscribeRefusesBadSpecsAndSubscribers(t *testing.T) {
	sys, b := newBroker(t, events.Config{})
	pid := spawnSink(t, sys, newSink(1, true))

	// A hostile spec from a peer is refused when it is decoded...
	deep := mustCBOR(t, nest(50))
	if _, err := events.DecodeFilter(deep); !errors.Is(err, events.ErrFilterTooLarge) {
		t.Errorf("DecodeFilter(deep) = %v", err)
	}
	// ...and one built in Go is refused by Subscribe and Update.
	tooDeep := chain(events.All(), events.MaxFilterDepth)
	if _, err := b.Subscribe(pid, tooDeep); !errors.Is(err, events.ErrFilterTooLarge) {
		t.Errorf("Subscribe(too deep) = %v", err)
	}
	if _, err := b.Subscribe(pid, events.AttrOneOf("k")); !errors.Is(err, events.ErrBadFilter) {
		t.Errorf("Subscribe(empty one-of) = %v", err)
	}
	id := subscribe(t, b, pid, events.Topic("a"))
	if err := b.Update(id, events.Or(leaves(100)...)); !errors.Is(err, events.ErrFilterTooLarge) {
		t.Errorf("Update(too many nodes) = %v", err)
	}
	if f, _ := b.Filter(id); !f.Equal(events.Topic("a")) {
		t.Errorf("a refused Update changed the spec to %v", f)
	}

	if _, err := b.Subscribe(genserver.PID{}, events.All()); !errors.Is(err, genserver.ErrNoProcess) {
		t.Errorf("Subscribe(zero PID) = %v", err)
	}
	if err := sys.StopProcess(context.Background(), pid, nil); err != nil {
		t.Fatal(err)
	}
	if _, err := b.Subscribe(pid, events.All()); !errors.Is(err, genserver.ErrNoProcess) {
		t.Errorf("Subscribe(dead) = %v", err)
	}
	if _, err := b.Subscribe(spawnSink(t, sys, newSink(1, true)), events.All(), events.WithOverflow(9)); !errors.Is(err, events.ErrBadConfig) {
		t.Errorf("Subscribe(bad policy) = %v", err)
	}
}

func TestNewBrokerConfig(t *testing.T) {
	if _, err := events.NewBroker(nil, events.Config{}); !errors.Is(err, events.ErrBadConfig) {
		t.Errorf("nil System: %v", err)
	}
	sys, b := newBroker(t, events.Config{Name: "events"})
	if _, err := events.NewBroker(sys, events.Config{Overflow: 7}); !errors.Is(err, events.ErrBadConfig) {
		t.Errorf("bad policy: %v", err)
	}
	if pid, ok := sys.Whereis("events"); !ok || pid != b.PID() {
		t.Errorf("Whereis(events) = %v, %v; broker %v", pid, ok, b.PID())
	}
	if _, err := events.NewBroker(sys, events.Config{Name: "events"}); !errors.Is(err, genserver.ErrNameTaken) {
		t.Errorf("second broker with the same name: %v", err)
	}
}

func TestSubscriberExitRemovesItsSubscriptions(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		sys, b := newBroker(t, events.Config{})
		a, c := newSink(16, true), newSink(16, true)
		pa, pc := spawnSink(t, sys, a), spawnSink(t, sys, c)
		subscribe(t, b, pa, events.All())
		subscribe(t, b, pa, events.Topic("x"))
		subscribe(t, b, pc, events.Topic("x"))
		synctest.Wait() // the broker monitors both

		if err := sys.Kill(pa); err != nil {
			t.Fatal(err)
		}
		synctest.Wait()
		if st := b.Stats(); st.Subscriptions != 1 || st.Subscribers != 1 || st.Downs != 2 {
			t.Fatalf("after a crash: %+v", st)
		}
		if n := publish(t, b, genserver.PID{}, "x"); n != 1 {
			t.Errorf("delivered %d, want 1", n)
		}
		if _, err := b.Subscribe(pa, events.All()); !errors.Is(err, genserver.ErrNoProcess) {
			t.Errorf("Subscribe(dead) = %v", err)
		}

		// A normal exit removes them too.
		if err := sys.StopProcess(context.Background(), pc, nil); err != nil {
			t.Fatal(err)
		}
		synctest.Wait()
		if st := b.Stats(); st.Subscriptions != 0 || st.Subscribers != 0 || st.Downs != 3 {
			t.Fatalf("after a normal exit: %+v", st)
		}
	})
}

func TestSubscriberExitBeforeTheBrokerMonitorsIt(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		sys, b := newBroker(t, events.Config{})
		pid := spawnSink(t, sys, newSink(1, true))
		subscribe(t, b, pid, events.All())
		_ = sys.Kill(pid) // the broker's process has not run yet
		synctest.Wait()
		if st := b.Stats(); st.Subscriptions != 0 || st.Downs != 1 {
			t.Fatalf("%+v", st)
		}
	})
}

func TestSubscribeUnsubscribeResubscribeKeepsWatching(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		sys, b := newBroker(t, events.Config{})
		pid := spawnSink(t, sys, newSink(4, true))
		for range 3 {
			id := subscribe(t, b, pid, events.All())
			if err := b.Unsubscribe(id); err != nil {
				t.Fatal(err)
			}
		}
		subscribe(t, b, pid, events.All()) // the monitor requests interleave with table changes
		synctest.Wait()
		_ = sys.Kill(pid)
		synctest.Wait()
		if st := b.Stats(); st.Subscriptions != 0 || st.Downs != 1 {
			t.Fatalf("%+v", st)
		}
	})
}

// A PID of another System is not reachable from this one: it is treated as
// a dead subscriber.
func TestSubscriberOfAnotherSystem(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		_, b := newBroker(t, events.Config{})
		other := genserver.NewSystem(genserver.Config{Name: "other"})
		defer other.Stop(context.Background())
		pid := spawnSink(t, other, newSink(1, true))
		subscribe(t, b, pid, events.All())
		synctest.Wait()
		if st := b.Stats(); st.Subscriptions != 0 || st.Downs != 1 {
			t.Fatalf("%+v", st)
		}
	})
}

// Events from one publisher arrive at each subscriber in publish order,
// with several publishers publishing at once, including to a subscription
// filed under two index keys.
func TestOrderPerPublisher(t *testing.T) {
	sys, b := newBroker(t, events.Config{MaxPending: -1})
	const pubs, per = 4, 2000
	filters := []events.Filter{
		events.All(),
		events.TopicPrefix("seq."),
		events.Or(events.Topic("seq.even"), events.TopicPrefix("seq.")), // one event, two keys: must arrive once
		events.Or(events.Topic("seq.even"), events.Topic("seq.odd")),
	}
	sinks := make([]*sink, len(filters))
	for i, f := range filters {
		sinks[i] = newSink(pubs*per, false)
		subscribe(t, b, spawnSink(t, sys, sinks[i]), f)
	}
	publishers := make([]genserver.PID, pubs)
	for i := range publishers {
		publishers[i] = spawnSink(t, sys, newSink(1, true))
	}
	var wg sync.WaitGroup
	for _, pub := range publishers {
		wg.Go(func() {
			for n := range per {
				topic := "seq.even"
				if n%2 == 1 {
					topic = "seq.odd"
				}
				if d := publish(t, b, pub, topic, events.Attr{"n", strconv.Itoa(n)}); d != len(filters) {
					t.Errorf("delivered %d, want %d", d, len(filters))
					return
				}
			}
		})
	}
	wg.Wait()
	for i, s := range sinks {
		next := map[genserver.PID]int{}
		for range pubs * per {
			d, from := recvDelivery(t, s.ch)
			v, _ := d.Event.Attr("n")
			if n, _ := strconv.Atoi(v); n != next[from] {
				t.Fatalf("subscriber %d: from %v got n=%d, want %d", i, from, n, next[from])
			}
			next[from]++
		}
		if len(next) != pubs {
			t.Errorf("subscriber %d heard from %d publishers", i, len(next))
		}
	}
	if st := b.Stats(); st.Delivered != pubs*per*uint64(len(filters)) {
		t.Errorf("stats %+v", st)
	}
}

func TestUpdate(t *testing.T) {
	sys, b := newBroker(t, events.Config{})
	s := newSink(16, true)
	id := subscribe(t, b, spawnSink(t, sys, s), events.Topic("a"))
	if n := publish(t, b, genserver.PID{}, "a"); n != 1 {
		t.Fatalf("delivered %d", n)
	}
	if d, _ := recvDelivery(t, s.ch); d.Event.Topic != "a" {
		t.Fatalf("got %+v", d)
	}

	if err := b.Update(id, events.And(events.TopicPrefix("b."), events.AttrEquals("k", "v"))); err != nil {
		t.Fatal(err)
	}
	if n := publish(t, b, genserver.PID{}, "a"); n != 0 {
		t.Errorf("old spec still delivers: %d", n)
	}
	if n := publish(t, b, genserver.PID{}, "b.x", events.Attr{"k", "w"}); n != 0 {
		t.Errorf("delivered %d", n)
	}
	if n := publish(t, b, genserver.PID{}, "b.x", events.Attr{"k", "v"}); n != 1 {
		t.Errorf("new spec does not deliver: %d", n)
	}
	if d, _ := recvDelivery(t, s.ch); d.Sub != id || d.Event.Topic != "b.x" {
		t.Errorf("got %+v", d)
	}
	if f, ok := b.Filter(id); !ok || f.String() != `And(TopicPrefix("b."), AttrEquals("k", "v"))` {
		t.Errorf("Filter = %v, %v", f, ok)
	}

	if err := b.Update(id, events.Filter{}); err != nil {
		t.Fatal(err)
	}
	if n := publish(t, b, genserver.PID{}, "b.x", events.Attr{"k", "v"}); n != 0 {
		t.Errorf("the empty spec delivers: %d", n)
	}
	if err := b.Update(id, events.Not(events.Topic("z"))); err != nil {
		t.Fatal(err)
	}
	if n := publish(t, b, genserver.PID{}, "q"); n != 1 {
		t.Errorf("delivered %d", n)
	}
	if err := b.Update(id+100, events.All()); !errors.Is(err, events.ErrNoSubscription) {
		t.Errorf("Update(unknown) = %v", err)
	}
	if st := b.Stats(); st.Subscriptions != 1 {
		t.Errorf("stats %+v", st)
	}
}

func TestUnsubscribe(t *testing.T) {
	sys, b := newBroker(t, events.Config{})
	s := newSink(16, true)
	pid := spawnSink(t, sys, s)
	id := subscribe(t, b, pid, events.Topic("a"))
	keep := subscribe(t, b, pid, events.Topic("b"))
	if err := b.Unsubscribe(id); err != nil {
		t.Fatal(err)
	}
	if err := b.Unsubscribe(id); !errors.Is(err, events.ErrNoSubscription) {
		t.Errorf("second Unsubscribe = %v", err)
	}
	if _, ok := b.Filter(id); ok {
		t.Error("Filter of an ended subscription")
	}
	if n := publish(t, b, genserver.PID{}, "a"); n != 0 {
		t.Errorf("delivered %d after Unsubscribe", n)
	}
	publish(t, b, genserver.PID{}, "b")
	if d, _ := recvDelivery(t, s.ch); d.Sub != keep {
		t.Errorf("got %+v", d)
	}
	if st := b.Stats(); st.Subscriptions != 1 || st.Subscribers != 1 {
		t.Errorf("stats %+v", st)
	}
}

// DropNewest: at the bound, events are dropped for that subscription only,
// counted, and the next Delivery says how many were missed.
func TestOverflowDropNewest(t *testing.T) {
	sys, b := newBroker(t, events.Config{MaxPending: 2})
	slow, fast := newSink(16, false), newSink(16, true)
	id := subscribe(t, b, spawnSink(t, sys, slow), events.All())
	subscribe(t, b, spawnSink(t, sys, fast), events.All(), events.WithMaxPending(-1))

	for i, want := range []int{2, 2, 1, 1, 1} {
		if n := publish(t, b, genserver.PID{}, "e"+strconv.Itoa(i)); n != want {
			t.Fatalf("publish %d delivered %d, want %d", i, n, want)
		}
	}
	if st := b.Stats(); st.Delivered != 7 || st.DroppedPending != 3 || st.Subscriptions != 2 {
		t.Fatalf("stats %+v", st)
	}
	d0, _ := recvDelivery(t, slow.ch)
	d1, _ := recvDelivery(t, slow.ch)
	if d0.Event.Topic != "e0" || d1.Event.Topic != "e1" || d0.Dropped+d1.Dropped != 0 {
		t.Fatalf("got %+v, %+v", d0, d1)
	}
	d0.Done()
	if n := publish(t, b, genserver.PID{}, "e5"); n != 2 {
		t.Fatalf("delivered %d after Done", n)
	}
	d5, _ := recvDelivery(t, slow.ch)
	if d5.Event.Topic != "e5" || d5.Dropped != 3 || d5.Sub != id {
		t.Fatalf("got %+v, want e5 with Dropped 3", d5)
	}

	// Extra Done calls cannot open the window beyond MaxPending.
	d1.Done()
	d5.Done()
	d5.Done()
	d5.Done()
	for i, want := range []int{2, 2, 1} {
		if n := publish(t, b, genserver.PID{}, "f"); n != want {
			t.Fatalf("publish %d delivered %d, want %d", i, n, want)
		}
	}
	for range 2 {
		if d, _ := recvDelivery(t, slow.ch); d.Dropped != 0 {
			t.Errorf("got %+v", d)
		}
	}
	if st := b.Stats(); st.DroppedPending != 4 || st.Cancelled != 0 {
		t.Errorf("stats %+v", st)
	}
}

// Cancel: at the bound the subscription ends and the subscriber is told.
func TestOverflowCancel(t *testing.T) {
	sys, b := newBroker(t, events.Config{MaxPending: 1, Overflow: events.Cancel})
	slow, fast := newSink(16, false), newSink(16, false)
	pslow := spawnSink(t, sys, slow)
	id := subscribe(t, b, pslow, events.All())
	subscribe(t, b, spawnSink(t, sys, fast), events.All(), events.WithMaxPending(-1))

	for i, want := range []int{2, 1, 1} {
		if n := publish(t, b, genserver.PID{}, "e"); n != want {
			t.Fatalf("publish %d delivered %d, want %d", i, n, want)
		}
	}
	if d, _ := recvDelivery(t, slow.ch); d.Sub != id {
		t.Fatalf("got %+v", d)
	}
	g := recv(t, slow.ch)
	if o, ok := g.msg.(events.Overflowed); !ok || o.Sub != id || g.from != b.PID() {
		t.Fatalf("got %+v from %v, want Overflowed{%d} from the broker", g.msg, g.from, id)
	}
	if st := b.Stats(); st.Cancelled != 1 || st.DroppedPending != 1 || st.Subscriptions != 1 || st.Subscribers != 1 {
		t.Fatalf("stats %+v", st)
	}
	if err := b.Unsubscribe(id); !errors.Is(err, events.ErrNoSubscription) {
		t.Errorf("Unsubscribe(cancelled) = %v", err)
	}
	// The subscriber catches up and subscribes again.
	id2 := subscribe(t, b, pslow, events.All(), events.WithOverflow(events.DropNewest))
	if n := publish(t, b, genserver.PID{}, "e"); n != 2 {
		t.Errorf("delivered %d", n)
	}
	if d, _ := recvDelivery(t, slow.ch); d.Sub != id2 {
		t.Errorf("got %+v", d)
	}
}

// A subscriber's own bounded mailbox is a bound too: a refused delivery
// gets the subscription's policy.
func TestOverflowMailboxFull(t *testing.T) {
	sys, b := newBroker(t, events.Config{MaxPending: -1})
	s := newSink(16, false)
	s.hold = make(chan struct{})
	id := subscribe(t, b, spawnSink(t, sys, s, genserver.WithMailboxLimit(1, genserver.Reject)), events.All())

	publish(t, b, genserver.PID{}, "e0")
	recvDelivery(t, s.ch) // the subscriber now holds e0, its mailbox is empty
	if n := publish(t, b, genserver.PID{}, "e1"); n != 1 {
		t.Fatalf("e1 delivered %d", n)
	}
	if n := publish(t, b, genserver.PID{}, "e2"); n != 0 {
		t.Fatalf("e2 delivered %d, want 0 (mailbox full)", n)
	}
	if st := b.Stats(); st.DroppedMailboxFull != 1 || st.Delivered != 2 {
		t.Fatalf("stats %+v", st)
	}
	close(s.hold)
	if d, _ := recvDelivery(t, s.ch); d.Event.Topic != "e1" || d.Dropped != 0 {
		t.Fatalf("got %+v", d)
	}
	publish(t, b, genserver.PID{}, "e3")
	if d, _ := recvDelivery(t, s.ch); d.Event.Topic != "e3" || d.Dropped != 1 || d.Sub != id {
		t.Fatalf("got %+v, want e3 with Dropped 1", d)
	}
}

func TestClose(t *testing.T) {
	sys, b := newBroker(t, events.Config{})
	pid := spawnSink(t, sys, newSink(1, true))
	id := subscribe(t, b, pid, events.All())
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	if err := b.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
	if _, err := b.Publish(genserver.PID{}, events.Event{Topic: "t"}); !errors.Is(err, events.ErrClosed) {
		t.Errorf("Publish = %v", err)
	}
	if _, err := b.Subscribe(pid, events.All()); !errors.Is(err, events.ErrClosed) {
		t.Errorf("Subscribe = %v", err)
	}
	if err := b.Update(id, events.All()); !errors.Is(err, events.ErrClosed) {
		t.Errorf("Update = %v", err)
	}
	if err := b.Unsubscribe(id); !errors.Is(err, events.ErrClosed) {
		t.Errorf("Unsubscribe = %v", err)
	}
	if st := b.Stats(); st.Subscriptions != 0 {
		t.Errorf("stats %+v", st)
	}

	// Stopping the System closes its brokers; so does killing the process.
	for _, stop := range []func(*genserver.System, *events.Broker){
		func(sys *genserver.System, _ *events.Broker) { _ = sys.Stop(context.Background()) },
		func(sys *genserver.System, b *events.Broker) {
			_ = sys.Kill(b.PID())
			<-b.PID().Done()
		},
	} {
		sys, b := newBroker(t, events.Config{})
		stop(sys, b)
		if _, err := b.Publish(genserver.PID{}, events.Event{Topic: "t"}); !errors.Is(err, events.ErrClosed) {
			t.Errorf("Publish = %v", err)
		}
	}
}

// Publishing, subscribing, updating, unsubscribing and subscribers exiting
// all at once; run with -race.
func TestConcurrentPublishSubscribe(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		sys, b := newBroker(t, events.Config{})
		topics := []string{"a.x", "a.y", "b.x", "b.y", "c"}
		filters := []events.Filter{
			events.All(),
			events.Topic("a.x"),
			events.TopicPrefix("b."),
			events.AttrEquals("k", "1"),
			events.Or(events.Topic("a.y"), events.TopicPrefix("a.")),
			events.And(events.TopicPrefix("a."), events.Not(events.AttrOneOf("k", "0", "2"))),
		}
		// Stable subscribers: each must get exactly the events its spec
		// matches.
		counts := make([]atomic.Int64, len(filters))
		var want [6]atomic.Int64
		for i, f := range filters {
			pid, err := sys.Spawn(func() genserver.Server { return &counter{n: &counts[i]} })
			if err != nil {
				t.Fatal(err)
			}
			subscribe(t, b, pid, f, events.WithMaxPending(-1))
		}

		var wg sync.WaitGroup
		var published, delivered atomic.Uint64
		for w := range 4 {
			wg.Go(func() {
				r := rand.New(rand.NewPCG(uint64(w), 1))
				for range 500 {
					ev := events.Event{Topic: topics[r.IntN(len(topics))], Attrs: []events.Attr{{"k", strconv.Itoa(r.IntN(3))}}}
					for i, f := range filters {
						if f.Match(&ev) {
							want[i].Add(1)
						}
					}
					n, err := b.Publish(genserver.PID{}, ev)
					if err != nil {
						t.Error(err)
						return
					}
					published.Add(1)
					delivered.Add(uint64(n))
				}
			})
		}
		for w := range 3 {
			wg.Go(func() {
				r := rand.New(rand.NewPCG(uint64(w), 2))
				for i := range 100 {
					s := &counter{n: new(atomic.Int64)}
					pid, err := sys.Spawn(func() genserver.Server { return s })
					if err != nil {
						t.Error(err)
						return
					}
					id, err := b.Subscribe(pid, filters[r.IntN(len(filters))])
					if err != nil {
						t.Error(err)
						return
					}
					if err := b.Update(id, filters[r.IntN(len(filters))]); err != nil {
						t.Error(err)
						return
					}
					switch i % 3 {
					case 0:
						if err := b.Unsubscribe(id); err != nil {
							t.Error(err)
						}
						_ = sys.Kill(pid)
					case 1:
						_ = sys.Kill(pid) // the broker cleans up
					case 2:
						_ = sys.Kill(pid)
						_ = b.Unsubscribe(id) // may race with the cleanup: either is fine
					}
				}
			})
		}
		wg.Wait()
		synctest.Wait()

		st := b.Stats()
		if st.Subscriptions != len(filters) || st.Subscribers != len(filters) {
			t.Errorf("left %d subscriptions of %d subscribers, want %d", st.Subscriptions, st.Subscribers, len(filters))
		}
		if st.Published != published.Load() || st.Delivered != delivered.Load() {
			t.Errorf("stats %+v; published %d, delivered %d", st, published.Load(), delivered.Load())
		}
		for i := range filters {
			if got, want := counts[i].Load(), want[i].Load(); got != want {
				t.Errorf("%v: got %d deliveries, want %d", filters[i], got, want)
			}
		}
	})
}

func TestPublishAllocations(t *testing.T) {
	if raceEnabled {
		t.Skip("the race detector changes allocation counts (sync.Pool drops items)")
	}
	sys, b := newBroker(t, events.Config{MaxPending: -1})
	var n atomic.Int64
	for _, f := range events.MixedFilters(100) {
		pid, err := sys.Spawn(func() genserver.Server { return &counter{n: &n} })
		if err != nil {
			t.Fatal(err)
		}
		subscribe(t, b, pid, f)
	}
	miss := events.Event{Topic: "nobody.listens", Attrs: []events.Attr{{"k", "v"}}}
	if a := testing.AllocsPerRun(100, func() { _, _ = b.Publish(genserver.PID{}, miss) }); a != 0 {
		t.Errorf("a publish that matches nothing allocates %v times", a)
	}
}

// Close from several goroutines at once: each returns once the broker's
// process is gone, and none fails.
func TestCloseConcurrent(t *testing.T) {
	_, b := newBroker(t, events.Config{})
	errs := make(chan error, 4)
	for range 4 {
		go func() { errs <- b.Close() }()
	}
	for range 4 {
		if err := <-errs; err != nil {
			t.Error(err)
		}
		if b.PID().Alive() {
			t.Error("Close returned while the broker's process runs")
		}
	}
}
