package main

import (
	"context"
	"errors"
	"io"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/enginekit/enginekit/admin"
	"github.com/enginekit/enginekit/examples/echo"
	"github.com/enginekit/enginekit/genserver"
	"github.com/enginekit/enginekit/node"
)

// httpGet fetches url and returns the status code and body, leaving no
// idle connection behind.
func httpGet(t *testing.T, url string) (int, string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	must(t, err)
	req.Close = true
	resp, err := http.DefaultClient.Do(req)
	must(t, err)
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	must(t, err)
	return resp.StatusCode, string(body)
}

// The README's two-node session with --admin on both nodes, watched with
// ps, status, /metrics and /readyz.
func TestAdminTwoNodeSession(t *testing.T) {
	dir := t.TempDir()
	a := startNode(t, append(nodeArgs(t, dir, "a.keys"), "--name", "alice", "--listen", "tcp://127.0.0.1:0", "--accept", "any", "--admin", "127.0.0.1:0")...)
	b := startNode(t, append(nodeArgs(t, dir, "b.keys"), "--name", "bob", "--peer", a.listen[0]+"="+a.router, "--admin", "127.0.0.1:0")...)
	if !strings.HasPrefix(a.admin, "http://127.0.0.1:") || !strings.HasPrefix(b.admin, "http://127.0.0.1:") {
		t.Fatalf("admin lines: %q %q", a.admin, b.admin)
	}
	for _, e := range a.engines {
		b.stderr.waitFor(t, e) // bob logs each engine of alice's it learns
	}

	code, out, errOut := runCmd(t, "status", "--admin", b.admin)
	if code != 0 {
		t.Fatalf("status: exit %d: %s", code, errOut)
	}
	for _, want := range []string{"node bob", "connections 1", a.router + "  2 engines learned", "engines  one_for_one"} {
		if !strings.Contains(out, want) {
			t.Errorf("status of bob lacks %q:\n%s", want, out)
		}
	}
	code, out, errOut = runCmd(t, "ps", "--admin", a.admin, "--sort", "name")
	if code != 0 || !strings.Contains(out, "engines/echo") || !strings.Contains(out, "engines/kv") {
		t.Errorf("ps of alice: exit %d:\n%s%s", code, out, errOut)
	}

	if code, body := httpGet(t, b.admin+"/readyz"); code != 200 || body != "ready\n" {
		t.Errorf("bob /readyz = %d %q", code, body)
	}
	code, metrics := httpGet(t, a.admin+"/metrics")
	for _, want := range []string{
		`enginekit_connections 1`,
		`enginekit_process_mailbox_messages{process="engines/echo"} 0`,
		`enginekit_supervisor_children{state="running",supervisor="engines"} 2`,
		"go_goroutines ", // --admin exports the runtime's series too
	} {
		if code != 200 || !strings.Contains(metrics, want) {
			t.Errorf("alice /metrics lacks %q", want)
		}
	}
	for _, path := range []string{"/healthz", "/observe/", "/debug/pprof/"} {
		if code, _ := httpGet(t, a.admin+path); code != 200 {
			t.Errorf("alice %s = %d", path, code)
		}
	}
}

// A node whose peer is down is alive but not ready, and says which peer.
func TestAdminNotReady(t *testing.T) {
	dir := t.TempDir()
	peerRouter := newAddress(t)
	n := startNode(t, append(nodeArgs(t, dir, "c.keys"), "--peer", closedPort(t)+"="+peerRouter, "--allow-down-peers", "--admin", "127.0.0.1:0")...)
	if code, _ := httpGet(t, n.admin+"/healthz"); code != 200 {
		t.Errorf("/healthz = %d", code)
	}
	code, body := httpGet(t, n.admin+"/readyz")
	if code != http.StatusServiceUnavailable || !strings.Contains(body, "no connection to peer "+peerRouter) {
		t.Errorf("/readyz with the peer down = %d %q", code, body)
	}
}

func TestAdminFlags(t *testing.T) {
	dir := t.TempDir()
	code, _, errOut := runCmd(t, append([]string{"node", "--admin-public"}, nodeArgs(t, dir, "d.keys")...)...)
	if code != 2 || !strings.Contains(errOut, "--admin-public without --admin") {
		t.Errorf("--admin-public alone: exit %d, %q", code, errOut)
	}
	code, _, errOut = runCmd(t, append([]string{"node", "--admin", "0.0.0.0:0"}, nodeArgs(t, dir, "d.keys")...)...)
	if code != 2 || !strings.Contains(errOut, "--admin-public") {
		t.Errorf("--admin 0.0.0.0:0: exit %d, %q (want a pointer to --admin-public)", code, errOut)
	}
	oneLine(t, errOut)
}

// A node whose admin address is refused fails Start before anything runs.
func TestAdminNodeConfigRefused(t *testing.T) {
	var incarnations atomic.Int32
	_, err := node.Start(context.Background(), node.Config{
		Admin:   &admin.Config{Addr: "0.0.0.0:0"},
		Engines: []node.Engine{{Name: "echo", Factory: func() genserver.Server { incarnations.Add(1); return echo.New() }}},
	})
	if !errors.Is(err, node.ErrBadConfig) || !errors.Is(err, admin.ErrNotLoopback) || incarnations.Load() != 0 {
		t.Fatalf("node with admin on 0.0.0.0: %v, %d incarnations", err, incarnations.Load())
	}
}
