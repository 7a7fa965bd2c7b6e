package genserver

import (
	"errors"
	"runtime"
	"runtime/debug"
	"sync"
	"sync/atomic"
	"time"

	"github.com/rs/zerolog"
)

type msgKind uint8

const (
	kCast msgKind = iota
	kCall
	kInfo
	kTimer // msg is *timerEntry
	kDown  // msg is Down
	kIdle  // from.token is the idle generation
	kState // a GetState request: from is the asker's reply handle
	kExit  // msg is Exit: a trapped link exit, queued in order behind the sender's messages
)

type message struct {
	kind msgKind
	msg  any
	from From
}

type sigKind uint8

const (
	sigShutdown sigKind = iota // stop with reason, running Terminate
	sigKill                    // stop with ErrKilled, untrappable, no Terminate
	sigLinkExit                // a linked process exited
)

// signal is an exit signal. Signals overtake queued messages, as in OTP, so a
// shutdown is not stuck behind a long mailbox.
type signal struct {
	kind   sigKind
	from   *Process
	reason error
}

// Process is the running incarnation of a Server. It is handed to every
// callback; its methods are for use from those callbacks (the process's own
// goroutine), except where a method says otherwise.
//
// A process has no goroutine of its own while idle: when a message arrives
// at an idle process, a goroutine (an idle worker of the System's, else a
// new one) works through its mailbox and leaves it when it is empty. That
// is what keeps an idle server small.
type Process struct {
	sys  *System
	id   uint64
	name string
	srv  Server
	fwd  Forwarder // srv's, when it stands in for a process elsewhere
	done chan struct{}

	// Guarded by mu.
	mu sync.Mutex
	q  queue
	// Introspection's counts cost the message path no atomic operation when
	// the process takes one message at a time (as a call does): queued and
	// taken move under mu, which is held anyway to queue and to take.
	queued   uint64 // messages ever queued
	taken    uint64 // messages ever taken in batches, minus those put back
	sigs     []signal
	running  bool // an activation goroutine owns the process, or Init/terminate does
	exiting  bool // terminate has begun
	dead     bool
	links    map[*Process]struct{}
	monitors map[Ref]*Process // monitors on this process: ref -> watcher
	idleGen  uint64
	limit    int
	overflow Overflow
	// run starts a worker on p (p.sys.serve), made on the first
	// activation that finds no idle worker, and kept: a go statement with
	// an argument allocates its closure each time. Guarded by mu.
	run func()
	// lingering: the activation has found the mailbox empty and yields
	// once before ending (see activate); introspection shows it idle.
	lingering bool

	sigPending atomic.Bool
	reason     error // set before done is closed

	// Owned by whichever goroutine runs the process.
	stopping bool
	stopWhy  error
	cont     *continuation
	sender   PID // of the message being handled
	// last: the message being handled is the last of the batch taken
	// from the mailbox (a call's reply may then be sent directly: see
	// DirectReplier).
	last bool
	// left is how many messages of the batch being worked through are still
	// to be handled; written by the process for batches of more than one
	// message only (otherwise it stays 0), and read by introspection.
	// taken - left is the number of messages handled or being handled. It
	// sits with sender, which the process writes per message too, away from
	// what senders read (limit, overflow, running): no false sharing.
	left atomic.Int64
	// watching holds the monitors this process holds (ref -> target). The
	// process writes it under mu, so introspection can read it; the process
	// itself reads it without.
	watching  map[Ref]*Process
	timers    map[*timerEntry]struct{}
	idle      time.Duration
	idleTimer *time.Timer

	// Cold: read by introspection, and on exits.
	trap    atomic.Bool
	started time.Time
	seen    seen // introspection's last look at a running callback; guarded by mu
}

type continuation struct{ arg any }

// Overflow is what a bounded mailbox does when it is full.
type Overflow uint8

const (
	// Reject refuses the new message: Cast and Send return ErrMailboxFull,
	// Call fails with it.
	Reject Overflow = iota
	// Crash makes the process exit with ErrMailboxFull, as Erlang's
	// max_heap_size kill does: a process that cannot keep up is restarted
	// by its supervisor with an empty mailbox.
	Crash
)

// Self returns the process's PID.
func (p *Process) Self() PID { return PID{p} }

