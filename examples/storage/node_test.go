package storage_test

import (
	"context"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/enginekit/enginekit/examples/storage"
	"github.com/enginekit/enginekit/genserver"
	"github.com/enginekit/enginekit/keyholder"
	"github.com/enginekit/enginekit/netconn"
	"github.com/enginekit/enginekit/transport"
	"github.com/enginekit/enginekit/wire"
)

// node is one enginekit node: a System, a keyholder and a transport whose
// Registry knows the storage types.
type node struct {
	sys     *genserver.System
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
	if err := storage.Register(reg); err != nil {
		t.Fatal(err)
	}
	n := &node{
		sys:     genserver.NewSystem(genserver.Config{Name: name}),
		kh:      kh,
		learned: make(chan keyholder.Address, 64),
	}
	cfg := transport.Config{
		System: n.sys, Keyholder: kh, Registry: reg, Auth: auth,
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

// The storage engine on node b, used from node a exactly as locally:
// versioned writes, deferred reads answered by writes from the other node,
// and watches by an engine on a, which b monitors through its proxy.
func TestAcrossNodes(t *testing.T) {
	for _, s := range []struct {
		network string
		auth    netconn.Auth
	}{{"tcp", netconn.Signatures}, {"unix", netconn.MACs}} {
		t.Run(s.network+"/"+s.auth.String(), func(t *testing.T) {
			a, b := newNode(t, "a", s.auth), newNode(t, "b", s.auth)
			ev := newEvents()
			kvAddr, _, err := b.tr.SpawnEngine("kv", ev.factory(storage.Config{}))
			if err != nil {
				t.Fatal(err)
			}
			kv := genserver.Name(kvAddr.String())
			changes := make(chan storage.Changed, 16)
			wAddr, w, err := a.tr.SpawnEngine("watcher", newRelay(kv, changes))
			if err != nil {
				t.Fatal(err)
			}
			connect(t, a, b, s.network)
			a.waitLearn(t, kvAddr)
			b.waitLearn(t, wAddr)
			ctx, cancel := context.WithTimeout(context.Background(), waitFor)
			defer cancel()

			// Versioned writes and reads from a.
			first := put(t, a.sys, kv, "k", "v1")
			if !entryIs(first, "k", "v1", 1) {
				t.Fatalf("put from a: %+v", first)
			}
			second := call[storage.Entry](t, a.sys, kv, storage.Put{Key: "k", Value: []byte("v2"), IfVersion: first.Version})
			if e := get(t, b.sys, kv, "k"); !entryIs(e, "k", "v2", second.Version) {
				t.Fatalf("get on b: %+v", e)
			}
			// A handler's error crosses the wire as its text.
			_, err = a.sys.Call(ctx, kv, storage.Put{Key: "k", IfVersion: first.Version})
			if err == nil || !strings.Contains(err.Error(), storage.ErrVersionMismatch.Error()) {
				t.Fatalf("stale compare-and-set from a: %v", err)
			}

			// A Get{Wait} from a, deferred on b, answered by a Put on b; and
			// the other way round.
			for _, tc := range []struct {
				key              string
				waiter, producer *genserver.System
			}{{"from-b", a.sys, b.sys}, {"from-a", b.sys, a.sys}} {
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
			if e := call[storage.Entry](t, a.sys, w, storage.Watch{Key: "k"}); !entryIs(e, "k", "v2", second.Version) {
				t.Fatalf("Watch across nodes: %+v", e)
			}
			written := put(t, b.sys, kv, "k", "v3")
			if e := nextChange(t, changes); !entryIs(e, "k", "v3", written.Version) {
				t.Fatalf("Changed across nodes: %+v", e)
			}
			// a's router is no process that b could monitor.
			_, err = a.sys.Call(ctx, kv, storage.Watch{Key: "k"})
			if err == nil || !strings.Contains(err.Error(), storage.ErrNoWatcher.Error()) {
				t.Fatalf("Watch from a's router: %v", err)
			}
			// When the watcher engine stops, b forgets it: its proxy exits,
			// the engine gets the Down and drops the watch.
			proxy, ok := b.sys.Whereis(wAddr.String())
			if !ok {
				t.Fatal("b has no proxy of the watcher")
			}
			if err := a.sys.StopProcess(ctx, w, nil); err != nil {
				t.Fatal(err)
			}
			ev.waitDown(t, proxy)
			if st := stats(t, a.sys, kv); st.Watchers != 0 || st.Keys != 3 {
				t.Fatalf("stats after the watcher stopped: %+v", st)
			}
		})
	}
}
