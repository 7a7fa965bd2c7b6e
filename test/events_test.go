package test

import (
	"context"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/enginekit/enginekit/events"
	"github.com/enginekit/enginekit/genserver"
	"github.com/enginekit/enginekit/keyholder"
	"github.com/enginekit/enginekit/netconn"
	"github.com/enginekit/enginekit/transport"
	"github.com/enginekit/enginekit/wire"
	"github.com/fxamacker/cbor/v2"
)

// withBroker gives a node an event broker and hands it to *b.
func withBroker(b **events.Broker) func(*transport.Config) {
	return func(c *transport.Config) {
		broker, err := events.NewBroker(c.System, events.Config{})
		if err != nil {
			panic(err)
		}
		*b, c.Broker = broker, broker
	}
}

// listener records the events it gets, in order.
type listener struct{ got chan<- *events.Event }

func (l *listener) HandleCall(*genserver.Process, genserver.From, any) (any, error) { return nil, nil }
func (l *listener) HandleCast(*genserver.Process, any)                              {}
func (l *listener) HandleInfo(_ *genserver.Process, msg any) {
	if d, ok := msg.(events.Delivery); ok {
		l.got <- d.Event
		d.Done()
	}
}

func order(id int, region string) events.Event {
	return events.Event{Topic: "orders.created", Attrs: []events.Attr{{Key: "region", Value: region}}, Payload: Note{id}}
}

func bytesOut(n *node) uint64 {
	var total uint64
	for _, c := range n.tr.Connections() {
		total += c.Stats.BytesOut
	}
	return total
}

// An engine on A asks for some of B's events; exactly the matching ones
// cross, in publish order; a spec update takes effect; forgetting the
// engine ends the traffic.
func TestRemoteSubscription(t *testing.T) {
	s := setup{"tcp", netconn.MACs}
	var broker *events.Broker
	a, b := newNode(t, "a", s), newNode(t, "b", s, withBroker(&broker))
	got := make(chan *events.Event, 100)
	filter := events.And(events.TopicPrefix("orders."), events.AttrEquals("region", "eu"))
	la, pid, err := a.tr.SpawnEngine("listener", func() genserver.Server { return &listener{got} },
		transport.WithSubscription(filter))
	must(t, err)
	connect(t, a, b, s)
	b.waitLearn(la) // B's proxy subscribed before OnLearn fired

	publisher := spawnPlain(t, b.sys)
	var want []int
	for i := 0; i < 30; i++ {
		region := []string{"eu", "us", "asia"}[i%3]
		ev := order(i, region)
		if i%5 == 4 {
			ev.Topic = "payments.made" // right region, wrong topic
		}
		if region == "eu" && ev.Topic == "orders.created" {
			want = append(want, i)
		}
		_, err := broker.Publish(publisher, ev)
		must(t, err)
	}
	for _, w := range want {
		select {
		case ev := <-got:
			if n := ev.Payload.(Note).N; n != w {
				t.Fatalf("got event %d, want %d (order or filtering wrong)", n, w)
			}
		case <-time.After(20 * time.Second):
			t.Fatalf("event %d never arrived", w)
		}
	}
	// Exactly those: a final matching marker comes right after the last one.
	_, err = broker.Publish(publisher, order(1000, "eu"))
	must(t, err)
	if ev := <-got; ev.Payload.(Note).N != 1000 {
		t.Fatalf("an unexpected event %v arrived", ev.Payload)
	}

	// Update: now only "us".
	must(t, a.tr.SetSubscription(la, events.AttrEquals("region", "us")))
	b.waitLearn(la)
	_, _ = broker.Publish(publisher, order(2000, "eu"))
	_, _ = broker.Publish(publisher, order(2001, "us"))
	if ev := <-got; ev.Payload.(Note).N != 2001 {
		t.Fatalf("after the update got %v, want 2001", ev.Payload)
	}

	// Forget: the engine stops; B's proxy and its subscription go.
	must(t, a.sys.StopProcess(ctxT(t), pid, nil))
	b.waitForget(la)
	before := bytesOut(b)
	n, _ := broker.Publish(publisher, order(3000, "us"))
	if after := bytesOut(b); after != before {
		t.Fatalf("B sent %d bytes for an event nobody remote wants (%d deliveries)", after-before, n)
	}
}

