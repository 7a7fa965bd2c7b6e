package admin_test

import (
	"context"
	"fmt"
	"net/http"

	"github.com/enginekit/enginekit/admin"
	"github.com/enginekit/enginekit/genserver"
)

// An admin server on a loopback port the system picks, read with a Client
// as enginekit ps does.
func Example() {
	ctx := context.Background()
	sys := genserver.NewSystem(genserver.Config{Name: "demo"})
	defer sys.Stop(ctx)
	if _, err := sys.Spawn(func() genserver.Server { return &counter{n: 41} }, genserver.WithName("counter")); err != nil {
		fmt.Println(err)
		return
	}
	_ = sys.Cast(genserver.Name("counter"), 1)

	srv, err := admin.New(admin.Config{Addr: "127.0.0.1:0", Source: admin.Source{System: sys}})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer srv.Close()

	c, _ := admin.NewClient(srv.URL(), &http.Client{Transport: &http.Transport{DisableKeepAlives: true}})
	p, err := c.Process(ctx, "counter")
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(p.Name, "state:", p.State)

	_, err = admin.New(admin.Config{Addr: "0.0.0.0:9100"})
	fmt.Println(err != nil)
	// Output:
	// counter state: {
	//   "count": 42
	// }
	// true
}
