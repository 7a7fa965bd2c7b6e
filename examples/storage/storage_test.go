package storage_test

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"testing/synctest"
	"time"

	"github.com/enginekit/enginekit/examples/storage"
	"github.com/enginekit/enginekit/genserver"
	"github.com/enginekit/enginekit/payload"
)

func TestVersionedPutGetDelete(t *testing.T) {
	sys := newSystem(t)
	kv := spawn(t, sys, storage.New(storage.Config{}))

	if e := put(t, sys, kv, "a", "1"); !entryIs(e, "a", "1", 1) {
		t.Fatalf("first put: %+v", e)
	}
	if e := put(t, sys, kv, "b", "x"); !entryIs(e, "b", "x", 2) {
		t.Fatalf("put b: %+v", e)
	}
	if e := put(t, sys, kv, "a", "2"); !entryIs(e, "a", "2", 3) {
		t.Fatalf("second put of a: %+v", e)
	}
	if e := get(t, sys, kv, "a"); !entryIs(e, "a", "2", 3) {
		t.Fatalf("get a: %+v", e)
	}
	if e := get(t, sys, kv, "nope"); e.Found || e.Version != 0 || e.Key != "nope" || e.Value != nil {
		t.Fatalf("get of a missing key: %+v", e)
	}

	// A delete is a write: it takes the next version.
	if e := call[storage.Entry](t, sys, kv, storage.Delete{Key: "a"}); e.Found || e.Version != 4 {
		t.Fatalf("delete: %+v", e)
	}
	if e := get(t, sys, kv, "a"); e.Found || e.Version != 0 {
		t.Fatalf("get after delete: %+v", e)
	}
	// Deleting a missing key changes nothing.
	if e := call[storage.Entry](t, sys, kv, storage.Delete{Key: "a"}); e.Found || e.Version != 0 {
		t.Fatalf("second delete: %+v", e)
	}
	// A re-created key never gets an old version back.
	if e := put(t, sys, kv, "a", "3"); !entryIs(e, "a", "3", 5) {
		t.Fatalf("put after delete: %+v", e)
	}
	if s := stats(t, sys, kv); s != (storage.StatsReply{Keys: 2, Version: 5}) {
		t.Fatalf("stats: %+v", s)
	}

	// Values are copied in and out: nobody changes the store through a slice.
	in := []byte("abc")
	call[storage.Entry](t, sys, kv, storage.Put{Key: "c", Value: in})
	in[0] = 'X'
	out := get(t, sys, kv, "c")
	out.Value[0] = 'Y'
	if e := get(t, sys, kv, "c"); string(e.Value) != "abc" {
		t.Fatalf("value changed through a caller's slice: %q", e.Value)
	}

	ctx := context.Background()
	if _, err := sys.Call(ctx, kv, storage.Put{Key: "\xff"}); !errors.Is(err, storage.ErrInvalidKey) {
		t.Fatalf("put of a non-UTF-8 key: %v", err)
	}
	if _, err := sys.Call(ctx, kv, "what?"); !errors.Is(err, storage.ErrUnknownRequest) {
		t.Fatalf("unknown request: %v", err)
	}
	_ = sys.Cast(kv, storage.Put{Key: "cast"}) // casts are ignored
	if e := get(t, sys, kv, "cast"); e.Found {
		t.Fatal("a cast Put was applied")
	}
}

func entryIs(e storage.Entry, key, value string, version uint64) bool {
	return e.Key == key && string(e.Value) == value && e.Version == version && e.Found
}