// With the default (empty) spec there is no subscription and not one byte
// of event traffic.
func TestEmptySpecSendsNothing(t *testing.T) {
	s := setup{"unix", netconn.Signatures}
	var broker *events.Broker
	a, b := newNode(t, "a", s), newNode(t, "b", s, withBroker(&broker))
	la, _, err := a.tr.SpawnEngine("quiet", func() genserver.Server { return &listener{make(chan *events.Event, 1)} })
	must(t, err)
	connect(t, a, b, s)
	b.waitLearn(la)
	if st := broker.Stats(); st.Subscriptions != 0 {
		t.Fatalf("%d subscriptions for an engine that asked for nothing", st.Subscriptions)
	}
	publisher := spawnPlain(t, b.sys)
	before := bytesOut(b)
	for i := 0; i < 100; i++ {
		if n, err := broker.Publish(publisher, order(i, "eu")); err != nil || n != 0 {
			t.Fatalf("publish: %d deliveries, %v", n, err)
		}
	}
	if after := bytesOut(b); after != before {
		t.Fatalf("%d bytes of event traffic with an empty spec", after-before)
	}
}

// A learn whose filter spec is hostile (far too deep) is refused: the
// engine is learned, without any subscription.
func TestHostileFilterRefused(t *testing.T) {
	s := setup{"tcp", netconn.MACs}
	var broker *events.Broker
	b := newNode(t, "b", s, withBroker(&broker))
	endpoint := b.listen(s)
	rk, err := keyholder.New(keyholder.Config{})
	must(t, err)
	eng, err := rk.NewEngine("deep")
	must(t, err)
	proof, err := rk.EngineProof(eng)
	must(t, err)
	// [not, [not, [not, ... ]]] nested 100 deep: cheap to send, and past
	// MaxFilterDepth.
	deep := []byte{}
	for i := 0; i < 100; i++ {
		deep = append(deep, 0x82, 0x09) // array(2), op 9 "not"
	}
	deep = append(deep, 0x81, 0x00) // [0]: "nothing"
	learn, _ := cbor.Marshal(map[int]any{1: eng[:], 2: proof, 4: deep})
	raw, err := net.Dial("tcp", strings.TrimPrefix(endpoint, "tcp://"))
	must(t, err)
	conn, err := netconn.NewClientConn(netconn.Config{Keyholder: rk, Auth: s.auth, Deliver: func(*netconn.Conn, *wire.Envelope) {}}, raw, b.kh.Router())
	must(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	served := make(chan error, 1)
	go func() { served <- conn.Serve(ctx) }()
	defer func() { cancel(); <-served }()
	must(t, conn.Send(ctx, &wire.Envelope{Kind: wire.Learn, Src: rk.Router(), Dst: b.kh.Router(), Payload: learn}))
	b.waitLearn(eng)
	if st := b.tr.Stats(); st.FiltersRefused != 1 {
		t.Fatalf("FiltersRefused = %d, want 1", st.FiltersRefused)
	}
	if st := broker.Stats(); st.Subscriptions != 0 {
		t.Fatalf("a hostile spec made %d subscriptions", st.Subscriptions)
	}
}

type plain struct{}

func (plain) HandleCall(*genserver.Process, genserver.From, any) (any, error) { return nil, nil }
func (plain) HandleCast(*genserver.Process, any)                              {}

func spawnPlain(t *testing.T, sys *genserver.System) genserver.PID {
	pid, err := sys.Spawn(func() genserver.Server { return plain{} })
	must(t, err)
	return pid
}
