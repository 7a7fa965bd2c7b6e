package ordering_test

import (
	"context"
	"testing"
	"time"

	"github.com/enginekit/enginekit/events"
	"github.com/enginekit/enginekit/examples/ordering"
	"github.com/enginekit/enginekit/genserver"
)

// waitFor bounds every wait on an event; it only matters when a test fails.
// Inside a synctest bubble the clock is fake, so it costs nothing there.
const waitFor = 20 * time.Second

// observer is what a tapped engine reports, so tests wait for the event
// itself instead of sleeping or polling.
type observer struct {
	deferred chan string        // the TxID of each Read the engine deferred
	downs    chan genserver.PID // each waiter whose Down the engine handled
}

func newObserver() *observer {
	return &observer{deferred: make(chan string, 4096), downs: make(chan genserver.PID, 4096)}
}

// factory returns ordering.New(cfg), each incarnation wrapped in a tap.
func (o *observer) factory(cfg ordering.Config) func() genserver.Server {
	inner := ordering.New(cfg)
	return func() genserver.Server { return &tap{srv: inner(), obs: o} }
}

// waitDeferred waits until n Reads have been deferred, and returns their
// TxIDs.
func (o *observer) waitDeferred(t testing.TB, n int) []string {
	t.Helper()
	ids := make([]string, 0, n)
	for len(ids) < n {
		select {
		case id := <-o.deferred:
			ids = append(ids, id)
		case <-time.After(waitFor):
			t.Fatalf("%d Reads deferred, want %d", len(ids), n)
		}
	}
	return ids
}

// waitDowns waits until the engine has seen n waiters exit.
func (o *observer) waitDowns(t testing.TB, n int) {
	t.Helper()
	for i := range n {
		select {
		case <-o.downs:
		case <-time.After(waitFor):
			t.Fatalf("%d waiters exited, want %d", i, n)
		}
	}
}

// tap delegates every callback to an ordering engine and reports deferred
// Reads and handled Downs to its observer.
type tap struct {
	srv genserver.Server
	obs *observer
}

func (t *tap) Init(p *genserver.Process) error { return t.srv.(genserver.Initer).Init(p) }

func (t *tap) HandleCall(p *genserver.Process, from genserver.From, req any) (any, error) {
	v, err := t.srv.HandleCall(p, from, req)
	if v == genserver.NoReply {
		t.obs.deferred <- req.(ordering.Read).TxID
	}
	return v, err
}

func (t *tap) HandleCast(p *genserver.Process, msg any) { t.srv.HandleCast(p, msg) }

func (t *tap) HandleInfo(p *genserver.Process, msg any) {
	t.srv.(genserver.InfoHandler).HandleInfo(p, msg)
	if d, ok := msg.(genserver.Down); ok {
		t.obs.downs <- d.PID
	}
}

func (t *tap) Terminate(p *genserver.Process, reason error) {
	t.srv.(genserver.Terminator).Terminate(p, reason)
}

// follower is a process subscribed to the ordered events; it passes on
// each event's Tx, and, on another node, the events its proxy forwards.
type follower struct {
	broker *events.Broker // nil on a node where the subscription is the transport's
	topic  string
	txs    chan<- ordering.Tx
}

func (f *follower) Init(p *genserver.Process) error {
	if f.broker == nil {
		return nil
	}
	_, err := f.broker.Subscribe(p.Self(), events.Topic(f.topic))
	return err
}

func (f *follower) HandleInfo(_ *genserver.Process, msg any) {
	if d, ok := msg.(events.Delivery); ok {
		f.txs <- d.Event.Payload.(ordering.Tx)
		d.Done()
	}
}

func (f *follower) HandleCall(*genserver.Process, genserver.From, any) (any, error) { return nil, nil }
func (f *follower) HandleCast(*genserver.Process, any)                              {}

func nextTx(t testing.TB, txs <-chan ordering.Tx) ordering.Tx {
	t.Helper()
	select {
	case tx := <-txs:
		return tx
	case <-time.After(waitFor):
		t.Fatal("no ordered event")
		return ordering.Tx{}
	}
}

// call makes a call that must succeed.
func call[T any](t testing.TB, c genserver.Caller, dest genserver.Dest, req any) T {
	t.Helper()
	v, err := genserver.Call[T](context.Background(), c, dest, req)
	if err != nil {
		t.Fatalf("%T%+v: %v", req, req, err)
	}
	return v
}

func submit(t testing.TB, c genserver.Caller, eng genserver.Dest, id, data string) ordering.Height {
	t.Helper()
	return call[ordering.Height](t, c, eng, ordering.Submit{TxID: id, Data: []byte(data)})
}

// submitAsync is submit for goroutines other than the test's: a failure is
// reported with t.Error, and the height is 0.
func submitAsync(t testing.TB, c genserver.Caller, eng genserver.Dest, id, data string) ordering.Height {
	h, err := genserver.Call[ordering.Height](context.Background(), c, eng, ordering.Submit{TxID: id, Data: []byte(data)})
	if err != nil {
		t.Errorf("submit %s: %v", id, err)
	}
	return h
}

func stats(t testing.TB, c genserver.Caller, eng genserver.Dest) ordering.StatsReply {
	t.Helper()
	return call[ordering.StatsReply](t, c, eng, ordering.Stats{})
}

// result is what an asynchronous Read got.
type result struct {
	tx  ordering.Tx
	err error
}

// readAsync makes a Read from its own goroutine and sends the result to out.
func readAsync(ctx context.Context, c genserver.Caller, eng genserver.Dest, id string, out chan<- result) {
	go func() {
		tx, err := genserver.Call[ordering.Tx](ctx, c, eng, ordering.Read{TxID: id})
		out <- result{tx, err}
	}()
}

func recv(t testing.TB, ch <-chan result) result {
	t.Helper()
	select {
	case r := <-ch:
		return r
	case <-time.After(waitFor):
		t.Fatal("no reply")
		return result{}
	}
}

func txIs(tx ordering.Tx, id string, h ordering.Height, data string) bool {
	return tx.TxID == id && tx.Height == h && string(tx.Data) == data
}

// newSystem returns a System stopped at the end of the test.
func newSystem(t testing.TB) *genserver.System {
	sys := genserver.NewSystem(genserver.Config{Name: "ordtest"})
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), waitFor)
		defer cancel()
		if err := sys.Stop(ctx); err != nil {
			t.Error(err)
		}
	})
	return sys
}

func newBroker(t testing.TB, sys *genserver.System) *events.Broker {
	t.Helper()
	b, err := events.NewBroker(sys, events.Config{})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func spawn(t testing.TB, sys *genserver.System, factory func() genserver.Server) genserver.PID {
	t.Helper()
	pid, err := sys.Spawn(factory)
	if err != nil {
		t.Fatal(err)
	}
	return pid
}
