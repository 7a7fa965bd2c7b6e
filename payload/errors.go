package payload

import "errors"

// Errors returned by this package. Match them with errors.Is; returned errors
// usually wrap them with details.
var (
	// ErrUnknownType reports a payload whose type name is not registered.
	ErrUnknownType = errors.New("payload: unknown payload type")
	// ErrUnregisteredType reports a Go value whose type is not registered,
	// given to Marshal.
	ErrUnregisteredType = errors.New("payload: type not registered")
	// ErrPayloadTooLarge reports a payload over Limits.MaxSize.
	ErrPayloadTooLarge = errors.New("payload: payload too large")
	// ErrPayloadLimits reports a payload nested deeper, or holding more array
	// elements or map pairs, than Limits allow.
	ErrPayloadLimits = errors.New("payload: payload exceeds decode limits")
	// ErrMalformedPayload reports a payload that is not a registered value
	// encoded as wire/spec.md says: bad CBOR, trailing bytes, a value of the
	// wrong shape for its type.
	ErrMalformedPayload = errors.New("payload: malformed payload")
	// ErrDuplicateName reports a type name registered twice.
	ErrDuplicateName = errors.New("payload: type name already registered")
	// ErrDuplicateType reports a Go type registered twice.
	ErrDuplicateType = errors.New("payload: type already registered")
	// ErrBadName reports a type name that is empty, longer than MaxTypeName
	// bytes or not valid UTF-8, or an interface type given to Register.
	ErrBadName = errors.New("payload: bad type name")
	// ErrBadConfig reports Limits out of the ranges documented on Limits
	// (Limits.Verify, NewRegistry).
	ErrBadConfig = errors.New("payload: bad config")
)
