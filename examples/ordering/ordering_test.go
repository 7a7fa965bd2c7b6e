package ordering_test

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/enginekit/enginekit/events"
	"github.com/enginekit/enginekit/examples/ordering"
	"github.com/enginekit/enginekit/genserver"
	"github.com/enginekit/enginekit/payload"
)

// A Read of an ordered transaction is answered at once, with a copy.
func TestReadAfterOrder(t *testing.T) {
	sys := newSystem(t)
	obs := newObserver()
	eng := spawn(t, sys, obs.factory(ordering.Config{Broker: newBroker(t, sys)}))

	if h := submit(t, sys, eng, "a", "alpha"); h != 1 {
		t.Fatalf("first height: %d", h)
	}
	if h := submit(t, sys, eng, "b", "beta"); h != 2 {
		t.Fatalf("second height: %d", h)
	}
	_ = sys.Cast(eng, ordering.Submit{TxID: "c", Data: []byte("gamma")}) // a cast orders too
	for _, want := range []ordering.Tx{{"a", 1, []byte("alpha")}, {"b", 2, []byte("beta")}, {"c", 3, []byte("gamma")}} {
		tx := call[ordering.Tx](t, sys, eng, ordering.Read{TxID: want.TxID})
		if !txIs(tx, want.TxID, want.Height, string(want.Data)) {
			t.Fatalf("read %s: %+v", want.TxID, tx)
		}
	}
	if len(obs.deferred) != 0 {
		t.Fatal("a read of an ordered transaction was deferred")
	}

	// Data is copied in and out: nobody changes an ordered transaction
	// through a slice.
	in := []byte("delta")
	call[ordering.Height](t, sys, eng, ordering.Submit{TxID: "e", Data: in})
	in[0] = 'X'
	out := call[ordering.Tx](t, sys, eng, ordering.Read{TxID: "e"})
	out.Data[1] = 'Y'
	if tx := call[ordering.Tx](t, sys, eng, ordering.Read{TxID: "e"}); string(tx.Data) != "delta" {
		t.Fatalf("data changed through a caller's slice: %q", tx.Data)
	}
	if s := stats(t, sys, eng); s != (ordering.StatsReply{Height: 4}) {
		t.Fatalf("stats: %+v", s)
	}
}

// A Read of a transaction not ordered yet is deferred to a waiter process,
// which the order answers; then the waiter and its subscription are gone.
func TestReadBeforeOrder(t *testing.T) {
	sys := newSystem(t)
	b := newBroker(t, sys)
	obs := newObserver()
	eng := spawn(t, sys, obs.factory(ordering.Config{Broker: b}))
	base := sys.NumProcesses()

	out := make(chan result, 1)
	readAsync(context.Background(), sys, eng, "x", out)
	obs.waitDeferred(t, 1)
	if n := sys.NumProcesses(); n != base+1 {
		t.Fatalf("processes while the read waits: %d, want %d (one waiter)", n, base+1)
	}
	if s := stats(t, sys, eng); s.Waiting != 1 {
		t.Fatalf("waiting: %d", s.Waiting)
	}
	if s := b.Stats(); s.Subscriptions != 1 {
		t.Fatalf("subscriptions: %d", s.Subscriptions)
	}
	// Other transactions do not answer it.
	submit(t, sys, eng, "other", "o")
	select {
	case r := <-out:
		t.Fatalf("answered before its transaction was ordered: %+v", r)
	default:
	}

	h := submit(t, sys, eng, "x", "ex")
	if r := recv(t, out); r.err != nil || !txIs(r.tx, "x", h, "ex") {
		t.Fatalf("deferred read: %+v", r)
	}
	obs.waitDowns(t, 1)
	if n := sys.NumProcesses(); n != base {
		t.Fatalf("processes after the reply: %d, want %d", n, base)
	}
	if s := stats(t, sys, eng); s.Waiting != 0 {
		t.Fatalf("waiting after the reply: %d", s.Waiting)
	}
	if s := b.Stats(); s.Subscriptions != 0 {
		t.Fatalf("subscriptions after the reply: %d", s.Subscriptions)
	}
}

