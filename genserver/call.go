package genserver

import (
	"context"
	"runtime"
	"sync"
	"sync/atomic"
	"time"
)

// DefaultCallTimeout bounds a call whose ctx has no deadline, as OTP's
// default of 5 s does.
const DefaultCallTimeout = 5 * time.Second

// From is the handle of one pending call. It can be stored, copied, handed
// to another goroutine or process and answered later with Reply; only the
// first Reply counts. The zero From answers nothing.
type From struct {
	slot     *replySlot
	token    uint64
	caller   PID
	addr     string
	deadline int64 // unix nanoseconds; 0: DefaultCallTimeout, fixed lazily (replySlot.lazy)
	ctx      context.Context
}

// PID returns the calling process, or the zero PID when the caller is not a
// process of this System (a plain goroutine, or an engine on another node).
func (f From) PID() PID { return f.caller }

// Address returns the verified address of the calling engine when the call
// came from another node through the transport, else "".
func (f From) Address() string { return f.addr }

// Deadline returns when the caller stops waiting.
func (f From) Deadline() time.Time {
	if f.slot != nil && f.slot.far != nil {
		return f.slot.far.deadline
	}
	if f.deadline == 0 && f.slot != nil {
		return time.Unix(0, f.slot.lazyDeadline(f.token))
	}
	return time.Unix(0, f.deadline)
}

// Context returns the ctx the caller passed to Call (System.Call,
// Process.Call, Relay.CallAs), for its values: a trace context above all,
// so that a handler's own spans nest under the caller's (with the
// transport's Config.Tracer, the ctx of a call from another node carries
// the transport's server span). It is done once the caller stops waiting:
// work that outlives the call should not use it for cancellation. A From
// decoded from another node, or the zero From, gives
// context.Background(). genserver keeps the ctx in the From only and does
// nothing else with its values.
func (f From) Context() context.Context {
	if f.ctx == nil {
		return context.Background()
	}
	return f.ctx
}

// Pending reports whether the call still waits for a reply: not yet
// answered, and the caller has not given up.
func (f From) Pending() bool {
	return f.slot != nil && f.slot.state.Load() == f.token && (f.slot.far == nil || f.slot.far.sys != nil)
}

// Reply answers the call behind from with v, or with err when err is not
// nil. It can be called from any goroutine, at any time; it reports whether
// the reply was taken: a second reply, or one after the caller gave up, is
// dropped.
func Reply(from From, v any, err error) bool {
	s := from.slot
	if s == nil {
		return false
	}
	if s.far != nil {
		return s.replyFar(from.token, v, err)
	}
	if s.rep != nil {
		if !s.state.CompareAndSwap(from.token, from.token+1) {
			return false
		}
		s.rep.CallReply(s.repID, v, err)
		return true
	}
	if !s.state.CompareAndSwap(from.token, from.token+1) {
		return false
	}
	s.val, s.err = v, err
	s.done <- struct{}{}
	return true
}

// replyDirect is Reply from a callee that has nothing else to do: a
// DirectReplier hears it with CallReplyDirect.
func replyDirect(from From, v any, err error) bool {
	s := from.slot
	if s == nil || s.rep == nil || s.far != nil {
		return Reply(from, v, err)
	}
	d, ok := s.rep.(DirectReplier)
	if !ok {
		return Reply(from, v, err)
	}
	if !s.state.CompareAndSwap(from.token, from.token+1) {
		return false
	}
	d.CallReplyDirect(s.repID, v, err)
	return true
}

// replySlot is where one call's reply lands. Slots are pooled: state holds
// the token of the call that owns the slot (even) or token+1 once that call
// is answered or abandoned, so a stale From can never answer a later call.
type replySlot struct {
	pool *sync.Pool
	sys  *System
	far  *farFrom // a From decoded from another node: no caller here
	// rep takes the answer of a call delivered for another node
	// (Relay.DeliverCall): no caller waits here. Such slots are never
	// pooled, so rep and repID never change.
	rep   CallReplier
	repID uint64
	state atomic.Uint64
	done  chan struct{} // capacity 1: Reply never blocks
	val   any
	err   error
	// timer bounds a call without a ctx deadline (DefaultCallTimeout). It
	// is armed only when the caller parks, so a call answered while the
	// caller yields pays no timer; armed says it must be stopped.
	timer *time.Timer
	armed bool
	// lazy is the deadline (unix nanoseconds) of a call without a ctx
	// deadline, 0 until the caller parks or the callee asks From.Deadline,
	// whichever comes first: DefaultCallTimeout from then. A call answered
	// before either reads no clock (the clock is a sizeable share of a
	// local round trip on some machines).
	lazy atomic.Int64
}

// lazyDeadline fixes, or returns, the deadline of the call holding token.
// A From whose call is over gets the time of asking (or the deadline
// fixed before): its caller no longer waits.
func (s *replySlot) lazyDeadline(token uint64) int64 {
	if d := s.lazy.Load(); d != 0 && s.state.Load() == token {
		return d
	}
	if s.state.Load() != token {
		return time.Now().UnixNano()
	}
	return s.fixDeadline()
}

// fixDeadline fixes the lazy deadline, unless fixed already, and returns it;
// only for the caller, while its call holds the slot.
func (s *replySlot) fixDeadline() int64 {
	if d := s.lazy.Load(); d != 0 {
		return d
	}
	d := time.Now().Add(DefaultCallTimeout).UnixNano()
	if !s.lazy.CompareAndSwap(0, d) {
		d = s.lazy.Load()
	}
	return d
}

func (sys *System) getSlot() (*replySlot, uint64) {
	s := sys.slots.Get().(*replySlot)
	// Tokens are unique across the System's slots, so no From can ever
	// match a call other than its own.
	t := sys.tokens.Add(2)
	s.lazy.Store(0)
	s.state.Store(t)
	return s, t
}

