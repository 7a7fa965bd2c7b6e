package supervisor

import (
	"context"
	"errors"
	"fmt"
	"runtime/debug"
	"slices"
	"sync"
	"time"

	"github.com/enginekit/enginekit/genserver"
	"github.com/thejerf/suture/v4"
)

// ReadyService is a service that reports when it has started (OTP: init returned).
type ReadyService interface {
	suture.Service
	ServeReady(ctx context.Context, ready func()) error
}

// Supervisor runs its children and restarts them as its Spec says. It is a suture.Service
// and a ReadyService, so it can be the child of another Supervisor or of a suture.Supervisor.
// The zero Supervisor is valid: see Spec.
//
// Its child API (StartChild, TerminateChild, RestartChild, DeleteChild, WhichChildren,
// CountChildren) may be called from any goroutine while Serve runs, and returns
// ErrNotRunning otherwise. Calls are served one at a time by the supervisor's goroutine,
// which may be busy, for instance waiting for a child to get ready: ctx bounds the wait.
type Supervisor struct {
	spec Spec
	now  func() time.Time // the clock of the restart intensity; tests replace it

	mu   sync.Mutex
	run  *run     // the current call to Serve, nil when not running
	snap treeSnap // what Tree shows of run
}

// New returns a supervisor for spec, after checking it.
func New(spec Spec) (*Supervisor, error) {
	if err := spec.validate(); err != nil {
		return nil, err
	}
	spec.Children = slices.Clone(spec.Children)
	return &Supervisor{spec: spec}, nil
}

// String returns the supervisor's name, which suture uses in its events.
func (s *Supervisor) String() string { return s.spec.Name }

// Serve is ServeReady without the report.
func (s *Supervisor) Serve(ctx context.Context) error {
	return s.ServeReady(ctx, nil)
}

// ServeReady starts the static children in order, each one ready before the next starts,
// calls ready, and then supervises until ctx is cancelled. It then stops the children in
// reverse start order and returns nil.
//
// It returns an error, after stopping the children, when it gives up: when a static child
// fails to start (ErrStartFailed), when restarts exceed the restart intensity
// (ErrMaxRestarts), or when a child returns suture.ErrTerminateSupervisorTree (the error
// still matches it, so the parent stops too).
//
// Each call starts from the Spec: dynamic children of an earlier call do not survive it, as
// in OTP when a supervisor is restarted.
func (s *Supervisor) ServeReady(ctx context.Context, ready func()) (err error) {
	r, err := s.begin(ctx)
	if err != nil {
		return err
	}
	defer s.end(r)
	defer func() {
		r.stopAll()
		if err != nil {
			r.emit(SupervisorFailed{Supervisor: s.spec.Name, Err: err})
		}
	}()
	if err = r.startStatic(ctx); err != nil || ctx.Err() != nil {
		return err
	}
	r.publish()
	if ready != nil {
		ready()
	}
	for {
		r.publish()
		select {
		case <-ctx.Done():
			return nil
		case p := <-r.exits:
			if r.procs[p.id] != p {
				continue // an incarnation we stopped ourselves
			}
			delete(r.procs, p.id)
			if err = r.exited(ctx, p.id, p.err); err != nil {
				return err
			}
		case req := <-r.requests:
			req.reply <- req.do(ctx, r)
		}
	}
}

func (s *Supervisor) begin(ctx context.Context) (*run, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.run != nil {
		return nil, ErrAlreadyRunning
	}
	s.run = &run{
		s:        s,
		core:     newCore(s.spec),
		procs:    make(map[string]*proc),
		childCtx: context.WithoutCancel(ctx),
		exits:    make(chan *proc),
		requests: make(chan request),
		done:     make(chan struct{}),
	}
	s.snap = s.run.snapshot()
	return s.run, nil
}

func (s *Supervisor) end(r *run) {
	s.mu.Lock()
	s.run, s.snap = nil, treeSnap{}
	s.mu.Unlock()
	close(r.done)
}

func (s *Supervisor) clock() time.Time {
	if s.now != nil {
		return s.now()
	}
	return time.Now()
}

// run is the state of one call to Serve, owned by the goroutine in it; the child API
// reaches it through requests.
type run struct {
	s     *Supervisor
	core  *core
	procs map[string]*proc // the running incarnations, by child ID

	// childCtx is the parent of the children's contexts. It keeps the values of Serve's ctx
	// but not its cancellation, which would stop all children at once; they are stopped one
	// by one, in reverse start order.
	childCtx context.Context

	exits    chan *proc
	requests chan request
	done     chan struct{} // closed when Serve returns
}

// proc is one incarnation of a child: the goroutine that runs its Serve.
type proc struct {
	id       string
	svc      suture.Service
	shutdown time.Duration
	cancel   context.CancelFunc
	once     sync.Once
	ready    chan struct{} // closed when it has started
	done     chan struct{} // closed when Serve returned; err is set before
	err      error
}

func (r *run) emit(e Event) {
	if h := r.s.spec.EventHook; h != nil {
		h(e)
	}
}

// startStatic starts the static children. Like OTP's supervisor init, it fails if one of
// them fails to start.
func (r *run) startStatic(ctx context.Context) error {
	id, err := r.startPending(ctx)
	r.startFailed(id, err)
	return err
}

