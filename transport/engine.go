package transport

import (
	"context"
	"fmt"

	"github.com/enginekit/enginekit/events"
	"github.com/enginekit/enginekit/genserver"
	"github.com/enginekit/enginekit/keyholder"
	"github.com/enginekit/enginekit/wire"
)

// localEngine is one of our engines while it runs.
type localEngine struct {
	name  string
	addr  keyholder.Address
	pid   genserver.PID
	learn []byte // the encoded learn payload, proof included
}

// Engine is a local engine run under a supervisor: a genserver.Service
// registered in the System under the engine's address, with the identity
// the keyholder holds under its name (created on first use, so it is stable
// across restarts and, with a key file, across runs). Each incarnation is
// announced to every peer with a learn message, and forgotten when it exits.
type Engine struct {
	t    *Transport
	name string
	addr keyholder.Address
	svc  *genserver.Service
	opt  engineOptions
}

// EngineOption configures an engine.
type EngineOption func(*engineOptions)

type engineOptions struct {
	filter []byte
	err    error // from encoding the filter
	gen    []genserver.Option
}

// WithProcessOptions passes genserver options (a mailbox limit, say) to the
// engine's process. WithName is not allowed: an engine's name in the System
// is its address.
func WithProcessOptions(opts ...genserver.Option) EngineOption {
	return func(o *engineOptions) { o.gen = append(o.gen, opts...) }
}

// WithSubscription makes the engine ask every peer for the events that
// match f: the spec travels in its learn messages, and the proxy on the
// other node subscribes to that node's broker with it. The default is no
// subscription: no event crosses the network for the engine.
func WithSubscription(f events.Filter) EngineOption {
	return func(o *engineOptions) {
		if f.IsZero() {
			o.filter, o.err = nil, nil
			return
		}
		o.filter, o.err = f.MarshalCBOR()
	}
}

// Engine returns the supervisable engine called name.
func (t *Transport) Engine(name string, factory func() genserver.Server, opts ...EngineOption) (*Engine, error) {
	addr, err := t.kh.EnsureEngine(name)
	if err != nil {
		return nil, err
	}
	e := &Engine{t: t, name: name, addr: addr}
	for _, o := range opts {
		o(&e.opt)
	}
	if e.opt.err != nil {
		return nil, e.opt.err
	}
	e.svc = t.sys.Service(factory, append(e.opt.gen, genserver.WithName(addr.String()))...)
	return e, nil
}

// Address returns the engine's address: its name in the System here and
// on every node that learned it.
func (e *Engine) Address() keyholder.Address { return e.addr }

// Name returns the engine's keyholder name.
func (e *Engine) Name() string { return e.name }

// PID returns the running incarnation's PID, or the zero PID.
func (e *Engine) PID() genserver.PID { return e.svc.PID() }

// String names the engine in supervisor logs.
func (e *Engine) String() string { return "engine " + e.name }

// Serve runs one incarnation of the engine (see genserver.Service.Serve).
func (e *Engine) Serve(ctx context.Context) error { return e.ServeReady(ctx, func() {}) }

// ServeReady runs one incarnation and calls ready once it has started and
// its learn messages are queued on every connection.
func (e *Engine) ServeReady(ctx context.Context, ready func()) error {
	var up *localEngine
	err := e.svc.ServeReady(ctx, func() {
		var err error
		if up, err = e.t.engineUp(e.name, e.addr, e.svc.PID(), e.opt.filter); err != nil {
			e.t.log.Error().Err(err).Str("engine", e.name).Msg("engine not announced")
		}
		ready()
	})
	if up != nil {
		e.t.engineDown(up, err)
	}
	return err
}

// SpawnEngine starts an unsupervised engine called name and announces it
// to every peer; it is forgotten when it exits.
func (t *Transport) SpawnEngine(name string, factory func() genserver.Server, opts ...EngineOption) (keyholder.Address, genserver.PID, error) {
	if !t.running.Load() {
		return keyholder.Address{}, genserver.PID{}, ErrNotRunning
	}
	addr, err := t.kh.EnsureEngine(name)
	if err != nil {
		return keyholder.Address{}, genserver.PID{}, err
	}
	var o engineOptions
	for _, opt := range opts {
		opt(&o)
	}
	if o.err != nil {
		return keyholder.Address{}, genserver.PID{}, o.err
	}
	pid, err := t.sys.Spawn(factory, append(o.gen, genserver.WithName(addr.String()))...)
	if err != nil {
		return keyholder.Address{}, genserver.PID{}, err
	}
	up, err := t.engineUp(name, addr, pid, o.filter)
	if err != nil {
		_ = t.sys.Kill(pid)
		return keyholder.Address{}, genserver.PID{}, err
	}
	if err := t.sys.Cast(t.watcher, watchEngine{up}); err != nil {
		return keyholder.Address{}, genserver.PID{}, fmt.Errorf("transport: watching engine %s: %w", name, err)
	}
	return addr, pid, nil
}

