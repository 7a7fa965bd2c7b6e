package netconn

import (
	"errors"
	"fmt"
)

// Errors returned by this package, matched with errors.Is. Returned errors
// usually wrap one of them with details, and sometimes a second one (a
// handshake error wraps ErrHandshake and the specific cause).
var (
	// ErrBadConfig reports a Config, address or policy that cannot work.
	ErrBadConfig = errors.New("netconn: bad config")
	// ErrClosed reports use of a connection, listener or dialer that is
	// closed, or whose connection went down.
	ErrClosed = errors.New("netconn: closed")
	// ErrHandshake is wrapped by every failure before a connection is up:
	// TLS, the peer's router key, the hello exchange.
	ErrHandshake = errors.New("netconn: handshake failed")
	// ErrHandshakeTimeout reports a handshake (TLS and hello) that took
	// longer than Config.HandshakeTimeout.
	ErrHandshakeTimeout = errors.New("netconn: handshake timed out")
	// ErrWrongPeer reports a dialed peer whose router key is not the pinned one.
	ErrWrongPeer = errors.New("netconn: peer router is not the one expected")
	// ErrNotAccepted reports a peer router refused by the listener's
	// AcceptPolicy.
	ErrNotAccepted = errors.New("netconn: peer router not accepted")
	// ErrSelf reports a connection whose peer is this node's own router.
	ErrSelf = errors.New("netconn: peer is this node's own router")
	// ErrIncompatible reports a peer whose hello does not match ours: another
	// protocol version or another authentication mode.
	ErrIncompatible = errors.New("netconn: incompatible peer")
	// ErrProtocol reports a peer that broke the wire protocol: an oversize,
	// malformed or unknown frame. The connection is closed.
	ErrProtocol = errors.New("netconn: protocol violation by peer")
	// ErrTooManyBad reports a peer closed for sending more than
	// Config.MaxBadBatches batches that failed authentication.
	ErrTooManyBad = errors.New("netconn: too many unauthentic batches from peer")
	// ErrIdleTimeout reports a connection on which nothing arrived, pongs
	// included, for Config.IdleTimeout.
	ErrIdleTimeout = errors.New("netconn: peer silent for too long")
	// ErrPeerClosed reports a connection the peer closed: a go-away frame or
	// the end of the stream.
	ErrPeerClosed = errors.New("netconn: peer closed the connection")
	// ErrTooLarge reports an envelope that cannot fit in one frame the peer
	// accepts. Send and TrySend return it as a *SizeError.
	ErrTooLarge = errors.New("netconn: envelope too large")
	// ErrQueueFull reports a TrySend that found the send queue at
	// Config.MaxQueueBytes (or the connection not up yet): nothing was
	// queued; try later or use Send, which waits.
	ErrQueueFull = errors.New("netconn: send queue full")
)

// SizeError reports an envelope whose payload can never fit in one frame to
// the peer, so it was refused before queueing. errors.Is(err, ErrTooLarge)
// holds for it.
type SizeError struct {
	Size  int // payload bytes of the refused envelope
	Limit int // the largest payload one frame to the peer can hold
}

func (e *SizeError) Error() string {
	return fmt.Sprintf("netconn: envelope too large: %d-byte payload, limit %d bytes", e.Size, e.Limit)
}

// Is makes errors.Is(err, ErrTooLarge) true.
func (e *SizeError) Is(target error) bool { return target == ErrTooLarge }
