// Package echo is the smallest useful engine: it answers an Echo call with
// the same Echo, and counts the Echo casts it receives. It is what
// `enginekit node --engines echo` runs, to try calls and casts between
// nodes.
//
//	pid, _ := sys.Spawn(echo.New, genserver.WithName("echo"))
//	e, _ := genserver.Call[echo.Echo](ctx, sys, pid, echo.Echo{Text: "hi"}) // Echo{"hi"}
//	_ = sys.Cast(pid, echo.Echo{Text: "counted"})
//	n, _ := genserver.Call[int64](ctx, sys, pid, echo.Count{})             // 1
package echo
