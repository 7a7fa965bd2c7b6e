package events

import "errors"

// Errors returned by this package, matched with errors.Is. Each is wrapped
// with details (which node, which limit).
var (
	// ErrBadFilter: a filter spec is malformed: an empty topic or key, a
	// string that is not UTF-8, a one-of without values, an unknown
	// operator, or bytes that are not a filter's CBOR encoding.
	ErrBadFilter = errors.New("events: malformed filter")
	// ErrFilterTooLarge: a filter spec exceeds one of the limits
	// (MaxFilterNodes, MaxFilterDepth, MaxFilterString, MaxOneOf,
	// MaxFilterSize).
	ErrFilterTooLarge = errors.New("events: filter too large")
	// ErrBadEvent: Publish was given an event with an empty topic, an empty
	// or repeated attribute key, or more than MaxEventAttrs attributes.
	ErrBadEvent = errors.New("events: malformed event")
	// ErrNoSubscription: Update or Unsubscribe named a subscription that
	// does not exist (never did, was unsubscribed, cancelled on overflow,
	// or removed because its subscriber exited).
	ErrNoSubscription = errors.New("events: no such subscription")
	// ErrClosed: the broker is closed (Close, or its System stopped).
	ErrClosed = errors.New("events: broker closed")
	// ErrBadConfig: a Config or subscription option is invalid.
	ErrBadConfig = errors.New("events: bad config")
)
