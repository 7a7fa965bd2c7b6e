package supervisor

import (
	"slices"
	"time"

	"github.com/enginekit/enginekit/genserver"
	"github.com/thejerf/suture/v4"
)

// Tree is a snapshot of a supervisor and, through ChildInfo.Sub, of the
// supervisors below it (OTP's which_children, walked down, with the restart
// intensity in use): what an observer draws.
type Tree struct {
	Name     string
	Strategy string // "one_for_one", "one_for_all" or "rest_for_one"
	// MaxRestarts and Period are the restart intensity in force (defaults
	// applied); RestartsInPeriod is how much of it the restarts within the
	// last Period use.
	MaxRestarts      int
	Period           time.Duration
	RestartsInPeriod int
	Children         []ChildInfo // in start order
}

// Tree returns the supervisor's tree. It never waits for the supervisor's
// goroutine, which may be busy starting a child: it reads a copy of the
// children that the goroutine refreshes each time it changes them. A
// supervisor that is not running shows its static children, none running.
func (s *Supervisor) Tree() Tree {
	c := newCore(s.spec) // for the defaults and the static children
	t := Tree{
		Name:        s.spec.Name,
		Strategy:    s.spec.Strategy.String(),
		MaxRestarts: c.maxRestarts,
		Period:      c.period,
	}
	s.mu.Lock()
	snap := s.snap
	if s.run == nil {
		snap = treeSnap{}
		for _, ch := range c.children {
			snap.children = append(snap.children, childSnap{id: ch.spec.ID, restart: ch.spec.Restart})
		}
	}
	s.mu.Unlock()
	now := s.clock()
	for _, at := range snap.restarts {
		if now.Sub(at) < t.Period {
			t.RestartsInPeriod++
		}
	}
	t.Children = childInfos(snap)
	return t
}

// treeSnap is the copy of a running supervisor's children that Tree reads.
// It is immutable once published: each change publishes a new one.
type treeSnap struct {
	children []childSnap
	restarts []time.Time
}

type childSnap struct {
	id         string
	restart    RestartType
	running    bool
	supervisor bool
	starts     int
	svc        suture.Service // the running incarnation, or nil
}

// snapshot copies the children's state; it runs on the supervisor's goroutine.
func (r *run) snapshot() treeSnap {
	snap := treeSnap{
		children: make([]childSnap, 0, len(r.core.children)),
		restarts: slices.Clone(r.core.restarts),
	}
	for _, ch := range r.core.children {
		cs := childSnap{
			id:         ch.spec.ID,
			restart:    ch.spec.Restart,
			running:    ch.state == running,
			supervisor: ch.supervisor,
			starts:     ch.starts,
		}
		if p := r.procs[ch.spec.ID]; p != nil {
			cs.svc = p.svc
		}
		snap.children = append(snap.children, cs)
	}
	return snap
}

// publish makes the children's current state what Tree shows.
func (r *run) publish() {
	snap := r.snapshot()
	r.s.mu.Lock()
	if r.s.run == r {
		r.s.snap = snap
	}
	r.s.mu.Unlock()
}

// pidService is a child that runs as a genserver process, such as a
// *genserver.Service.
type pidService interface{ PID() genserver.PID }

func childInfos(snap treeSnap) []ChildInfo {
	infos := make([]ChildInfo, 0, len(snap.children))
	for _, cs := range snap.children {
		info := ChildInfo{
			ID:          cs.id,
			Restart:     cs.restart.String(),
			RestartType: cs.restart,
			Running:     cs.running,
			Restarts:    max(cs.starts-1, 0),
			Supervisor:  cs.supervisor,
			Service:     cs.svc,
		}
		switch svc := cs.svc.(type) {
		case pidService:
			info.PID = svc.PID()
		case *Supervisor:
			sub := svc.Tree()
			info.Sub = &sub
		}
		infos = append(infos, info)
	}
	return infos
}
