// Package ordering is a transaction ordering engine (the core of a mempool
// or sequencer), written as a port of an Elixir GenServer. It gives each
// submitted transaction the next height, publishes an event per ordered
// transaction, and answers reads of transactions that are not ordered yet
// later, from short-lived waiter processes, without ever blocking the
// engine. The OTP idioms it maps onto genserver and events:
//
//	Elixir                                             here
//	handle_call({:submit, tx}, ...) -> {:reply, h, s}  HandleCall(Submit) returns the Height
//	handle_cast({:submit, tx}, s)                      HandleCast(Submit)
//	{:noreply, s} + GenServer.reply(from, tx)          return genserver.NoReply; the waiter calls genserver.Reply
//	Waiter.start(from, id, self()) (Task-like)         p.System().Spawn(newWaiter(...)) inside the Read callback
//	Phoenix.PubSub.subscribe(PS, "ordered:" <> id)     broker.Subscribe(p.Self(), events.And(events.Topic(t), events.AttrEquals("txid", id)))
//	Phoenix.PubSub.broadcast(PS, "ordered:" <> id, m)  broker.Publish(p.Self(), events.Event{Topic: t, Attrs: txid, Payload: Tx})
//	Process.monitor(waiter) + {:DOWN, ...}             p.Monitor(pid) + genserver.Down in HandleInfo
//	Process.monitor(engine) in the waiter              the waiter's p.Monitor(engine): it exits with the engine
//	Process.send_after(self(), :check, ms)             p.SendAfter(min(WaiterCheck, until the deadline), check{})
//	{:stop, :normal, s}                                p.Stop(nil)
//	the caller's timeout, unknown to the server        From.Deadline(), and From.Pending() for a caller that gave up
//
// # Use
//
//	broker, _ := events.NewBroker(sys, events.Config{})
//	sys.Spawn(ordering.New(ordering.Config{Broker: broker}), genserver.WithName("ordering"))
//
//	h, err := genserver.Call[ordering.Height](ctx, sys, genserver.Name("ordering"), ordering.Submit{TxID: id, Data: b})
//	tx, err := genserver.Call[ordering.Tx](ctx, sys, genserver.Name("ordering"), ordering.Read{TxID: id}) // waits if need be
//
// On a node, run it as an engine (transport's Engine or SpawnEngine) and
// call it by its address from any node whose Registry has the types
// (Register); the deferred replies cross back like any reply. Give the
// transport the same Broker (transport.Config.Broker), and engines on other
// nodes that ask for events.Topic(ordering.DefaultTopic)
// (transport.WithSubscription) follow the order.
//
// # Heights and idempotency
//
// Heights start at 1 and are consecutive, one per distinct TxID. A Submit
// of a TxID already ordered with the same Data is answered with the height
// it got, publishes nothing and orders nothing (Stats counts it as a
// duplicate); with other Data it fails with ErrConflict. A TxID is a
// non-empty UTF-8 string of at most MaxTxID bytes, since it travels as
// CBOR text and is matched by an event filter. Data is copied in and out.
//
// # Deferred reads
//
// A Read of an ordered transaction is answered at once. Otherwise the
// engine spawns a waiter: a process of its own holding the caller's From.
// The waiter subscribes to the ordered event of that TxID (topic
// Config.Topic, attribute TxIDAttr), and when it arrives replies with the
// Tx and exits. The engine keeps only its monitor of the waiter and the
// From, so a thousand readers of one slow transaction cost it a spawn and
// a Down each, and nothing while they wait.
//
// A waiter is a process, not a goroutine: the broker delivers events to
// processes, monitors its subscribers and drops the subscriptions of those
// that exit, so no exit path can leak a subscription; its timer dies with
// it; and an idle process costs a few hundred bytes, less than a parked
// goroutine's stack. It is also what the Elixir original does. (Keeping the
// Froms in the engine and answering them from Submit, as examples/storage
// does for Get{Wait}, is simpler; the waiter takes the fan-out, the
// deadlines and the clean-up out of the engine.)
//
// The race. A transaction must not be ordered after the engine found it
// missing but before the waiter subscribed: its event would be missed and
// the reader would wait for nothing. Here that cannot happen, by
// construction: the waiter subscribes in Init, which runs inside
// System.Spawn, which the engine calls inside its Read callback; and the
// engine is the only publisher of its events, from its own callbacks, one
// at a time. So the check and the subscription are one step for every
// Submit, and the broker guarantees that a subscription sees every Publish
// that starts after Subscribe returns. TestOrderRightBehindRead queues the
// order right behind the Read in the engine's mailbox; TestOrderRacesRead
// starts each read and order together, hundreds of times. (If the
// publisher were another process, the waiter would have to subscribe
// first and then check again, asking the owner of the state.)
//
// A waiter ends, without leaking its process, subscription or timer, when:
//
//   - its transaction is ordered: it replies and exits;
//   - its caller's deadline (From.Deadline, which also travels with calls
//     from other nodes) passes: it replies genserver.ErrTimeout, which the
//     caller gets anyway, and exits;
//   - its caller gave up early (ctx cancelled): From.Pending turns false,
//     which the waiter checks every WaiterCheck;
//   - the engine exits: the waiter monitors it. The callers need no help:
//     a call fails at once when its callee exits;
//   - it crashes or is killed: the engine's monitor fails its caller at
//     once with ErrWaiterExited (and the exit reason).
//
// At most MaxWaiters waiters run at once; one more Read that would need one
// fails with ErrTooManyWaiters. (A Read from another node that waits is
// also a call in progress on the engine's node, which the transport bounds
// per connection.) A waiter answers only events that come
// from its own engine, so another publisher on the topic cannot answer a
// Read.
//
// # Crashes
//
// The order is process state: an incarnation starts empty at height 0, so
// after a crash the next one hands out heights again from 1, and pending
// Reads fail with a *genserver.ExitError. A real sequencer would log each
// transaction durably before replying (see examples/storage for snapshots);
// that is beyond this example. Without Config.Broker, each incarnation runs
// a private broker linked to it, which goes with it.
//
// porting_test.go holds the compiled examples that docs/porting.md quotes.
package ordering
