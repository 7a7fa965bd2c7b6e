package echo_test

import (
	"context"
	"errors"
	"testing"

	"github.com/enginekit/enginekit/examples/echo"
	"github.com/enginekit/enginekit/genserver"
	"github.com/enginekit/enginekit/payload"
)

func TestCallCastCount(t *testing.T) {
	ctx := context.Background()
	sys := genserver.NewSystem(genserver.Config{Name: "echo"})
	defer sys.Stop(ctx)
	pid, err := sys.Spawn(echo.New)
	if err != nil {
		t.Fatal(err)
	}

	got, err := genserver.Call[echo.Echo](ctx, sys, pid, echo.Echo{Text: "hello"})
	if err != nil || got.Text != "hello" {
		t.Fatalf("Echo call = %+v, %v", got, err)
	}
	// Calls are not counted; casts are, and a later call from the same
	// sender sees them all (one sender's messages arrive in order).
	for range 3 {
		if err := sys.Cast(pid, echo.Echo{Text: "x"}); err != nil {
			t.Fatal(err)
		}
	}
	_ = sys.Cast(pid, "not an Echo: ignored")
	n, err := genserver.Call[int64](ctx, sys, pid, echo.Count{})
	if err != nil || n != 3 {
		t.Fatalf("Count = %d, %v; want 3", n, err)
	}
	if _, err := sys.Call(ctx, pid, 42); !errors.Is(err, echo.ErrUnknownRequest) {
		t.Fatalf("unknown request: %v", err)
	}
	// A fresh incarnation counts from zero.
	pid2, err := sys.Spawn(echo.New)
	if err != nil {
		t.Fatal(err)
	}
	if n, err := genserver.Call[int64](ctx, sys, pid2, echo.Count{}); err != nil || n != 0 {
		t.Fatalf("Count of a new engine = %d, %v", n, err)
	}
}

func TestRegister(t *testing.T) {
	reg, err := payload.NewRegistry(payload.Limits{})
	if err != nil {
		t.Fatal(err)
	}
	if err := echo.Register(reg); err != nil {
		t.Fatal(err)
	}
	for _, v := range []any{echo.Echo{Text: "round trip"}, echo.Count{}} {
		b, err := reg.Marshal(v)
		if err != nil {
			t.Fatal(err)
		}
		back, err := reg.Unmarshal(b)
		if err != nil || back != v {
			t.Fatalf("%#v came back as %#v, %v", v, back, err)
		}
	}
	if err := echo.Register(reg); !errors.Is(err, payload.ErrDuplicateName) {
		t.Fatalf("registering twice: %v", err)
	}
}
