// Package events is the event broker of a genserver System: engines publish
// events, subscribers hold filter specs, and each matching event arrives at
// the subscriber as an info message.
//
//	b, err := events.NewBroker(sys, events.Config{})
//	id, err := b.Subscribe(p.Self(), events.And(
//		events.TopicPrefix("orders."),
//		events.AttrOneOf("region", "eu", "uk"),
//	))
//	n, err := b.Publish(p.Self(), events.Event{
//		Topic:   "orders.created",
//		Attrs:   []events.Attr{{Key: "region", Value: "eu"}},
//		Payload: order,
//	})
//
//	func (s *Server) HandleInfo(p *genserver.Process, msg any) {
//		switch m := msg.(type) {
//		case events.Delivery:
//			handle(m.Event)
//			m.Done()
//		case events.Overflowed: // only with policy Cancel
//		}
//	}
//
// # Events
//
// An Event has a Topic (conventionally dotted, so that a prefix selects a
// family), up to MaxEventAttrs string attributes with distinct keys, and a
// Payload the broker never looks at. For the transport to forward an event
// to another node, the payload must be CBOR-encodable under a name
// registered in the transport's wire registry; the topic and attributes are
// plain strings. Subscribers of one event share it: treat it as read-only.
//
// # Filter specs
//
// A Filter is data, not code, so it can cross the wire and be checked on
// arrival. It is a small tree of
//
//	Topic(t)              the topic is t
//	TopicPrefix(p)        the topic starts with p ("" matches every topic)
//	AttrEquals(k, v)      attribute k exists and is v
//	AttrPrefix(k, p)      attribute k exists and starts with p ("" tests that k exists)
//	AttrOneOf(k, v...)    attribute k exists and is one of 1 to MaxOneOf values
//	And(f...), Or(f...)   all / any operand matches; And() is true, Or() is false
//	Not(f)                f does not match
//	All()                 everything
//
// and the zero Filter (also Nothing()) is the empty spec, which matches
// nothing: a subscription holding it receives nothing, which is what most
// transport proxies hold. A spec is checked when it is built: each
// constructor checks its own arguments (non-empty topic and keys, UTF-8
// strings, at least one one-of value) and the limits below, and a Filter
// built from a bad argument or operand carries the error, which Validate,
// Subscribe, Update and MarshalCBOR return (wrapping ErrBadFilter or
// ErrFilterTooLarge). An invalid Filter matches nothing, and neither does
// its negation.
//
// The limits bound what a spec costs to hold and to evaluate, so that a peer
// cannot make the broker do much work per event:
//
//	MaxFilterNodes   64    predicates and operators
//	MaxFilterDepth    8    nesting (a predicate alone has depth 1)
//	MaxFilterString 256    bytes per topic, prefix, key or value
//	MaxOneOf         32    values in one AttrOneOf
//	MaxFilterSize  8192    bytes of CBOR encoding
//
// Match is allocation-free and runs on a pre-order array of nodes: a
// predicate costs 2–25 ns, the largest legal spec a few hundred.
//
// # Wire format
//
// A spec travels as deterministic CBOR (RFC 8949 §4.2.1). Each node is an
// array whose first element is an operator code, an unsigned integer:
//
//	[0]                   Nothing
//	[1]                   All
//	[2, topic]            Topic
//	[3, prefix]           TopicPrefix
//	[4, key, value]       AttrEquals
//	[5, key, prefix]      AttrPrefix
//	[6, key, v1, ..., vn] AttrOneOf, 1 <= n <= MaxOneOf
//	[7, f1, ..., fn]      And, n >= 0
//	[8, f1, ..., fn]      Or, n >= 0
//	[9, f]                Not
//
// Strings are text strings (major type 3). So And(Topic("a"),
// Not(AttrEquals("k", "v"))) is [7, [2, "a"], [9, [4, "k", "v"]]].
// DecodeFilter (and UnmarshalCBOR, so a Filter can be a field of a larger
// CBOR message such as the transport's learn message) refuses input longer
// than MaxFilterSize before parsing, parses with nesting and length limits
// just above the spec limits, refuses tags, maps, indefinite lengths, byte
// strings, unknown operators and wrong arities, and rebuilds the spec
// through the constructors, which check the rest. It never panics; a fuzz
// target (FuzzDecodeFilter) keeps it so.
//
// # Delivery and order
//
// Publish matches the event against the subscriptions and queues one
// Delivery per matching subscription in the subscriber's mailbox, sent on
// behalf of the publisher (genserver.Relay.SendFrom), in the publisher's
// own goroutine. Since genserver keeps messages from one sender to one
// receiver in order, events from one publisher arrive at each subscriber in
// the order of its Publish calls. Publishers do not go through a broker
// process, so they run in parallel and cost no extra hop; they share the
// subscription table under a read lock.
//
// Subscribe, Update and Unsubscribe take effect for every Publish that
// starts after they return. Deliveries already queued, and those of
// publishes running concurrently, still arrive; Delivery.Sub tells which
// subscription an event matched, so a subscriber can ignore stale ones.
//
// # Slow subscribers
//
// Mailboxes are unbounded, so a subscriber that falls behind would grow
// without limit. The broker bounds each subscription instead: at most
// MaxPending deliveries (default 1024, Config.MaxPending or WithMaxPending)
// may wait for the subscriber's acknowledgement, Delivery.Done. A publish
// that finds a subscription at its bound never waits: the subscription's
// Overflow policy applies, for that subscription only:
//
//   - DropNewest (default): the event is not delivered to it. The drop is
//     counted (Stats.DroppedPending) and the subscription's next Delivery
//     carries the number of events it missed (Delivery.Dropped).
//   - Cancel: the subscription is removed before Publish returns and the
//     subscriber gets an Overflowed message from the broker's process.
//
// A subscriber's own mailbox limit (genserver.WithMailboxLimit with Reject)
// is a second bound: a delivery its mailbox refuses gets the same policy
// and is counted as Stats.DroppedMailboxFull (if it is full, an Overflowed
// notice is lost too; the subscription is removed all the same). A
// negative MaxPending makes a subscription unbounded, for subscribers that
// are known to keep up; Done is then unnecessary. The memory a slow
// subscriber can pin is therefore MaxPending deliveries (32 bytes each plus
// the shared events) per subscription.
//
// Acknowledgement is explicit because the broker cannot see into a
// subscriber's mailbox. A subscriber that never calls Done on a bounded
// subscription sees its first MaxPending events and then, with DropNewest,
// Delivery.Dropped counts, which makes the mistake visible at once.
//
// # Subscriber exits
//
// The broker runs one small process, which monitors every subscriber (one
// monitor per subscriber, however many subscriptions it holds). When a
// subscriber exits, its Down makes the broker remove all its
// subscriptions; nothing polls. Subscribe refuses a subscriber that has
// already exited (genserver.ErrNoProcess); one that exits right after
// Subscribe returns gets an immediate Down from the monitor. A PID of
// another System cannot be reached or monitored from this one and is
// removed the same way. Deliveries to a subscriber that exited but whose
// Down is not yet handled are counted as Stats.DroppedNoProcess.
//
// The broker's process lives until Close or until its System stops; after
// that every method returns ErrClosed.
//
// # Matching many subscriptions
//
// The table indexes subscriptions by what their spec requires of the
// topic: an exact topic (Topic, or And with one), a topic prefix, a set of
// those (Or whose every operand has one), or nothing known (attribute
// predicates alone, Not, All). A publish evaluates only the subscriptions
// filed under its topic, under one of its prefixes (of the lengths in
// use), or under "any"; the empty spec is filed nowhere. With the 1,000
// mixed specs of the benchmarks (MixedFilters in export_test.go) an event
// is checked against about a quarter of them, in about 3 µs, against 9–10
// µs for evaluating all of them.
//
// # For the transport
//
// A foreign engine's proxy holds the spec carried in the engine's learn
// message (a Filter field decodes with the checks above), subscribes only
// when !f.IsZero(), calls Update when a later learn changes the spec
// (Filter.Equal tells), forwards each Delivery's Event, and calls Done once
// the event is handed to a connection, so that a slow link is bounded by
// the subscription's window and its policy. The receiving side may hand
// the engine a Delivery built by hand (Sub and Event); Done on it does
// nothing.
package events
