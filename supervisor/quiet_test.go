package supervisor

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/enginekit/enginekit/genserver"
	"github.com/rs/zerolog"
	"github.com/thejerf/suture/v4"
)

// Stopping the System under a running tree stops the tree quietly: no
// restart of the children the System stopped, no error log, no "too many
// restarts"; each supervisor returns an error matching
// genserver.ErrSystemStopped, so its parent stops the same way.
func TestSystemStopStopsTreeQuietly(t *testing.T) {
	sys := genserver.NewSystem(genserver.Config{})
	var logs syncBuffer
	log := LogEvents(zerolog.New(&logs))
	j := newJournal()
	hook := func(e Event) { log(e); j.hook(e) }
	inner := mustNew(t, Spec{Name: "inner", EventHook: hook, Children: []ChildSpec{
		serverChild(sys, "a", Permanent, noInit),
		serverChild(sys, "b", Transient, noInit),
	}})
	outer := mustNew(t, Spec{Name: "outer", EventHook: hook, Children: []ChildSpec{
		worker("plain"),
		{ID: "inner", Start: func() suture.Service { return inner }, Shutdown: -1},
	}})
	s := launch(t, outer)
	expect(t, j.take(t, 4), "start plain", "start a", "start b", "start inner")

	if err := sys.Stop(context.Background()); err != nil {
		t.Fatal(err)
	}
	err := s.wait(t)
	if !errors.Is(err, genserver.ErrSystemStopped) {
		t.Fatalf("Serve returned %v, want an error matching genserver.ErrSystemStopped", err)
	}
	if errors.Is(err, ErrMaxRestarts) {
		t.Fatalf("Serve returned %v: too many restarts", err)
	}
	out := logs.String()
	if strings.Contains(out, `"level":"error"`) || strings.Contains(out, "too many restarts") {
		t.Fatalf("stopping the System was logged as a failure:\n%s", out)
	}
	j.mu.Lock()
	defer j.mu.Unlock()
	for _, e := range j.entries {
		if strings.Contains(e, "#") || strings.HasPrefix(e, "startfail") {
			t.Fatalf("a child was restarted or failed to start: %q", j.entries)
		}
	}
}
