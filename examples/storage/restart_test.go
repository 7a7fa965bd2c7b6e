package storage_test

import (
	"context"
	"errors"
	"testing"
	"testing/synctest"

	"github.com/enginekit/enginekit/examples/storage"
	"github.com/enginekit/enginekit/genserver"
	"github.com/enginekit/enginekit/supervisor"
	"github.com/thejerf/suture/v4"
)

// Under a supervisor, a crashed engine is restarted from the latest
// snapshot: what it holds survives, the writes after it do not, and neither
// do the pending Get{Wait} calls and the watches, which were process state.
func TestRestartUnderSupervisor(t *testing.T) {
	errBoom := errors.New("boom (test)")
	for _, crash := range []struct {
		name string
		do   func(t *testing.T, sys *genserver.System, kv genserver.PID)
	}{
		{"kill", func(t *testing.T, sys *genserver.System, kv genserver.PID) {
			if err := sys.Kill(kv); err != nil {
				t.Fatal(err)
			}
		}},
		{"linked process crashed", func(t *testing.T, sys *genserver.System, kv genserver.PID) {
			// Terminate runs, with a reason that is no clean shutdown.
			l := spawn(t, sys, func() genserver.Server { return &linker{to: kv} })
			if err := sys.StopProcess(context.Background(), l, errBoom); err != nil {
				t.Fatal(err)
			}
		}},
	} {
		t.Run(crash.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				testRestart(t, func(sys *genserver.System, kv genserver.PID) { crash.do(t, sys, kv) })
			})
		})
	}
}

func testRestart(t *testing.T, crash func(*genserver.System, genserver.PID)) {
	sys := newSystem(t)
	store := newRecordingStore() // outlives the incarnations
	started := make(chan int, 8)
	sup, err := supervisor.New(supervisor.Spec{
		Name:     "app",
		Strategy: supervisor.OneForOne,
		Children: []supervisor.ChildSpec{{
			ID: "kv",
			Start: func() suture.Service {
				return sys.Service(storage.New(storage.Config{Snapshots: store}), genserver.WithName("kv"))
			},
		}},
		EventHook: func(e supervisor.Event) {
			if s, ok := e.(supervisor.ChildStarted); ok {
				started <- s.Restarts
			}
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	served := make(chan error, 1)
	go func() { served <- sup.Serve(ctx) }()
	<-started
	kv := genserver.Name("kv")

	k1 := put(t, sys, kv, "k1", "snapshotted")
	<-store.saves // the periodic snapshot holding k1
	put(t, sys, kv, "k2", "after the snapshot")

	// Process state: a deferred Get and a watch.
	waitErr := make(chan error, 1)
	go func() {
		_, err := genserver.Call[storage.Entry](context.Background(), sys, kv, storage.Get{Key: "k3", Wait: true})
		waitErr <- err
	}()
	w := spawn(t, sys, newRelay(kv, make(chan storage.Changed, 16)))
	call[storage.Entry](t, sys, w, storage.Watch{Key: "k1"})
	synctest.Wait() // the Get is deferred
	if s := stats(t, sys, kv); s != (storage.StatsReply{Keys: 2, Watchers: 1, Waiting: 1, Version: 2, SnapshotVersion: 1}) {
		t.Fatalf("before the crash: %+v", s)
	}

	pid, _ := sys.Whereis("kv")
	crash(sys, pid)
	// The waiting caller learns at once that the engine is gone.
	if err := <-waitErr; !errors.Is(err, genserver.ErrExited) {
		t.Fatalf("pending Get{Wait} after the crash: %v", err)
	}
	if restarts := <-started; restarts != 1 {
		t.Fatalf("restarts: %d", restarts)
	}
	if len(store.saves) != 0 {
		t.Fatal("the crashed incarnation saved a snapshot")
	}

	if e := get(t, sys, kv, "k1"); !entryIs(e, "k1", "snapshotted", k1.Version) {
		t.Fatalf("k1 after the restart: %+v", e)
	}
	if e := get(t, sys, kv, "k2"); e.Found {
		t.Fatalf("k2, written after the snapshot, survived the crash: %+v", e)
	}
	if s := stats(t, sys, kv); s != (storage.StatsReply{Keys: 1, Version: 1, SnapshotVersion: 1, LoadedFromSnapshot: true}) {
		t.Fatalf("after the restart: %+v", s)
	}

	// A clean shutdown saves everything, no periodic snapshot needed.
	put(t, sys, kv, "k4", "saved at shutdown")
	cancel()
	if err := <-served; err != nil {
		t.Fatal(err)
	}
	kvPID := spawn(t, sys, storage.New(storage.Config{Snapshots: store}))
	if k1, k4 := get(t, sys, kvPID, "k1"), get(t, sys, kvPID, "k4"); !k1.Found || !entryIs(k4, "k4", "saved at shutdown", 2) {
		t.Fatalf("after a clean shutdown: %+v %+v", k1, k4)
	}
}
