package admin_test

import (
	"context"
	"io"
	"net/http"
	"testing"
	"time"

	"github.com/enginekit/enginekit/admin"
	"github.com/enginekit/enginekit/genserver"
	"github.com/enginekit/enginekit/internal/nodetest"
	"github.com/enginekit/enginekit/keyholder"
	"github.com/enginekit/enginekit/netconn"
	"github.com/enginekit/enginekit/supervisor"
	"github.com/thejerf/suture/v4"
)

// wait bounds every wait of these tests.
const wait = 20 * time.Second

// counter is a server that reports its state.
type counter struct{ n int }

func (c *counter) HandleCall(_ *genserver.Process, _ genserver.From, _ any) (any, error) {
	return c.n, nil
}
func (c *counter) HandleCast(_ *genserver.Process, msg any) { c.n += msg.(int) }
func (c *counter) FormatStatus() any                        { return map[string]int{"count": c.n} }

// gate makes a process hold its mailbox: each cast to a blocker announces
// itself on entered and waits for release (or for the gate to close).
type gate struct {
	entered chan struct{}
	release chan struct{}
	closed  chan struct{}
}

func newGate() *gate {
	return &gate{entered: make(chan struct{}, 1024), release: make(chan struct{}), closed: make(chan struct{})}
}

type blocker struct {
	g    *gate
	seen int
}

func (b *blocker) HandleCall(_ *genserver.Process, _ genserver.From, _ any) (any, error) {
	return b.seen, nil
}

func (b *blocker) HandleCast(_ *genserver.Process, _ any) {
	b.seen++
	b.g.entered <- struct{}{}
	select {
	case <-b.g.release:
	case <-b.g.closed:
	}
}

// fixture is node a (watched) connected to node b, which runs an engine a
// has learned; a runs a supervisor "app" with a counter, a blocker and a
// nested supervisor "workers".
type fixture struct {
	a, b   *nodetest.Node
	sup    *supervisor.Supervisor
	gate   *gate
	engine keyholder.Address
	// restarted gets the ID of each child the app supervisor restarts.
	restarted chan string
	src       admin.Source
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	f := &fixture{a: nodetest.New(t, "alice", netconn.MACs), b: nodetest.New(t, "bob", netconn.MACs), restarted: make(chan string, 16)}
	f.gate = newGate()
	var err error
	f.engine, _, err = f.b.Tr.SpawnEngine("echo", func() genserver.Server { return &counter{} })
	if err != nil {
		t.Fatal(err)
	}
	nodetest.Connect(t, f.a, f.b, "tcp")
	f.a.WaitLearn(t, f.engine)

	sys := f.a.Sys
	workers, err := supervisor.New(supervisor.Spec{Name: "workers", Children: []supervisor.ChildSpec{
		{ID: "w1", Start: func() suture.Service {
			return sys.Service(func() genserver.Server { return &counter{} }, genserver.WithName("w1"))
		}},
	}})
	if err != nil {
		t.Fatal(err)
	}
	f.sup, err = supervisor.New(supervisor.Spec{Name: "app", Children: []supervisor.ChildSpec{
		{ID: "counter", Start: func() suture.Service {
			return sys.Service(func() genserver.Server { return &counter{} }, genserver.WithName("counter"))
		}},
		{ID: "blocker", Start: func() suture.Service {
			return sys.Service(func() genserver.Server { return &blocker{g: f.gate} }, genserver.WithName("blocker"))
		}},
		{ID: "workers", Start: func() suture.Service { return workers }, Shutdown: -1},
	}, EventHook: func(e supervisor.Event) {
		if s, ok := e.(supervisor.ChildStarted); ok && s.Restarts > 0 {
			select {
			case f.restarted <- s.Child:
			default:
			}
		}
	}})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	ready, done := make(chan struct{}), make(chan error, 1)
	go func() { done <- f.sup.ServeReady(ctx, func() { close(ready) }) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("supervisor: %v", err)
		}
	})
	select {
	case <-ready:
	case err := <-done:
		t.Fatalf("supervisor: %v", err)
	case <-time.After(wait):
		t.Fatal("supervisor never ready")
	}
	t.Cleanup(func() { close(f.gate.closed) }) // cleanups run last-first: the gate opens before anything stops
	f.src = admin.Source{System: sys, Supervisors: []*supervisor.Supervisor{f.sup}, Transport: f.a.Tr}
	return f
}

// hold makes the blocker take one cast and stay in it, then queues n more:
// its mailbox is then exactly n.
func (f *fixture) hold(t *testing.T, n int) {
	t.Helper()
	for i := 0; i <= n; i++ {
		if err := f.a.Sys.Cast(genserver.Name("blocker"), i); err != nil {
			t.Fatal(err)
		}
		if i == 0 {
			select {
			case <-f.gate.entered:
			case <-time.After(wait):
				t.Fatal("blocker never took its first cast")
			}
		}
	}
}

// serve starts an admin server on f with cfg's other fields.
func (f *fixture) serve(t *testing.T, cfg admin.Config) *admin.Server {
	t.Helper()
	if cfg.Addr == "" {
		cfg.Addr = "127.0.0.1:0"
	}
	cfg.Source = f.src
	srv, err := admin.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := srv.Close(); err != nil {
			t.Error(err)
		}
	})
	return srv
}

// get fetches url and returns the status code and body.
func get(t *testing.T, url string) (int, string, http.Header) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Close = true // no idle connection left behind for goleak
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, string(body), resp.Header
}

// client is an admin.Client that keeps no idle connections.
func client(t *testing.T, url string) *admin.Client {
	t.Helper()
	c, err := admin.NewClient(url, &http.Client{Transport: &http.Transport{DisableKeepAlives: true}})
	if err != nil {
		t.Fatal(err)
	}
	return c
}
