package events_test

import (
	"context"
	"fmt"

	"github.com/enginekit/enginekit/events"
	"github.com/enginekit/enginekit/genserver"
)

// Auditor is an engine that subscribes to some events and reports them.
type Auditor struct {
	broker *events.Broker
	out    chan<- string
}

func (a *Auditor) Init(p *genserver.Process) error {
	// European orders over the "gold" and "silver" tiers, except tests.
	f := events.And(
		events.TopicPrefix("orders."),
		events.AttrEquals("region", "eu"),
		events.AttrOneOf("tier", "gold", "silver"),
		events.Not(events.AttrEquals("test", "yes")),
	)
	_, err := a.broker.Subscribe(p.Self(), f)
	return err
}

func (a *Auditor) HandleInfo(p *genserver.Process, msg any) {
	switch m := msg.(type) {
	case events.Delivery:
		a.out <- fmt.Sprintf("%s %v (missed %d)", m.Event.Topic, m.Event.Payload, m.Dropped)
		m.Done() // acknowledge: the subscription's window has room again
	case events.Overflowed:
		a.out <- "fell behind"
	}
}

func (a *Auditor) HandleCall(p *genserver.Process, from genserver.From, req any) (any, error) {
	return nil, nil
}
func (a *Auditor) HandleCast(p *genserver.Process, msg any) {}

func Example() {
	ctx := context.Background()
	sys := genserver.NewSystem(genserver.Config{Name: "example"})
	defer sys.Stop(ctx)
	broker, err := events.NewBroker(sys, events.Config{})
	if err != nil {
		panic(err)
	}
	out := make(chan string, 4)
	if _, err := sys.Spawn(func() genserver.Server { return &Auditor{broker: broker, out: out} }); err != nil {
		panic(err)
	}

	attrs := func(kv ...string) []events.Attr {
		var a []events.Attr
		for i := 0; i < len(kv); i += 2 {
			a = append(a, events.Attr{Key: kv[i], Value: kv[i+1]})
		}
		return a
	}
	for _, ev := range []events.Event{
		{Topic: "orders.created", Attrs: attrs("region", "eu", "tier", "gold"), Payload: 1001},
		{Topic: "orders.created", Attrs: attrs("region", "us", "tier", "gold"), Payload: 1002},
		{Topic: "orders.created", Attrs: attrs("region", "eu", "tier", "gold", "test", "yes"), Payload: 1003},
		{Topic: "orders.shipped", Attrs: attrs("region", "eu", "tier", "silver"), Payload: 1001},
	} {
		n, _ := broker.Publish(genserver.PID{}, ev)
		fmt.Println("delivered to", n)
	}
	fmt.Println(<-out)
	fmt.Println(<-out)

	// The spec is data: it can travel to another node and be checked there.
	f := events.Or(events.Topic("orders.created"), events.AttrPrefix("region", "eu"))
	b, _ := f.MarshalCBOR()
	g, err := events.DecodeFilter(b)
	fmt.Println(len(b), "bytes:", g, err)
	// Output:
	// delivered to 1
	// delivered to 0
	// delivered to 0
	// delivered to 1
	// orders.created 1001 (missed 0)
	// orders.shipped 1001 (missed 0)
	// 31 bytes: Or(Topic("orders.created"), AttrPrefix("region", "eu")) <nil>
}
