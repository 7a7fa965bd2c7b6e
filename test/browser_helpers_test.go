package test

import (
	"context"
	"errors"
	"github.com/enginekit/enginekit/payload"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/enginekit/enginekit/admin"
	"github.com/enginekit/enginekit/examples/echo"
	"github.com/enginekit/enginekit/genserver"
	"github.com/enginekit/enginekit/keyholder"
	"github.com/enginekit/enginekit/netconn"
	nodepkg "github.com/enginekit/enginekit/node"
	"github.com/enginekit/enginekit/supervisor"
	"github.com/enginekit/enginekit/transport"
)

// browserWait bounds every wait of the browser test.
const browserWait = 60 * time.Second

// chromiumPath finds a Chromium to drive. Without one the test is skipped
// on a developer's machine, and fails under CI (CI set), where .ci/run
// installs Debian's chromium package: the test must run there, not vanish.
func chromiumPath(t *testing.T) string {
	t.Helper()
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome", "google-chrome-stable"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	if os.Getenv("CI") != "" {
		t.Fatal("no chromium on PATH under CI: .ci/run installs Debian's chromium package (apt-get install -y chromium); the browser test must not be skipped in CI")
	}
	t.Skip("no chromium on PATH (apt-get install -y chromium); skipped outside CI")
	return ""
}

// watchedGate holds the "slow" engine in its callbacks: each cast
// announces itself on entered, then waits for release.
type watchedGate struct {
	entered chan struct{}
	release chan struct{}
	closed  chan struct{}
}

type slowEngine struct {
	g     *watchedGate
	casts int
}

func (s *slowEngine) HandleCall(_ *genserver.Process, _ genserver.From, _ any) (any, error) {
	return int64(s.casts), nil
}

func (s *slowEngine) HandleCast(_ *genserver.Process, _ any) {
	s.casts++
	s.g.entered <- struct{}{}
	select {
	case <-s.g.release:
	case <-s.g.closed:
	}
}

// tally is an engine that reports its state to the observer.
type tally struct {
	casts  int64
	last   string
	byText map[string]int
}

func (c *tally) HandleCall(_ *genserver.Process, _ genserver.From, req any) (any, error) {
	if e, ok := req.(echo.Echo); ok {
		return e, nil
	}
	return c.casts, nil
}

func (c *tally) HandleCast(_ *genserver.Process, msg any) {
	c.casts++
	if e, ok := msg.(echo.Echo); ok {
		if e.Text == "crash" {
			panic("asked to crash")
		}
		c.last = e.Text
		if c.byText == nil {
			c.byText = map[string]int{}
		}
		c.byText[e.Text]++
	}
}

// FormatStatus returns a copy: the observer formats it outside the process,
// while the process goes on changing its own map.
func (c *tally) FormatStatus() any {
	return map[string]any{"casts": c.casts, "last": c.last, "by_text": maps.Clone(c.byText)}
}

// watched is a node under load with an admin server, connected to a peer
// node that has engines of its own.
type watched struct {
	n, peer *nodepkg.Node
	gate    *watchedGate
	srv     *admin.Server
	slow    keyholder.Address // its engines
	tally   keyholder.Address
	flaky   keyholder.Address
}

