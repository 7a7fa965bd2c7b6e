package supervisor

import (
	"context"
	"errors"
	"testing"

	"github.com/thejerf/suture/v4"
)

func TestChildAPI(t *testing.T) {
	ctx := context.Background()
	j := newJournal()
	sup := mustNew(t, Spec{Children: []ChildSpec{worker("a")}, EventHook: j.hook})
	s := launch(t, sup)

	temp := worker("t")
	temp.Restart = Temporary
	for _, cs := range []ChildSpec{worker("b"), temp} {
		if err := sup.StartChild(ctx, cs); err != nil {
			t.Fatal(err)
		}
	}
	if err := sup.StartChild(ctx, worker("b")); !errors.Is(err, ErrDuplicateChild) {
		t.Fatalf("StartChild with a duplicate ID: %v", err)
	}
	if err := sup.StartChild(ctx, ChildSpec{ID: "c"}); !errors.Is(err, ErrInvalidSpec) {
		t.Fatalf("StartChild without Start: %v", err)
	}
	expect(t, j.take(t, 3), "start a", "start b", "start t")
	checkChildren(t, sup, "a+", "b+", "t+")
	checkCounts(t, sup, Counts{Specs: 3, Active: 3, Workers: 3})

	if err := sup.DeleteChild(ctx, "b"); !errors.Is(err, ErrRunning) {
		t.Fatalf("DeleteChild of a running child: %v", err)
	}
	if err := sup.RestartChild(ctx, "b"); !errors.Is(err, ErrRunning) {
		t.Fatalf("RestartChild of a running child: %v", err)
	}
	for _, id := range []string{"b", "t", "b"} { // terminating a stopped child does nothing
		if err := sup.TerminateChild(ctx, id); err != nil {
			t.Fatal(err)
		}
	}
	expect(t, j.take(t, 2), "stop b", "stop t")
	checkChildren(t, sup, "a+", "b-") // a temporary child's spec goes when it stops
	checkCounts(t, sup, Counts{Specs: 2, Active: 1, Workers: 2})

	if err := sup.RestartChild(ctx, "b"); err != nil {
		t.Fatal(err)
	}
	expect(t, j.take(t, 1), "start b#1")
	checkChildren(t, sup, "a+", "b+")

	if err := sup.TerminateChild(ctx, "b"); err != nil {
		t.Fatal(err)
	}
	if err := sup.DeleteChild(ctx, "b"); err != nil {
		t.Fatal(err)
	}
	expect(t, j.take(t, 1), "stop b")
	checkChildren(t, sup, "a+")

	for name, err := range map[string]error{
		"TerminateChild": sup.TerminateChild(ctx, "b"),
		"RestartChild":   sup.RestartChild(ctx, "b"),
		"DeleteChild":    sup.DeleteChild(ctx, "b"),
	} {
		if !errors.Is(err, ErrNotFound) {
			t.Errorf("%s of an unknown child: %v", name, err)
		}
	}

	if err := s.stop(t); err != nil {
		t.Fatal(err)
	}
	expect(t, j.take(t, 1), "stop a")
}