func TestCompareAndSet(t *testing.T) {
	sys := newSystem(t)
	kv := spawn(t, sys, storage.New(storage.Config{}))
	ctx := context.Background()

	first := put(t, sys, kv, "k", "v1")
	second := call[storage.Entry](t, sys, kv, storage.Put{Key: "k", Value: []byte("v2"), IfVersion: first.Version})
	if !entryIs(second, "k", "v2", first.Version+1) {
		t.Fatalf("compare-and-set at the current version: %+v", second)
	}
	// A stale version fails and changes nothing.
	_, err := sys.Call(ctx, kv, storage.Put{Key: "k", Value: []byte("v3"), IfVersion: first.Version})
	if !errors.Is(err, storage.ErrVersionMismatch) {
		t.Fatalf("compare-and-set at a stale version: %v", err)
	}
	if e := get(t, sys, kv, "k"); !entryIs(e, "k", "v2", second.Version) {
		t.Fatalf("after a failed compare-and-set: %+v", e)
	}
	// A missing key has no version to match.
	if _, err := sys.Call(ctx, kv, storage.Put{Key: "missing", IfVersion: 1}); !errors.Is(err, storage.ErrVersionMismatch) {
		t.Fatalf("compare-and-set of a missing key: %v", err)
	}
	// Nor has a deleted one: the version read before the delete is stale.
	call[storage.Entry](t, sys, kv, storage.Delete{Key: "k"})
	if _, err := sys.Call(ctx, kv, storage.Put{Key: "k", IfVersion: second.Version}); !errors.Is(err, storage.ErrVersionMismatch) {
		t.Fatalf("compare-and-set of a deleted key: %v", err)
	}
	if s := stats(t, sys, kv); s.Keys != 0 || s.Version != 3 {
		t.Fatalf("stats: %+v", s)
	}
}

// Get{Wait} on a missing key is answered by the next Put of the key, every
// waiter with the same entry; a waiter who gave up costs nothing.
func TestGetWait(t *testing.T) {
	sys := newSystem(t)
	ev := newEvents()
	kv := spawn(t, sys, ev.factory(storage.Config{}))
	ctx := context.Background()

	type result struct {
		e   storage.Entry
		err error
	}
	wait := func(ctx context.Context, key string, out chan<- result) {
		go func() {
			e, err := genserver.Call[storage.Entry](ctx, sys, kv, storage.Get{Key: key, Wait: true})
			out <- result{e, err}
		}()
		ev.waitDeferred(t, key)
	}

	answered := make(chan result, 3)
	for range 3 {
		wait(ctx, "k", answered)
	}
	// One more waiter times out before the Put: the Put's late reply to it
	// is dropped, and nothing else notices.
	gaveUp := make(chan result, 1)
	tctx, cancel := context.WithTimeout(ctx, time.Millisecond)
	defer cancel()
	wait(tctx, "k", gaveUp)
	if r := <-gaveUp; !errors.Is(r.err, genserver.ErrTimeout) {
		t.Fatalf("the waiter who timed out got %+v", r)
	}

	// Other keys and deletes do not wake them.
	put(t, sys, kv, "other", "x")
	call[storage.Entry](t, sys, kv, storage.Delete{Key: "k"})
	select {
	case r := <-answered:
		t.Fatalf("a waiter was answered early: %+v", r)
	default:
	}

	written := put(t, sys, kv, "k", "hello")
	for range 3 {
		r := <-answered
		if r.err != nil || !entryIs(r.e, "k", "hello", written.Version) {
			t.Fatalf("waiter got %+v, want the entry %+v", r, written)
		}
	}
	if s := stats(t, sys, kv); s.Waiting != 0 {
		t.Fatalf("waiting after the put: %d", s.Waiting)
	}

	// A present key is answered at once.
	if e := call[storage.Entry](t, sys, kv, storage.Get{Key: "k", Wait: true}); !entryIs(e, "k", "hello", written.Version) {
		t.Fatalf("Get{Wait} of a present key: %+v", e)
	}

	// Waiters who gave up on a key nobody writes are pruned, not kept.
	live := make(chan result, 1)
	wait(ctx, "never", live)
	for range 100 {
		gctx, cancel := context.WithCancel(ctx)
		wait(gctx, "never", gaveUp)
		cancel()
		<-gaveUp
	}
	if s := stats(t, sys, kv); s.Waiting != 1 {
		t.Fatalf("waiting: %d, want the one live waiter", s.Waiting)
	}
	put(t, sys, kv, "never", "after all")
	if r := <-live; r.err != nil || string(r.e.Value) != "after all" {
		t.Fatalf("live waiter: %+v", r)
	}
}

