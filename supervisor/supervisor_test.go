package supervisor

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/enginekit/enginekit/genserver"
	"github.com/thejerf/suture/v4"
)

// Each child is ready before the next one starts, and the supervisor is ready after all.
func TestStartOrderWithReadiness(t *testing.T) {
	j := newJournal()
	release := make(chan struct{})
	child := func(id string, gate <-chan struct{}) ChildSpec {
		return ChildSpec{ID: id, Start: func() suture.Service {
			return readyFunc(func(ctx context.Context, ready func()) error {
				j.add(id + " init")
				<-gate
				j.add(id + " ready")
				ready()
				return idle(ctx)
			})
		}}
	}
	open := make(chan struct{})
	close(open)
	sup := mustNew(t, Spec{Children: []ChildSpec{child("a", release), child("b", open)}})

	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- sup.ServeReady(ctx, func() { j.add("supervisor ready") }) }()
	expect(t, j.take(t, 1), "a init")
	close(release)
	expect(t, j.take(t, 4), "a ready", "b init", "b ready", "supervisor ready")
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

func TestStopInReverseOrder(t *testing.T) {
	j := newJournal()
	child := func(id string) ChildSpec {
		return ChildSpec{ID: id, Start: func() suture.Service {
			return serviceFunc(func(ctx context.Context) error {
				<-ctx.Done()
				j.add(id + " stopping")
				return ctx.Err()
			})
		}}
	}
	sup := mustNew(t, Spec{Children: []ChildSpec{child("a"), child("b"), child("c")}, EventHook: j.hook})
	s := launch(t, sup)
	expect(t, j.take(t, 3), "start a", "start b", "start c")
	if err := s.stop(t); err != nil {
		t.Fatal(err)
	}
	expect(t, j.take(t, 6), "c stopping", "stop c", "b stopping", "stop b", "a stopping", "stop a")
}

// A child that ignores its cancelled context is waited for up to its Shutdown time, then
// reported and left behind; the others are still stopped in order.
func TestShutdownTimeout(t *testing.T) {
	j := newJournal()
	release, returned := make(chan struct{}), make(chan struct{})
	stubborn := ChildSpec{ID: "b", Shutdown: 10 * time.Millisecond, Start: func() suture.Service {
		return serviceFunc(func(context.Context) error {
			defer close(returned)
			<-release
			return nil
		})
	}}
	var timeout StopTimeout
	hook := func(e Event) {
		if e, ok := e.(StopTimeout); ok {
			timeout = e
		}
		j.hook(e)
	}
	sup := mustNew(t, Spec{Name: "sup", Children: []ChildSpec{worker("a"), stubborn, worker("c")}, EventHook: hook})
	s := launch(t, sup)
	expect(t, j.take(t, 3), "start a", "start b", "start c")
	if err := s.stop(t); err != nil {
		t.Fatal(err)
	}
	expect(t, j.take(t, 3), "stop c", "timeout b", "stop a")
	if want := (StopTimeout{Supervisor: "sup", Child: "b", Timeout: 10 * time.Millisecond}); timeout != want {
		t.Errorf("got %+v, want %+v", timeout, want)
	}
	close(release)
	<-returned
}

func TestRestartTypes(t *testing.T) {
	doNotRestart := fmt.Errorf("finished: %w", suture.ErrDoNotRestart)
	for _, tc := range []struct {
		restart RestartType
		exit    error
		want    Action
	}{
		{Permanent, nil, ActionRestart},
		{Permanent, errBoom, ActionRestart},
		{Permanent, doNotRestart, ActionKeep},
		{Transient, nil, ActionKeep},
		{Transient, errBoom, ActionRestart},
		{Transient, doNotRestart, ActionKeep},
		{Transient, errDrained, ActionKeep}, // OTP: {shutdown, Why} is no failure for a transient child
		{Permanent, errDrained, ActionRestart},
		{Temporary, nil, ActionRemove},
		{Temporary, errBoom, ActionRemove},
	} {
		t.Run(fmt.Sprintf("%v/%v", tc.restart, tc.exit), func(t *testing.T) {
			j := newJournal()
			child := failOnce("x", tc.exit)
			child.Restart = tc.restart
			sup := mustNew(t, Spec{Children: []ChildSpec{worker("a"), child}, EventHook: j.hook})
			launch(t, sup)
			expect(t, j.take(t, 3), "start a", "start x", "exit x "+tc.want.String())

			ctx := context.Background()
			if tc.want == ActionRestart {
				expect(t, j.take(t, 1), "start x#1")
			}
			infos, err := sup.WhichChildren(ctx)
			if err != nil {
				t.Fatal(err)
			}
			switch tc.want {
			case ActionRemove:
				if len(infos) != 1 {
					t.Fatalf("x not removed: %+v", infos)
				}
			case ActionKeep:
				if x := infos[1]; x.Running || x.Service != nil {
					t.Fatalf("x running: %+v", x)
				}
			case ActionRestart:
				if x := infos[1]; !x.Running || x.Restarts != 1 {
					t.Fatalf("x not restarted: %+v", x)
				}
			}
		})
	}
}

