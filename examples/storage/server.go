package storage

import (
	"bytes"
	"errors"
	"fmt"
	"slices"
	"unicode/utf8"

	"github.com/enginekit/enginekit/genserver"
)

// Messages the engine sends itself. Unexported: nobody else can send them.
type (
	load         struct{} // the continue step after Init
	snapshotTick struct{} // the periodic snapshot timer
)

// server is one incarnation of the storage engine. Its fields are the
// Elixir state map; each incarnation starts empty.
type server struct {
	cfg Config

	data    map[string]record
	version uint64 // the store's version: that of its latest write

	snapVersion uint64 // the version the latest snapshot saved or loaded holds
	loaded      bool   // this incarnation started from a snapshot

	// Deferred Get{Wait} calls, by key. nWaiting counts them, including
	// those whose caller has given up, until the next prune.
	waiting  map[string][]genserver.From
	nWaiting int
	pruneAt  int

	watchers map[genserver.PID]*watcher
	byKey    map[string]map[genserver.PID]struct{}
}

type watcher struct {
	ref  genserver.Ref // our monitor on it
	keys map[string]struct{}
}

const minPrune = 64

func newServer(cfg Config) *server {
	if cfg.SnapshotEvery == 0 {
		cfg.SnapshotEvery = DefaultSnapshotEvery
	}
	return &server{
		cfg:      cfg,
		data:     make(map[string]record),
		waiting:  make(map[string][]genserver.From),
		pruneAt:  minPrune,
		watchers: make(map[genserver.PID]*watcher),
		byKey:    make(map[string]map[genserver.PID]struct{}),
	}
}

// Init does nothing slow, so Spawn (or the supervisor) is not held up by
// the snapshot load:
//
//	def init(cfg), do: {:ok, %{cfg: cfg, data: %{}, ...}, {:continue, :load}}
func (s *server) Init(p *genserver.Process) error {
	if s.cfg.SnapshotEvery < 0 {
		return fmt.Errorf("%w: negative SnapshotEvery %v", ErrBadConfig, s.cfg.SnapshotEvery)
	}
	p.Continue(load{})
	return nil
}

// HandleContinue loads the snapshot. It runs before the first message, so
// no caller ever sees the store half-loaded:
//
//	def handle_continue(:load, state) do
//	  state = load_snapshot(state)
//	  Process.send_after(self(), :snapshot, state.cfg.snapshot_every)
//	  {:noreply, state}
//	end
//
// A snapshot that cannot be read stops the engine ({:stop, reason, state})
// instead of starting it empty: an empty store would overwrite the snapshot
// at its next tick. Under a supervisor that means restarts and, if the
// snapshot stays unreadable, escalation.
func (s *server) HandleContinue(p *genserver.Process, arg any) {
	if _, ok := arg.(load); !ok || s.cfg.Snapshots == nil {
		return
	}
	data, ok, err := s.cfg.Snapshots.Load()
	if err != nil {
		p.Stop(fmt.Errorf("storage: loading snapshot: %w", err))
		return
	}
	if ok {
		snap, err := decodeSnapshot(data)
		if err != nil {
			p.Stop(err)
			return
		}
		s.data, s.version, s.snapVersion, s.loaded = snap.Entries, snap.Version, snap.Version, true
	}
	p.SendAfter(s.cfg.SnapshotEvery, snapshotTick{})
}

