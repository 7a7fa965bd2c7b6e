package supervisor

import (
	"bytes"
	"context"
	"errors"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/rs/zerolog"
	"github.com/thejerf/suture/v4"
)

// A suture.Supervisor as our child: it is started and stopped in order like any child, and
// ErrTerminateSupervisorTree from inside it stops our supervisor too.
func TestSutureSupervisorAsChild(t *testing.T) {
	j := newJournal()
	terminate := make(chan struct{})
	leaf := serviceFunc(func(ctx context.Context) error {
		j.add("leaf serving")
		select {
		case <-ctx.Done():
			j.add("leaf stopping")
			return ctx.Err()
		case <-terminate:
			return suture.ErrTerminateSupervisorTree
		}
	})
	sutureChild := ChildSpec{ID: "suture", Start: func() suture.Service {
		s := suture.New("suture", suture.Spec{EventHook: func(suture.Event) {}})
		s.Add(leaf)
		return s
	}}
	sup := mustNew(t, Spec{Children: []ChildSpec{worker("a"), sutureChild}, EventHook: j.hook})

	// The suture supervisor counts as started once its goroutine runs, so its child may
	// start before or after our event.
	started := func() {
		t.Helper()
		got := j.take(t, 3)
		slices.Sort(got)
		expect(t, got, "leaf serving", "start a", "start suture")
	}
	s := launch(t, sup)
	started()
	infos, err := sup.WhichChildren(context.Background())
	if err != nil || !infos[1].Supervisor {
		t.Fatalf("WhichChildren: %+v, %v", infos, err)
	}
	if err := s.stop(t); err != nil {
		t.Fatal(err)
	}
	expect(t, j.take(t, 3), "leaf stopping", "stop suture", "stop a")

	s = launch(t, sup)
	started()
	close(terminate)
	if err := s.wait(t); !errors.Is(err, suture.ErrTerminateSupervisorTree) {
		t.Fatalf("Serve returned %v", err)
	}
	expect(t, j.take(t, 3), "exit suture terminate", "stop a", "fail")
}

// Our supervisor as the child of a suture.Supervisor: when it gives up, suture restarts it
// (Serve again, from its spec), and suture's cancellation stops it in order.
func TestSupervisorAsSutureChild(t *testing.T) {
	j := newJournal()
	var logs syncBuffer
	sup := mustNew(t, Spec{
		Name:        "ours",
		MaxRestarts: -1,
		Children:    []ChildSpec{worker("a"), failOnce("b", errBoom)},
		EventHook:   j.hook,
	})
	parent := suture.New("parent", suture.Spec{EventHook: LogSutureEvents(zerolog.New(&logs))})
	parent.Add(sup)

	ctx, cancel := context.WithCancel(context.Background())
	done := parent.ServeBackground(ctx)
	expect(t, j.take(t, 7),
		"start a", "start b", "exit b escalate", "stop a", "fail",
		"start a", "start b") // suture served us again
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Fatalf("suture's Serve returned %v", err)
	}
	expect(t, j.take(t, 2), "stop b", "stop a")
	if log := logs.String(); !strings.Contains(log, `"level":"error"`) || !strings.Contains(log, "too many restarts") {
		t.Errorf("suture's log: %s", log)
	}
}

// syncBuffer is a bytes.Buffer for a logger that another goroutine writes to.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}
