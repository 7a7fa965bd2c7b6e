package supervisor

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/thejerf/suture/v4"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// patience bounds every wait in the tests; it only matters when a test is failing.
const patience = 10 * time.Second

var errBoom = errors.New("boom")

type serviceFunc func(ctx context.Context) error

func (f serviceFunc) Serve(ctx context.Context) error { return f(ctx) }

type readyFunc func(ctx context.Context, ready func()) error

func (f readyFunc) Serve(ctx context.Context) error { return f(ctx, func() {}) }

func (f readyFunc) ServeReady(ctx context.Context, ready func()) error { return f(ctx, ready) }

// idle is the Serve of a healthy child: it runs until asked to stop.
func idle(ctx context.Context) error {
	<-ctx.Done()
	return ctx.Err()
}

// scripted returns a child whose incarnation n (from 1) runs behave(ctx, n).
func scripted(id string, behave func(ctx context.Context, n int) error) ChildSpec {
	n := 0 // Start runs on the supervisor's goroutine only
	return ChildSpec{ID: id, Start: func() suture.Service {
		n++
		k := n
		return serviceFunc(func(ctx context.Context) error { return behave(ctx, k) })
	}}
}

// failOnce returns a child whose first incarnation exits at once with err (nil is a normal
// exit) and whose later incarnations run until stopped.
func failOnce(id string, err error) ChildSpec {
	return scripted(id, func(ctx context.Context, n int) error {
		if n == 1 {
			return err
		}
		return idle(ctx)
	})
}

func worker(id string) ChildSpec {
	return ChildSpec{ID: id, Start: func() suture.Service { return serviceFunc(idle) }}
}

// journal is an ordered record of what happened, which the test goroutine reads in order.
type journal struct {
	mu      sync.Mutex
	entries []string
	changed chan struct{} // closed and replaced by add
	cursor  int           // owned by the test goroutine
}

func newJournal() *journal { return &journal{changed: make(chan struct{})} }

func (j *journal) add(s string) {
	j.mu.Lock()
	defer j.mu.Unlock()
	j.entries = append(j.entries, s)
	close(j.changed)
	j.changed = make(chan struct{})
}

// hook records events in a short form that tests compare.
func (j *journal) hook(e Event) {
	switch e := e.(type) {
	case ChildStarted:
		if e.Restarts > 0 {
			j.add(fmt.Sprintf("start %s#%d", e.Child, e.Restarts))
		} else {
			j.add("start " + e.Child)
		}
	case ChildIgnored:
		j.add("ignore " + e.Child)
	case ChildExited:
		j.add(fmt.Sprintf("exit %s %v", e.Child, e.Action))
	case ChildStopped:
		j.add("stop " + e.Child)
	case StopTimeout:
		j.add("timeout " + e.Child)
	case StartFailed:
		j.add("startfail " + e.Child)
	case SupervisorFailed:
		j.add("fail")
	}
}

// take waits for the next n entries.
func (j *journal) take(t *testing.T, n int) []string {
	t.Helper()
	return j.wait(t, func(e []string) int {
		if len(e) >= n {
			return n
		}
		return -1
	})
}

func (j *journal) wait(t *testing.T, enough func([]string) int) []string {
	t.Helper()
	timeout := time.NewTimer(patience)
	defer timeout.Stop()
	for {
		j.mu.Lock()
		unread, changed := slices.Clone(j.entries[j.cursor:]), j.changed
		j.mu.Unlock()
		if n := enough(unread); n >= 0 {
			j.cursor += n
			return unread[:n]
		}
		select {
		case <-changed:
		case <-timeout.C:
			t.Fatalf("timed out; unread entries: %q", unread)
		}
	}
}

func expect(t *testing.T, got []string, want ...string) {
	t.Helper()
	if !slices.Equal(got, want) {
		t.Fatalf("got  %q\nwant %q", got, want)
	}
}

// serving is a supervisor running in the background.
type serving struct {
	cancel context.CancelFunc
	done   chan error
}

// launch runs sup until the test ends, and returns once it is ready.
func launch(t *testing.T, sup *Supervisor) *serving {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	s := &serving{cancel: cancel, done: make(chan error, 1)}
	ready := make(chan struct{})
	go func() { s.done <- sup.ServeReady(ctx, func() { close(ready) }) }()
	t.Cleanup(func() {
		cancel()
		<-s.done
	})
	select {
	case <-ready:
	case err := <-s.done:
		s.done <- err // for wait
		select {
		case <-ready: // and then failed at once, which the test waits for
		default:
			t.Fatalf("Serve returned before ready: %v", err)
		}
	}
	return s
}

// stop stops the supervisor and returns what Serve returned.
func (s *serving) stop(t *testing.T) error {
	t.Helper()
	s.cancel()
	return s.wait(t)
}

// wait waits for Serve to return.
func (s *serving) wait(t *testing.T) error {
	t.Helper()
	select {
	case err := <-s.done:
		s.done <- err // for the cleanup
		return err
	case <-time.After(patience):
		t.Fatal("Serve did not return")
		return nil
	}
}

func mustNew(t *testing.T, spec Spec) *Supervisor {
	t.Helper()
	sup, err := New(spec)
	if err != nil {
		t.Fatal(err)
	}
	return sup
}

// frozen is a clock for the restart intensity at which all restarts happen at once.
func frozen() time.Time { return time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC) }
