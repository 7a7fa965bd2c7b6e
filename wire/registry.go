package wire

import "github.com/enginekit/enginekit/payload"

// The payload registry moved to package payload, which sits below wire: the
// names below forward to it so existing code keeps compiling, and values
// and errors are identical (errors.Is matches either name).

// Limits bound what Registry.Unmarshal accepts.
//
// Deprecated: use payload.Limits.
type Limits = payload.Limits

// Registry maps Go types to the names their values travel under.
//
// Deprecated: use payload.Registry.
type Registry = payload.Registry

// MaxTypeName is the longest type name, in bytes.
//
// Deprecated: use payload.MaxTypeName.
const MaxTypeName = payload.MaxTypeName

// DefaultLimits returns the limits used for zero fields of Limits.
//
// Deprecated: use payload.DefaultLimits.
func DefaultLimits() Limits { return payload.DefaultLimits() }

// NewRegistry returns a Registry that decodes within l.
//
// Deprecated: use payload.NewRegistry.
func NewRegistry(l Limits) (*Registry, error) { return payload.NewRegistry(l) }

// Register makes values of type T travel under name.
//
// Deprecated: use payload.Register.
func Register[T any](r *Registry, name string) error { return payload.Register[T](r, name) }

// Errors of the payload registry, the same values as package payload's.
var (
	// Deprecated: use payload.ErrUnknownType.
	ErrUnknownType = payload.ErrUnknownType
	// Deprecated: use payload.ErrUnregisteredType.
	ErrUnregisteredType = payload.ErrUnregisteredType
	// Deprecated: use payload.ErrPayloadTooLarge.
	ErrPayloadTooLarge = payload.ErrPayloadTooLarge
	// Deprecated: use payload.ErrPayloadLimits.
	ErrPayloadLimits = payload.ErrPayloadLimits
	// Deprecated: use payload.ErrMalformedPayload.
	ErrMalformedPayload = payload.ErrMalformedPayload
	// Deprecated: use payload.ErrDuplicateName.
	ErrDuplicateName = payload.ErrDuplicateName
	// Deprecated: use payload.ErrDuplicateType.
	ErrDuplicateType = payload.ErrDuplicateType
	// Deprecated: use payload.ErrBadName.
	ErrBadName = payload.ErrBadName
	// Deprecated: use payload.ErrBadConfig.
	ErrBadLimits = payload.ErrBadConfig
)