// checkChildren checks WhichChildren: "id+" for a running child, "id-" for a stopped one.
func checkChildren(t *testing.T, sup *Supervisor, want ...string) {
	t.Helper()
	infos, err := sup.WhichChildren(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, info := range infos {
		if info.Running != (info.Service != nil) {
			t.Errorf("%+v", info)
		}
		if info.Running {
			got = append(got, info.ID+"+")
		} else {
			got = append(got, info.ID+"-")
		}
	}
	expect(t, got, want...)
}

func checkCounts(t *testing.T, sup *Supervisor, want Counts) {
	t.Helper()
	if got, err := sup.CountChildren(context.Background()); err != nil || got != want {
		t.Fatalf("CountChildren: %+v, %v; want %+v", got, err, want)
	}
}

// StartChild and RestartChild return once the child is ready, or with why it did not start.
func TestStartChildWaitsForReady(t *testing.T) {
	ctx := context.Background()
	j := newJournal()
	sup := mustNew(t, Spec{})
	launch(t, sup)
	fails := false // read by Start, on the supervisor's goroutine, after StartChild's request was sent
	child := ChildSpec{ID: "x", Restart: Transient, Start: func() suture.Service {
		return readyFunc(func(ctx context.Context, ready func()) error {
			if fails {
				return errBoom
			}
			j.add("x ready")
			ready()
			return idle(ctx)
		})
	}}
	if err := sup.StartChild(ctx, child); err != nil {
		t.Fatal(err)
	}
	expect(t, j.take(t, 1), "x ready") // already there: the wait returns at once
	if err := sup.TerminateChild(ctx, "x"); err != nil {
		t.Fatal(err)
	}

	fails = true
	if err := sup.RestartChild(ctx, "x"); !errors.Is(err, ErrStartFailed) || !errors.Is(err, errBoom) {
		t.Fatalf("RestartChild: %v", err)
	}
	checkChildren(t, sup, "x-")
	if err := sup.DeleteChild(ctx, "x"); err != nil {
		t.Fatal(err)
	}
	if err := sup.StartChild(ctx, child); !errors.Is(err, ErrStartFailed) {
		t.Fatalf("StartChild: %v", err)
	}
	checkChildren(t, sup) // a child that failed to start is not added
}

// When the caller of StartChild gives up, the child that is not ready yet is stopped and
// not added.
func TestStartChildCancelled(t *testing.T) {
	j := newJournal()
	sup := mustNew(t, Spec{EventHook: j.hook})
	launch(t, sup)
	slow := ChildSpec{ID: "x", Start: func() suture.Service {
		return readyFunc(func(ctx context.Context, ready func()) error {
			j.add("x init")
			return idle(ctx)
		})
	}}
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() { errc <- sup.StartChild(ctx, slow) }()
	expect(t, j.take(t, 1), "x init")
	cancel()
	if err := <-errc; !errors.Is(err, context.Canceled) {
		t.Fatalf("StartChild: %v", err)
	}
	// The supervisor stops x before it serves the next request.
	checkChildren(t, sup)
	expect(t, j.take(t, 1), "stop x")
}

// The child API fails with ErrNotRunning before Serve and after it returned, and a call
// that waits ends when the supervisor stops.
func TestChildAPINotRunning(t *testing.T) {
	ctx := context.Background()
	check := func(sup *Supervisor) {
		t.Helper()
		_, werr := sup.WhichChildren(ctx)
		_, cerr := sup.CountChildren(ctx)
		for _, err := range []error{
			sup.StartChild(ctx, worker("x")),
			sup.TerminateChild(ctx, "x"),
			sup.RestartChild(ctx, "x"),
			sup.DeleteChild(ctx, "x"),
			werr,
			cerr,
		} {
			if !errors.Is(err, ErrNotRunning) {
				t.Errorf("got %v, want ErrNotRunning", err)
			}
		}
	}
	var sup Supervisor // the zero value is a valid supervisor
	check(&sup)
	s := launch(t, &sup)
	checkChildren(t, &sup)

	// A StartChild waiting for a child that never gets ready ends when the supervisor stops.
	j := newJournal()
	stuck := ChildSpec{ID: "stuck", Start: func() suture.Service {
		return readyFunc(func(ctx context.Context, _ func()) error {
			j.add("init")
			return idle(ctx)
		})
	}}
	errc := make(chan error, 1)
	go func() { errc <- sup.StartChild(ctx, stuck) }()
	j.take(t, 1)
	if err := s.stop(t); err != nil {
		t.Fatal(err)
	}
	if err := <-errc; !errors.Is(err, ErrNotRunning) {
		t.Fatalf("waiting StartChild: %v", err)
	}
	check(&sup)
}