// Init only schedules the load, so Spawn returns while the snapshot loads,
// and a message sent meanwhile is handled after the load.
func TestContinueLoadsBeforeFirstMessage(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		sys := newSystem(t)
		mem := storage.NewMemoryStore()
		seed := spawn(t, sys, storage.New(storage.Config{Snapshots: mem}))
		want := put(t, sys, seed, "k1", "from the snapshot")
		if err := sys.StopProcess(context.Background(), seed, nil); err != nil { // saves
			t.Fatal(err)
		}

		gate := &gatedStore{SnapshotStore: mem, loading: make(chan struct{}, 1), release: make(chan struct{})}
		kv := spawn(t, sys, storage.New(storage.Config{Snapshots: gate})) // returns with Load blocked
		<-gate.loading
		got := make(chan storage.Entry, 1)
		go func() { got <- get(t, sys, kv, "k1") }()
		synctest.Wait() // the Get is queued behind the continue step
		select {
		case e := <-got:
			t.Fatalf("answered during the load: %+v", e)
		default:
		}
		close(gate.release)
		if e := <-got; !entryIs(e, "k1", "from the snapshot", want.Version) {
			t.Fatalf("first message after the load: %+v", e)
		}
		if s := stats(t, sys, kv); !s.LoadedFromSnapshot || s.Version != want.Version || s.SnapshotVersion != want.Version {
			t.Fatalf("stats: %+v", s)
		}
	})
}

// The snapshot timer fires every SnapshotEvery (1s by default), saves only
// when something changed, and is re-armed each time.
func TestSnapshotTimer(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		sys := newSystem(t)
		store := newRecordingStore()
		start := time.Now()
		kv := spawn(t, sys, storage.New(storage.Config{Snapshots: store}))

		put(t, sys, kv, "a", "1")
		if at := <-store.saves; at.Sub(start) != time.Second {
			t.Fatalf("first snapshot after %v, want 1s", at.Sub(start))
		}
		if s := stats(t, sys, kv); s.SnapshotVersion != 1 {
			t.Fatalf("stats after the first snapshot: %+v", s)
		}
		// Nothing changes until 4.5s: the ticks at 2, 3 and 4s save nothing.
		time.Sleep(3500 * time.Millisecond)
		synctest.Wait()
		if len(store.saves) != 0 {
			t.Fatalf("saved %d snapshots of an unchanged store", len(store.saves))
		}
		put(t, sys, kv, "b", "2")
		if at := <-store.saves; at.Sub(start) != 5*time.Second {
			t.Fatalf("second snapshot after %v, want 5s", at.Sub(start))
		}

		// A Kill runs no Terminate; the next incarnation has both keys from
		// the periodic snapshot.
		if err := sys.Kill(kv); err != nil {
			t.Fatal(err)
		}
		exitReason(t, kv)
		kv = spawn(t, sys, storage.New(storage.Config{Snapshots: store, SnapshotEvery: time.Minute}))
		if a, b := get(t, sys, kv, "a"), get(t, sys, kv, "b"); !entryIs(a, "a", "1", 1) || !entryIs(b, "b", "2", 2) {
			t.Fatalf("after restart: %+v %+v", a, b)
		}
		// Its own period applies.
		put(t, sys, kv, "c", "3")
		restarted := time.Now()
		if at := <-store.saves; at.Sub(restarted) != time.Minute {
			t.Fatalf("snapshot %v after the restart, want 1m", at.Sub(restarted))
		}
	})
}

