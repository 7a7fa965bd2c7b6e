package testkit_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/enginekit/enginekit/genserver"
	"github.com/enginekit/enginekit/netconn"
	"github.com/enginekit/enginekit/node"
	"github.com/enginekit/enginekit/testkit"
	"github.com/enginekit/enginekit/transport"
)

type echoServer struct{}

func (echoServer) HandleCall(_ *genserver.Process, _ genserver.From, req any) (any, error) {
	return req, nil
}
func (echoServer) HandleCast(*genserver.Process, any) {}

func newEcho() genserver.Server { return echoServer{} }

// Three nodes over each network, both auth modes: every node reaches every
// other's engine; a cut link fails calls at once and the third node is not
// affected; a heal restores them.
func TestCluster(t *testing.T) {
	for _, network := range []testkit.Network{testkit.TCP, testkit.Unix, testkit.Memory} {
		for _, auth := range []netconn.Auth{netconn.MACs, netconn.Signatures} {
			t.Run(fmt.Sprintf("%s/%v", network, auth), func(t *testing.T) {
				c := testkit.Start(t, testkit.Options{
					Nodes: 3, Network: network, Auth: auth,
					Engines: []node.Engine{{Name: "echo", Factory: newEcho}},
				})
				ctx := context.Background()
				call := func(from, to int) error {
					got, err := genserver.Call[string](ctx, c.Nodes[from].System(), c.Nodes[to].Dest("echo"), "ping")
					if err == nil && got != "ping" {
						err = fmt.Errorf("got %q", got)
					}
					return err
				}
				for i := range 3 {
					for j := range 3 {
						if err := call(i, j); err != nil {
							t.Fatalf("%d -> %d: %v", i, j, err)
						}
					}
				}
				c.Cut(t, 2, 0)
				if err := call(0, 2); !errors.Is(err, transport.ErrNoConnection) {
					t.Fatalf("call over a cut link: %v, want ErrNoConnection", err)
				}
				if err := call(1, 2); err != nil {
					t.Fatalf("1 -> 2 with 0-2 cut: %v", err)
				}
				c.Heal(t, 0, 2)
				if err := call(0, 2); err != nil {
					t.Fatalf("after heal: %v", err)
				}
			})
		}
	}
}

// Configure gives nodes different engines; WaitLearn and WaitForget follow
// an engine spawned by the test.
func TestConfigureAndWait(t *testing.T) {
	c := testkit.Start(t, testkit.Options{
		Configure: func(i int, cfg *node.Config) {
			if i == 0 {
				cfg.Engines = []node.Engine{{Name: "only-on-0", Factory: newEcho}}
			}
		},
	})
	a, b := c.Nodes[0], c.Nodes[1]
	b.WaitLearn(t, a.Addr(t, "only-on-0"))
	if _, ok := b.Engine("only-on-0"); ok {
		t.Fatal("node 1 runs node 0's engine")
	}
	addr, pid, err := b.Transport().SpawnEngine("late", newEcho)
	if err != nil {
		t.Fatal(err)
	}
	a.WaitLearn(t, addr)
	if err := b.System().StopProcess(context.Background(), pid, nil); err != nil {
		t.Fatal(err)
	}
	a.WaitForget(t, addr)
}

// recorder is a TB that records failures instead of failing.
type recorder struct {
	exampleT
	failures []string
}

func (r *recorder) Error(args ...any) { r.failures = append(r.failures, fmt.Sprint(args...)) }

// The leak check at cleanup catches a goroutine an engine leaves behind.
func TestLeakCheck(t *testing.T) {
	release := make(chan struct{})
	leaky := func() genserver.Server {
		go func() { <-release }() // outlives the engine
		return echoServer{}
	}
	r := &recorder{}
	testkit.Start(r, testkit.Options{Engines: []node.Engine{{Name: "leaky", Factory: leaky}}})
	r.cleanup()
	close(release)
	if len(r.failures) != 1 || !strings.Contains(r.failures[0], "found unexpected goroutines") {
		t.Fatalf("failures = %q, want one goroutine leak", r.failures)
	}
}
