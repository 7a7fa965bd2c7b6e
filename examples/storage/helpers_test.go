package storage_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/enginekit/enginekit/examples/storage"
	"github.com/enginekit/enginekit/genserver"
)

// waitFor bounds every wait on an event; it only matters when a test fails.
// Inside a synctest bubble the clock is fake, so it costs nothing there.
const waitFor = 20 * time.Second

// events is what a tapped engine reports, so tests wait for the event
// itself instead of sleeping or polling.
type events struct {
	deferred chan string        // the key of each Get the engine deferred
	downs    chan genserver.PID // the process of each Down the engine handled
}

func newEvents() *events {
	return &events{deferred: make(chan string, 64), downs: make(chan genserver.PID, 64)}
}

// factory returns storage.New(cfg), each incarnation wrapped in a tap.
func (ev *events) factory(cfg storage.Config) func() genserver.Server {
	inner := storage.New(cfg)
	return func() genserver.Server { return &tap{srv: inner(), ev: ev} }
}

func (ev *events) waitDeferred(t testing.TB, key string) {
	t.Helper()
	select {
	case k := <-ev.deferred:
		if k != key {
			t.Fatalf("deferred a Get of %q, want %q", k, key)
		}
	case <-time.After(waitFor):
		t.Fatalf("no Get of %q deferred", key)
	}
}

func (ev *events) waitDown(t testing.TB, want genserver.PID) {
	t.Helper()
	select {
	case pid := <-ev.downs:
		if pid != want {
			t.Fatalf("Down of %v, want %v", pid, want)
		}
	case <-time.After(waitFor):
		t.Fatalf("no Down of %v", want)
	}
}

// tap delegates every callback to a storage engine and reports deferred
// Gets and handled Downs to its events.
type tap struct {
	srv genserver.Server
	ev  *events
}

func (t *tap) Init(p *genserver.Process) error { return t.srv.(genserver.Initer).Init(p) }

func (t *tap) HandleContinue(p *genserver.Process, arg any) {
	t.srv.(genserver.ContinueHandler).HandleContinue(p, arg)
}

func (t *tap) HandleCall(p *genserver.Process, from genserver.From, req any) (any, error) {
	v, err := t.srv.HandleCall(p, from, req)
	if v == genserver.NoReply {
		t.ev.deferred <- req.(storage.Get).Key
	}
	return v, err
}

func (t *tap) HandleCast(p *genserver.Process, msg any) { t.srv.HandleCast(p, msg) }

func (t *tap) HandleInfo(p *genserver.Process, msg any) {
	t.srv.(genserver.InfoHandler).HandleInfo(p, msg)
	if d, ok := msg.(genserver.Down); ok {
		t.ev.downs <- d.PID
	}
}

func (t *tap) Terminate(p *genserver.Process, reason error) {
	t.srv.(genserver.Terminator).Terminate(p, reason)
}

// relay is a watcher process: the Watch and Unwatch calls it receives it
// makes itself, so the engine sees it as the watcher, and the Changed
// messages it gets it passes on.
type relay struct {
	kv      genserver.Dest
	changes chan<- storage.Changed
}

func newRelay(kv genserver.Dest, changes chan<- storage.Changed) func() genserver.Server {
	return func() genserver.Server { return &relay{kv: kv, changes: changes} }
}

func (r *relay) HandleCall(p *genserver.Process, _ genserver.From, req any) (any, error) {
	return p.Call(context.Background(), r.kv, req)
}

func (r *relay) HandleCast(*genserver.Process, any) {}

func (r *relay) HandleInfo(_ *genserver.Process, msg any) {
	if c, ok := msg.(storage.Changed); ok {
		r.changes <- c
	}
}

func nextChange(t testing.TB, changes <-chan storage.Changed) storage.Entry {
	t.Helper()
	select {
	case c := <-changes:
		return c.Entry
	case <-time.After(waitFor):
		t.Fatal("no Changed")
		return storage.Entry{}
	}
}

// linker is a process linked to another from its start.
type linker struct{ to genserver.PID }

func (l *linker) Init(p *genserver.Process) error                                 { return p.Link(l.to) }
func (l *linker) HandleCall(*genserver.Process, genserver.From, any) (any, error) { return nil, nil }
func (l *linker) HandleCast(*genserver.Process, any)                              {}

// recordingStore is a MemoryStore that reports each Save, and can be told
// to fail some.
type recordingStore struct {
	*storage.MemoryStore
	saves chan time.Time // when each successful Save happened

	mu   sync.Mutex
	fail int // how many of the next Saves fail
}

var errDiskFull = errors.New("disk full (test)")

func newRecordingStore() *recordingStore {
	return &recordingStore{MemoryStore: storage.NewMemoryStore(), saves: make(chan time.Time, 64)}
}

func (r *recordingStore) Save(data []byte) error {
	r.mu.Lock()
	failing := r.fail > 0
	if failing {
		r.fail--
	}
	r.mu.Unlock()
	if failing {
		return errDiskFull
	}
	if err := r.MemoryStore.Save(data); err != nil {
		return err
	}
	r.saves <- time.Now()
	return nil
}

// gatedStore is a store whose Load tells it started, then waits for release.
type gatedStore struct {
	storage.SnapshotStore
	loading chan struct{} // gets a token when Load starts
	release chan struct{} // Load returns once this is closed
}

func (g *gatedStore) Load() ([]byte, bool, error) {
	g.loading <- struct{}{}
	<-g.release
	return g.SnapshotStore.Load()
}

// brokenStore fails every Load.
type brokenStore struct{ storage.MemoryStore }

var errUnreadable = errors.New("unreadable (test)")

func (*brokenStore) Load() ([]byte, bool, error) { return nil, false, errUnreadable }

// call makes a call that must succeed.
func call[T any](t testing.TB, c genserver.Caller, dest genserver.Dest, req any) T {
	t.Helper()
	v, err := genserver.Call[T](context.Background(), c, dest, req)
	if err != nil {
		t.Fatalf("%T%+v: %v", req, req, err)
	}
	return v
}

func put(t testing.TB, c genserver.Caller, kv genserver.Dest, key, value string) storage.Entry {
	t.Helper()
	return call[storage.Entry](t, c, kv, storage.Put{Key: key, Value: []byte(value)})
}

func get(t testing.TB, c genserver.Caller, kv genserver.Dest, key string) storage.Entry {
	t.Helper()
	return call[storage.Entry](t, c, kv, storage.Get{Key: key})
}

func stats(t testing.TB, c genserver.Caller, kv genserver.Dest) storage.StatsReply {
	t.Helper()
	return call[storage.StatsReply](t, c, kv, storage.Stats{})
}

// newSystem returns a System stopped at the end of the test.
func newSystem(t testing.TB) *genserver.System {
	sys := genserver.NewSystem(genserver.Config{Name: "kvtest"})
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), waitFor)
		defer cancel()
		if err := sys.Stop(ctx); err != nil {
			t.Error(err)
		}
	})
	return sys
}

func spawn(t testing.TB, sys *genserver.System, factory func() genserver.Server) genserver.PID {
	t.Helper()
	pid, err := sys.Spawn(factory)
	if err != nil {
		t.Fatal(err)
	}
	return pid
}

func exitReason(t testing.TB, pid genserver.PID) error {
	t.Helper()
	select {
	case <-pid.Done():
		return pid.Reason()
	case <-time.After(waitFor):
		t.Fatalf("%v did not exit", pid)
		return nil
	}
}
