package genserver

import (
	"context"
	"sync"
	"sync/atomic"

	"github.com/rs/zerolog"
)

// Config configures a System. The zero value is valid.
type Config struct {
	// Name appears in PIDs and logs. Default "node".
	Name string
	// Logger receives crash reports and dropped-message warnings.
	// Default: the zero zerolog.Logger, which discards everything.
	Logger zerolog.Logger
}

// System is one trust domain: its own processes and its own name registry.
// Several Systems may live in one OS process; they share nothing.
type System struct {
	name  string
	log   zerolog.Logger
	names sync.Map // string -> *Process
	ids   atomic.Uint64
	refs  atomic.Uint64
	// Reply slots are pooled per System: a System is the unit of isolation
	// (and of a testing/synctest bubble).
	slots  sync.Pool
	tokens atomic.Uint64
	segs   segPool

	// Idle activation workers wait on work (unbuffered: a send succeeds
	// only into a waiting worker); see serve.
	work        chan *Process
	idleWorkers atomic.Int32
	quit        chan struct{} // closed by Stop: idle workers end
	reap        chan struct{} // unbuffered: the reaper ends a waiting worker
	reaperArmed atomic.Bool

	fromCodec atomic.Pointer[codecBox] // makes Froms portable (Relay.SetFromCodec)
	fromTypes typeCache

	mu      sync.Mutex
	procs   map[*Process]struct{}
	stopped bool
}

// NewSystem returns a running System.
func NewSystem(cfg Config) *System {
	s := &System{name: cfg.Name, log: cfg.Logger, procs: make(map[*Process]struct{}), work: make(chan *Process), quit: make(chan struct{}), reap: make(chan struct{})}
	s.slots.New = func() any { return &replySlot{pool: &s.slots, sys: s, done: make(chan struct{}, 1)} }
	if s.name == "" {
		s.name = "node"
	}
	return s
}

// Name returns the System's name.
func (s *System) Name() string { return s.name }

// Logger returns a copy of the System's logger (Config.Logger), as a
// pointer so that calls chain (sys.Logger().Warn().Msg(...)): zerolog's
// methods take pointers. Changing the copy does not change what the System's
// processes log with.
func (s *System) Logger() *zerolog.Logger {
	l := s.log
	return &l
}

// Whereis returns the process registered under name.
func (s *System) Whereis(name string) (PID, bool) {
	p := s.lookup(name)
	return PID{p}, p != nil
}

// Registered returns the registered names, in no particular order.
func (s *System) Registered() []string {
	var out []string
	s.names.Range(func(k, _ any) bool { out = append(out, k.(string)); return true })
	return out
}

// NumProcesses returns the number of live processes.
func (s *System) NumProcesses() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.procs)
}

func (s *System) lookup(name string) *Process {
	if v, ok := s.names.Load(name); ok {
		return v.(*Process)
	}
	return nil
}

// register adds p to the System and, if it has one, its name.
func (s *System) register(p *Process) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.stopped {
		return ErrSystemStopped
	}
	if p.name != "" {
		if _, loaded := s.names.LoadOrStore(p.name, p); loaded {
			return ErrNameTaken
		}
	}
	s.procs[p] = struct{}{}
	return nil
}

func (s *System) unregister(p *Process) {
	if p.name != "" {
		s.names.CompareAndDelete(p.name, p)
	}
	s.mu.Lock()
	delete(s.procs, p)
	s.mu.Unlock()
}

func (s *System) isStopped() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.stopped
}

// Stop refuses new processes, shuts down every process of the System with
// ErrShutdown (running their Terminate callbacks) and waits until they have
// exited or ctx ends. It is safe to call more than once.
func (s *System) Stop(ctx context.Context) error {
	s.mu.Lock()
	if !s.stopped {
		close(s.quit)
	}
	s.stopped = true
	procs := make([]*Process, 0, len(s.procs))
	for p := range s.procs {
		procs = append(procs, p)
	}
	s.mu.Unlock()
	for _, p := range procs {
		p.signal(signal{kind: sigShutdown, reason: ErrShutdown})
	}
	for _, p := range procs {
		select {
		case <-p.done:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	return nil
}

// StopProcess stops dest with reason (ErrShutdown when nil) after its current
// callback, runs its Terminate, and waits for it to exit or for ctx to end.
// A process that is gone already gives ErrNoProcess (OTP's noproc). A reason
// wrapping ErrShutdown (fmt.Errorf("%w: why", ErrShutdown), OTP's
// {shutdown, Why}) is a shutdown, not a crash: it is not logged as one, and a
// Transient child is not restarted for it.
func (s *System) StopProcess(ctx context.Context, dest Dest, reason error) error {
	p := dest.resolve(s)
	if p == nil {
		return ErrNoProcess
	}
	if reason == nil {
		reason = ErrShutdown
	}
	if !p.signal(signal{kind: sigShutdown, reason: reason}) {
		return ErrNoProcess // gone already, as OTP's noproc
	}
	select {
	case <-p.done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Kill makes dest exit with ErrKilled after its current callback, whether or
// not it traps exits. Its Terminate does not run. A process that is gone
// already gives ErrNoProcess. Unlike OTP's kill, a callback that never
// returns is not interrupted: Go cannot kill a goroutine.
func (s *System) Kill(dest Dest) error {
	p := dest.resolve(s)
	if p == nil {
		return ErrNoProcess
	}
	if !p.signal(signal{kind: sigKill, reason: ErrKilled}) {
		return ErrNoProcess
	}
	return nil
}

// Cast sends an asynchronous request, handled by HandleCast. It fails only
// when dest does not exist or its bounded mailbox is full, or with the
// error of a dest that stands in for a process elsewhere (see Forwarder:
// a transport proxy's message too large, not encodable, or without a route).
func (s *System) Cast(dest Dest, msg any) error { return s.deliver(PID{}, dest, kCast, msg) }

// Send sends an info message, handled by HandleInfo.
func (s *System) Send(dest Dest, msg any) error { return s.deliver(PID{}, dest, kInfo, msg) }

func (s *System) deliver(sender PID, dest Dest, kind msgKind, msg any) error {
	p := dest.resolve(s)
	if p == nil {
		return ErrNoProcess
	}
	if p.fwd != nil {
		fk := ForwardCast
		if kind == kInfo {
			fk = ForwardInfo
		}
		if queued, err := p.forward(Forwarded{Kind: fk, Sender: sender, Msg: msg}); !queued {
			return err
		}
	}
	return p.push(message{kind: kind, msg: msg, from: From{caller: sender}})
}
