package genserver

import (
	"context"
	"time"
)

// Relay delivers messages on behalf of someone else: it is for transports and
// brokers, not for everyday code. A transport makes a remote engine's call,
// cast or info message come from that engine (its local proxy and verified
// address); a broker makes an event come from its publisher. Everyday code
// sends as itself, with System.Call/Cast/Send or Process.Call/Cast/Send.
//
// A Relay is obtained from System.Relay; the zero Relay reaches no process.
type Relay struct{ sys *System }

// Relay returns the System's relay, for transports and brokers.
func (s *System) Relay() Relay { return Relay{sys: s} }

// CallAs makes a call on behalf of an engine on another node whose address
// the transport has verified: the callee sees addr as From.Address and
// proxy (the engine's local proxy, or the zero PID) as From.PID.
func (r Relay) CallAs(ctx context.Context, proxy PID, addr string, dest Dest, req any) (any, error) {
	if r.sys == nil {
		return nil, ErrNoProcess
	}
	return r.sys.request(ctx, nil, proxy, addr, dest, kCall, req)
}

// CastFrom is System.Cast on behalf of sender, which the receiver sees as
// Process.Sender. The transport uses it to make a remote engine's cast come
// from its proxy.
func (r Relay) CastFrom(sender PID, dest Dest, msg any) error {
	if r.sys == nil {
		return ErrNoProcess
	}
	return r.sys.deliver(sender, dest, kCast, msg)
}

// Link links a and b as Process.Link does, without handing the link to a
// Forwarder: the transport uses it to make, on this node, the link that a
// process on another node made with the stand-in of one of ours. It fails
// with ErrNoProcess when either is gone.
func (r Relay) Link(a, b PID) error {
	pa, pb := a.resolve(r.sys), b.resolve(r.sys)
	if r.sys == nil || pa == nil || pb == nil {
		return ErrNoProcess
	}
	if pa == pb {
		return nil
	}
	return link(pa, pb)
}

// Unlink removes the link between a and b, without telling a Forwarder.
func (r Relay) Unlink(a, b PID) {
	pa, pb := a.resolve(r.sys), b.resolve(r.sys)
	if r.sys == nil || pa == nil || pb == nil || pa == pb {
		return
	}
	unlink(pa, pb)
}

// SendFrom is System.Send on behalf of sender (see CastFrom). The event
// broker uses it to make a delivery come from its publisher.
func (r Relay) SendFrom(sender PID, dest Dest, msg any) error {
	if r.sys == nil {
		return ErrNoProcess
	}
	return r.sys.deliver(sender, dest, kInfo, msg)
}

// CallReplier takes the answer of a call delivered with Relay.DeliverCall:
// CallReply runs once per call, in the goroutine that answers it (the
// callee's, when it replies from HandleCall), so it must not wait long.
type CallReplier interface {
	CallReply(id uint64, v any, err error)
}

// DirectReplier is a CallReplier that wants to know when an answer may
// be sent at once in the answering goroutine: CallReplyDirect replaces
// CallReply when the callee answers from HandleCall's return with no other
// message left of those it took from its mailbox, so nothing it would do
// next waits behind the send (a transport writes the reply itself then,
// instead of waking its writer). It may block as briefly as CallReply may.
type DirectReplier interface {
	CallReplier
	CallReplyDirect(id uint64, v any, err error)
}

// RemoteFrom returns the From of a call that an engine on another node
// makes, for DeliverCall: the callee sees addr as From.Address and proxy
// (the engine's local proxy, or the zero PID) as From.PID, and deadline as
// From.Deadline. The first Reply to it (by the callee, or by the transport
// when the call ends otherwise: deadline, callee exit, peer gone) goes to
// rep.CallReply with id; later ones are dropped. No goroutine waits for
// it: a transport serves many calls without one goroutine each.
func (r Relay) RemoteFrom(rep CallReplier, id uint64, proxy PID, addr string, deadline time.Time) From {
	s := &replySlot{sys: r.sys, rep: rep, repID: id}
	s.state.Store(2)
	return From{slot: s, token: 2, caller: proxy, addr: addr, deadline: deadline.UnixNano()}
}

// DeliverCall queues the call req, answered through from (made by
// RemoteFrom), in dest's mailbox and returns without waiting for the
// reply. It fails with ErrNoProcess when dest is gone, ErrMailboxFull when
// its mailbox is full; from is not answered then. Whoever delivers is in
// charge of the call's deadline and of the callee's exit: it answers from
// itself.
func (r Relay) DeliverCall(dest Dest, from From, req any) error {
	if r.sys == nil {
		return ErrNoProcess
	}
	target := dest.resolve(r.sys)
	if target == nil {
		return ErrNoProcess
	}
	if target.fwd != nil {
		queued, err := target.forward(Forwarded{Kind: ForwardCall, Sender: from.caller, From: from, Msg: req})
		if !queued {
			return err
		}
	}
	return target.push(message{kind: kCall, msg: req, from: from})
}