// Engines returns the local engines currently running, by address.
func (t *Transport) Engines() map[keyholder.Address]genserver.PID {
	t.mu.Lock()
	defer t.mu.Unlock()
	out := make(map[keyholder.Address]genserver.PID, len(t.core.local))
	for a, e := range t.core.local {
		out[a] = e.pid
	}
	return out
}

// engineUp records a running engine and announces it on every connection.
// It returns once the learn is queued on each of them (so that a message
// the engine sends next cannot overtake it), or the transport stops.
func (t *Transport) engineUp(name string, addr keyholder.Address, pid genserver.PID, filter []byte) (*localEngine, error) {
	learn, err := t.learnPayload(name, addr, filter)
	if err != nil {
		return nil, err
	}
	e := &localEngine{name: name, addr: addr, pid: pid, learn: learn}
	t.mu.Lock()
	t.names[addr] = name
	acts := t.core.localUp(nil, addr, pid, learn)
	waits := t.queueControl(acts, true)
	t.mu.Unlock()
	t.log.Info().Str("engine", name).Stringer("address", addr).Msg("engine started")
	t.waitSent(waits)
	return e, nil
}

// queueControl hands the control sends among acts to their routes' own
// goroutines, in order (t.mu is held). With wait, it returns channels
// closed once each is queued on its connection.
func (t *Transport) queueControl(acts []action, wait bool) []chan struct{} {
	var waits []chan struct{}
	for i := range acts {
		a := &acts[i]
		if a.kind != actSend || a.mode != sendControl {
			continue
		}
		env := a.env
		if env.Kind == wire.Forget {
			env.Payload, _ = ctlEnc.Marshal(forgetMsg{Engine: a.engine, Reason: encodeReason(a.err)})
		}
		var sent chan struct{}
		if wait {
			sent = make(chan struct{})
			waits = append(waits, sent)
		}
		a.handle.(*route).push(env, sent)
	}
	return waits
}

func (t *Transport) waitSent(waits []chan struct{}) {
	for _, w := range waits {
		select {
		case <-w:
		case <-t.ctx.Done():
			return
		}
	}
}

// engineDown forgets a stopped engine and tells every peer why.
func (t *Transport) engineDown(e *localEngine, reason error) {
	t.mu.Lock()
	acts := t.core.localDown(nil, e.addr, e.pid, reason)
	t.queueControl(acts, false)
	t.mu.Unlock()
	t.exec(acts) // calls it had in service end with its exit
	t.log.Info().Str("engine", e.name).Stringer("address", e.addr).Msg("engine stopped")
}

// SetSubscription changes the events a running local engine asks its peers
// for (the zero Filter: none) and announces it with a new learn message.
func (t *Transport) SetSubscription(engine keyholder.Address, f events.Filter) error {
	var spec []byte
	if !f.IsZero() {
		var err error
		if spec, err = f.MarshalCBOR(); err != nil {
			return err
		}
	}
	t.mu.Lock()
	l, name := t.core.local[engine], t.names[engine]
	t.mu.Unlock()
	if l == nil {
		return genserver.ErrNoProcess
	}
	learn, err := t.learnPayload(name, engine, spec)
	if err != nil {
		return err
	}
	t.mu.Lock()
	if cur := t.core.local[engine]; cur == nil || cur.pid != l.pid {
		t.mu.Unlock()
		return genserver.ErrNoProcess
	}
	acts := t.core.localUp(nil, engine, l.pid, learn)
	waits := t.queueControl(acts, true)
	t.mu.Unlock()
	t.waitSent(waits)
	return nil
}

// learnPayload encodes the learn message of a local engine: its proof of
// belonging to our router and the filter spec it asks peers for.
func (t *Transport) learnPayload(name string, addr keyholder.Address, filter []byte) ([]byte, error) {
	proof, err := t.kh.EngineProof(addr)
	if err != nil {
		return nil, err
	}
	return ctlEnc.Marshal(learnMsg{Engine: addr, Proof: proof, Name: name, Filter: filter})
}
