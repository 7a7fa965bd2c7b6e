package testkit_test

import (
	"fmt"
	"os"
)

// Example runs testGreeter (example_test.go), the test of a user's engine
// across two nodes, outside go test: with exampleT, a minimal testkit.TB.
func Example() {
	t := &exampleT{}
	defer t.cleanup()
	testGreeter(t)
	fmt.Println("passed")
	// Output: passed
}

// exampleT is a minimal testkit.TB for Example, which has no *testing.T.
type exampleT struct {
	cleanups []func()
}

func (*exampleT) Helper()                           {}
func (t *exampleT) Cleanup(f func())                { t.cleanups = append(t.cleanups, f) }
func (*exampleT) Error(args ...any)                 { fmt.Println(args...) }
func (*exampleT) Errorf(format string, args ...any) { fmt.Printf(format+"\n", args...) }
func (*exampleT) Fatalf(format string, args ...any) { panic(fmt.Sprintf(format, args...)) }

func (t *exampleT) TempDir() string {
	dir, err := os.MkdirTemp("", "testkit-example")
	if err != nil {
		panic(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	return dir
}

// cleanup runs the cleanups, last registered first, as testing does.
func (t *exampleT) cleanup() {
	for i := len(t.cleanups) - 1; i >= 0; i-- {
		t.cleanups[i]()
	}
}
