package ordering_test

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/enginekit/enginekit/events"
	"github.com/enginekit/enginekit/examples/ordering"
	"github.com/enginekit/enginekit/genserver"
	"github.com/enginekit/enginekit/keyholder"
	"github.com/enginekit/enginekit/netconn"
	"github.com/enginekit/enginekit/transport"
	"github.com/enginekit/enginekit/wire"
)

// node is one enginekit node: a System with its event broker, a keyholder
// and a transport whose Registry knows the ordering types and which
// forwards events to the foreign engines that ask for them.
type node struct {
	sys     *genserver.System
	broker  *events.Broker
	kh      *keyholder.Keyholder
	tr      *transport.Transport
	learned chan keyholder.Address
}

func newNode(t *testing.T, name string, auth netconn.Auth) *node {
	t.Helper()
	kh, err := keyholder.New(keyholder.Config{})
	if err != nil {
		t.Fatal(err)
	}
	reg, err := wire.NewRegistry(wire.Limits{})
	if err != nil {
		t.Fatal(err)
	}
	if err := ordering.Register(reg); err != nil {
		t.Fatal(err)
	}
	n := &node{
		sys:     genserver.NewSystem(genserver.Config{Name: name}),
		kh:      kh,
		learned: make(chan keyholder.Address, 64),
	}
	if n.broker, err = events.NewBroker(n.sys, events.Config{}); err != nil {
		t.Fatal(err)
	}
	cfg := transport.Config{
		System: n.sys, Keyholder: kh, Registry: reg, Auth: auth, Broker: n.broker,
		OnLearn: func(e, _ keyholder.Address) { n.learned <- e },
	}
	cfg.Net.Backoff = netconn.Backoff{Min: 5 * time.Millisecond, Max: 50 * time.Millisecond}
	if n.tr, err = transport.New(cfg); err != nil {
		t.Fatal(err)
	}
	if err := n.tr.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := n.tr.Close(); err != nil {
			t.Error(err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), waitFor)
		defer cancel()
		if err := n.sys.Stop(ctx); err != nil {
			t.Error(err)
		}
	})
	return n
}

func (n *node) waitLearn(t *testing.T, engine keyholder.Address) {
	t.Helper()
	for {
		select {
		case a := <-n.learned:
			if a == engine {
				return
			}
		case <-time.After(waitFor):
			t.Fatalf("%s never learned %v", n.sys.Name(), engine)
		}
	}
}

// connect makes a dial b on a fresh endpoint of network.
func connect(t *testing.T, a, b *node, network string) {
	t.Helper()
	ep := "tcp://127.0.0.1:0"
	if network == "unix" {
		ep = "unix://" + filepath.Join(t.TempDir(), "b.sock")
	}
	addr, err := b.tr.Listen(context.Background(), ep, netconn.AcceptAny)
	if err != nil {
		t.Fatal(err)
	}
	if err := a.tr.Connect(context.Background(), transport.Endpoint(addr.Network(), addr.String()), b.kh.Router()); err != nil {
		t.Fatal(err)
	}
}

// The ordering engine on node b, used from node a through its proxy exactly
// as locally: reads answered at once and deferred (the waiter's reply
// crosses back), many waiting readers, a reader whose deadline passes,
// orders racing reads, idempotent submits; and a follower engine on a that
// receives b's ordered events through the transport.
func TestAcrossNodes(t *testing.T) {
	for _, s := range []struct {
		network string
		auth    netconn.Auth
	}{{"tcp", netconn.Signatures}, {"unix", netconn.MACs}} {
		t.Run(s.network+"/"+s.auth.String(), func(t *testing.T) {
			a, b := newNode(t, "a", s.auth), newNode(t, "b", s.auth)
			obs := newObserver()
			engAddr, _, err := b.tr.SpawnEngine("ordering", obs.factory(ordering.Config{Broker: b.broker}))
			if err != nil {
				t.Fatal(err)
			}
			eng := genserver.Name(engAddr.String())
			followed := make(chan ordering.Tx, 1024)
			folAddr, _, err := a.tr.SpawnEngine("follower",
				func() genserver.Server { return &follower{txs: followed} },
				transport.WithSubscription(events.Topic(ordering.DefaultTopic)))
			if err != nil {
				t.Fatal(err)
			}
			connect(t, a, b, s.network)
			a.waitLearn(t, engAddr)
			b.waitLearn(t, folAddr)
			base := b.sys.NumProcesses()
			ctx, cancel := context.WithTimeout(context.Background(), waitFor)
			defer cancel()

			// Read after order: at once.
			if h := submit(t, a.sys, eng, "first", "1"); h != 1 {
				t.Fatalf("submit from a: %d", h)
			}
			if tx := call[ordering.Tx](t, a.sys, eng, ordering.Read{TxID: "first"}); !txIs(tx, "first", 1, "1") {
				t.Fatalf("read from a: %+v", tx)
			}
			if len(obs.deferred) != 0 {
				t.Fatal("a read of an ordered transaction was deferred")
			}

			// Read before order: deferred on b, answered by an order from
			// either node; the waiter's reply crosses back to a.
			for _, producer := range []*genserver.System{a.sys, b.sys} {
				id := "from-" + producer.Name()
				out := make(chan result, 1)
				readAsync(ctx, a.sys, eng, id, out)
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
				readAsync(ctx, a.sys, eng, id(i%txs), out)
			}
			obs.waitDeferred(t, txs*perTx)
			if n := b.sys.NumProcesses(); n != base+txs*perTx {
				t.Fatalf("processes on b: %d, want %d", n, base+txs*perTx)
			}
			heights := make([]ordering.Height, txs)
			var wg sync.WaitGroup
			for i := range txs {
				wg.Go(func() { heights[i] = submitAsync(t, a.sys, eng, id(i), id(i)) })
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
			_, err = a.sys.Call(tctx, eng, ordering.Read{TxID: "late"})
			tcancel()
			if !errors.Is(err, genserver.ErrTimeout) {
				t.Fatalf("read from a past its deadline: %v", err)
			}
			obs.waitDeferred(t, 1)
			obs.waitDowns(t, 1)
			if n := b.sys.NumProcesses(); n != base {
				t.Fatalf("processes on b after the reader gave up: %d, want %d", n, base)
			}
			h := submit(t, a.sys, eng, "late", "l")
			if tx := call[ordering.Tx](t, a.sys, eng, ordering.Read{TxID: "late"}); !txIs(tx, "late", h, "l") {
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
					tx, err := genserver.Call[ordering.Tx](ctx, a.sys, eng, ordering.Read{TxID: id})
					reads[i] = result{tx, err}
				})
				wg.Go(func() {
					<-start
					raced[i] = submitAsync(t, a.sys, eng, id, id)
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
			if h := submit(t, a.sys, eng, "first", "1"); h != 1 {
				t.Fatalf("submit again from a: %d", h)
			}
			_, err = a.sys.Call(ctx, eng, ordering.Submit{TxID: "first", Data: []byte("other")})
			if err == nil || !strings.Contains(err.Error(), ordering.ErrConflict.Error()) {
				t.Fatalf("conflicting submit from a: %v", err)
			}
			st := stats(t, a.sys, eng)
			if st.Waiting != 0 || st.Duplicates != 1 {
				t.Fatalf("stats: %+v", st)
			}
			if n := b.sys.NumProcesses(); n != base {
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