// b fails; its strategy says which siblings go down with it and in which order they come
// back. The temporary child t is stopped and not restarted.
func TestStrategies(t *testing.T) {
	for _, tc := range []struct {
		strategy Strategy
		restart  []string
		stop     []string
	}{
		{OneForOne,
			[]string{"start b#1"},
			[]string{"stop t", "stop c", "stop b", "stop a"}},
		{OneForAll,
			[]string{"stop t", "stop c", "stop a", "start a#1", "start b#1", "start c#1"},
			[]string{"stop c", "stop b", "stop a"}},
		{RestForOne,
			[]string{"stop t", "stop c", "start b#1", "start c#1"},
			[]string{"stop c", "stop b", "stop a"}},
	} {
		t.Run(tc.strategy.String(), func(t *testing.T) {
			j := newJournal()
			temp := worker("t")
			temp.Restart = Temporary
			sup := mustNew(t, Spec{
				Strategy:  tc.strategy,
				Children:  []ChildSpec{worker("a"), failOnce("b", errBoom), worker("c"), temp},
				EventHook: j.hook,
			})
			s := launch(t, sup)
			expect(t, j.take(t, 5), "start a", "start b", "start c", "start t", "exit b restart")
			expect(t, j.take(t, len(tc.restart)), tc.restart...)
			if err := s.stop(t); err != nil {
				t.Fatal(err)
			}
			expect(t, j.take(t, len(tc.stop)), tc.stop...)
		})
	}
}

func TestPanicIsAbnormalExit(t *testing.T) {
	j := newJournal()
	exits := make(chan ChildExited, 1)
	hook := func(e Event) {
		if e, ok := e.(ChildExited); ok {
			exits <- e
		}
		j.hook(e)
	}
	child := scripted("x", func(ctx context.Context, n int) error {
		if n == 1 {
			panic("kaboom")
		}
		return idle(ctx)
	})
	child.Restart = Transient
	sup := mustNew(t, Spec{Children: []ChildSpec{child}, EventHook: hook})
	launch(t, sup)
	expect(t, j.take(t, 3), "start x", "exit x restart", "start x#1")

	var pe *PanicError
	if err := (<-exits).Err; !errors.As(err, &pe) || pe.Value != "kaboom" {
		t.Fatalf("exit reason %v", err)
	}
	if !strings.Contains(string(pe.Stack), "TestPanicIsAbnormalExit") {
		t.Errorf("stack does not show where it panicked:\n%s", pe.Stack)
	}
}

// A child returning suture.ErrTerminateSupervisorTree stops the supervisor, and Serve's
// error still matches it so the parent stops too.
func TestTerminateSupervisorTree(t *testing.T) {
	j := newJournal()
	fatal := fmt.Errorf("fatal: %w", suture.ErrTerminateSupervisorTree)
	sup := mustNew(t, Spec{Children: []ChildSpec{worker("a"), failOnce("b", fatal), worker("c")}, EventHook: j.hook})
	s := launch(t, sup)
	if err := s.wait(t); !errors.Is(err, suture.ErrTerminateSupervisorTree) {
		t.Fatalf("Serve returned %v", err)
	}
	expect(t, j.take(t, 7), "start a", "start b", "start c", "exit b terminate", "stop c", "stop a", "fail")
}

func TestMaxRestarts(t *testing.T) {
	for _, tc := range []struct {
		name string
		exit error
		want string
	}{
		{"crashes", errBoom, `supervisor: too many restarts (more than 2 in 5s): child "b": boom`},
		{"normal exits", nil, `supervisor: too many restarts (more than 2 in 5s): child "b" exited normally`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			j := newJournal()
			sup := mustNew(t, Spec{
				MaxRestarts: 2,
				Children:    []ChildSpec{worker("a"), scripted("b", func(context.Context, int) error { return tc.exit })},
				EventHook:   j.hook,
			})
			sup.now = frozen
			s := launch(t, sup)
			err := s.wait(t)
			if !errors.Is(err, ErrMaxRestarts) || err.Error() != tc.want {
				t.Fatalf("Serve returned %v", err)
			}
			// OTP: a supervisor past its intensity exits with reason shutdown.
			if !errors.Is(err, genserver.ErrShutdown) {
				t.Fatalf("Serve returned %v, which does not match genserver.ErrShutdown", err)
			}
			expect(t, j.take(t, 9),
				"start a", "start b", "exit b restart",
				"start b#1", "exit b restart",
				"start b#2", "exit b escalate",
				"stop a", "fail")
		})
	}
}

