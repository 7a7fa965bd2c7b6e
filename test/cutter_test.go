package test

import (
	"path/filepath"
	"testing"

	"github.com/enginekit/enginekit/internal/relay"
)

// newCutter returns a relay in front of target (a "network://address"
// endpoint's parts) whose connections the test can cut, as a pulled cable
// would, while it keeps accepting so the dialer can reconnect.
func newCutter(t *testing.T, network, targetNetwork, target string) *relay.Relay {
	t.Helper()
	addr := "127.0.0.1:0"
	if network == "unix" {
		addr = filepath.Join(t.TempDir(), "cutter.sock")
	}
	r, err := relay.New(network, addr, targetNetwork, target)
	must(t, err)
	t.Cleanup(func() { _ = r.Close() })
	return r
}

func endpointOf(r *relay.Relay) string { return r.Addr().Network() + "://" + r.Addr().String() }
