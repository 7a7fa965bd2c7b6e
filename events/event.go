package events

import "fmt"

// MaxEventAttrs bounds the attributes of one published event, which bounds
// the cost of looking one up while matching.
const MaxEventAttrs = 32

// Attr is one attribute of an event.
type Attr struct {
	Key   string
	Value string
}

// Event is what engines publish: a topic, a few attributes for filters to
// look at, and a payload the broker never looks at.
//
// The payload must be encodable by the transport (CBOR, under a name
// registered with the transport's wire registry) if the event is to reach
// subscribers on other nodes. Publish copies the Event once and every
// subscriber gets a pointer to that copy, whose Attrs and Payload are the
// publisher's: treat all of it as read-only once published.
type Event struct {
	// Topic names the event, conventionally dotted ("orders.created") so
	// that TopicPrefix selects a family. It must not be empty.
	Topic string
	// Attrs are the attributes filters can test, at most MaxEventAttrs,
	// with non-empty, distinct keys. Their order is the publisher's.
	Attrs []Attr
	// Payload is the event's content.
	Payload any
}

// Attr returns the value of attribute key and whether the event has it.
func (e *Event) Attr(key string) (string, bool) {
	// A linear scan: events carry a few attributes, and not requiring an
	// order keeps publishing free of sorting and copying.
	for i := range e.Attrs {
		if e.Attrs[i].Key == key {
			return e.Attrs[i].Value, true
		}
	}
	return "", false
}

func (e *Event) validate() error {
	if e.Topic == "" {
		return fmt.Errorf("%w: empty topic", ErrBadEvent)
	}
	if len(e.Attrs) > MaxEventAttrs {
		return fmt.Errorf("%w: %d attributes, limit %d", ErrBadEvent, len(e.Attrs), MaxEventAttrs)
	}
	for i := range e.Attrs {
		k := e.Attrs[i].Key
		if k == "" {
			return fmt.Errorf("%w: attribute %d has an empty key", ErrBadEvent, i)
		}
		for j := range i {
			if e.Attrs[j].Key == k {
				return fmt.Errorf("%w: attribute key %q repeated", ErrBadEvent, k)
			}
		}
	}
	return nil
}

// SubID identifies a subscription within its Broker. It is never zero.
type SubID uint64

// Delivery is the info message a subscriber receives for each matching
// event, sent on behalf of the publisher (Process.Sender is the publisher's
// PID, or the zero PID when a plain goroutine published).
//
// When the subscription is bounded (the default), the subscriber must call
// Done once per Delivery after handling it: that is how the broker knows
// the subscriber keeps up. See the package documentation, "Slow
// subscribers".
type Delivery struct {
	// Sub is the subscription the event matched.
	Sub SubID
	// Event is the published event, shared by every subscriber it was
	// delivered to: read-only.
	Event *Event
	// Dropped counts the events this subscription missed, because it was
	// at its bound, since the previous Delivery (policy DropNewest).
	Dropped uint64

	sub *subscription
}

// Done acknowledges the Delivery, making room for one more in its
// subscription's window. Call it once per Delivery, from any goroutine;
// extra calls cannot take the count below zero but can let another
// delivery in early. It does nothing for an unbounded subscription or a
// Delivery made by hand (by the transport, say).
func (d Delivery) Done() {
	if d.sub != nil {
		d.sub.ack()
	}
}

// Overflowed is the info message a subscription with policy Cancel gets,
// from the broker's process, when it reached its bound: the subscription
// is gone and the event that did not fit was not delivered. Deliveries
// already sent by other publishers may still follow it. Subscribe again to
// resume.
type Overflowed struct {
	Sub SubID
}
