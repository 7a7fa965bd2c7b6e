package ordering_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/enginekit/enginekit/events"
	"github.com/enginekit/enginekit/examples/ordering"
	"github.com/enginekit/enginekit/genserver"
	"github.com/enginekit/enginekit/netconn"
	"github.com/enginekit/enginekit/payload"
	"github.com/enginekit/enginekit/testkit"
	"github.com/enginekit/enginekit/transport"
)

// newPair starts two connected nodes, a and b, that know the example's
// payload types.
func newPair(t *testing.T, network string, auth netconn.Auth) (a, b *testkit.Node) {
	c := testkit.Start(t, testkit.Options{Network: testkit.Network(network), Auth: auth, Register: []func(*payload.Registry) error{ordering.Register}})
	return c.Nodes[0], c.Nodes[1]
}

func TestAcrossNodes(t *testing.T) {
	for _, s := range []struct {
		network string
		auth    netconn.Auth
	}{{"tcp", netconn.Signatures}, {"unix", netconn.MACs}} {
		t.Run(s.network+"/"+s.auth.String(), func(t *testing.T) {
			a, b := newPair(t, s.network, s.auth)
			obs := newObserver()
			engAddr, _, err := b.Transport().SpawnEngine("ordering", obs.factory(ordering.Config{Broker: b.Broker()}))
			if err != nil {
				t.Fatal(err)
			}
			eng := genserver.Name(engAddr.String())
			followed := make(chan ordering.Tx, 1024)
			folAddr, _, err := a.Transport().SpawnEngine("follower",
				func() genserver.Server { return &follower{txs: followed} },
				transport.WithSubscription(events.Topic(ordering.DefaultTopic)))
			if err != nil {
				t.Fatal(err)
			}
			a.WaitLearn(t, engAddr)
			b.WaitLearn(t, folAddr)
			base := b.System().NumProcesses()
			ctx, cancel := context.WithTimeout(context.Background(), waitFor)
			defer cancel()

			// Read after order: at once.
			if h := submit(t, a.System(), eng, "first", "1"); h != 1 {
				t.Fatalf("submit from a: %d", h)
			}
			if tx := call[ordering.Tx](t, a.System(), eng, ordering.Read{TxID: "first"}); !txIs(tx, "first", 1, "1") {
				t.Fatalf("read from a: %+v", tx)
			}
			if len(obs.deferred) != 0 {
				t.Fatal("a read of an ordered transaction was deferred")
			}

			// Read before order: deferred on b, answered by an order from
			// either node; the waiter's reply crosses back to a.
			for _, producer := range []*genserver.System{a.System(), b.System()} {
				id := "from-" + producer.Name()
				out := make(chan result, 1)
				readAsync(ctx, a.System(), eng, id, out)
				obs.waitDeferred(t, 1)
				h := submit(t, producer, eng, id, id)
				if r := recv(t, out); r.err != nil || !txIs(r.tx, id, h, id) {
					t.Fatalf("deferred read of %s: %+v", id, r)
				}
				obs.waitDowns(t, 1)
			}

			// Many readers on a, waiting at once on b.
			const txs, perTx = 20, 5
			id := func(i int) string { return fmt.Sprintf("many-%02d", i) }
			out := make(chan result, txs*perTx)
			for i := range txs * perTx {
				readAsync(ctx, a.System(), eng, id(i%txs), out)
			}
			obs.waitDeferred(t, txs*perTx)
			if n := b.System().NumProcesses(); n != base+txs*perTx {
				t.Fatalf("processes on b: %d, want %d", n, base+txs*perTx)
			}
			heights := make([]ordering.Height, txs)
			var wg sync.WaitGroup
			for i := range txs {
				wg.Go(func() { heights[i] = submitAsync(t, a.System(), eng, id(i), id(i)) })
			}
			wg.Wait()
			for range txs * perTx {
				r := recv(t, out)
				var i int
				if _, err := fmt.Sscanf(r.tx.TxID, "many-%d", &i); r.err != nil || err != nil || !txIs(r.tx, id(i), heights[i], id(i)) {
					t.Fatalf("many readers: %+v", r)
				}
			}
			obs.waitDowns(t, txs*perTx)

			// A reader on a whose deadline passes: its call fails on a, and
			// its waiter on b ends at the same deadline, which travelled
			// with the call.
			tctx, tcancel := context.WithTimeout(ctx, 200*time.Millisecond)
			_, err = a.System().Call(tctx, eng, ordering.Read{TxID: "late"})
			tcancel()
			if !errors.Is(err, genserver.ErrTimeout) {
				t.Fatalf("read from a past its deadline: %v", err)
			}
			obs.waitDeferred(t, 1)
			obs.waitDowns(t, 1)
			if n := b.System().NumProcesses(); n != base {
				t.Fatalf("processes on b after the reader gave up: %d, want %d", n, base)
			}
			h := submit(t, a.System(), eng, "late", "l")
			if tx := call[ordering.Tx](t, a.System(), eng, ordering.Read{TxID: "late"}); !txIs(tx, "late", h, "l") {
				t.Fatalf("read after the order: %+v", tx)
			}

			// Orders racing reads, both from a.
			const races = 50
			start := make(chan struct{})
			reads := make([]result, races)
			raced := make([]ordering.Height, races)
			for i := range races {
				id := fmt.Sprint("race-", i)
				wg.Go(func() {
					<-start
					tx, err := genserver.Call[ordering.Tx](ctx, a.System(), eng, ordering.Read{TxID: id})
					reads[i] = result{tx, err}
				})
				wg.Go(func() {
					<-start
					raced[i] = submitAsync(t, a.System(), eng, id, id)
				})
			}
			close(start)
			wg.Wait()
			for i, r := range reads {
				if id := fmt.Sprint("race-", i); r.err != nil || !txIs(r.tx, id, raced[i], id) {
					t.Fatalf("raced read of %s: %+v, ordered at %d", id, r, raced[i])
				}
			}
			obs.waitDowns(t, len(obs.deferred))

			// Idempotent submit; a handler's error crosses as its text.
			if h := submit(t, a.System(), eng, "first", "1"); h != 1 {
				t.Fatalf("submit again from a: %d", h)
			}
			_, err = a.System().Call(ctx, eng, ordering.Submit{TxID: "first", Data: []byte("other")})
			if err == nil || !strings.Contains(err.Error(), ordering.ErrConflict.Error()) {
				t.Fatalf("conflicting submit from a: %v", err)
			}
			st := stats(t, a.System(), eng)
			if st.Waiting != 0 || st.Duplicates != 1 {
				t.Fatalf("stats: %+v", st)
			}
			if n := b.System().NumProcesses(); n != base {
				t.Fatalf("processes on b at the end: %d, want %d", n, base)
			}

			// The follower on a saw every ordered transaction once, in
			// height order.
			for h := ordering.Height(1); h <= st.Height; h++ {
				if tx := nextTx(t, followed); tx.Height != h {
					t.Fatalf("followed event %d: %+v", h, tx)
				}
			}
		})
	}
}
