package storage_test

import (
	"context"
	"strings"
	"testing"

	"github.com/enginekit/enginekit/examples/storage"
	"github.com/enginekit/enginekit/genserver"
	"github.com/enginekit/enginekit/netconn"
	"github.com/enginekit/enginekit/payload"
	"github.com/enginekit/enginekit/testkit"
)

// newPair starts two connected nodes, a and b, that know the example's
// payload types.
func newPair(t *testing.T, network string, auth netconn.Auth) (a, b *testkit.Node) {
	c := testkit.Start(t, testkit.Options{Network: testkit.Network(network), Auth: auth, Register: []func(*payload.Registry) error{storage.Register}})
	return c.Nodes[0], c.Nodes[1]
}

func TestAcrossNodes(t *testing.T) {
	for _, s := range []struct {
		network string
		auth    netconn.Auth
	}{{"tcp", netconn.Signatures}, {"unix", netconn.MACs}} {
		t.Run(s.network+"/"+s.auth.String(), func(t *testing.T) {
			a, b := newPair(t, s.network, s.auth)
			ev := newEvents()
			kvAddr, _, err := b.Transport().SpawnEngine("kv", ev.factory(storage.Config{}))
			if err != nil {
				t.Fatal(err)
			}
			kv := genserver.Name(kvAddr.String())
			changes := make(chan storage.Changed, 16)
			wAddr, w, err := a.Transport().SpawnEngine("watcher", newRelay(kv, changes))
			if err != nil {
				t.Fatal(err)
			}
			a.WaitLearn(t, kvAddr)
			b.WaitLearn(t, wAddr)
			ctx, cancel := context.WithTimeout(context.Background(), waitFor)
			defer cancel()

			// Versioned writes and reads from a.
			first := put(t, a.System(), kv, "k", "v1")
			if !entryIs(first, "k", "v1", 1) {
				t.Fatalf("put from a: %+v", first)
			}
			second := call[storage.Entry](t, a.System(), kv, storage.Put{Key: "k", Value: []byte("v2"), IfVersion: first.Version})
			if e := get(t, b.System(), kv, "k"); !entryIs(e, "k", "v2", second.Version) {
				t.Fatalf("get on b: %+v", e)
			}
			// A handler's error crosses the wire as its text.
			_, err = a.System().Call(ctx, kv, storage.Put{Key: "k", IfVersion: first.Version})
			if err == nil || !strings.Contains(err.Error(), storage.ErrVersionMismatch.Error()) {
				t.Fatalf("stale compare-and-set from a: %v", err)
			}

			// A Get{Wait} from a, deferred on b, answered by a Put on b; and
			// the other way round.
			for _, tc := range []struct {
				key              string
				waiter, producer *genserver.System
			}{{"from-b", a.System(), b.System()}, {"from-a", b.System(), a.System()}} {
				got := make(chan storage.Entry, 1)
				go func() {
					e, err := genserver.Call[storage.Entry](ctx, tc.waiter, kv, storage.Get{Key: tc.key, Wait: true})
					if err != nil {
						t.Error(err)
					}
					got <- e
				}()
				ev.waitDeferred(t, tc.key)
				written := put(t, tc.producer, kv, tc.key, "written on "+tc.producer.Name())
				if e := <-got; !entryIs(e, tc.key, "written on "+tc.producer.Name(), written.Version) {
					t.Fatalf("deferred Get of %q: %+v", tc.key, e)
				}
			}

			// The watcher engine on a watches k on b; b sends Changed to its
			// proxy of the watcher, which forwards it to a.
			if e := call[storage.Entry](t, a.System(), w, storage.Watch{Key: "k"}); !entryIs(e, "k", "v2", second.Version) {
				t.Fatalf("Watch across nodes: %+v", e)
			}
			written := put(t, b.System(), kv, "k", "v3")
			if e := nextChange(t, changes); !entryIs(e, "k", "v3", written.Version) {
				t.Fatalf("Changed across nodes: %+v", e)
			}
			// a's router is no process that b could monitor.
			_, err = a.System().Call(ctx, kv, storage.Watch{Key: "k"})
			if err == nil || !strings.Contains(err.Error(), storage.ErrNoWatcher.Error()) {
				t.Fatalf("Watch from a's router: %v", err)
			}
			// When the watcher engine stops, b forgets it: its proxy exits,
			// the engine gets the Down and drops the watch.
			proxy, ok := b.System().Whereis(wAddr.String())
			if !ok {
				t.Fatal("b has no proxy of the watcher")
			}
			if err := a.System().StopProcess(ctx, w, nil); err != nil {
				t.Fatal(err)
			}
			ev.waitDown(t, proxy)
			if st := stats(t, a.System(), kv); st.Watchers != 0 || st.Keys != 3 {
				t.Fatalf("stats after the watcher stopped: %+v", st)
			}
		})
	}
}
