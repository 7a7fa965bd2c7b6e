package genserver

import "time"

// TimerRef identifies a timer made by SendAfter.
type TimerRef struct{ t *timerEntry }

type timerEntry struct {
	msg   any
	timer *time.Timer
}

// SendAfter delivers msg to this process's HandleInfo after d (Elixir's
// Process.send_after(self(), msg, d)). The timer dies with the process.
func (p *Process) SendAfter(d time.Duration, msg any) TimerRef {
	t := &timerEntry{msg: msg}
	if p.timers == nil {
		p.timers = make(map[*timerEntry]struct{})
	}
	p.timers[t] = struct{}{}
	t.timer = time.AfterFunc(d, func() { _ = p.push(message{kind: kTimer, msg: t}) })
	return TimerRef{t}
}

// CancelTimer cancels a timer of this process and reports whether it was
// still pending. Unlike erlang:cancel_timer, a timer that already fired but
// whose message is still queued is cancelled too: its message never arrives.
func (p *Process) CancelTimer(ref TimerRef) bool {
	if ref.t == nil {
		return false
	}
	if _, live := p.timers[ref.t]; !live {
		return false
	}
	delete(p.timers, ref.t)
	ref.t.timer.Stop()
	return true
}

// armIdleLocked starts the idle wait; any activation bumps idleGen, which
// voids it.
func (p *Process) armIdleLocked() {
	gen := p.idleGen
	if p.idleTimer != nil {
		p.idleTimer.Stop()
	}
	p.idleTimer = time.AfterFunc(p.idle, func() {
		p.mu.Lock()
		defer p.mu.Unlock()
		if p.dead || p.running || p.idleGen != gen {
			return
		}
		p.q.push(&p.sys.segs, message{kind: kIdle, from: From{token: gen}})
		p.queued++
		p.activateLocked()
	})
}