// HandleCall serves the requests; Get{Wait} on a missing key defers its
// reply ({:noreply, state} with the from kept for GenServer.reply/2).
func (s *server) HandleCall(p *genserver.Process, from genserver.From, req any) (any, error) {
	switch r := req.(type) {
	case Put:
		return s.put(p, r)
	case Get:
		e := s.entry(r.Key)
		if e.Found || !r.Wait {
			return e, nil
		}
		s.addWaiter(r.Key, from)
		return genserver.NoReply, nil
	case Delete:
		return s.delete(p, r.Key), nil
	case Watch:
		return s.watch(p, from.PID(), r.Key)
	case Unwatch:
		if from.PID().IsZero() {
			return nil, ErrNoWatcher
		}
		return s.unwatch(p, from.PID(), r.Key), nil
	case Stats:
		s.pruneWaiters()
		return StatsReply{
			Keys:               len(s.data),
			Watchers:           len(s.watchers),
			Waiting:            s.nWaiting,
			Version:            s.version,
			SnapshotVersion:    s.snapVersion,
			LoadedFromSnapshot: s.loaded,
		}, nil
	}
	return nil, fmt.Errorf("%w: %T", ErrUnknownRequest, req)
}

// HandleCast: the engine takes no casts; writes need their reply (the new
// version, or the mismatch).
func (s *server) HandleCast(p *genserver.Process, msg any) {
	log := p.Logger()
	log.Debug().Str("type", fmt.Sprintf("%T", msg)).Msg("storage: cast ignored")
}

// HandleInfo takes the snapshot timer and the Down of a watcher.
func (s *server) HandleInfo(p *genserver.Process, msg any) {
	switch m := msg.(type) {
	case snapshotTick:
		// def handle_info(:snapshot, state): save, then re-arm with
		// Process.send_after, so a slow save never makes ticks pile up.
		s.snapshot(p)
		s.pruneWaiters()
		p.SendAfter(s.cfg.SnapshotEvery, snapshotTick{})
	case genserver.Down:
		// def handle_info({:DOWN, ref, :process, pid, _reason}, state)
		s.dropWatcher(m.PID, m.Ref)
	}
}

// Terminate saves a last snapshot on a clean shutdown only. After a crash
// the state may be what crashed it, so it is not saved: the next
// incarnation starts from the latest periodic snapshot, and the writes made
// since are lost. (A Kill does not run Terminate at all. In Elixir,
// terminate/2 runs on a supervisor's shutdown only if the process traps
// exits; here it always does.)
//
// An incarnation stopped before its continue step ran has loaded nothing
// and written nothing, so it saves nothing: it cannot overwrite a snapshot
// with an empty store.
func (s *server) Terminate(p *genserver.Process, reason error) {
	if reason == nil || errors.Is(reason, genserver.ErrShutdown) {
		s.snapshot(p)
	}
}

func (s *server) entry(key string) Entry {
	r, ok := s.data[key]
	if !ok {
		return Entry{Key: key}
	}
	return Entry{Key: key, Value: bytes.Clone(r.Value), Version: r.Version, Found: true}
}

func (s *server) put(p *genserver.Process, r Put) (any, error) {
	if !utf8.ValidString(r.Key) {
		return nil, fmt.Errorf("%w: %q", ErrInvalidKey, r.Key)
	}
	cur, found := s.data[r.Key]
	if r.IfVersion != 0 && (!found || cur.Version != r.IfVersion) {
		return nil, fmt.Errorf("%w: key %q is at version %d, not %d", ErrVersionMismatch, r.Key, cur.Version, r.IfVersion)
	}
	s.version++
	// Values are copied in and out: a caller in this OS process must not
	// be able to change the store through a slice it still holds (Elixir's
	// binaries are immutable; Go's slices are not).
	s.data[r.Key] = record{Value: bytes.Clone(r.Value), Version: s.version}
	e := s.entry(r.Key)
	for _, from := range s.waiting[r.Key] {
		genserver.Reply(from, s.entry(r.Key), nil) // false for a caller who gave up: harmless
	}
	s.nWaiting -= len(s.waiting[r.Key])
	delete(s.waiting, r.Key)
	s.notify(p, r.Key)
	return e, nil
}

func (s *server) delete(p *genserver.Process, key string) Entry {
	if _, found := s.data[key]; !found {
		return Entry{Key: key}
	}
	delete(s.data, key)
	s.version++
	s.notify(p, key)
	return Entry{Key: key, Version: s.version}
}

