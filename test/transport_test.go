package test

import (
	"errors"
	"testing"

	"github.com/enginekit/enginekit/genserver"
)

// Two nodes learn each other's engines on connect; call, cast and send
// across them are the same code, with the same results and errors, as
// locally.
func TestCallCastSendAcrossNodes(t *testing.T) {
	eachSetup(t, func(t *testing.T, s setup) {
		a, b := newNode(t, "a", s), newNode(t, "b", s)
		ea := a.spawnEngine("alpha", nil)
		eb := b.spawnEngine("beta", nil)
		connect(t, a, b, s)
		a.waitLearn(eb)
		b.waitLearn(ea)
		ctx := ctxT(t)

		// The same helper code calls a local and a foreign engine.
		for _, target := range []struct {
			sys *genserver.System
			to  genserver.Dest
		}{{a.sys, dest(ea)}, {a.sys, dest(eb)}} {
			got, err := genserver.Call[Echo](ctx, target.sys, target.to, Echo{"hello"})
			if err != nil || got.Text != "hello" {
				t.Fatalf("call %v: %+v, %v", target.to, got, err)
			}
		}
		// Handler errors come back as errors.
		if _, err := a.sys.Call(ctx, dest(eb), "not registered on purpose"); err == nil {
			t.Fatal("a call with an unregistered type succeeded")
		}
		if _, err := a.sys.Call(ctx, dest(eb), Echo{}); err != nil {
			t.Fatal(err)
		}
		// The callee sees the caller's verified address: an engine calling
		// through its process, or the router for a plain goroutine.
		who, err := genserver.Call[string](ctx, a.sys, dest(eb), WhoCalls{})
		if err != nil || who != a.kh.Router().String() {
			t.Fatalf("WhoCalls from a goroutine = %q, %v; want the router %v", who, err, a.kh.Router())
		}
		// Casts and sends from one sender arrive in order, casts and infos interleaved.
		for i := 1; i <= 50; i++ {
			if i%2 == 0 {
				must(t, a.sys.Send(dest(eb), Note{i}))
			} else {
				must(t, a.sys.Cast(dest(eb), Note{i}))
			}
		}
		notes, err := genserver.Call[[]int](ctx, a.sys, dest(eb), Notes{})
		if err != nil || len(notes) != 50 {
			t.Fatalf("notes = %v, %v", notes, err)
		}
		for i, n := range notes {
			want := i + 1
			if want%2 == 0 {
				want = -want
			}
			if n != want {
				t.Fatalf("note %d = %d, want %d: order lost", i, n, want)
			}
		}
		// A name nobody has: the same error as locally.
		if _, err := a.sys.Call(ctx, genserver.Name("nobody"), Echo{}); !errors.Is(err, genserver.ErrNoProcess) {
			t.Fatalf("err = %v", err)
		}
		// A crash of the remote callee fails the call with an exit error.
		_, err = a.sys.Call(ctx, dest(eb), Crash{})
		var exit *genserver.ExitError
		if !errors.As(err, &exit) || !errors.Is(err, genserver.ErrExited) {
			t.Fatalf("call to a crashing engine: %v", err)
		}
	})
}
