package echo_test

import (
	"context"
	"fmt"

	"github.com/enginekit/enginekit/examples/echo"
	"github.com/enginekit/enginekit/genserver"
)

func Example() {
	ctx := context.Background()
	sys := genserver.NewSystem(genserver.Config{Name: "example"})
	defer sys.Stop(ctx)

	pid, err := sys.Spawn(echo.New, genserver.WithName("echo"))
	if err != nil {
		fmt.Println(err)
		return
	}
	reply, err := genserver.Call[echo.Echo](ctx, sys, pid, echo.Echo{Text: "hello"})
	fmt.Println(reply.Text, err)

	_ = sys.Cast(genserver.Name("echo"), echo.Echo{Text: "one"})
	_ = sys.Cast(genserver.Name("echo"), echo.Echo{Text: "two"})
	n, err := genserver.Call[int64](ctx, sys, pid, echo.Count{})
	fmt.Println("casts:", n, err)
	// Output:
	// hello <nil>
	// casts: 2 <nil>
}