// abandon marks the slot answered so a late Reply is dropped, and makes it
// reusable.
func (s *replySlot) abandon(token uint64) {
	if !s.state.CompareAndSwap(token, token+1) {
		<-s.done // a Reply won the race; its send is imminent
	}
	s.release()
}

// Caller is who makes a call: a *System (from plain goroutines) or a
// *Process (from inside callbacks, which lets the callee see the calling PID
// and turns calling oneself into ErrCallingSelf instead of a deadlock).
type Caller interface {
	caller() (*System, *Process)
}

func (s *System) caller() (*System, *Process)  { return s, nil }
func (p *Process) caller() (*System, *Process) { return p.sys, p }

// Call sends req to dest and waits for the reply, ctx's end, or
// DefaultCallTimeout when ctx has no deadline. When the callee exits before
// replying the call fails at once with an *ExitError carrying the reason.
func Call[T any](ctx context.Context, c Caller, dest Dest, req any) (T, error) {
	var zero T
	sys, self := c.caller()
	v, err := sys.call(ctx, self, "", dest, req)
	if err != nil {
		return zero, err
	}
	if v == nil {
		return zero, nil
	}
	t, ok := v.(T)
	if !ok {
		return zero, ErrBadReply
	}
	return t, nil
}

// Call is Call[any] from outside any process.
func (s *System) Call(ctx context.Context, dest Dest, req any) (any, error) {
	return s.call(ctx, nil, "", dest, req)
}

// Call is Call[any] made by p.
func (p *Process) Call(ctx context.Context, dest Dest, req any) (any, error) {
	return p.sys.call(ctx, p, "", dest, req)
}

// Cast sends an asynchronous request to dest (see System.Cast); the
// receiver sees p as its Sender.
func (p *Process) Cast(dest Dest, msg any) error { return p.sys.deliver(PID{p}, dest, kCast, msg) }

// Send sends an info message to dest (see System.Send); the receiver sees p
// as its Sender.
func (p *Process) Send(dest Dest, msg any) error { return p.sys.deliver(PID{p}, dest, kInfo, msg) }

func (s *System) call(ctx context.Context, self *Process, addr string, dest Dest, req any) (any, error) {
	return s.request(ctx, self, PID{self}, addr, dest, kCall, req)
}

// request sends a message that expects a reply (a call, or a GetState) and
// waits for the reply.
func (s *System) request(ctx context.Context, self *Process, caller PID, addr string, dest Dest, kind msgKind, req any) (any, error) {
	target := dest.resolve(s)
	if target == nil {
		return nil, ErrNoProcess
	}
	if target == self {
		return nil, ErrCallingSelf
	}
	slot, token := s.getSlot()
	deadline, hasDeadline := ctx.Deadline()
	from := From{slot: slot, token: token, caller: caller, addr: addr, ctx: ctx}
	if hasDeadline {
		from.deadline = deadline.UnixNano()
	}
	queue := true
	exited := target.done // the callee's exit fails the call at once
	if target.fwd != nil && kind == kCall {
		if !hasDeadline {
			// The stand-in reads the deadline at once: fix it now.
			from.deadline = slot.fixDeadline()
		}
		var err error
		if queue, err = target.forward(Forwarded{Kind: ForwardCall, Sender: caller, From: from, Msg: req}); err != nil {
			slot.abandon(token)
			return nil, err
		}
		if _, keeps := target.fwd.(CallKeeper); keeps && !queue {
			exited = nil // the Forwarder answers it, whatever becomes of the stand-in
		}
	}
	if queue {
		if err := target.push(message{kind: kind, msg: req, from: from}); err != nil {
			slot.abandon(token)
			return nil, err
		}
	}
	// The callee usually starts on this P (a new activation goes to the
	// head of its run queue): yielding once lets it answer before we pay
	// for parking on a select and arming the timer. A forwarded call (to
	// another node) cannot be answered that soon: no yield.
	if queue {
		runtime.Gosched()
		select {
		case <-slot.done:
			return slot.result()
		default:
		}
	}
	var timeout <-chan time.Time
	if !hasDeadline {
		d := from.deadline
		if d == 0 {
			d = slot.fixDeadline()
		}
		timeout = slot.arm(time.Until(time.Unix(0, d)))
	}
	select {
	case <-slot.done:
		return slot.result()
	case <-exited:
		// The callee exited; its reply may still have been first.
		if !slot.state.CompareAndSwap(token, token+1) {
			<-slot.done
			return slot.result()
		}
		slot.release()
		return nil, &ExitError{PID: PID{target}, Reason: target.reason}
	case <-ctx.Done():
		slot.abandon(token)
		if ctx.Err() == context.DeadlineExceeded {
			return nil, ErrTimeout
		}
		return nil, ctx.Err()
	case <-timeout:
		slot.abandon(token)
		return nil, ErrTimeout
	}
}

// result returns the reply and puts the slot back in the pool.
func (s *replySlot) result() (any, error) {
	v, err := s.val, s.err
	s.release()
	return v, err
}

func (s *replySlot) release() {
	s.val, s.err = nil, nil
	s.stopTimer()
	s.pool.Put(s)
}

// arm starts the slot's timer for d and returns its channel.
func (s *replySlot) arm(d time.Duration) <-chan time.Time {
	if s.timer == nil {
		s.timer = time.NewTimer(d)
	} else {
		s.timer.Reset(d)
	}
	s.armed = true
	return s.timer.C
}

func (s *replySlot) stopTimer() {
	if s.armed {
		s.timer.Stop()
		s.armed = false
	}
}