// exited carries out the core's decision about child id, which exited with err, and the
// restarts it calls for. A restart that fails to start is decided on in turn, so a child
// that cannot start uses up the restart intensity just like one that keeps crashing.
func (r *run) exited(ctx context.Context, id string, err error) error {
	for id != "" {
		action, stop := r.core.exited(id, err, r.s.clock())
		r.emit(ChildExited{Supervisor: r.s.spec.Name, Child: id, Err: err, Action: action})
		switch action {
		case ActionEscalate:
			return maxRestarts(err, id, r.core.maxRestarts, r.core.period)
		case ActionTerminate:
			return fmt.Errorf("supervisor: terminated by child %q: %w", id, err)
		case ActionStop:
			return fmt.Errorf("supervisor: stopped with its System (child %q): %w", id, err)
		}
		for _, sib := range stop {
			r.halt(sib)
		}
		id, err = r.startPending(ctx)
	}
	return nil
}

// startPending starts the pending children in order. It returns the first one that failed
// to start and why, or "" when all started or the supervisor is stopping.
func (r *run) startPending(ctx context.Context) (string, error) {
	for ch := r.core.next(); ch != nil; ch = r.core.next() {
		if err := r.start(ctx, context.Background(), ch); err != nil {
			if ctx.Err() != nil {
				return "", nil
			}
			return ch.spec.ID, err
		}
	}
	return "", nil
}

// start starts an incarnation of ch and waits until it is ready. The wait also ends when
// the supervisor stops (ctx) or the caller of the child API gives up (callCtx); the
// incarnation is then stopped.
func (r *run) start(ctx, callCtx context.Context, ch *child) error {
	id := ch.spec.ID
	svc, err := instantiate(ch.spec.Start)
	if err != nil {
		return startError(id, err)
	}
	p := r.spawn(id, svc, ch.spec.shutdown())
	select {
	case <-p.ready:
	case <-p.done:
		select {
		case <-p.ready: // it started, then exited at once: that exit is on its way
		default:
			if errors.Is(p.err, genserver.ErrIgnore) {
				r.core.ignored(ch)
				r.publish()
				r.emit(ChildIgnored{Supervisor: r.s.spec.Name, Child: id})
				return nil
			}
			return startError(id, p.err)
		}
	case <-ctx.Done():
		r.stop(p)
		return ErrNotRunning
	case <-callCtx.Done():
		r.stop(p)
		return callCtx.Err()
	}
	r.procs[id] = p
	r.core.started(ch, isSupervisor(svc))
	r.publish()
	r.emit(ChildStarted{Supervisor: r.s.spec.Name, Child: id, Restarts: ch.starts - 1})
	return nil
}

func instantiate(start func() suture.Service) (svc suture.Service, err error) {
	defer func() {
		if v := recover(); v != nil {
			err = &PanicError{Value: v, Stack: debug.Stack()}
		}
	}()
	if svc = start(); svc == nil {
		return nil, errors.New("nil service from Start")
	}
	return svc, nil
}

func isSupervisor(svc suture.Service) bool {
	switch svc.(type) {
	case *Supervisor, suture.HasSupervisor:
		return true
	}
	return false
}

// spawn runs svc in a new goroutine, which reports its end on r.exits.
func (r *run) spawn(id string, svc suture.Service, shutdown time.Duration) *proc {
	ctx, cancel := context.WithCancel(r.childCtx)
	p := &proc{
		id:       id,
		svc:      svc,
		shutdown: shutdown,
		cancel:   cancel,
		ready:    make(chan struct{}),
		done:     make(chan struct{}),
	}
	go func() {
		p.err = serve(ctx, svc, func() { p.once.Do(func() { close(p.ready) }) })
		cancel()
		close(p.done)
		select {
		case r.exits <- p:
		case <-r.done:
		}
	}()
	return p
}

// serve runs one incarnation; a panic is an abnormal exit.
func serve(ctx context.Context, svc suture.Service, ready func()) (err error) {
	defer func() {
		if v := recover(); v != nil {
			err = &PanicError{Value: v, Stack: debug.Stack()}
		}
	}()
	if rs, ok := svc.(ReadyService); ok {
		return rs.ServeReady(ctx, ready)
	}
	ready()
	return svc.Serve(ctx)
}

// halt stops the running incarnation of child id, if any.
func (r *run) halt(id string) {
	if p, ok := r.procs[id]; ok {
		delete(r.procs, id)
		r.stop(p)
	}
}

// stop cancels p and waits up to its shutdown time for it to return. Its return value is
// no failure: it was asked to stop.
func (r *run) stop(p *proc) {
	p.cancel()
	var timeout <-chan time.Time
	if p.shutdown >= 0 {
		t := time.NewTimer(p.shutdown)
		defer t.Stop()
		timeout = t.C
	}
	select {
	case <-p.done:
		r.emit(ChildStopped{Supervisor: r.s.spec.Name, Child: p.id, Err: p.err})
	case <-timeout:
		r.emit(StopTimeout{Supervisor: r.s.spec.Name, Child: p.id, Timeout: p.shutdown})
	}
}

// stopAll stops the running children in reverse start order.
func (r *run) stopAll() {
	for i := len(r.core.children) - 1; i >= 0; i-- {
		r.halt(r.core.children[i].spec.ID)
	}
}