// A failed save is retried at the next tick, and the store keeps serving.
func TestSnapshotSaveFailureRetried(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		sys := newSystem(t)
		store := newRecordingStore()
		store.fail = 1
		start := time.Now()
		kv := spawn(t, sys, storage.New(storage.Config{Snapshots: store}))
		put(t, sys, kv, "a", "1")
		time.Sleep(1500 * time.Millisecond)
		if s := stats(t, sys, kv); s.SnapshotVersion != 0 || s.Version != 1 {
			t.Fatalf("stats after a failed save: %+v", s)
		}
		if at := <-store.saves; at.Sub(start) != 2*time.Second {
			t.Fatalf("retried after %v, want 2s", at.Sub(start))
		}
		if s := stats(t, sys, kv); s.SnapshotVersion != 1 {
			t.Fatalf("stats after the retry: %+v", s)
		}
	})
}

// A clean stop saves everything, also the writes since the last periodic
// snapshot, and the next incarnation starts from it.
func TestCleanShutdownSavesEverything(t *testing.T) {
	sys := newSystem(t)
	store := storage.NewMemoryStore()
	cfg := storage.Config{Snapshots: store, SnapshotEvery: time.Hour}
	kv := spawn(t, sys, storage.New(cfg))
	put(t, sys, kv, "a", "1")
	put(t, sys, kv, "b", "2")
	call[storage.Entry](t, sys, kv, storage.Delete{Key: "a"})
	if s := stats(t, sys, kv); s.SnapshotVersion != 0 {
		t.Fatalf("snapshot before the stop: %+v", s)
	}
	if err := sys.StopProcess(context.Background(), kv, nil); err != nil {
		t.Fatal(err)
	}

	kv = spawn(t, sys, storage.New(cfg))
	if a, b := get(t, sys, kv, "a"), get(t, sys, kv, "b"); a.Found || !entryIs(b, "b", "2", 2) {
		t.Fatalf("after the restart: %+v %+v", a, b)
	}
	if s := stats(t, sys, kv); s != (storage.StatsReply{Keys: 1, Version: 3, SnapshotVersion: 3, LoadedFromSnapshot: true}) {
		t.Fatalf("stats: %+v", s)
	}
	// Versions go on from the snapshot.
	if e := put(t, sys, kv, "c", "3"); e.Version != 4 {
		t.Fatalf("put after the restart: %+v", e)
	}
}

func TestWatch(t *testing.T) {
	sys := newSystem(t)
	kv := spawn(t, sys, storage.New(storage.Config{}))
	changes := make(chan storage.Changed, 16)
	w := spawn(t, sys, newRelay(kv, changes))
	ctx := context.Background()

	put(t, sys, kv, "k", "before")
	// The reply to Watch is the current entry: Changed messages follow it.
	if e := call[storage.Entry](t, sys, w, storage.Watch{Key: "k"}); !entryIs(e, "k", "before", 1) {
		t.Fatalf("Watch reply: %+v", e)
	}
	put(t, sys, kv, "other", "not watched")
	put(t, sys, kv, "k", "v1")
	if e := nextChange(t, changes); !entryIs(e, "k", "v1", 3) {
		t.Fatalf("Changed: %+v", e)
	}
	del := call[storage.Entry](t, sys, kv, storage.Delete{Key: "k"})
	if e := nextChange(t, changes); e.Found || e.Key != "k" || e.Version != del.Version {
		t.Fatalf("Changed for a delete: %+v, want version %d", e, del.Version)
	}

	// Watching twice is watching once; more keys, still one watcher.
	call[storage.Entry](t, sys, w, storage.Watch{Key: "k"})
	call[storage.Entry](t, sys, w, storage.Watch{Key: "j"})
	if s := stats(t, sys, kv); s.Watchers != 1 {
		t.Fatalf("watchers: %d", s.Watchers)
	}
	put(t, sys, kv, "k", "once")
	if e := nextChange(t, changes); string(e.Value) != "once" {
		t.Fatalf("Changed: %+v", e)
	}

	// A plain goroutine cannot watch: no process to tell or to monitor.
	if _, err := sys.Call(ctx, kv, storage.Watch{Key: "k"}); !errors.Is(err, storage.ErrNoWatcher) {
		t.Fatalf("Watch from a goroutine: %v", err)
	}
	if _, err := sys.Call(ctx, kv, storage.Unwatch{Key: "k"}); !errors.Is(err, storage.ErrNoWatcher) {
		t.Fatalf("Unwatch from a goroutine: %v", err)
	}

	if !call[bool](t, sys, w, storage.Unwatch{Key: "k"}) || call[bool](t, sys, w, storage.Unwatch{Key: "k"}) {
		t.Fatal("Unwatch: want true, then false")
	}
	put(t, sys, kv, "k", "unwatched")
	put(t, sys, kv, "j", "watched")
	if e := nextChange(t, changes); e.Key != "j" {
		t.Fatalf("Changed after Unwatch: %+v", e)
	}
	// Unwatching the last key ends the watcher (and its monitor).
	call[bool](t, sys, w, storage.Unwatch{Key: "j"})
	if s := stats(t, sys, kv); s.Watchers != 0 {
		t.Fatalf("watchers after the last Unwatch: %d", s.Watchers)
	}
}

