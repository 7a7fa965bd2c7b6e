package callbridge

import (
	"context"
	"errors"

	"github.com/enginekit/enginekit/genserver"
)

// WireError is an error as it crosses the wire in a reply.
type WireError struct {
	Code    Code   `cbor:"1,keyasint"`
	Message string `cbor:"2,keyasint,omitempty"`
}

// Code classifies an error so the receiving node can give back the same
// sentinel the callee's node saw.
type Code uint8

const (
	CodeError        Code = iota // an error returned by the handler: text only
	CodeNoProcess                // genserver.ErrNoProcess
	CodeTimeout                  // genserver.ErrTimeout
	CodeExited                   // *genserver.ExitError with a reason
	CodeExitedNormal             // *genserver.ExitError with a normal exit
	CodeCallingSelf              // genserver.ErrCallingSelf
	CodeMailboxFull              // genserver.ErrMailboxFull
	CodeNoConnection             // ErrNoConnection (a relay lost its route)
	CodeCanceled                 // the callee's node shut down during the call
	CodeBadRequest               // the request could not be decoded there
	CodeTooLarge                 // the reply (or request) was over the frame limit: Message names size and limit
	CodeTooManyCalls             // the callee's node refused the call: its peer's budget of calls in service is spent
)

// RemoteError is an error that happened on another node, known by its text.
type RemoteError struct{ Message string }

func (e *RemoteError) Error() string { return e.Message }

// ErrBadRequest: the receiving node could not decode the request (an
// unregistered type, or over its limits).
var (
	// ErrTooManyCalls: the remote node refused a call because the calls it
	// serves for our node are at their bound.
	ErrTooManyCalls = errors.New("callbridge: too many concurrent calls from this peer")
	// ErrTooLarge: a request or reply did not fit in a frame. The transport
	// makes it the same value as netconn.ErrTooLarge.
	ErrTooLarge = errors.New("callbridge: message too large")
)

// TooLargeError is a size error reported by the remote node (its reply did
// not fit in a frame). It matches ErrTooLarge.
type TooLargeError struct{ Message string }

func (e *TooLargeError) Error() string { return e.Message }

// Is makes errors.Is(err, ErrTooLarge) true.
func (e *TooLargeError) Is(target error) bool { return target == ErrTooLarge }

var ErrBadRequest = errors.New("callbridge: request rejected by the remote node")

// EncodeError turns err into its wire form; nil stays nil.
func EncodeError(err error) *WireError {
	if err == nil {
		return nil
	}
	var exit *genserver.ExitError
	switch {
	case errors.As(err, &exit):
		if exit.Reason == nil {
			return &WireError{Code: CodeExitedNormal}
		}
		return &WireError{Code: CodeExited, Message: exit.Reason.Error()}
	case errors.Is(err, genserver.ErrNoProcess):
		return &WireError{Code: CodeNoProcess}
	case errors.Is(err, genserver.ErrTimeout):
		return &WireError{Code: CodeTimeout}
	case errors.Is(err, genserver.ErrCallingSelf):
		return &WireError{Code: CodeCallingSelf}
	case errors.Is(err, genserver.ErrMailboxFull):
		return &WireError{Code: CodeMailboxFull}
	case errors.Is(err, ErrNoConnection):
		return &WireError{Code: CodeNoConnection}
	case errors.Is(err, context.Canceled):
		return &WireError{Code: CodeCanceled}
	case errors.Is(err, ErrTooManyCalls):
		return &WireError{Code: CodeTooManyCalls}
	case errors.Is(err, ErrTooLarge):
		return &WireError{Code: CodeTooLarge, Message: err.Error()}
	case errors.Is(err, ErrBadRequest):
		return &WireError{Code: CodeBadRequest, Message: err.Error()}
	}
	return &WireError{Code: CodeError, Message: err.Error()}
}

// Err turns a wire error back into the error a local caller would get.
func (w *WireError) Err() error {
	if w == nil {
		return nil
	}
	switch w.Code {
	case CodeNoProcess:
		return genserver.ErrNoProcess
	case CodeTimeout:
		return genserver.ErrTimeout
	case CodeExited:
		return &genserver.ExitError{Reason: &RemoteError{w.Message}}
	case CodeExitedNormal:
		return &genserver.ExitError{}
	case CodeCallingSelf:
		return genserver.ErrCallingSelf
	case CodeMailboxFull:
		return genserver.ErrMailboxFull
	case CodeNoConnection:
		return ErrNoConnection
	case CodeCanceled:
		return ErrNoConnection
	case CodeBadRequest:
		return ErrBadRequest
	case CodeTooLarge:
		return &TooLargeError{Message: w.Message}
	case CodeTooManyCalls:
		return ErrTooManyCalls
	}
	return &RemoteError{w.Message}
}
