package node

import (
	"slices"
	"testing"
)

// advertised offers the listen addresses other members can dial, TCP
// first, never a wildcard address.
func TestAdvertised(t *testing.T) {
	for _, tc := range []struct {
		listen, want []string
	}{
		{[]string{"unix:///run/a.sock", "tcp://127.0.0.1:7001"}, []string{"tcp://127.0.0.1:7001", "unix:///run/a.sock"}},
		{[]string{"tcp://0.0.0.0:7001", "tcp://[::]:7002", "tcp://10.0.0.1:7003"}, []string{"tcp://10.0.0.1:7003"}},
		{[]string{"tcp://0.0.0.0:7001"}, []string{}},
		{[]string{"tcp://127.0.0.1:1", "tcp://127.0.0.1:2", "tcp://127.0.0.1:3", "tcp://127.0.0.1:4", "tcp://127.0.0.1:5"},
			[]string{"tcp://127.0.0.1:1", "tcp://127.0.0.1:2", "tcp://127.0.0.1:3", "tcp://127.0.0.1:4"}},
	} {
		if got := advertised(tc.listen); !slices.Equal(got, tc.want) {
			t.Errorf("advertised(%q) = %q, want %q", tc.listen, got, tc.want)
		}
	}
}
