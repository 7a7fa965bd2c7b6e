package genserver

import (
	"context"
	"errors"
	"fmt"
	"runtime/debug"
	"sync/atomic"
	"time"
)

// Option configures a process at Spawn or Service.
type Option func(*options)

type options struct {
	name     string
	limit    int
	overflow Overflow
	link     *Process // SpawnLink's parent
}

// WithName registers the process under name for its lifetime. Spawning a
// second live process with the same name fails with ErrNameTaken.
func WithName(name string) Option { return func(o *options) { o.name = name } }

// WithMailboxLimit bounds the mailbox to n queued messages; what happens
// beyond is policy. Mailboxes are unbounded by default: senders never block.
func WithMailboxLimit(n int, policy Overflow) Option {
	return func(o *options) { o.limit, o.overflow = n, policy }
}

// Spawn starts an unsupervised process running a fresh Server from factory.
// It returns once Init has succeeded; an Init error (or panic) is returned
// and no process remains. Init may also stop the start: calling p.Stop(reason)
// makes Spawn return reason (ErrInitStopped for nil) without running
// Terminate, and returning ErrIgnore makes Spawn return it with no process
// and no crash (OTP's {stop, Reason} and ignore).
func (s *System) Spawn(factory func() Server, opts ...Option) (PID, error) {
	var o options
	for _, opt := range opts {
		opt(&o)
	}
	p, err := s.start(factory, o)
	if err != nil {
		return PID{}, err
	}
	return PID{p}, nil
}

// start creates, registers and initialises a process. Init runs in the
// caller's goroutine: the process is marked running meanwhile, so messages
// sent to it during Init wait in its mailbox.
func (s *System) start(factory func() Server, o options) (*Process, error) {
	srv := factory()
	if srv == nil {
		return nil, fmt.Errorf("genserver: factory returned a nil Server")
	}
	p := &Process{
		sys:      s,
		id:       s.ids.Add(1),
		name:     o.name,
		srv:      srv,
		fwd:      forwardOf(srv),
		done:     make(chan struct{}),
		started:  time.Now(),
		running:  true,
		limit:    o.limit,
		overflow: o.overflow,
	}
	if err := s.register(p); err != nil {
		if err == ErrNameTaken {
			return nil, fmt.Errorf("%w: %q", ErrNameTaken, o.name)
		}
		return nil, err
	}
	if o.link != nil {
		p.links = map[*Process]struct{}{o.link: {}}
		o.link.mu.Lock()
		if o.link.links == nil {
			o.link.links = make(map[*Process]struct{})
		}
		o.link.links[p] = struct{}{}
		o.link.mu.Unlock()
	}
	if err := p.init(); err != nil {
		if errors.Is(err, ErrIgnore) {
			// OTP's ignore: a normal exit, nothing to report.
			p.terminate(nil, false)
		} else {
			p.terminate(err, false)
		}
		return nil, err
	}
	if p.stopping {
		// Init called Stop: OTP's {stop, Reason} from init fails the
		// start with Reason, and terminate does not run.
		reason := p.stopWhy
		p.terminate(reason, false)
		if reason == nil {
			return nil, ErrInitStopped
		}
		return nil, reason
	}
	p.mu.Lock()
	if p.q.n > 0 || len(p.sigs) > 0 || p.cont != nil {
		go activate(p)
	} else {
		p.running = false
		if p.idle > 0 {
			p.armIdleLocked()
		}
	}
	p.mu.Unlock()
	return p, nil
}

func (p *Process) init() (err error) {
	i, ok := p.srv.(Initer)
	if !ok {
		return nil
	}
	defer func() {
		if v := recover(); v != nil {
			err = &PanicError{Value: v, Stack: debug.Stack()}
		}
	}()
	return i.Init(p)
}

// Service is a process run by a supervisor: each Serve starts a new
// incarnation (new Server value, new PID, name registered again) and returns
// when it exits. It implements suture.Service and the supervisor package's
// ReadyService.
type Service struct {
	sys     *System
	factory func() Server
	opts    options
	current atomic.Pointer[Process]
}

// Service returns a supervisable process; nothing runs until Serve.
func (s *System) Service(factory func() Server, opts ...Option) *Service {
	svc := &Service{sys: s, factory: factory}
	for _, opt := range opts {
		opt(&svc.opts)
	}
	return svc
}

// PID returns the current incarnation's PID, or the zero PID.
func (svc *Service) PID() PID {
	return PID{svc.current.Load()}
}

// String names the service in supervisor logs.
func (svc *Service) String() string {
	if svc.opts.name != "" {
		return svc.opts.name
	}
	return "genserver"
}

// Serve runs one incarnation until it exits or ctx ends (then it stops with
// ErrShutdown, running Terminate). It returns nil for a normal exit or a plain
// ErrShutdown, else the exit reason (a wrapped shutdown included), so a
// supervisor restarts it per its restart type. When the process exited
// because its System is stopping, the error matches ErrSystemStopped (and
// wraps the exit reason): the supervisor package then stops its tree quietly
// instead of restarting children that can no longer start.
func (svc *Service) Serve(ctx context.Context) error {
	return svc.ServeReady(ctx, func() {})
}

// ServeReady is Serve that calls ready once Init has succeeded.
func (svc *Service) ServeReady(ctx context.Context, ready func()) error {
	p, err := svc.sys.start(svc.factory, svc.opts)
	if err != nil {
		return err
	}
	if !svc.current.CompareAndSwap(nil, p) {
		p.signal(signal{kind: sigShutdown, reason: ErrAlreadyRunning})
		<-p.done
		return ErrAlreadyRunning
	}
	defer svc.current.CompareAndSwap(p, nil)
	ready()
	select {
	case <-p.done:
		if svc.sys.isStopped() {
			// Stopped with its System, not by its supervisor: say so, so
			// that the supervisor stops quietly instead of restarting a
			// child that cannot start any more.
			if p.reason == nil {
				return ErrSystemStopped
			}
			return fmt.Errorf("%w: %w", ErrSystemStopped, p.reason)
		}
	case <-ctx.Done():
		p.signal(signal{kind: sigShutdown, reason: ErrShutdown})
		<-p.done
	}
	if r := p.reason; r != nil && r != ErrShutdown {
		return r
	}
	return nil
}