// 200 readers wait on 50 transactions at once, each in its own waiter; the
// orders, made concurrently and in random order, answer every one.
func TestManyWaitingReaders(t *testing.T) {
	const txs, perTx = 50, 4
	sys := newSystem(t)
	b := newBroker(t, sys)
	obs := newObserver()
	eng := spawn(t, sys, obs.factory(ordering.Config{Broker: b}))
	base := sys.NumProcesses()
	ctx := context.Background()

	id := func(i int) string { return fmt.Sprintf("tx-%02d", i) }
	out := make(chan result, txs*perTx)
	for i := range txs * perTx {
		readAsync(ctx, sys, eng, id(i%txs), out)
	}
	obs.waitDeferred(t, txs*perTx)
	if s := stats(t, sys, eng); s.Waiting != txs*perTx {
		t.Fatalf("waiting: %d", s.Waiting)
	}
	if n := sys.NumProcesses(); n != base+txs*perTx {
		t.Fatalf("processes: %d, want %d", n, base+txs*perTx)
	}

	heights := make([]ordering.Height, txs)
	var wg sync.WaitGroup
	for _, i := range rand.Perm(txs) {
		wg.Go(func() { heights[i] = submitAsync(t, sys, eng, id(i), id(i)) })
	}
	wg.Wait()
	got := make(map[string]int)
	for range txs * perTx {
		r := recv(t, out)
		if r.err != nil {
			t.Fatal(r.err)
		}
		var i int
		if _, err := fmt.Sscanf(r.tx.TxID, "tx-%d", &i); err != nil || !txIs(r.tx, id(i), heights[i], id(i)) {
			t.Fatalf("read got %+v; %s was ordered at %d", r.tx, r.tx.TxID, heights[i])
		}
		got[r.tx.TxID]++
	}
	for i := range txs {
		if got[id(i)] != perTx {
			t.Fatalf("%s answered %d times, want %d", id(i), got[id(i)], perTx)
		}
	}
	obs.waitDowns(t, txs*perTx)
	if n := sys.NumProcesses(); n != base {
		t.Fatalf("processes after the replies: %d, want %d", n, base)
	}
	if s := b.Stats(); s.Subscriptions != 0 || s.Published != txs {
		t.Fatalf("broker: %+v", s)
	}
}

// A waiter ends with its caller: at the caller's deadline, or at its next
// check after the caller gave up early. Nothing is left behind, and the
// transaction can still be ordered and read.
func TestReaderGivesUp(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		sys := newSystem(t)
		b := newBroker(t, sys)
		eng := spawn(t, sys, ordering.New(ordering.Config{Broker: b}))
		base := sys.NumProcesses()
		gone := func(what string) {
			t.Helper()
			synctest.Wait()
			if n, s, st := sys.NumProcesses(), b.Stats(), stats(t, sys, eng); n != base || s.Subscriptions != 0 || st.Waiting != 0 {
				t.Fatalf("%s: %d processes (want %d), %d subscriptions, %d waiting", what, n, base, s.Subscriptions, st.Waiting)
			}
		}

		// The deadline passes.
		ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
		defer cancel()
		start := time.Now()
		_, err := genserver.Call[ordering.Tx](ctx, sys, eng, ordering.Read{TxID: "late"})
		if !errors.Is(err, genserver.ErrTimeout) || time.Since(start) != 100*time.Millisecond {
			t.Fatalf("read with a deadline: %v after %v", err, time.Since(start))
		}
		gone("after the deadline")
		if h := submit(t, sys, eng, "late", "l"); h != 1 {
			t.Fatalf("order after the reader gave up: %d", h)
		}
		if tx := call[ordering.Tx](t, sys, eng, ordering.Read{TxID: "late"}); !txIs(tx, "late", 1, "l") {
			t.Fatalf("read after the order: %+v", tx)
		}

		// The caller cancels long before its deadline (DefaultCallTimeout):
		// the waiter notices at its next check.
		ctx, cancel = context.WithCancel(context.Background())
		out := make(chan result, 1)
		readAsync(ctx, sys, eng, "never", out)
		synctest.Wait()
		if n := sys.NumProcesses(); n != base+1 {
			t.Fatalf("processes while waiting: %d, want %d", n, base+1)
		}
		cancel()
		if r := <-out; !errors.Is(r.err, context.Canceled) {
			t.Fatalf("cancelled read: %+v", r)
		}
		synctest.Wait()
		if n := sys.NumProcesses(); n != base+1 {
			t.Fatal("the waiter exited before its check")
		}
		time.Sleep(ordering.DefaultWaiterCheck) // fake time: the check fires
		gone("after the check")
		if h := submit(t, sys, eng, "never", "n"); h != 2 {
			t.Fatalf("order after the reader cancelled: %d", h)
		}

		// A shorter WaiterCheck notices sooner.
		eng2 := spawn(t, sys, ordering.New(ordering.Config{Broker: b, Topic: "ordering.second", WaiterCheck: 10 * time.Millisecond}))
		base = sys.NumProcesses()
		ctx, cancel = context.WithCancel(context.Background())
		readAsync(ctx, sys, eng2, "x", out)
		synctest.Wait()
		cancel()
		<-out
		time.Sleep(10 * time.Millisecond)
		synctest.Wait()
		if n := sys.NumProcesses(); n != base {
			t.Fatalf("processes 10ms after the cancel: %d, want %d", n, base)
		}
	})
}

