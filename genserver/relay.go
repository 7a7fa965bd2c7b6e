package genserver

import "context"

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
