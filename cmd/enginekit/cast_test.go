package main

import (
	"context"
	"net/http"
	"testing"
	"time"

	"github.com/enginekit/enginekit/admin"
)

// Issue #14: a cast is acknowledged by a read-only call the node decodes
// (echo: count; ordering: stats), not by a request no node registers: the
// node counts no drop for it, and the cast is handled when cast returns.
func TestCastCountsNoDrop(t *testing.T) {
	dir := t.TempDir()
	n := startNode(t, append(nodeArgs(t, dir, "a.keys"), "--listen", "tcp://127.0.0.1:0", "--accept", "any",
		"--engines", "echo,ordering", "--admin", "127.0.0.1:0")...)
	ep := n.listen[0]
	if code, out, errOut := n.cmd(t, "cast", ep, "echo", "echo", "one"); code != 0 || out != "sent\n" {
		t.Fatalf("cast echo: exit %d, %q %q", code, out, errOut)
	}
	if code, out, errOut := n.cmd(t, "cast", ep, "ordering", "submit", "tx-1", "pay bob 5"); code != 0 || out != "sent\n" {
		t.Fatalf("cast submit: exit %d, %q %q", code, out, errOut)
	}
	if code, out, errOut := n.cmd(t, "call", ep, "echo", "count"); code != 0 || out != "1\n" {
		t.Fatalf("count: exit %d, %q %q", code, out, errOut)
	}
	ht := &http.Transport{}
	defer ht.CloseIdleConnections()
	c, err := admin.NewClient(n.admin, &http.Client{Transport: ht})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	st, err := c.Stats(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(st.Drops) == 0 {
		t.Fatalf("no drop counters in %+v", st)
	}
	for cause, n := range st.Drops {
		if n != 0 {
			t.Errorf("dropped_total{cause=%q} = %d after casts", cause, n)
		}
	}
}