// An order racing a Read of the same transaction: whichever the engine
// handles first, the Read gets the height the order gave. Both sides start
// together from their own goroutines; the order is a call or a cast.
func TestOrderRacesRead(t *testing.T) {
	const n = 300
	sys := newSystem(t)
	b := newBroker(t, sys)
	obs := newObserver()
	eng := spawn(t, sys, obs.factory(ordering.Config{Broker: b}))
	base := sys.NumProcesses()
	ctx := context.Background()

	start := make(chan struct{})
	reads := make([]result, n)
	heights := make([]ordering.Height, n)
	var wg sync.WaitGroup
	for i := range n {
		id := fmt.Sprint("race-", i)
		wg.Go(func() {
			<-start
			tx, err := genserver.Call[ordering.Tx](ctx, sys, eng, ordering.Read{TxID: id})
			reads[i] = result{tx, err}
		})
		wg.Go(func() {
			<-start
			req := ordering.Submit{TxID: id, Data: []byte(id)}
			if i%2 == 1 {
				if err := sys.Cast(eng, req); err != nil {
					t.Error(err)
				}
				return
			}
			h, err := genserver.Call[ordering.Height](ctx, sys, eng, req)
			if err != nil {
				t.Error(err)
			}
			heights[i] = h
		})
	}
	close(start)
	wg.Wait()

	seen := make(map[ordering.Height]bool)
	for i, r := range reads {
		id := fmt.Sprint("race-", i)
		if r.err != nil || r.tx.TxID != id || string(r.tx.Data) != id || r.tx.Height < 1 || r.tx.Height > n {
			t.Fatalf("read of %s: %+v", id, r)
		}
		if i%2 == 0 && r.tx.Height != heights[i] {
			t.Fatalf("read of %s: height %d, the order gave %d", id, r.tx.Height, heights[i])
		}
		if seen[r.tx.Height] {
			t.Fatalf("height %d read twice", r.tx.Height)
		}
		seen[r.tx.Height] = true
	}
	deferred := len(obs.deferred)
	t.Logf("%d of %d reads came before their order and were deferred", deferred, n)
	obs.waitDowns(t, deferred)
	if n := sys.NumProcesses(); n != base {
		t.Fatalf("processes after the race: %d, want %d", n, base)
	}
	if s := b.Stats(); s.Subscriptions != 0 {
		t.Fatalf("subscriptions after the race: %d", s.Subscriptions)
	}
}

// hold is a request the tapped engine blocks on until release is closed, so
// that a test can line messages up in its mailbox.
type hold struct{ release <-chan struct{} }