// System returns the process's System.
func (p *Process) System() *System { return p.sys }

// Name returns the registered name, or "".
func (p *Process) Name() string { return p.name }

// Logger returns the System's logger with this process's pid and name.
func (p *Process) Logger() zerolog.Logger {
	return p.sys.log.With().Stringer("pid", p.Self()).Str("name", p.name).Logger()
}

// Sender returns the process that sent the message being handled: for
// casts and info messages sent with Process.Cast/Send or Relay.CastFrom/
// SendFrom, and for calls made by a process. It is the zero PID for messages
// from plain goroutines and for timers, Down, Exit and Timeout. A message from
// an engine on another node appears to come from that engine's proxy, so
// casting back to Sender() answers across the network.
func (p *Process) Sender() PID { return p.sender }

// Stop makes the process exit with reason (nil is a normal exit) once the
// current callback returns.
func (p *Process) Stop(reason error) {
	if !p.stopping {
		p.stopping, p.stopWhy = true, reason
	}
}

// Continue makes HandleContinue(arg) run as soon as the current callback
// returns, before any other message (Elixir's {:continue, arg}).
func (p *Process) Continue(arg any) { p.cont = &continuation{arg} }

// TrapExits turns exit signals from linked processes into Exit info messages
// instead of exits.
func (p *Process) TrapExits(on bool) { p.trap.Store(on) }

// SetIdleTimeout makes a Timeout info message arrive each time the process
// has been idle (no message) for d; 0 turns it off. Like the timeout in an
// OTP callback's return, any message restarts the wait.
func (p *Process) SetIdleTimeout(d time.Duration) {
	p.idle = d
	if d <= 0 && p.idleTimer != nil {
		p.idleTimer.Stop()
	}
}

// push queues m and starts an activation when the process is idle.
func (p *Process) push(m message) error {
	p.mu.Lock()
	if p.dead {
		p.mu.Unlock()
		return ErrNoProcess
	}
	if p.limit > 0 && p.q.n >= p.limit {
		if p.overflow == Crash {
			p.sigs = append(p.sigs, signal{kind: sigShutdown, reason: ErrMailboxFull})
			p.sigPending.Store(true)
			p.activateLocked()
		}
		p.mu.Unlock()
		return ErrMailboxFull
	}
	p.q.push(&p.sys.segs, m)
	p.queued++
	p.activateLocked()
	p.mu.Unlock()
	return nil
}

// signal queues an exit signal and reports whether p was alive to take it.
func (p *Process) signal(s signal) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.dead {
		return false
	}
	p.sigs = append(p.sigs, s)
	p.sigPending.Store(true)
	p.activateLocked()
	return true
}

func (p *Process) activateLocked() {
	if !p.running {
		p.running = true
		select {
		case p.sys.work <- p: // an idle worker takes it
		default:
			if p.run == nil {
				p.run = func() { p.sys.serve(p) }
			}
			go p.run()
		}
	}
}

func activate(p *Process) { p.sys.serve(p) }

// serve runs activations: p's, then those handed to it as an idle worker
// (activateLocked), until the reaper or the System's Stop ends it. A
// goroutine that ran an activation has grown its stack to what handlers
// need; a fresh goroutine per activation paid for the start, the stack
// growth (a remote call's reply path copies the stack three times) and
// the exit, once per call (profile: 7% of a cross-node call round trip).
// At most maxIdleWorkers wait; the others end at once.
func (s *System) serve(p *Process) {
	p.activate()
	for {
		if s.idleWorkers.Add(1) > maxIdleWorkers {
			s.idleWorkers.Add(-1)
			return
		}
		s.armReaper()
		select {
		case p = <-s.work:
			s.idleWorkers.Add(-1)
			p.activate()
		case <-s.reap:
			s.idleWorkers.Add(-1)
			return
		case <-s.quit:
			s.idleWorkers.Add(-1)
			return
		}
	}
}

// armReaper makes sure reapIdle runs within workerIdle. One timer serves
// the whole System: a worker parks without a timer of its own, which would
// cost each activation a timer reset and stop.
func (s *System) armReaper() {
	if s.reaperArmed.CompareAndSwap(false, true) {
		time.AfterFunc(workerIdle, s.reapIdle)
	}
}

