package wire

import "errors"

// Errors returned by this package. Match them with errors.Is; returned errors
// usually wrap them with details. The payload registry's errors are package
// payload's (registry.go forwards their old names).
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
)