// Stopping the supervisor while it waits for a restarted child to get ready stops that
// child and the others.
func TestStopDuringRestart(t *testing.T) {
	j := newJournal()
	starts := 0 // Start runs on the supervisor's goroutine
	child := ChildSpec{ID: "x", Start: func() suture.Service {
		starts++
		if starts == 1 {
			return serviceFunc(func(context.Context) error { return errBoom })
		}
		return readyFunc(func(ctx context.Context, _ func()) error {
			j.add("x init")
			return idle(ctx)
		})
	}}
	sup := mustNew(t, Spec{Children: []ChildSpec{worker("a"), child}, EventHook: j.hook})
	s := launch(t, sup)
	expect(t, j.take(t, 4), "start a", "start x", "exit x restart", "x init")
	if err := s.stop(t); err != nil {
		t.Fatal(err)
	}
	expect(t, j.take(t, 2), "stop x", "stop a")
}

// Restarts that fail to start count against the intensity like crashes.
func TestFailedRestartsEscalate(t *testing.T) {
	j := newJournal()
	starts := 0 // Start runs on the supervisor's goroutine
	child := ChildSpec{ID: "x", Start: func() suture.Service {
		starts++
		if starts == 1 {
			return serviceFunc(func(context.Context) error { return errBoom })
		}
		return readyFunc(func(context.Context, func()) error { return errors.New("cannot init") })
	}}
	sup := mustNew(t, Spec{MaxRestarts: 2, Children: []ChildSpec{child}, EventHook: j.hook})
	sup.now = frozen
	s := launch(t, sup)
	if err := s.wait(t); !errors.Is(err, ErrMaxRestarts) || !errors.Is(err, ErrStartFailed) {
		t.Fatalf("Serve returned %v", err)
	}
	expect(t, j.take(t, 5), "start x", "exit x restart", "exit x restart", "exit x escalate", "fail")
}

// A worker keeps crashing: the inner supervisor gives up, the outer one restarts it, and
// when that happens too often the outer one gives up and its Serve returns the error.
func TestEscalationThroughTwoLevels(t *testing.T) {
	outerJ, innerJ := newJournal(), newJournal()
	crashes := 0 // the worker's starts; Start runs on the inner supervisor's goroutine
	inner := mustNew(t, Spec{
		Name:        "inner",
		MaxRestarts: 1,
		Children: []ChildSpec{{ID: "worker", Start: func() suture.Service {
			crashes++
			return serviceFunc(func(context.Context) error { return errBoom })
		}}},
		EventHook: innerJ.hook,
	})
	inner.now = frozen
	outer := mustNew(t, Spec{
		Name:        "outer",
		MaxRestarts: 1,
		Children:    []ChildSpec{worker("a"), {ID: "inner", Start: func() suture.Service { return inner }}},
		EventHook:   outerJ.hook,
	})
	outer.now = frozen

	err := outer.Serve(context.Background())
	if !errors.Is(err, ErrMaxRestarts) || !errors.Is(err, errBoom) {
		t.Fatalf("Serve returned %v", err)
	}
	const want = `supervisor: too many restarts (more than 1 in 5s): child "inner": ` +
		`supervisor: too many restarts (more than 1 in 5s): child "worker": boom`
	if err.Error() != want {
		t.Errorf("error\n%s\nwant\n%s", err, want)
	}
	if crashes != 4 {
		t.Errorf("worker started %d times, want 4", crashes)
	}
	expect(t, outerJ.take(t, 7),
		"start a", "start inner", "exit inner restart",
		"start inner#1", "exit inner escalate",
		"stop a", "fail")
	innerRun := []string{"start worker", "exit worker restart", "start worker#1", "exit worker escalate", "fail"}
	expect(t, innerJ.take(t, 10), append(innerRun, innerRun...)...)
}

