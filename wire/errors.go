package wire

import "errors"

// Errors returned by this package. Match them with errors.Is; returned errors
// usually wrap them with details.
var (
	// ErrFrameTooLarge reports a frame whose length field exceeds the
	// reader's maximum, or a frame a writer would have to make too large.
	ErrFrameTooLarge = errors.New("wire: frame too large")
	// ErrMalformedFrame reports a frame whose bytes do not follow the layout
	// of its type (spec.md): a zero length, a truncated or overlong body,
	// inconsistent counts.
	ErrMalformedFrame = errors.New("wire: malformed frame")
	// ErrUnknownFrame reports a frame type this version does not define.
	ErrUnknownFrame = errors.New("wire: unknown frame type")
	// ErrBadHello reports a hello frame with the wrong magic, or values out of
	// range.
	ErrBadHello = errors.New("wire: bad hello")
	// ErrUnknownKind reports an envelope kind this version does not define.
	ErrUnknownKind = errors.New("wire: unknown envelope kind")

	// ErrUnknownType reports a payload whose type name is not registered.
	ErrUnknownType = errors.New("wire: unknown payload type")
	// ErrUnregisteredType reports a Go value whose type is not registered,
	// given to Marshal.
	ErrUnregisteredType = errors.New("wire: type not registered")
	// ErrPayloadTooLarge reports a payload over Limits.MaxSize.
	ErrPayloadTooLarge = errors.New("wire: payload too large")
	// ErrPayloadLimits reports a payload nested deeper, or holding more array
	// elements or map pairs, than Limits allow.
	ErrPayloadLimits = errors.New("wire: payload exceeds decode limits")
	// ErrMalformedPayload reports a payload that is not a registered value
	// encoded as spec.md says: bad CBOR, trailing bytes, a value of the wrong
	// shape for its type.
	ErrMalformedPayload = errors.New("wire: malformed payload")
	// ErrDuplicateName reports a type name registered twice.
	ErrDuplicateName = errors.New("wire: type name already registered")
	// ErrDuplicateType reports a Go type registered twice.
	ErrDuplicateType = errors.New("wire: type already registered")
	// ErrBadName reports a type name that is empty, longer than MaxTypeName
	// bytes or not valid UTF-8.
	ErrBadName = errors.New("wire: bad type name")
	// ErrBadLimits reports Limits out of the ranges documented on Limits.
	ErrBadLimits = errors.New("wire: bad limits")
)