// The closest an order can come to a Read: queued right behind it, handled
// in the same batch, before the waiter has run at all. And the other way
// round: an order queued right before the Read answers it at once.
func TestOrderRightBehindRead(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		sys := newSystem(t)
		obs := newObserver()
		eng := spawn(t, sys, obs.holdingFactory(ordering.Config{Broker: newBroker(t, sys)}))
		ctx := context.Background()

		for _, orderFirst := range []bool{false, true} {
			id := fmt.Sprint("order-first-", orderFirst)
			release := make(chan struct{})
			go func() { _, _ = sys.Call(ctx, eng, hold{release}) }()
			synctest.Wait() // the engine is busy
			out := make(chan result, 1)
			if orderFirst {
				_ = sys.Cast(eng, ordering.Submit{TxID: id, Data: []byte("d")})
				readAsync(ctx, sys, eng, id, out)
			} else {
				readAsync(ctx, sys, eng, id, out)
				synctest.Wait() // the Read is queued
				_ = sys.Cast(eng, ordering.Submit{TxID: id, Data: []byte("d")})
			}
			synctest.Wait()
			close(release)
			r := <-out
			if r.err != nil || r.tx.TxID != id || r.tx.Height == 0 {
				t.Fatalf("%s: %+v", id, r)
			}
			synctest.Wait()
			if deferred := len(obs.deferred) == 1; deferred == orderFirst {
				t.Fatalf("%s: deferred %v", id, deferred)
			}
			if len(obs.deferred) == 1 {
				<-obs.deferred
			}
		}
	})
}

// holdingFactory is factory whose engines also serve hold.
func (o *observer) holdingFactory(cfg ordering.Config) func() genserver.Server {
	f := o.factory(cfg)
	return func() genserver.Server { return &holdingTap{f().(*tap)} }
}

type holdingTap struct{ *tap }

func (h *holdingTap) HandleCall(p *genserver.Process, from genserver.From, req any) (any, error) {
	if r, ok := req.(hold); ok {
		<-r.release
		return nil, nil
	}
	return h.tap.HandleCall(p, from, req)
}

// Submit is idempotent on TxID: the same transaction again gets its height
// back and publishes nothing; other data under the same TxID is refused.
func TestIdempotentSubmit(t *testing.T) {
	sys := newSystem(t)
	b := newBroker(t, sys)
	eng := spawn(t, sys, ordering.New(ordering.Config{Broker: b}))
	followed := make(chan ordering.Tx, 16)
	spawn(t, sys, func() genserver.Server {
		return &follower{broker: b, topic: ordering.DefaultTopic, txs: followed}
	})
	ctx := context.Background()

	if h := submit(t, sys, eng, "a", "x"); h != 1 {
		t.Fatalf("first submit: %d", h)
	}
	if h := submit(t, sys, eng, "a", "x"); h != 1 {
		t.Fatalf("same submit again: %d", h)
	}
	_ = sys.Cast(eng, ordering.Submit{TxID: "a", Data: []byte("x")})
	_, err := sys.Call(ctx, eng, ordering.Submit{TxID: "a", Data: []byte("y")})
	if !errors.Is(err, ordering.ErrConflict) {
		t.Fatalf("other data under the same TxID: %v", err)
	}
	_ = sys.Cast(eng, ordering.Submit{TxID: "a", Data: []byte("z")}) // refused, logged
	// nil and empty Data are the same data (they are on the wire).
	submit(t, sys, eng, "empty", "")
	if h, err := genserver.Call[ordering.Height](ctx, sys, eng, ordering.Submit{TxID: "empty", Data: nil}); err != nil || h != 2 {
		t.Fatalf("empty data again as nil: %d %v", h, err)
	}
	if h := submit(t, sys, eng, "b", "x"); h != 3 {
		t.Fatalf("next transaction: %d", h)
	}
	if s := stats(t, sys, eng); s != (ordering.StatsReply{Height: 3, Duplicates: 3}) {
		t.Fatalf("stats: %+v", s)
	}
	if tx := call[ordering.Tx](t, sys, eng, ordering.Read{TxID: "a"}); !txIs(tx, "a", 1, "x") {
		t.Fatalf("read a: %+v", tx)
	}
	// One event per ordered transaction, in height order: the duplicates
	// published nothing.
	for _, want := range []string{"a", "empty", "b"} {
		tx := nextTx(t, followed)
		if tx.TxID != want {
			t.Fatalf("event for %s, want %s", tx.TxID, want)
		}
	}
	if s := b.Stats(); s.Published != 3 {
		t.Fatalf("published: %d", s.Published)
	}
}

