// Package storage is a key-value storage engine with versioned writes,
// written as a port of an Elixir GenServer. It shows the OTP idioms a
// porter meets in a real engine, each mapped onto genserver:
//
//	Elixir                                        here
//	{:ok, state, {:continue, :load}} in init/1    Init calls p.Continue(load{})
//	handle_continue(:load, state)                 HandleContinue loads the snapshot
//	Process.send_after(self(), :snapshot, ms)     p.SendAfter(cfg.SnapshotEvery, snapshotTick{})
//	Process.monitor(pid) + {:DOWN, ref, ...}      p.Monitor(pid) + genserver.Down in HandleInfo
//	{:noreply, state} + GenServer.reply(from, v)  return genserver.NoReply + genserver.Reply(from, v, nil)
//	send(pid, {:changed, entry})                  p.Send(pid, Changed{entry})
//	terminate(:shutdown, state)                   Terminate with genserver.ErrShutdown
//
// # Use
//
//	store := storage.NewMemoryStore() // or NewFileStore(path); kept across incarnations
//	sys.Service(storage.New(storage.Config{Snapshots: store}), genserver.WithName("kv"))
//
//	e, err := genserver.Call[storage.Entry](ctx, sys, genserver.Name("kv"), storage.Put{Key: "k", Value: v})
//	e, err = genserver.Call[storage.Entry](ctx, sys, genserver.Name("kv"), storage.Put{Key: "k", Value: v2, IfVersion: e.Version})
//	e, err = genserver.Call[storage.Entry](ctx, sys, genserver.Name("kv"), storage.Get{Key: "other", Wait: true})
//
// On a node, run it as an engine (transport's Engine or SpawnEngine) and
// call it by its address from any node whose Registry has the types
// (Register); `enginekit node --engines kv` does that.
//
// # Versions
//
// The store has a version that each write (a Put, or a Delete of a present
// key) increments; the entry written carries it. So versions only grow,
// across keys and across deletes: a key that is deleted and written again
// never gets back a version it had, and a compare-and-set (Put.IfVersion)
// made with a stale read fails instead of hitting a newer value that
// happens to share its version number. A missing key has version 0, which
// is why "put only if absent" cannot be expressed with IfVersion.
//
// # Deferred reads
//
// Get{Wait: true} on a missing key keeps the caller's From and returns
// NoReply; the next Put of that key answers every waiting Get. The engine
// never blocks on a waiter, the waiter's own call deadline still applies,
// and a reply to a caller who gave up is dropped by genserver. Such stale
// waiters are pruned, so waiting on keys that are never written costs
// nothing lasting.
//
// # Watches
//
// Watch registers the calling process for Changed messages on a key. The
// engine monitors each watcher once, however many keys it watches, and
// drops all its watches when the Down arrives; Unwatch of its last key
// demonitors it. A watcher on another node is its proxy here, so its watches
// end when that node forgets it. A call from a plain goroutine has no process
// to send to or to monitor, and fails with ErrNoWatcher.
//
// # Snapshots and crashes
//
// The store itself is process state: each incarnation starts empty and
// loads the latest snapshot in its continue step, before handling any
// message (Spawn, and a supervisor's start, do not wait for the load). Every
// SnapshotEvery the engine saves a snapshot if something changed, and
// re-arms its timer. On a clean shutdown Terminate saves a last one; after a
// crash it does not, since the state may be what crashed the engine. So:
//
//   - survives a crash: everything in the latest snapshot, which lives in the
//     SnapshotStore the caller keeps across incarnations;
//   - lost in a crash: the writes since that snapshot, the pending Get{Wait}
//     calls (they fail at once with a *genserver.ExitError, as any call to
//     a process that exits does), and the watches (watchers must watch the
//     new incarnation; monitoring the engine tells them when).
//
// Versions handed out by lost writes may be handed out again by the next
// incarnation. A store that must never lose an acknowledged write would log
// each one before replying; that is beyond this example.
//
// The snapshot is deterministic CBOR (RFC 8949) of the map from key to
// value and version, with the store version and a format number, readable
// from any language. A snapshot that does not decode stops the engine with
// ErrBadSnapshot rather than let it start empty and overwrite it.
package storage
