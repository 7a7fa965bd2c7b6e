package supervisor

import (
	"context"
	"errors"
	"fmt"

	"github.com/enginekit/enginekit/genserver"
	"github.com/thejerf/suture/v4"
)

// ChildInfo describes a child, as WhichChildren and Tree see it.
type ChildInfo struct {
	ID string
	// Restart is the restart type's name ("permanent", "transient",
	// "temporary"), for display; RestartType is the same as a value.
	Restart     string
	RestartType RestartType
	Running     bool
	// PID is the process of the running incarnation when the child is a
	// genserver (anything with a PID() genserver.PID method), else zero.
	PID        genserver.PID
	Restarts   int            // starts after the first, in this run of the supervisor
	Supervisor bool           // its last incarnation was a *Supervisor or a suture supervisor
	Service    suture.Service // the running incarnation, nil when not running
	// Sub is the tree of a running child that is a *Supervisor, else nil.
	Sub *Tree
}

// Counts are the numbers of children, as CountChildren sees them.
type Counts struct {
	Specs       int // all children, running or not
	Active      int // running children
	Supervisors int // children whose last incarnation was a supervisor
	Workers     int // the other children, including those never started
}

// A request is a child API call, run on the supervisor's goroutine. ctx is Serve's.
type request struct {
	do    func(ctx context.Context, r *run) error
	reply chan error
}

// call runs do on the supervisor's goroutine. Every request it accepts is answered, so
// after the send it waits only for the reply or for the caller to give up.
func (s *Supervisor) call(ctx context.Context, do func(ctx context.Context, r *run) error) error {
	s.mu.Lock()
	r := s.run
	s.mu.Unlock()
	if r == nil {
		return ErrNotRunning
	}
	req := request{do: do, reply: make(chan error, 1)}
	select {
	case r.requests <- req:
	case <-r.done:
		return ErrNotRunning
	case <-ctx.Done():
		return ctx.Err()
	}
	select {
	case err := <-req.reply:
		return err
	case <-ctx.Done():
		return ctx.Err()
	}
}

// StartChild adds a child after the existing ones and starts it. It returns once the child
// is ready, or with the reason it failed to start (matching ErrStartFailed), in which case
// the child is not added. Its ID must be new (ErrDuplicateChild). If ctx ends before the child is ready, the child is stopped and
// not added; as with any call that gives up, ctx's error can also mean that the child got
// ready just before, so WhichChildren tells for sure.
func (s *Supervisor) StartChild(ctx context.Context, spec ChildSpec) error {
	if err := spec.validate(); err != nil {
		return err
	}
	return s.call(ctx, func(sctx context.Context, r *run) error {
		ch, err := r.core.add(spec)
		if err != nil {
			return err
		}
		if err := r.start(sctx, ctx, ch); err != nil {
			r.startFailed(spec.ID, err)
			_ = r.core.remove(spec.ID) // stopped, as start failed
			return err
		}
		return nil
	})
}

// TerminateChild stops a child, waiting up to its Shutdown time, and keeps its spec for
// RestartChild; a Temporary child's spec is removed. Terminating a stopped child does
// nothing.
func (s *Supervisor) TerminateChild(ctx context.Context, id string) error {
	return s.call(ctx, func(_ context.Context, r *run) error {
		_, ch := r.core.find(id)
		if ch == nil {
			return fmt.Errorf("%w: %q", ErrNotFound, id)
		}
		r.halt(id)
		r.core.terminated(ch)
		return nil
	})
}

// RestartChild starts a stopped child again, and returns once it is ready.
func (s *Supervisor) RestartChild(ctx context.Context, id string) error {
	return s.call(ctx, func(sctx context.Context, r *run) error {
		_, ch := r.core.find(id)
		switch {
		case ch == nil:
			return fmt.Errorf("%w: %q", ErrNotFound, id)
		case ch.state == running:
			return fmt.Errorf("%w: %q", ErrRunning, id)
		}
		err := r.start(sctx, ctx, ch)
		r.startFailed(id, err)
		return err
	})
}

// DeleteChild removes the spec of a stopped child.
func (s *Supervisor) DeleteChild(ctx context.Context, id string) error {
	return s.call(ctx, func(_ context.Context, r *run) error {
		return r.core.remove(id)
	})
}

// WhichChildren lists the children in start order.
func (s *Supervisor) WhichChildren(ctx context.Context) ([]ChildInfo, error) {
	var infos []ChildInfo
	err := s.call(ctx, func(_ context.Context, r *run) error {
		infos = childInfos(r.snapshot())
		return nil
	})
	if err != nil {
		return nil, err // infos may still be written by the supervisor: do not read it
	}
	return infos, nil
}

// CountChildren counts the children.
func (s *Supervisor) CountChildren(ctx context.Context) (Counts, error) {
	var n Counts
	err := s.call(ctx, func(_ context.Context, r *run) error {
		for _, ch := range r.core.children {
			n.Specs++
			if ch.state == running {
				n.Active++
			}
			if ch.supervisor {
				n.Supervisors++
			} else {
				n.Workers++
			}
		}
		return nil
	})
	if err != nil {
		return Counts{}, err
	}
	return n, nil
}

func (r *run) startFailed(id string, err error) {
	if errors.Is(err, ErrStartFailed) {
		r.emit(StartFailed{Supervisor: r.s.spec.Name, Child: id, Err: err})
	}
}
