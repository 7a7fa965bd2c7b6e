package supervisor

import (
	"context"
	"testing"
	"time"

	"github.com/enginekit/enginekit/genserver"
	"github.com/thejerf/suture/v4"
)

type nopServer struct{}

func (nopServer) HandleCall(*genserver.Process, genserver.From, any) (any, error) { return nil, nil }
func (nopServer) HandleCast(*genserver.Process, any)                              {}

// Tree shows the children with their restart types, restarts and processes,
// the restart intensity in use, and nested supervisors' trees.
func TestTree(t *testing.T) {
	sys := genserver.NewSystem(genserver.Config{})
	defer sys.Stop(context.Background())
	inner := mustNew(t, Spec{Name: "inner", Strategy: OneForAll, Children: []ChildSpec{{
		ID:      "counter",
		Restart: Transient,
		Start: func() suture.Service {
			return sys.Service(func() genserver.Server { return nopServer{} }, genserver.WithName("counter"))
		},
	}}})
	j := newJournal()
	flaky := failOnce("flaky", errBoom)
	flaky.Restart = Transient
	outer := mustNew(t, Spec{Name: "outer", MaxRestarts: 5, Period: time.Minute, EventHook: j.hook, Children: []ChildSpec{
		worker("plain"),
		{ID: "inner", Start: func() suture.Service { return inner }, Shutdown: -1},
		flaky,
	}})
	outer.now = frozen

	idle := outer.Tree()
	if idle.Name != "outer" || idle.Strategy != "one_for_one" || idle.MaxRestarts != 5 || idle.Period != time.Minute ||
		len(idle.Children) != 3 || idle.Children[1].Running || idle.Children[1].Sub != nil {
		t.Fatalf("tree before Serve: %+v", idle)
	}

	s := launch(t, outer)
	expect(t, j.take(t, 5), "start plain", "start inner", "start flaky", "exit flaky restart", "start flaky#1")
	tree := outer.Tree()
	if tree.RestartsInPeriod != 1 {
		t.Errorf("RestartsInPeriod = %d, want 1", tree.RestartsInPeriod)
	}
	want := []struct {
		id, restart string
		restarts    int
		sub         bool
	}{{"plain", "permanent", 0, false}, {"inner", "permanent", 0, true}, {"flaky", "transient", 1, false}}
	for i, w := range want {
		c := tree.Children[i]
		if c.ID != w.id || c.Restart != w.restart || !c.Running || c.Restarts != w.restarts || (c.Sub != nil) != w.sub || !c.PID.IsZero() {
			t.Errorf("child %d = %+v, want %+v", i, c, w)
		}
	}
	sub := tree.Children[1].Sub
	counter, _ := sys.Whereis("counter")
	if sub.Name != "inner" || sub.Strategy != "one_for_all" || sub.MaxRestarts != 3 || sub.Period != 5*time.Second ||
		len(sub.Children) != 1 || sub.Children[0].PID != counter || counter.IsZero() || sub.Children[0].Restart != "transient" {
		t.Fatalf("inner tree = %+v (counter %v)", sub, counter)
	}

	// WhichChildren reads the same.
	infos, err := inner.WhichChildren(context.Background())
	if err != nil || len(infos) != 1 || infos[0].PID != counter || infos[0].RestartType != Transient {
		t.Fatalf("WhichChildren = %+v, %v", infos, err)
	}

	if err := s.stop(t); err != nil {
		t.Fatal(err)
	}
	for _, c := range outer.Tree().Children {
		if c.Running || c.Sub != nil || !c.PID.IsZero() {
			t.Errorf("after Serve returned: %+v", c)
		}
	}
}