// reapIdle ends the workers waiting now (reap is unbuffered: a send
// reaches only a worker that waits), so a System left idle keeps no
// goroutine for long; a busy one loses a worker per workerIdle at most.
func (s *System) reapIdle() {
	s.reaperArmed.Store(false)
	for {
		select {
		case s.reap <- struct{}{}:
			continue
		default:
		}
		break
	}
	if s.idleWorkers.Load() > 0 {
		s.armReaper() // one that was about to wait: the next round ends it
	}
}

// maxIdleWorkers bounds the goroutines that wait for activations, and
// workerIdle is the period of the reaper that ends those waiting.
const (
	maxIdleWorkers = 64
	workerIdle     = 20 * time.Millisecond
)

// activate runs the process until its mailbox is empty or it exits.
func (p *Process) activate() {
	defer p.recoverCrash()
	lingered := false
	for {
		if p.sigPending.Load() && p.handleSignals() {
			return
		}
		if p.cont != nil {
			if p.runContinue() {
				return
			}
			continue
		}
		p.mu.Lock()
		if p.q.n == 0 {
			if len(p.sigs) > 0 { // raced with signal(): it saw running and did not start us
				p.mu.Unlock()
				continue
			}
			if !lingered {
				// Linger once before going idle: a caller that has just
				// got its reply usually calls again at once, and finds us
				// still running instead of paying for a new goroutine
				// (and this one's end). Introspection shows us idle.
				lingered = true
				p.lingering = true
				p.mu.Unlock()
				runtime.Gosched()
				continue
			}
			p.running, p.lingering = false, false
			if p.idle > 0 {
				p.armIdleLocked()
			}
			p.mu.Unlock()
			return
		}
		lingered, p.lingering = false, false
		n := p.q.n
		batch := p.q.take()
		p.taken += uint64(n)
		many := n > 1
		if many {
			p.left.Store(int64(n))
		}
		p.idleGen++
		p.mu.Unlock()

		left := n
		for seg := batch; seg != nil; seg = p.sys.segs.release(seg) {
			for i := seg.off; i < seg.n; i++ {
				m := seg.msgs[i]
				seg.msgs[i] = message{}
				left--
				if many {
					p.left.Store(int64(left))
				}
				p.last = left == 0
				if p.dispatch(&m) {
					return
				}
				if p.sigPending.Load() || p.cont != nil {
					// Signals and continuations go before the rest of
					// the batch: put it back at the head of the queue.
					seg.off = i + 1
					p.mu.Lock()
					p.q.prepend(seg)
					p.taken -= uint64(left)
					if many {
						p.left.Store(0)
					}
					p.mu.Unlock()
					seg = nil
					break
				}
			}
			if seg == nil {
				break
			}
		}
	}
}

// dispatch runs one message's callback and reports whether the process exited.
func (p *Process) dispatch(m *message) bool {
	p.sender = m.from.caller
	switch m.kind {
	case kCast:
		p.srv.HandleCast(p, m.msg)
	case kCall:
		v, err := p.srv.HandleCall(p, m.from, m.msg)
		if v != NoReply || err != nil {
			if p.last {
				replyDirect(m.from, v, err)
			} else {
				Reply(m.from, v, err)
			}
		}
	case kInfo:
		p.info(m.msg)
	case kTimer:
		t := m.msg.(*timerEntry)
		if _, live := p.timers[t]; !live {
			break // cancelled after it fired
		}
		delete(p.timers, t)
		p.info(t.msg)
	case kDown:
		d := m.msg.(Down)
		if _, live := p.watching[d.Ref]; !live {
			break // demonitored
		}
		p.mu.Lock()
		delete(p.watching, d.Ref)
		p.mu.Unlock()
		p.info(d)
	case kExit:
		p.info(m.msg)
	case kState:
		Reply(m.from, p.formatStatus(), nil)
	case kIdle:
		p.mu.Lock()
		current := m.from.token == p.idleGen-1 // activate() bumped the generation taking this batch
		p.mu.Unlock()
		if current {
			p.info(Timeout{})
		}
	}
	if p.stopping {
		p.terminate(p.stopWhy, true)
		return true
	}
	return false
}

