package admin_test

import (
	"context"
	"fmt"
	"net/http"

	"github.com/enginekit/enginekit/admin"
	"github.com/enginekit/enginekit/genserver"
	"github.com/prometheus/client_golang/prometheus"
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

// A program with its own Prometheus registry registers the node's series
// there instead of running the admin server.
func ExampleNewCollector() {
	ctx := context.Background()
	sys := genserver.NewSystem(genserver.Config{Name: "embedded"})
	defer sys.Stop(ctx)
	_, _ = sys.Spawn(func() genserver.Server { return &counter{} }, genserver.WithName("counter"))

	reg := prometheus.NewRegistry()
	reg.MustRegister(admin.NewCollector(admin.Source{System: sys}, 0))
	families, err := reg.Gather()
	if err != nil {
		fmt.Println(err)
		return
	}
	for _, f := range families {
		if f.GetName() == "enginekit_process_mailbox_messages" {
			m := f.GetMetric()[0]
			fmt.Println(f.GetName(), m.GetLabel()[0].GetValue(), m.GetGauge().GetValue())
		}
	}
	// Output: enginekit_process_mailbox_messages counter 0
}