// Bad ids, unknown requests and bad configs are refused; nothing crashes.
func TestRefusals(t *testing.T) {
	sys := newSystem(t)
	eng := spawn(t, sys, ordering.New(ordering.Config{Broker: newBroker(t, sys)}))
	ctx := context.Background()
	for _, id := range []string{"", "\xff", strings.Repeat("x", ordering.MaxTxID+1)} {
		if _, err := sys.Call(ctx, eng, ordering.Submit{TxID: id}); !errors.Is(err, ordering.ErrInvalidTx) {
			t.Fatalf("submit of %.8q: %v", id, err)
		}
		if _, err := sys.Call(ctx, eng, ordering.Read{TxID: id}); !errors.Is(err, ordering.ErrInvalidTx) {
			t.Fatalf("read of %.8q: %v", id, err)
		}
	}
	if h := submit(t, sys, eng, strings.Repeat("x", ordering.MaxTxID), ""); h != 1 {
		t.Fatalf("submit of the longest id: %d", h)
	}
	if _, err := sys.Call(ctx, eng, "what?"); !errors.Is(err, ordering.ErrUnknownRequest) {
		t.Fatalf("unknown request: %v", err)
	}
	_ = sys.Cast(eng, "what?") // ignored
	if s := stats(t, sys, eng); s.Height != 1 {
		t.Fatalf("stats: %+v", s)
	}

	for _, cfg := range []ordering.Config{{WaiterCheck: -time.Second}, {Topic: "\xff"}} {
		if _, err := sys.Spawn(ordering.New(cfg)); !errors.Is(err, ordering.ErrBadConfig) {
			t.Fatalf("spawn with %+v: %v", cfg, err)
		}
	}
}

// MaxWaiters bounds the waiters; a slot frees up when a waiter ends.
func TestMaxWaiters(t *testing.T) {
	sys := newSystem(t)
	obs := newObserver()
	eng := spawn(t, sys, obs.factory(ordering.Config{Broker: newBroker(t, sys), MaxWaiters: 2}))
	ctx := context.Background()

	out := make(chan result, 3)
	readAsync(ctx, sys, eng, "a", out)
	readAsync(ctx, sys, eng, "b", out)
	obs.waitDeferred(t, 2)
	if _, err := sys.Call(ctx, eng, ordering.Read{TxID: "c"}); !errors.Is(err, ordering.ErrTooManyWaiters) {
		t.Fatalf("third waiting read: %v", err)
	}
	submit(t, sys, eng, "b", "")
	if r := recv(t, out); r.err != nil || r.tx.TxID != "b" {
		t.Fatalf("read of b: %+v", r)
	}
	obs.waitDowns(t, 1)
	readAsync(ctx, sys, eng, "c", out)
	obs.waitDeferred(t, 1)
	submit(t, sys, eng, "a", "")
	submit(t, sys, eng, "c", "")
	for range 2 {
		if r := recv(t, out); r.err != nil {
			t.Fatal(r.err)
		}
	}
}

// When the engine exits, its waiting callers fail at once (their calls
// monitor it) and its waiters exit (they monitor it too).
func TestEngineExitEndsWaiters(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		sys := newSystem(t)
		b := newBroker(t, sys)
		eng := spawn(t, sys, ordering.New(ordering.Config{Broker: b}))
		ctx := context.Background()
		out := make(chan result, 3)
		for _, id := range []string{"a", "b", "b"} {
			readAsync(ctx, sys, eng, id, out)
		}
		synctest.Wait()
		if n := sys.NumProcesses(); n != 2+3 {
			t.Fatalf("processes: %d", n)
		}
		if err := sys.StopProcess(ctx, eng, nil); err != nil {
			t.Fatal(err)
		}
		for range 3 {
			if r := <-out; !errors.Is(r.err, genserver.ErrExited) {
				t.Fatalf("waiting read when the engine stopped: %+v", r)
			}
		}
		synctest.Wait()
		if n, s := sys.NumProcesses(), b.Stats(); n != 1 || s.Subscriptions != 0 {
			t.Fatalf("after the engine stopped: %d processes (want the broker alone), %d subscriptions", n, s.Subscriptions)
		}
	})
}

