package storage

import (
	"errors"
	"time"

	"github.com/enginekit/enginekit/genserver"
	"github.com/enginekit/enginekit/payload"
)

// Put writes Value under Key (call). The reply is the new Entry; its Version
// is the store's version after this write.
//
// IfVersion 0 writes unconditionally. Any other value makes the Put a
// compare-and-set: it succeeds only if the key exists with exactly that
// version, and otherwise fails with an error wrapping ErrVersionMismatch
// (across nodes the error arrives as its text). "Only if the key is absent"
// cannot be expressed, since 0 already means "unconditionally".
type Put struct {
	Key       string
	Value     []byte
	IfVersion uint64
}

// Get reads Key (call); the reply is an Entry. A missing key replies
// Entry{Key: key, Found: false}, unless Wait is set: then the reply is
// deferred until a Put of Key, which answers every waiting Get with the
// entry it wrote. The engine does not block meanwhile, and a waiter whose
// caller gave up is simply forgotten.
type Get struct {
	Key  string
	Wait bool
}

// Delete removes Key (call). The reply is an Entry with Found false and, if
// the key existed, the Version of the delete; deleting a missing key changes
// nothing and replies Version 0.
type Delete struct {
	Key string
}

// Watch makes the calling process receive a Changed info message for every
// later write (Put or Delete) of Key. It must come from a process (locally,
// a genserver.Process making the call; from another node, an engine): a call
// from a plain goroutine fails with ErrNoWatcher. The reply is the key's
// current Entry, so the watcher knows where the Changed messages start.
// The engine monitors the watcher and drops its watches when it exits.
type Watch struct {
	Key string
}

// Unwatch ends the caller's watch of Key (call); the reply is a bool telling
// whether there was one.
type Unwatch struct {
	Key string
}

// Changed is the info message a watcher receives on each write of a key it
// watches. Entry.Found is false for a delete.
type Changed struct {
	Entry Entry
}

// Entry is a key's state as of one write: the reply to Put, Get and Delete.
// Version is the store's version at that write, so versions only grow, also
// across deletes (a deleted and re-created key never gets an old version
// back); a missing key has Version 0 (except in the reply to the Delete that
// removed it).
type Entry struct {
	Key     string
	Value   []byte
	Version uint64
	Found   bool
}

// Stats asks for a StatsReply (call).
type Stats struct{}

// StatsReply describes the store.
type StatsReply struct {
	Keys     int // keys present
	Watchers int // processes watching at least one key
	Waiting  int // Get{Wait} calls still waiting for their key
	// Version is the store's version: that of its latest write.
	Version uint64
	// SnapshotVersion is the Version the latest snapshot saved (or loaded)
	// holds; the writes after it are what a crash would lose.
	SnapshotVersion uint64
	// LoadedFromSnapshot reports whether this incarnation started from a
	// snapshot.
	LoadedFromSnapshot bool
}

// Errors of the storage engine, matched with errors.Is. Across nodes, a
// handler error arrives as its text only (see callbridge.RemoteError).
var (
	// ErrVersionMismatch: a Put's IfVersion is not the key's version.
	ErrVersionMismatch = errors.New("storage: version mismatch")
	// ErrNoWatcher: Watch or Unwatch was called by no process, so there is
	// nobody to send Changed to or to monitor.
	ErrNoWatcher = errors.New("storage: watch needs a calling process")
	// ErrInvalidKey: a Put's key is not valid UTF-8 (keys are CBOR text,
	// on the wire and in snapshots).
	ErrInvalidKey = errors.New("storage: key is not valid UTF-8")
	// ErrUnknownRequest: a call of a type the engine does not serve.
	ErrUnknownRequest = errors.New("storage: unknown request")
	// ErrBadConfig: the Config is not usable (the engine fails to start).
	ErrBadConfig = errors.New("storage: bad config")
	// ErrBadSnapshot: the stored snapshot does not decode. The engine stops
	// rather than start empty and overwrite it with its next snapshot.
	ErrBadSnapshot = errors.New("storage: bad snapshot")
)

// Register registers every request, reply and info type of the engine in reg,
// under "storage.<TypeName>". Every node that talks to a storage engine must
// register them.
func Register(reg *payload.Registry) error {
	return errors.Join(
		payload.Register[Put](reg, "storage.Put"),
		payload.Register[Get](reg, "storage.Get"),
		payload.Register[Delete](reg, "storage.Delete"),
		payload.Register[Watch](reg, "storage.Watch"),
		payload.Register[Unwatch](reg, "storage.Unwatch"),
		payload.Register[Changed](reg, "storage.Changed"),
		payload.Register[Entry](reg, "storage.Entry"),
		payload.Register[Stats](reg, "storage.Stats"),
		payload.Register[StatsReply](reg, "storage.StatsReply"),
	)
}

// DefaultSnapshotEvery is the snapshot period when Config.SnapshotEvery is 0.
const DefaultSnapshotEvery = time.Second

// Config configures a storage engine. The zero value is valid: a store that
// keeps nothing across incarnations.
type Config struct {
	// Snapshots is where snapshots are saved and loaded from. The caller
	// keeps it across incarnations, which is how data survives a crash.
	// Default: none (no snapshots, no timer).
	Snapshots SnapshotStore
	// SnapshotEvery is the snapshot period. Default DefaultSnapshotEvery;
	// negative is an error (ErrBadConfig, at Init).
	SnapshotEvery time.Duration
}

// New returns the engine's factory: each call makes a fresh, empty
// incarnation, which loads the latest snapshot from cfg.Snapshots in a
// continue step before it handles its first message. Use it with
// System.Spawn, System.Service or transport's Engine and SpawnEngine.
func New(cfg Config) func() genserver.Server {
	return func() genserver.Server { return newServer(cfg) }
}