// The engine monitors its watchers: a watcher that exits, however it
// exits, loses its watches.
func TestDeadWatcherRemoved(t *testing.T) {
	sys := newSystem(t)
	ev := newEvents()
	kv := spawn(t, sys, ev.factory(storage.Config{}))
	ctx := context.Background()
	changes := make(chan storage.Changed, 16)

	stopped := spawn(t, sys, newRelay(kv, changes))
	killed := spawn(t, sys, newRelay(kv, changes))
	for _, w := range []genserver.PID{stopped, killed} {
		call[storage.Entry](t, sys, w, storage.Watch{Key: "k"})
		call[storage.Entry](t, sys, w, storage.Watch{Key: "j"})
	}
	if s := stats(t, sys, kv); s.Watchers != 2 {
		t.Fatalf("watchers: %d", s.Watchers)
	}

	if err := sys.StopProcess(ctx, stopped, nil); err != nil {
		t.Fatal(err)
	}
	ev.waitDown(t, stopped)
	if s := stats(t, sys, kv); s.Watchers != 1 {
		t.Fatalf("watchers after one stopped: %d", s.Watchers)
	}
	if err := sys.Kill(killed); err != nil {
		t.Fatal(err)
	}
	ev.waitDown(t, killed)
	if s := stats(t, sys, kv); s.Watchers != 0 {
		t.Fatalf("watchers after both exited: %d", s.Watchers)
	}
	put(t, sys, kv, "k", "nobody is told")
	if len(changes) != 0 {
		t.Fatalf("%d Changed for dead watchers", len(changes))
	}
}

// A snapshot that cannot be read stops the engine instead of letting it
// start empty and overwrite the snapshot.
func TestBadSnapshotStops(t *testing.T) {
	sys := newSystem(t)
	for _, tc := range []struct {
		name  string
		store storage.SnapshotStore
		want  error
	}{
		{"garbage", storeWith(t, []byte("not CBOR")), storage.ErrBadSnapshot},
		{"unknown format", storeWith(t, []byte{0xa1, 0x01, 0x02}), storage.ErrBadSnapshot}, // {1: 2}
		{"version beyond the store's", storeWith(t, []byte{0xa3, 0x01, 0x01, 0x02, 0x01, 0x03, 0xa1, 0x61, 'k', 0xa2, 0x01, 0x40, 0x02, 0x05}), storage.ErrBadSnapshot},
		{"load fails", &brokenStore{}, errUnreadable},
	} {
		t.Run(tc.name, func(t *testing.T) {
			pid := spawn(t, sys, storage.New(storage.Config{Snapshots: tc.store}))
			if reason := exitReason(t, pid); !errors.Is(reason, tc.want) {
				t.Fatalf("exit reason %v, want %v", reason, tc.want)
			}
		})
	}
}

func storeWith(t *testing.T, data []byte) storage.SnapshotStore {
	s := storage.NewMemoryStore()
	if err := s.Save(data); err != nil {
		t.Fatal(err)
	}
	return s
}