// Without a shared broker, each incarnation runs a private one, which goes
// with it, also when it is killed (Terminate does not run then: the link
// takes the broker down).
func TestPrivateBroker(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		sys := newSystem(t)
		ctx := context.Background()
		for _, stop := range []func(genserver.PID) error{
			func(pid genserver.PID) error { return sys.StopProcess(ctx, pid, nil) },
			func(pid genserver.PID) error { return sys.Kill(pid) },
		} {
			eng := spawn(t, sys, ordering.New(ordering.Config{}))
			if n := sys.NumProcesses(); n != 2 {
				t.Fatalf("processes: %d, want the engine and its broker", n)
			}
			out := make(chan result, 1)
			readAsync(ctx, sys, eng, "a", out)
			synctest.Wait()
			submit(t, sys, eng, "a", "x")
			if r := <-out; r.err != nil || !txIs(r.tx, "a", 1, "x") {
				t.Fatalf("deferred read: %+v", r)
			}
			if err := stop(eng); err != nil {
				t.Fatal(err)
			}
			synctest.Wait()
			if n := sys.NumProcesses(); n != 0 {
				t.Fatalf("processes after the engine exited: %d", n)
			}
		}
	})
}

// Events are for everyone on the broker, but a waiter takes its answer only
// from its engine: an event for the same transaction from another publisher
// does not answer it.
func TestWaiterIgnoresOtherPublishers(t *testing.T) {
	sys := newSystem(t)
	b := newBroker(t, sys)
	obs := newObserver()
	eng := spawn(t, sys, obs.factory(ordering.Config{Broker: b}))

	out := make(chan result, 1)
	readAsync(context.Background(), sys, eng, "f", out)
	obs.waitDeferred(t, 1)
	forged := events.Event{
		Topic:   ordering.DefaultTopic,
		Attrs:   []events.Attr{{Key: ordering.TxIDAttr, Value: "f"}},
		Payload: ordering.Tx{TxID: "f", Height: 99},
	}
	if n, err := b.Publish(genserver.PID{}, forged); n != 1 || err != nil {
		t.Fatalf("forged event: delivered to %d, %v", n, err)
	}
	// The forged event is ahead of the real one in the waiter's mailbox.
	submit(t, sys, eng, "f", "real")
	if r := recv(t, out); r.err != nil || !txIs(r.tx, "f", 1, "real") {
		t.Fatalf("read: %+v", r)
	}
}

func TestRegister(t *testing.T) {
	reg, err := payload.NewRegistry(payload.Limits{})
	if err != nil {
		t.Fatal(err)
	}
	if err := ordering.Register(reg); err != nil {
		t.Fatal(err)
	}
	for _, v := range []any{
		ordering.Submit{TxID: "a", Data: []byte{1}},
		ordering.Read{TxID: "a"},
		ordering.Tx{TxID: "a", Height: 7, Data: []byte{2}},
		ordering.Height(7),
		ordering.Stats{},
		ordering.StatsReply{Height: 7, Waiting: 1, Duplicates: 2},
	} {
		bs, err := reg.Marshal(v)
		if err != nil {
			t.Fatalf("%T: %v", v, err)
		}
		back, err := reg.Unmarshal(bs)
		if err != nil || fmt.Sprintf("%#v", back) != fmt.Sprintf("%#v", v) {
			t.Fatalf("%T round trip: %#v %v", v, back, err)
		}
	}
	if err := ordering.Register(reg); err == nil {
		t.Fatal("registering twice succeeded")
	}
}
