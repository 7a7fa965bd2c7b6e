package events_test

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/enginekit/enginekit/events"
	"github.com/enginekit/enginekit/genserver"
)

// got is an info message as a subscriber saw it.
type got struct {
	from genserver.PID
	msg  any
}

// sink is a subscriber that hands each info message to a channel.
type sink struct {
	ch   chan got
	ack  bool          // call Delivery.Done before handing it over
	hold chan struct{} // if set, wait on it after handing each message over
}

func (s *sink) HandleCall(p *genserver.Process, from genserver.From, req any) (any, error) {
	return nil, nil
}
func (s *sink) HandleCast(p *genserver.Process, msg any) {}
func (s *sink) HandleInfo(p *genserver.Process, msg any) {
	if d, ok := msg.(events.Delivery); ok && s.ack {
		d.Done()
	}
	s.ch <- got{p.Sender(), msg}
	if s.hold != nil {
		<-s.hold
	}
}

// counter is a subscriber that counts and acknowledges deliveries.
type counter struct{ n *atomic.Int64 }

func (c *counter) HandleCall(p *genserver.Process, from genserver.From, req any) (any, error) {
	return nil, nil
}
func (c *counter) HandleCast(p *genserver.Process, msg any) {}
func (c *counter) HandleInfo(p *genserver.Process, msg any) {
	if d, ok := msg.(events.Delivery); ok {
		d.Done()
		c.n.Add(1)
	}
}

func newBroker(t testing.TB, cfg events.Config) (*genserver.System, *events.Broker) {
	t.Helper()
	sys := genserver.NewSystem(genserver.Config{Name: t.Name()})
	t.Cleanup(func() { _ = sys.Stop(context.Background()) })
	b, err := events.NewBroker(sys, cfg)
	if err != nil {
		t.Fatal(err)
	}
	return sys, b
}

func spawnSink(t testing.TB, sys *genserver.System, s *sink, opts ...genserver.Option) genserver.PID {
	t.Helper()
	pid, err := sys.Spawn(func() genserver.Server { return s }, opts...)
	if err != nil {
		t.Fatal(err)
	}
	return pid
}

func newSink(buf int, ack bool) *sink { return &sink{ch: make(chan got, buf), ack: ack} }

// recv returns the next message; the timeout only turns a hang into a
// failure, nothing waits for it to pass.
func recv(t testing.TB, ch <-chan got) got {
	t.Helper()
	select {
	case g := <-ch:
		return g
	case <-time.After(10 * time.Second):
		t.Fatal("no message")
		return got{}
	}
}

func recvDelivery(t testing.TB, ch <-chan got) (events.Delivery, genserver.PID) {
	t.Helper()
	g := recv(t, ch)
	d, ok := g.msg.(events.Delivery)
	if !ok {
		t.Fatalf("got %T %+v, want a Delivery", g.msg, g.msg)
	}
	return d, g.from
}

func publish(t testing.TB, b *events.Broker, pub genserver.PID, topic string, attrs ...events.Attr) int {
	t.Helper()
	n, err := b.Publish(pub, events.Event{Topic: topic, Attrs: attrs})
	if err != nil {
		t.Fatalf("Publish(%q): %v", topic, err)
	}
	return n
}

func subscribe(t testing.TB, b *events.Broker, pid genserver.PID, f events.Filter, opts ...events.SubOption) events.SubID {
	t.Helper()
	id, err := b.Subscribe(pid, f, opts...)
	if err != nil {
		t.Fatalf("Subscribe(%v): %v", f, err)
	}
	return id
}