// A supervisor is ready once its children are; it stops its children before its parent
// goes on; its child API works while it runs in the tree.
func TestNestedSupervisors(t *testing.T) {
	j := newJournal()
	child := func(id string) ChildSpec {
		return ChildSpec{ID: id, Start: func() suture.Service {
			return readyFunc(func(ctx context.Context, ready func()) error {
				j.add(id + " ready")
				ready()
				<-ctx.Done()
				j.add(id + " stopping")
				return nil
			})
		}}
	}
	inner := mustNew(t, Spec{Children: []ChildSpec{child("x"), child("y")}})
	outer := mustNew(t, Spec{Children: []ChildSpec{
		{ID: "inner", Start: func() suture.Service { return inner }, Shutdown: -1},
		child("z"),
	}})
	s := launch(t, outer)
	expect(t, j.take(t, 3), "x ready", "y ready", "z ready")

	ctx := context.Background()
	infos, err := outer.WhichChildren(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if !infos[0].Supervisor || infos[0].Service != inner || infos[1].Supervisor {
		t.Fatalf("WhichChildren: %+v", infos)
	}
	if n, err := outer.CountChildren(ctx); err != nil || n != (Counts{Specs: 2, Active: 2, Supervisors: 1, Workers: 1}) {
		t.Fatalf("CountChildren: %+v, %v", n, err)
	}
	if err := infos[0].Service.(*Supervisor).StartChild(ctx, child("w")); err != nil {
		t.Fatal(err)
	}
	expect(t, j.take(t, 1), "w ready")

	if err := s.stop(t); err != nil {
		t.Fatal(err)
	}
	expect(t, j.take(t, 4), "z stopping", "w stopping", "y stopping", "x stopping")
}

// A static child that fails to start fails Serve, as a failed init does in OTP, after the
// children started before it are stopped.
func TestStartFailure(t *testing.T) {
	for _, tc := range []struct {
		name  string
		start func() suture.Service
		check func(error) bool
	}{{
		name: "error",
		start: func() suture.Service {
			return readyFunc(func(context.Context, func()) error { return errBoom })
		},
		check: func(err error) bool { return errors.Is(err, errBoom) },
	}, {
		name: "returned before ready",
		start: func() suture.Service {
			return readyFunc(func(context.Context, func()) error { return nil })
		},
		check: func(err error) bool { return strings.Contains(err.Error(), "returned before it was ready") },
	}, {
		name:  "panic in Start",
		start: func() suture.Service { panic("no") },
		check: func(err error) bool { var pe *PanicError; return errors.As(err, &pe) && pe.Value == "no" },
	}, {
		name:  "nil service",
		start: func() suture.Service { return nil },
		check: func(err error) bool { return err != nil },
	}} {
		t.Run(tc.name, func(t *testing.T) {
			j := newJournal()
			sup := mustNew(t, Spec{Children: []ChildSpec{worker("a"), {ID: "b", Start: tc.start}, worker("c")}, EventHook: j.hook})
			err := sup.Serve(context.Background())
			if !errors.Is(err, ErrStartFailed) || !tc.check(err) {
				t.Fatalf("Serve returned %v", err)
			}
			expect(t, j.take(t, 4), "start a", "startfail b", "stop a", "fail")
		})
	}
}

// Serve runs again after it returned, from the static spec, as OTP restarts a supervisor.
func TestServeAgain(t *testing.T) {
	j := newJournal()
	sup := mustNew(t, Spec{Children: []ChildSpec{worker("a")}, EventHook: j.hook})
	s := launch(t, sup)
	if err := sup.Serve(context.Background()); !errors.Is(err, ErrAlreadyRunning) {
		t.Fatalf("second Serve returned %v", err)
	}
	if err := sup.StartChild(context.Background(), worker("b")); err != nil {
		t.Fatal(err)
	}
	if err := s.stop(t); err != nil {
		t.Fatal(err)
	}
	expect(t, j.take(t, 4), "start a", "start b", "stop b", "stop a")

	s = launch(t, sup)
	infos, err := sup.WhichChildren(context.Background())
	if err != nil || len(infos) != 1 || infos[0].ID != "a" || infos[0].Restarts != 0 {
		t.Fatalf("WhichChildren: %+v, %v", infos, err)
	}
	if err := s.stop(t); err != nil {
		t.Fatal(err)
	}
	expect(t, j.take(t, 2), "start a", "stop a")
}

func TestNewValidates(t *testing.T) {
	start := func() suture.Service { return serviceFunc(idle) }
	for _, tc := range []struct {
		name string
		spec Spec
		want error
	}{
		{"strategy", Spec{Strategy: 7}, ErrInvalidSpec},
		{"period", Spec{Period: -time.Second}, ErrInvalidSpec},
		{"no ID", Spec{Children: []ChildSpec{{Start: start}}}, ErrInvalidSpec},
		{"no Start", Spec{Children: []ChildSpec{{ID: "a"}}}, ErrInvalidSpec},
		{"restart type", Spec{Children: []ChildSpec{{ID: "a", Start: start, Restart: 9}}}, ErrInvalidSpec},
		{"duplicate", Spec{Children: []ChildSpec{{ID: "a", Start: start}, {ID: "a", Start: start}}}, ErrDuplicateChild},
	} {
		if _, err := New(tc.spec); !errors.Is(err, tc.want) {
			t.Errorf("%s: got %v, want %v", tc.name, err, tc.want)
		}
	}
}