func TestBadConfig(t *testing.T) {
	sys := newSystem(t)
	if _, err := sys.Spawn(storage.New(storage.Config{SnapshotEvery: -time.Second})); !errors.Is(err, storage.ErrBadConfig) {
		t.Fatalf("negative SnapshotEvery: %v", err)
	}
}

func TestStores(t *testing.T) {
	dir := t.TempDir()
	for _, tc := range []struct {
		name  string
		store storage.SnapshotStore
	}{
		{"memory", storage.NewMemoryStore()},
		{"file", storage.NewFileStore(filepath.Join(dir, "kv.snapshot"))},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if data, ok, err := tc.store.Load(); ok || err != nil || len(data) != 0 {
				t.Fatalf("empty store: %q, %v, %v", data, ok, err)
			}
			for _, want := range [][]byte{[]byte("one"), []byte("two, longer"), {}} {
				in := bytes.Clone(want)
				if err := tc.store.Save(in); err != nil {
					t.Fatal(err)
				}
				clear(in) // the store keeps its own copy
				got, ok, err := tc.store.Load()
				if !ok || err != nil || !bytes.Equal(got, want) {
					t.Fatalf("Load = %q, %v, %v; want %q", got, ok, err, want)
				}
			}
		})
	}
	// Saves leave no temporary files behind.
	if entries, err := os.ReadDir(dir); err != nil || len(entries) != 1 {
		t.Fatalf("files in the store's directory: %v, %v", entries, err)
	}
	if err := storage.NewFileStore(filepath.Join(dir, "missing", "kv")).Save([]byte("x")); err == nil {
		t.Fatal("saved into a missing directory")
	}
}

// A snapshot in a file survives what a MemoryStore does not: the OS
// process. A new FileStore on the same path stands for the next run.
func TestFileStoreAcrossRuns(t *testing.T) {
	sys := newSystem(t)
	path := filepath.Join(t.TempDir(), "kv.snapshot")
	kv := spawn(t, sys, storage.New(storage.Config{Snapshots: storage.NewFileStore(path)}))
	put(t, sys, kv, "k", "on disk")
	if err := sys.StopProcess(context.Background(), kv, nil); err != nil {
		t.Fatal(err)
	}
	kv = spawn(t, sys, storage.New(storage.Config{Snapshots: storage.NewFileStore(path)}))
	if e := get(t, sys, kv, "k"); !entryIs(e, "k", "on disk", 1) {
		t.Fatalf("next run: %+v", e)
	}
}

func TestRegister(t *testing.T) {
	reg, err := payload.NewRegistry(payload.Limits{})
	if err != nil {
		t.Fatal(err)
	}
	if err := storage.Register(reg); err != nil {
		t.Fatal(err)
	}
	for _, v := range []any{
		storage.Put{Key: "k", Value: []byte("v"), IfVersion: 3},
		storage.Get{Key: "k", Wait: true},
		storage.Delete{Key: "k"},
		storage.Watch{Key: "k"},
		storage.Unwatch{Key: "k"},
		storage.Changed{Entry: storage.Entry{Key: "k", Value: []byte("v"), Version: 9, Found: true}},
		storage.Entry{Key: "k", Version: 2},
		storage.Stats{},
		storage.StatsReply{Keys: 1, Watchers: 2, Waiting: 3, Version: 4, SnapshotVersion: 5, LoadedFromSnapshot: true},
	} {
		b, err := reg.Marshal(v)
		if err != nil {
			t.Fatal(err)
		}
		back, err := reg.Unmarshal(b)
		if err != nil {
			t.Fatal(err)
		}
		b2, err := reg.Marshal(back)
		if err != nil || !bytes.Equal(b, b2) {
			t.Fatalf("%#v did not round-trip: %#v", v, back)
		}
	}
	if err := storage.Register(reg); !errors.Is(err, payload.ErrDuplicateName) {
		t.Fatalf("registering twice: %v", err)
	}
}