func (p *Process) info(msg any) {
	if h, ok := p.srv.(InfoHandler); ok {
		h.HandleInfo(p, msg)
		return
	}
	p.sys.log.Debug().Stringer("pid", p.Self()).Str("name", p.name).
		Interface("msg", msg).Msg("info message dropped: server has no HandleInfo")
}

func (p *Process) runContinue() (exited bool) {
	c := p.cont
	p.cont = nil
	if h, ok := p.srv.(ContinueHandler); ok {
		h.HandleContinue(p, c.arg)
	} else {
		p.sys.log.Warn().Stringer("pid", p.Self()).Msg("Continue called but server has no HandleContinue")
	}
	if p.stopping {
		p.terminate(p.stopWhy, true)
		return true
	}
	return false
}

// handleSignals applies pending exit signals and reports whether the
// process exited.
func (p *Process) handleSignals() bool {
	p.mu.Lock()
	sigs := p.sigs
	p.sigs = nil
	p.sigPending.Store(false)
	p.mu.Unlock()
	for _, s := range sigs {
		switch s.kind {
		case sigKill:
			p.terminate(s.reason, false)
			return true
		case sigShutdown:
			p.terminate(s.reason, true)
			return true
		case sigLinkExit:
			if p.trap.Load() {
				// The Exit goes behind what is queued, so it comes after
				// the messages its sender sent before exiting (OTP's
				// per-pair signal order): they are queued already.
				p.mu.Lock()
				p.q.push(&p.sys.segs, message{kind: kExit, msg: Exit{PID: PID{s.from}, Reason: s.reason}})
				p.queued++
				p.mu.Unlock()
			} else if s.reason != nil {
				// OTP: a non-trapping process exits with the same reason.
				p.terminate(s.reason, true)
				return true
			}
		}
	}
	return false
}

// recoverCrash turns a panic in a callback into the process's exit.
func (p *Process) recoverCrash() {
	if v := recover(); v != nil {
		p.terminate(&PanicError{Value: v, Stack: debug.Stack()}, true)
	}
}

// terminate runs Terminate (unless killed), then makes the exit visible:
// name released, callers failed, links and monitors fired.
func (p *Process) terminate(reason error, runTerminate bool) {
	p.mu.Lock()
	p.exiting = true
	p.mu.Unlock()
	if t, ok := p.srv.(Terminator); ok && runTerminate {
		func() {
			defer func() {
				if v := recover(); v != nil {
					p.sys.log.Error().Stringer("pid", p.Self()).Interface("panic", v).Msg("Terminate panicked")
				}
			}()
			t.Terminate(p, reason)
		}()
	}
	p.mu.Lock()
	p.dead = true
	p.reason = reason
	links, monitors := p.links, p.monitors
	rest := p.q.take()
	watching := p.watching
	p.sigs, p.links, p.monitors, p.watching = nil, nil, nil, nil
	p.mu.Unlock()

	for t := range p.timers {
		t.timer.Stop()
	}
	p.timers = nil
	if p.idleTimer != nil {
		p.idleTimer.Stop()
	}
	for ref, target := range watching {
		if target != nil {
			target.mu.Lock()
			delete(target.monitors, ref)
			target.mu.Unlock()
		}
	}

	for seg := rest; seg != nil; seg = p.sys.segs.release(seg) {
		clear(seg.msgs[seg.off:seg.n])
	}
	p.sys.unregister(p)
	close(p.done)

	for l := range links {
		l.mu.Lock()
		delete(l.links, p)
		l.mu.Unlock()
		l.signal(signal{kind: sigLinkExit, from: p, reason: reason})
	}
	for ref, w := range monitors {
		_ = w.push(message{kind: kDown, msg: Down{Ref: ref, PID: PID{p}, Reason: reason}})
	}
	if n, ok := p.srv.(ExitNotifier); ok {
		n.Exited(PID{p}, reason)
	}
	if reason != nil && !errors.Is(reason, ErrShutdown) {
		ev := p.sys.log.Error().Stringer("pid", p.Self()).Str("name", p.name).AnErr("reason", reason)
		if pe, ok := reason.(*PanicError); ok {
			ev = ev.Bytes("stack", pe.Stack)
		}
		ev.Msg("process crashed")
	}
}
