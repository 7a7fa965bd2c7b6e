package bench_test

import (
	"context"
	"fmt"
	"strings"

	"github.com/enginekit/enginekit/internal/bench"
)

// Measure one limit briefly; its value varies from run to run, its shape
// does not.
func Example() {
	var out strings.Builder
	err := bench.Run(context.Background(), bench.Options{Quick: true, Run: `^limit\.chan_rtt_us$`, JSON: true}, &out)
	fmt.Println(err, strings.HasPrefix(out.String(), `{"name":"limit.chan_rtt_us","value":`))
	// Output: <nil> true
}
