package genserver

import "errors"

// Forwarder is implemented by servers that stand in for a process
// elsewhere, such as the transport's proxy of an engine on another node.
// When a process's server implements it, Cast, Send, Call, Relay.CastFrom
// and Relay.SendFrom to that process, and Link and Unlink with it, hand the
// message to Forward at once, in the sender's goroutine, instead of queueing
// it in the mailbox; the error Forward returns is what the sender's Cast,
// Send, Call or Link returns. So a sender learns at once that a message
// could not leave (too large, not encodable, no route), and a message costs
// no mailbox hop and no activation of the stand-in.
//
// Order: messages one sender forwards reach Forward in the order sent (the
// sender makes one call at a time), calls included, so a stand-in that
// hands them on in the order it gets them keeps OTP's per-pair order.
// Forward is called concurrently by different senders, and concurrently
// with the stand-in's own callbacks: it must be safe for that. It may be
// called as soon as the process is registered (before Init returns) and not
// after it has exited (the sender gets ErrNoProcess then).
//
// Forward returns ErrNotForwarded to have a message queued in the mailbox
// as without Forward (a stand-in keeps slow work off the sender that way);
// for ForwardLink and ForwardUnlink it means "a link on this node only".
// Messages a process gets by other ways (timers, Down, Exit, GetState, the
// system's signals) are not forwarded.
type Forwarder interface {
	Forward(m Forwarded) error
}

// CallKeeper is a Forwarder that keeps the calls it forwards: each is
// answered through its From (the reply; an error at once when it cannot
// be, as when the route to the callee is lost or the callee exits) whether
// or not the stand-in process still runs. A caller of a call it forwarded
// then waits for the reply and its deadline only, not also for the
// stand-in's exit: thousands of callers of one stand-in would otherwise
// all wait on its one exit signal, whose lock became the most contended in
// the program (a fifth of the CPU of 4,096 callers of one remote engine).
type CallKeeper interface {
	Forwarder
	KeepsCalls()
}

// ForwardKind says what a Forwarder is handed.
type ForwardKind uint8

const (
	// ForwardCast: Msg was cast by Sender.
	ForwardCast ForwardKind = iota + 1
	// ForwardInfo: Msg was sent by Sender as an info message.
	ForwardInfo
	// ForwardCall: Msg is a request; the reply goes to From with Reply (at
	// once or later, from any goroutine). When Forward returns an error
	// other than ErrNotForwarded, that error is the call's result and From
	// must not be answered.
	ForwardCall
	// ForwardLink: Sender has linked itself to the stand-in (the local link
	// is made already). An error undoes the local link and is returned by
	// Link.
	ForwardLink
	// ForwardUnlink: Sender has removed its link with the stand-in.
	ForwardUnlink
)

// Forwarded is one message handed to a Forwarder.
type Forwarded struct {
	Kind   ForwardKind
	Sender PID  // who sends, calls, links or unlinks; zero for a plain goroutine
	From   From // ForwardCall: the caller's handle
	Msg    any  // ForwardCast, ForwardInfo: the message; ForwardCall: the request
}

// ErrNotForwarded, returned by Forward, queues the message in the mailbox as
// if the server had no Forward (for a link: the link stays on this node).
var ErrNotForwarded = errors.New("genserver: not forwarded")

// forwardOf returns the server's Forwarder, or nil.
func forwardOf(srv Server) Forwarder {
	f, _ := srv.(Forwarder)
	return f
}

// forward hands m to p's Forwarder; queued reports that Forward asked for
// the mailbox instead.
func (p *Process) forward(m Forwarded) (queued bool, err error) {
	select {
	case <-p.done:
		return false, ErrNoProcess
	default:
	}
	err = p.fwd.Forward(m)
	if err == ErrNotForwarded {
		return true, nil
	}
	return false, err
}