func startWatched(t *testing.T) *watched {
	t.Helper()
	ctx := context.Background()
	w := &watched{gate: &watchedGate{entered: make(chan struct{}, 1024), release: make(chan struct{}), closed: make(chan struct{})}}
	start := func(name string, cfg nodepkg.Config) *nodepkg.Node {
		cfg.Name = name
		cfg.Register = []func(*payload.Registry) error{echo.Register}
		cfg.Transport.Auth = netconn.MACs
		n, err := nodepkg.Start(ctx, cfg)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() {
			sctx, cancel := context.WithTimeout(context.Background(), browserWait)
			defer cancel()
			if err := n.Stop(sctx); err != nil && !errors.Is(err, nodepkg.ErrStopped) {
				t.Errorf("stopping %s: %v", name, err)
			}
		})
		return n
	}
	learnedBy := func(ch chan keyholder.Address) transport.Config {
		return transport.Config{OnLearn: func(e, _ keyholder.Address) {
			select {
			case ch <- e:
			default:
			}
		}}
	}
	bobLearned := make(chan keyholder.Address, 16)
	w.peer = start("bob", nodepkg.Config{
		Engines:   []nodepkg.Engine{{Name: "echo", Factory: echo.New}, {Name: "audit", Factory: echo.New}},
		Listen:    []nodepkg.Listener{{Endpoint: "tcp://127.0.0.1:0", Accept: netconn.AcceptAny}},
		Transport: learnedBy(bobLearned),
	})
	learned := make(chan keyholder.Address, 16)
	tcfg := learnedBy(learned)
	w.n = start("alice", nodepkg.Config{
		Engines: []nodepkg.Engine{
			{Name: "tally", Factory: func() genserver.Server { return &tally{} }},
			{Name: "slow", Factory: func() genserver.Server { return &slowEngine{g: w.gate} }},
			{Name: "flaky", Factory: func() genserver.Server { return &tally{} }},
			{Name: "echo", Factory: echo.New},
		},
		Peers:     []nodepkg.Peer{{Endpoint: w.peer.ListenAddrs()[0], Router: w.peer.Router()}},
		Transport: tcfg,
	})
	t.Cleanup(func() { close(w.gate.closed) }) // runs first: no engine stays stuck
	w.slow, _ = w.n.Engine("slow")
	w.tally, _ = w.n.Engine("tally")
	w.flaky, _ = w.n.Engine("flaky")
	for _, l := range []struct {
		who     string
		ch      chan keyholder.Address
		engines int
	}{{"alice", learned, 2}, {"bob", bobLearned, 4}} {
		for range l.engines {
			select {
			case <-l.ch:
			case <-time.After(browserWait):
				t.Fatalf("%s never learned all the engines of its peer", l.who)
			}
		}
	}

	var err error
	w.srv, err = admin.New(admin.Config{
		Addr: "127.0.0.1:0",
		Source: admin.Source{
			System:      w.n.System(),
			Supervisors: []*supervisor.Supervisor{w.n.Supervisor()},
			Transport:   w.n.Transport(),
		},
		Ready:        admin.RequirePeers(w.n.Transport(), w.peer.Router()),
		StateTimeout: 200 * time.Millisecond,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := w.srv.Close(); err != nil {
			t.Error(err)
		}
	})
	return w
}

// load sends some traffic: casts to alice's tally and echo, a call across
// the connection, and casts from bob's side.
func (w *watched) load(t *testing.T, n int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), browserWait)
	defer cancel()
	sys := w.n.System()
	echoA, _ := w.n.Engine("echo")
	echoB, _ := w.peer.Engine("echo")
	words := []string{"alpha", "beta", "gamma"}
	for i := range n {
		msg := echo.Echo{Text: words[i%len(words)]}
		for _, dest := range []keyholder.Address{w.tally, echoA, echoB} {
			if err := sys.Cast(genserver.Name(dest.String()), msg); err != nil {
				t.Fatal(err)
			}
		}
	}
	if _, err := genserver.Call[int64](ctx, sys, genserver.Name(w.tally.String()), echo.Count{}); err != nil {
		t.Fatal(err)
	}
	if _, err := genserver.Call[int64](ctx, sys, genserver.Name(echoB.String()), echo.Count{}); err != nil {
		t.Fatal(err)
	}
	// And from bob: alice's transport delivers these.
	for i := range n / 4 {
		if err := w.peer.System().Cast(genserver.Name(echoA.String()), echo.Echo{Text: words[i%len(words)]}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := genserver.Call[int64](ctx, w.peer.System(), genserver.Name(echoA.String()), echo.Count{}); err != nil {
		t.Fatal(err)
	}
}

// unregistered is a type no registry knows: a cast of it to a foreign
// engine cannot be encoded, and the transport drops it (cause unencodable).
type unregistered struct{ N int }

// hold makes the slow engine take one cast and stay in it, then queues n
// more: its mailbox is then exactly n.
func (w *watched) hold(t *testing.T, n int) {
	t.Helper()
	for i := 0; i <= n; i++ {
		if err := w.n.System().Cast(genserver.Name(w.slow.String()), echo.Echo{Text: "wait"}); err != nil {
			t.Fatal(err)
		}
		if i == 0 {
			select {
			case <-w.gate.entered:
			case <-time.After(browserWait):
				t.Fatal("the slow engine never took its first cast")
			}
		}
	}
}

// screenshotPath is where ENGINEKIT_OBSERVER_SCREENSHOT asks for a copy of
// the screenshot (the README's docs/observer.png), relative to the
// repository root; "" when it does not.
func screenshotPath() string {
	p := os.Getenv("ENGINEKIT_OBSERVER_SCREENSHOT")
	if p == "" || filepath.IsAbs(p) {
		return p
	}
	return filepath.Join("..", p) // tests run in test/
}