// notify sends Changed to the watchers of key, after a write. A watcher
// that is gone is dropped when its Down arrives.
func (s *server) notify(p *genserver.Process, key string) {
	watchers := s.byKey[key]
	if len(watchers) == 0 {
		return
	}
	e := s.entry(key)
	if !e.Found {
		e.Version = s.version // a delete: its version, as in its reply
	}
	for pid := range watchers {
		_ = p.Send(pid, Changed{Entry: Entry{Key: e.Key, Value: bytes.Clone(e.Value), Version: e.Version, Found: e.Found}})
	}
}

// addWaiter keeps a deferred Get. Callers that gave up are pruned when
// their number has doubled since the last prune, so waiters on keys that
// are never written cost amortised O(1) each.
func (s *server) addWaiter(key string, from genserver.From) {
	s.waiting[key] = append(s.waiting[key], from)
	s.nWaiting++
	if s.nWaiting >= s.pruneAt {
		s.pruneWaiters()
		s.pruneAt = max(2*s.nWaiting, minPrune)
	}
}

func (s *server) pruneWaiters() {
	n := 0
	for key, froms := range s.waiting {
		froms = slices.DeleteFunc(froms, func(f genserver.From) bool { return !f.Pending() })
		if len(froms) == 0 {
			delete(s.waiting, key)
			continue
		}
		s.waiting[key] = froms
		n += len(froms)
	}
	s.nWaiting = n
}

// watch adds a watch of key by pid, monitoring pid on its first watch:
//
//	ref = Process.monitor(pid)
func (s *server) watch(p *genserver.Process, pid genserver.PID, key string) (any, error) {
	if pid.IsZero() {
		return nil, ErrNoWatcher
	}
	w := s.watchers[pid]
	if w == nil {
		w = &watcher{ref: p.Monitor(pid), keys: make(map[string]struct{})}
		s.watchers[pid] = w
	}
	w.keys[key] = struct{}{}
	if s.byKey[key] == nil {
		s.byKey[key] = make(map[genserver.PID]struct{})
	}
	s.byKey[key][pid] = struct{}{}
	return s.entry(key), nil
}

// unwatch ends a watch; a watcher's last one ends the monitor too
// (Process.demonitor(ref, [:flush])).
func (s *server) unwatch(p *genserver.Process, pid genserver.PID, key string) bool {
	w := s.watchers[pid]
	if w == nil {
		return false
	}
	if _, ok := w.keys[key]; !ok {
		return false
	}
	delete(w.keys, key)
	s.dropKeyWatch(key, pid)
	if len(w.keys) == 0 {
		p.Demonitor(w.ref)
		delete(s.watchers, pid)
	}
	return true
}

// dropWatcher forgets every watch of a watcher that exited.
func (s *server) dropWatcher(pid genserver.PID, ref genserver.Ref) {
	w := s.watchers[pid]
	if w == nil || w.ref != ref {
		return
	}
	for key := range w.keys {
		s.dropKeyWatch(key, pid)
	}
	delete(s.watchers, pid)
}

func (s *server) dropKeyWatch(key string, pid genserver.PID) {
	delete(s.byKey[key], pid)
	if len(s.byKey[key]) == 0 {
		delete(s.byKey, key)
	}
}

// snapshot saves the store if it changed since the latest snapshot. A
// failed save is logged and retried at the next tick. It runs in the
// engine's process, so it sees a consistent store and holds up the messages
// behind it for as long as encoding and saving take; a large store would
// encode here and hand the bytes to a separate saver process.
func (s *server) snapshot(p *genserver.Process) {
	if s.cfg.Snapshots == nil || s.version == s.snapVersion {
		return
	}
	data, err := encodeSnapshot(s.version, s.data)
	if err == nil {
		err = s.cfg.Snapshots.Save(data)
	}
	if err != nil {
		log := p.Logger()
		log.Error().Err(err).Uint64("version", s.version).Msg("storage: snapshot not saved")
		return
	}
	s.snapVersion = s.version
}
