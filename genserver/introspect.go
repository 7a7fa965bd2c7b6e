package genserver

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"time"
)

// ProcessStatus is what a process is doing, as introspection sees it.
type ProcessStatus uint8

const (
	// Idle: waiting for a message; it has no goroutine.
	Idle ProcessStatus = iota
	// Running: in a callback (Init included), or between two callbacks of
	// one activation.
	Running
	// Exiting: terminating (its Terminate callback may be running).
	Exiting
)

func (s ProcessStatus) String() string {
	switch s {
	case Idle:
		return "idle"
	case Running:
		return "running"
	case Exiting:
		return "exiting"
	}
	return fmt.Sprintf("ProcessStatus(%d)", uint8(s))
}

// MarshalText makes a status read as its name in JSON and logs.
func (s ProcessStatus) MarshalText() ([]byte, error) { return []byte(s.String()), nil }

// ProcessInfo is a snapshot of one process (OTP's process_info), for
// operators: observers, metrics, `ps`-like listings.
type ProcessInfo struct {
	PID    PID
	Name   string // registered name, or ""
	Status ProcessStatus
	// MailboxLen is the number of messages waiting: queued and not yet taken
	// by a callback (the one being handled is not counted).
	MailboxLen int
	// Handled counts the messages the process has taken from its mailbox,
	// the one being handled included: calls, casts and info messages
	// (timers, Down, Exit, Timeout), and the GetState requests of
	// introspection.
	Handled uint64
	// InCallback is how long the process has been in its current callback,
	// as introspection has seen it: it is measured from the first look
	// (Processes or ProcessInfo) that found the process running that same
	// callback, so it is a lower bound, exact to the interval between two
	// looks, and zero at the first look. The message path takes no clock
	// reading, which is what keeps introspection free for it; an observer
	// that looks every second sees a stuck callback's time grow.
	InCallback time.Duration
	Links      []PID // linked processes, sorted
	Monitors   []PID // processes this one monitors (live ones), sorted
	// MonitoredBy are the processes monitoring this one, sorted; a process
	// monitoring it twice appears twice.
	MonitoredBy []PID
	TrapExits   bool
	Started     time.Time // when Spawn or a Service's Serve began the process
}

// seen is introspection's last look at a running process: the Handled count
// then, and when.
type seen struct {
	handled uint64
	at      time.Time
	valid   bool
}

// Processes returns a snapshot of the System's live processes, sorted by
// PID. Each process is read under its own lock, briefly; no process is
// stopped or waited for.
func (s *System) Processes() []ProcessInfo {
	s.mu.Lock()
	procs := make([]*Process, 0, len(s.procs))
	for p := range s.procs {
		procs = append(procs, p)
	}
	s.mu.Unlock()
	slices.SortFunc(procs, func(a, b *Process) int { return cmp.Compare(a.id, b.id) })
	now := time.Now()
	out := make([]ProcessInfo, 0, len(procs))
	for _, p := range procs {
		if info, ok := p.snapshot(now); ok {
			out = append(out, info)
		}
	}
	return out
}

// ProcessInfo returns a snapshot of one process, or ErrNoProcess when pid
// is not a live process of this System.
func (s *System) ProcessInfo(pid PID) (ProcessInfo, error) {
	p := pid.resolve(s)
	if p == nil {
		return ProcessInfo{}, ErrNoProcess
	}
	info, ok := p.snapshot(time.Now())
	if !ok {
		return ProcessInfo{}, ErrNoProcess
	}
	return info, nil
}

// snapshot reads p's info; ok is false when p is dead.
func (p *Process) snapshot(now time.Time) (ProcessInfo, bool) {
	info := ProcessInfo{PID: PID{p}, Name: p.name, TrapExits: p.trap.Load(), Started: p.started}
	p.mu.Lock()
	if p.dead {
		p.mu.Unlock()
		return ProcessInfo{}, false
	}
	handled := p.taken - uint64(p.left.Load())
	info.Handled = handled
	info.MailboxLen = int(p.queued - handled)
	switch {
	case p.exiting:
		info.Status = Exiting
	case p.running && !p.lingering:
		info.Status = Running
		if p.seen.valid && p.seen.handled == handled {
			info.InCallback = now.Sub(p.seen.at)
		} else {
			p.seen = seen{handled: handled, at: now, valid: true}
		}
	}
	if info.Status != Running {
		p.seen = seen{}
	}
	info.Links = make([]PID, 0, len(p.links))
	for l := range p.links {
		info.Links = append(info.Links, PID{l})
	}
	for _, t := range p.watching {
		if t != nil {
			info.Monitors = append(info.Monitors, PID{t})
		}
	}
	for _, w := range p.monitors {
		info.MonitoredBy = append(info.MonitoredBy, PID{w})
	}
	p.mu.Unlock()
	for _, l := range [][]PID{info.Links, info.Monitors, info.MonitoredBy} {
		slices.SortFunc(l, comparePIDs)
	}
	return info, true
}

func comparePIDs(a, b PID) int { return cmp.Compare(a.p.id, b.p.id) }

// StatusReporter is implemented by servers that report their state to
// introspection themselves (OTP's format_status): to hide secrets, or to
// summarise a large state. FormatStatus runs inside the process, between two
// callbacks, like any callback.
type StatusReporter interface {
	FormatStatus() any
}

// GetState returns the state of the server behind dest (OTP's
// sys:get_state): what its FormatStatus returns, or without a StatusReporter
// the text fmt.Sprintf("%+v", server). It is computed inside the process,
// between two callbacks, so it never reads the state while a callback
// changes it; the request waits its turn in the mailbox behind the messages
// already there. ctx bounds the wait (DefaultCallTimeout without a deadline),
// so a stuck process cannot hang the asker: it gets ErrTimeout. A process
// that exits first fails the request with an *ExitError.
func (s *System) GetState(ctx context.Context, dest Dest) (any, error) {
	return s.request(ctx, nil, PID{}, "", dest, kState, nil)
}

// formatStatus is run by the process for GetState. A panic in FormatStatus
// is answered as an error, not a crash: looking at a process must not kill
// it.
func (p *Process) formatStatus() (v any) {
	defer func() {
		if r := recover(); r != nil {
			v = fmt.Errorf("genserver: FormatStatus panicked: %v", r)
		}
	}()
	if r, ok := p.srv.(StatusReporter); ok {
		return r.FormatStatus()
	}
	return fmt.Sprintf("%+v", p.srv)
}
