package callbridge

import (
	"context"
	"sync"
	"time"

	"github.com/enginekit/enginekit/genserver"
)

// Call is one incoming call from a remote engine.
type Call struct {
	Proxy    genserver.PID  // the calling engine's proxy on this node (From.PID), or zero
	From     string         // the calling engine's verified address (From.Address)
	Dest     genserver.Dest // the local engine called
	Req      any
	Deadline time.Time // the caller's deadline; zero means DefaultCallTimeout from now
	// Ctx, when not nil, lends its values (a trace context: the
	// transport's server span) to the dummy caller's ctx, so the callee
	// finds them in From.Context. Its deadline and cancellation are not
	// used: those are Deadline's and the Incoming's.
	Ctx context.Context
}

// withValues is a context that is done when its Context is and takes its
// values from vals first.
type withValues struct {
	context.Context
	vals context.Context
}

func (c withValues) Value(key any) any {
	if v := c.vals.Value(key); v != nil {
		return v
	}
	return c.Context.Value(key)
}

// Incoming runs dummy callers. The zero value is not usable; use NewIncoming.
type Incoming struct {
	sys    *genserver.System
	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup
}

// NewIncoming returns an Incoming whose dummy callers call into sys.
func NewIncoming(sys *genserver.System) *Incoming {
	ctx, cancel := context.WithCancel(context.Background())
	return &Incoming{sys: sys, ctx: ctx, cancel: cancel}
}

// Start runs a dummy caller for c: it calls c.Dest locally and then calls
// reply with the result, from its own goroutine. It returns at once.
func (in *Incoming) Start(c Call, reply func(v any, err error)) {
	in.StartCancelable(c, reply)
}

// StartCancelable is Start that also returns a function cancelling the
// dummy caller: its call ends with context.Canceled (reply is still
// called). The transport cancels the calls of a peer gone for good.
func (in *Incoming) StartCancelable(c Call, reply func(v any, err error)) (cancel func()) {
	var (
		ctx  context.Context
		stop context.CancelFunc
	)
	parent := in.ctx
	if c.Ctx != nil {
		parent = withValues{in.ctx, c.Ctx}
	}
	if c.Deadline.IsZero() {
		ctx, stop = context.WithCancel(parent)
	} else {
		ctx, stop = context.WithDeadline(parent, c.Deadline)
	}
	in.wg.Add(1)
	go func() {
		defer in.wg.Done()
		v, err := in.sys.Relay().CallAs(ctx, c.Proxy, c.From, c.Dest, c.Req)
		stop()
		reply(v, err)
	}()
	return stop
}

// Close cancels the dummy callers still waiting (their callers get
// context.Canceled replies, if the route is still there to carry them) and
// waits for all of them to finish. It is safe to call more than once and
// always returns nil.
func (in *Incoming) Close() error {
	in.cancel()
	in.wg.Wait()
	return nil
}
