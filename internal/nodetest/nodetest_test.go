package nodetest_test

import (
	"context"
	"fmt"
	"os"
	"testing"

	"github.com/enginekit/enginekit/genserver"
	"github.com/enginekit/enginekit/internal/nodetest"
	"github.com/enginekit/enginekit/netconn"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

type upper struct{}

func (upper) HandleCall(_ *genserver.Process, _ genserver.From, req any) (any, error) {
	return fmt.Sprintf("%s!", req), nil
}
func (upper) HandleCast(*genserver.Process, any) {}

func TestTwoNodes(t *testing.T) {
	for _, network := range []string{"tcp", "unix"} {
		t.Run(network, func(t *testing.T) {
			a, b := nodetest.New(t, "a", netconn.MACs), nodetest.New(t, "b", netconn.MACs)
			addr, _, err := b.Tr.SpawnEngine("upper", func() genserver.Server { return upper{} })
			if err != nil {
				t.Fatal(err)
			}
			nodetest.Connect(t, a, b, network)
			a.WaitLearn(t, addr)
			v, err := genserver.Call[string](context.Background(), a.Sys, genserver.Name(addr.String()), "hi")
			if err != nil || v != "hi!" {
				t.Fatalf("got %q, %v", v, err)
			}
		})
	}
}

// exampleTB is the testing.TB an Example can offer: failures panic and
// cleanups run when the example ends.
type exampleTB struct {
	testing.TB
	cleanups []func()
}

func (e *exampleTB) Helper()                        {}
func (e *exampleTB) Cleanup(f func())               { e.cleanups = append(e.cleanups, f) }
func (e *exampleTB) TempDir() string                { return os.TempDir() }
func (e *exampleTB) Fatal(args ...any)              { panic(fmt.Sprint(args...)) }
func (e *exampleTB) Fatalf(format string, a ...any) { panic(fmt.Sprintf(format, a...)) }
func (e *exampleTB) Error(args ...any)              { panic(fmt.Sprint(args...)) }
func (e *exampleTB) done() {
	for i := len(e.cleanups) - 1; i >= 0; i-- {
		e.cleanups[i]()
	}
}

// The shape of a two-node test: an engine on b, called from a.
func Example() {
	t := &exampleTB{} // in a test: the test's own t
	defer t.done()
	a, b := nodetest.New(t, "a", netconn.MACs), nodetest.New(t, "b", netconn.MACs)
	addr, _, _ := b.Tr.SpawnEngine("upper", func() genserver.Server { return upper{} })
	nodetest.Connect(t, a, b, "tcp")
	a.WaitLearn(t, addr)
	v, err := genserver.Call[string](context.Background(), a.Sys, genserver.Name(addr.String()), "hello")
	fmt.Println(v, err)
	// Output: hello! <nil>
}
