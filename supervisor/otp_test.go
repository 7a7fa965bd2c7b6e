package supervisor

// Where supervisors follow OTP closely (issue 11).

import (
	"bytes"
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/enginekit/enginekit/genserver"
	"github.com/rs/zerolog"
	"github.com/thejerf/suture/v4"
)

// errDrained is OTP's {shutdown, Why}.
var errDrained = fmt.Errorf("%w: drained", genserver.ErrShutdown)

type initFn func(p *genserver.Process) error

func (f initFn) Init(p *genserver.Process) error                               { return f(p) }
func (initFn) HandleCall(*genserver.Process, genserver.From, any) (any, error) { return nil, nil }
func (initFn) HandleCast(p *genserver.Process, msg any) {
	if err, ok := msg.(error); ok {
		p.Stop(err)
	}
}

func serverChild(sys *genserver.System, id string, restart RestartType, init initFn) ChildSpec {
	return ChildSpec{ID: id, Restart: restart, Start: func() suture.Service {
		return sys.Service(func() genserver.Server { return init }, genserver.WithName(id))
	}}
}

func noInit(*genserver.Process) error { return nil }

// A genserver child that stops with {shutdown, Why}: a transient one is not
// restarted, and the exit is not logged as an error.
func TestTransientServerShutdownWithReason(t *testing.T) {
	sys := genserver.NewSystem(genserver.Config{})
	defer sys.Stop(context.Background())
	var logs bytes.Buffer
	j := newJournal()
	log := LogEvents(zerolog.New(&logs))
	sup := mustNew(t, Spec{
		Children:  []ChildSpec{serverChild(sys, "x", Transient, noInit)},
		EventHook: func(e Event) { log(e); j.hook(e) }, // logged before the test sees it
	})
	launch(t, sup)
	expect(t, j.take(t, 1), "start x")
	if err := sys.Cast(genserver.Name("x"), errDrained); err != nil {
		t.Fatal(err)
	}
	expect(t, j.take(t, 1), "exit x keep")
	if strings.Contains(logs.String(), `"level":"error"`) {
		t.Fatalf("a shutdown was logged as an error:\n%s", logs.String())
	}
}

// OTP's ignore: a child whose Init ignores the start is recorded as not
// running, with no error and no restart, and the supervisor goes on.
func TestIgnoredChild(t *testing.T) {
	sys := genserver.NewSystem(genserver.Config{})
	defer sys.Stop(context.Background())
	ignore := func(*genserver.Process) error { return genserver.ErrIgnore }
	j := newJournal()
	sup := mustNew(t, Spec{
		Children:  []ChildSpec{serverChild(sys, "a", Permanent, noInit), serverChild(sys, "skip", Permanent, ignore), worker("c")},
		EventHook: j.hook,
	})
	launch(t, sup)
	expect(t, j.take(t, 3), "start a", "ignore skip", "start c")

	ctx := context.Background()
	if err := sup.StartChild(ctx, serverChild(sys, "dyn", Transient, ignore)); err != nil {
		t.Fatalf("StartChild of an ignoring child = %v, want nil", err)
	}
	expect(t, j.take(t, 1), "ignore dyn")
	if err := sup.RestartChild(ctx, "skip"); err != nil {
		t.Fatalf("RestartChild of an ignoring child = %v, want nil", err)
	}
	expect(t, j.take(t, 1), "ignore skip")
	infos, err := sup.WhichChildren(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, c := range infos {
		got = append(got, fmt.Sprintf("%s:%v", c.ID, c.Running))
	}
	expect(t, got, "a:true", "skip:false", "c:true", "dyn:false")
}

// OTP: a child supervisor past its intensity exits with shutdown, so a
// transient one is not restarted by its parent, and a permanent one is.
func TestGivenUpSupervisorIsAShutdown(t *testing.T) {
	for _, tc := range []struct {
		restart RestartType
		want    Action
	}{{Transient, ActionKeep}, {Permanent, ActionRestart}} {
		t.Run(tc.restart.String(), func(t *testing.T) {
			inner := mustNew(t, Spec{Name: "inner", MaxRestarts: -1, Children: []ChildSpec{
				scripted("w", func(ctx context.Context, n int) error {
					if n == 1 {
						return errBoom
					}
					return idle(ctx)
				}),
			}})
			inner.now = frozen
			j := newJournal()
			outer := mustNew(t, Spec{Name: "outer", Children: []ChildSpec{
				{ID: "inner", Restart: tc.restart, Start: func() suture.Service { return inner }},
			}, EventHook: j.hook})
			outer.now = frozen
			launch(t, outer)
			expect(t, j.take(t, 2), "start inner", "exit inner "+tc.want.String())
		})
	}
}
