package genserver

// Monitor watches dest: when it exits, a Down with its exit reason arrives
// in HandleInfo. If dest is already gone, the Down (with ErrNoProcess)
// arrives at once. Monitors are one-way and stack: two Monitor calls give
// two Downs.
func (p *Process) Monitor(dest Dest) Ref {
	ref := Ref(p.sys.refs.Add(1))
	target := dest.resolve(p.sys)
	if target != nil {
		target.mu.Lock()
		if !target.dead {
			if target.monitors == nil {
				target.monitors = make(map[Ref]*Process)
			}
			target.monitors[ref] = p
			target.mu.Unlock()
			p.watch(ref, target)
			return ref
		}
		target.mu.Unlock()
	}
	p.watch(ref, nil)
	_ = p.push(message{kind: kDown, msg: Down{Ref: ref, PID: PID{target}, Reason: ErrNoProcess}})
	return ref
}

// watch records a monitor p holds; target is nil when it was already gone.
func (p *Process) watch(ref Ref, target *Process) {
	p.mu.Lock()
	if p.watching == nil {
		p.watching = make(map[Ref]*Process)
	}
	p.watching[ref] = target
	p.mu.Unlock()
}

// Demonitor removes a monitor and reports whether it was active. A Down
// already queued for it is discarded (erlang:demonitor with flush).
func (p *Process) Demonitor(ref Ref) bool {
	target, ok := p.watching[ref]
	if !ok {
		return false
	}
	p.mu.Lock()
	delete(p.watching, ref)
	p.mu.Unlock()
	if target != nil {
		target.mu.Lock()
		delete(target.monitors, ref)
		target.mu.Unlock()
	}
	return true
}

// Link links this process with pid: when either exits with a reason other
// than normal, the other exits with the same reason, unless it traps exits
// (then it gets an Exit message). Linking to a process that is gone returns
// ErrNoProcess.
//
// When pid stands in for a process elsewhere (its server is a Forwarder, as
// the transport's proxy of a foreign engine is), the link is handed on too
// (ForwardLink), and an error from there undoes the link and is returned.
func (p *Process) Link(pid PID) error {
	t := pid.resolve(p.sys)
	if t == nil {
		return ErrNoProcess
	}
	if t == p {
		return nil
	}
	if err := link(p, t); err != nil {
		return err
	}
	if t.fwd != nil {
		if _, err := t.forward(Forwarded{Kind: ForwardLink, Sender: PID{p}}); err != nil {
			unlink(p, t)
			return err
		}
	}
	return nil
}

// link links a and b, both of one System; it fails when either is gone.
func link(a, b *Process) error {
	for _, x := range [2][2]*Process{{b, a}, {a, b}} {
		t, other := x[0], x[1]
		t.mu.Lock()
		if t.dead {
			t.mu.Unlock()
			unlink(a, b)
			return ErrNoProcess
		}
		if t.links == nil {
			t.links = make(map[*Process]struct{})
		}
		t.links[other] = struct{}{}
		t.mu.Unlock()
	}
	return nil
}

func unlink(a, b *Process) {
	a.mu.Lock()
	delete(a.links, b)
	a.mu.Unlock()
	b.mu.Lock()
	delete(b.links, a)
	b.mu.Unlock()
}

// Unlink removes the link with pid, in both directions (handed on with
// ForwardUnlink when pid stands in for a process elsewhere).
func (p *Process) Unlink(pid PID) {
	t := pid.p
	if t == nil || t == p || t.sys != p.sys {
		return
	}
	unlink(p, t)
	if t.fwd != nil {
		_, _ = t.forward(Forwarded{Kind: ForwardUnlink, Sender: PID{p}})
	}
}

// SpawnLink spawns a process linked to p before it runs Init, as
// proc_lib:spawn_link does: if Init fails, p gets the exit signal.
func (p *Process) SpawnLink(factory func() Server, opts ...Option) (PID, error) {
	var o options
	for _, opt := range opts {
		opt(&o)
	}
	o.link = p
	child, err := p.sys.start(factory, o)
	if err != nil {
		return PID{}, err
	}
	return PID{child}, nil
}
