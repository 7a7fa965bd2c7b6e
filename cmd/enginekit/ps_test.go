package main

import (
	"context"
	"encoding/json"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/enginekit/enginekit/admin"
	"github.com/enginekit/enginekit/genserver"
)

// psHeld is a server that stays in its first cast until released, so its
// mailbox holds what comes after.
type psHeld struct {
	entered chan struct{}
	release chan struct{}
}

func (h *psHeld) HandleCall(*genserver.Process, genserver.From, any) (any, error) { return nil, nil }
func (h *psHeld) HandleCast(*genserver.Process, any) {
	h.entered <- struct{}{}
	<-h.release
}

type psIdle struct{}

func (psIdle) HandleCall(*genserver.Process, genserver.From, any) (any, error) { return "ok", nil }
func (psIdle) HandleCast(*genserver.Process, any)                              {}

// psServer runs an admin server over a System with processes "held" (its
// mailbox holds 3), "busy" (handled 5) and "quiet".
func psServer(t *testing.T) string {
	t.Helper()
	ctx := context.Background()
	sys := genserver.NewSystem(genserver.Config{Name: "ps"})
	h := &psHeld{entered: make(chan struct{}, 8), release: make(chan struct{})}
	t.Cleanup(func() {
		close(h.release)
		sctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		defer cancel()
		if err := sys.Stop(sctx); err != nil {
			t.Error(err)
		}
	})
	spawn := func(name string, f func() genserver.Server) {
		if _, err := sys.Spawn(f, genserver.WithName(name)); err != nil {
			t.Fatal(err)
		}
	}
	spawn("held", func() genserver.Server { return h })
	spawn("busy", func() genserver.Server { return psIdle{} })
	spawn("quiet", func() genserver.Server { return psIdle{} })
	for i := range 5 {
		if _, err := sys.Call(ctx, genserver.Name("busy"), i); err != nil {
			t.Fatal(err)
		}
	}
	for i := range 4 {
		if err := sys.Cast(genserver.Name("held"), i); err != nil {
			t.Fatal(err)
		}
		if i == 0 {
			<-h.entered
		}
	}
	srv, err := admin.New(admin.Config{Addr: "127.0.0.1:0", Source: admin.Source{System: sys}, StateTimeout: 50 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Close() })
	return srv.URL()
}

// names returns the NAME column of a ps table, in order.
func psNames(out string) []string {
	var names []string
	for _, line := range strings.Split(strings.TrimSpace(out), "\n")[1:] {
		if strings.HasPrefix(line, "(") {
			continue
		}
		f := strings.Fields(line)
		names = append(names, f[len(f)-1])
	}
	return names
}

func TestPs(t *testing.T) {
	url := psServer(t)

	code, out, errOut := runCmd(t, "ps", "--admin", url)
	if code != 0 {
		t.Fatalf("ps exited %d: %s", code, errOut)
	}
	t.Logf("ps:\n%s", out)
	lines := strings.Split(out, "\n")
	if !strings.HasPrefix(lines[0], "PID") || !strings.Contains(lines[0], "MAILBOX") || !strings.Contains(lines[0], "HANDLED") {
		t.Errorf("header: %q", lines[0])
	}
	if f := strings.Fields(lines[1]); f[len(f)-1] != "held" || f[1] != "running" || f[2] != "3" {
		t.Errorf("first row %q: want held, running, mailbox 3", lines[1])
	}
	if !strings.Contains(out, "(3 processes of ps)") {
		t.Errorf("no count line:\n%s", out)
	}

	for sortBy, want := range map[string]string{
		"mailbox": "held busy quiet", // mailbox 3 first, then by handled
		"handled": "busy held quiet",
		"name":    "busy held quiet",
		"pid":     "held busy quiet",
	} {
		code, out, errOut := runCmd(t, "ps", "--admin", url, "--sort", sortBy)
		if got := strings.Join(psNames(out), " "); code != 0 || got != want {
			t.Errorf("ps --sort %s: exit %d, order %q, want %q\n%s%s", sortBy, code, got, want, out, errOut)
		}
	}

	code, out, _ = runCmd(t, "ps", "--admin", url, "--filter", "QUI")
	if got := strings.Join(psNames(out), " "); code != 0 || got != "quiet" || !strings.Contains(out, "(1 of 3 processes of ps)") {
		t.Errorf("ps --filter QUI: exit %d, %q:\n%s", code, got, out)
	}

	code, out, _ = runCmd(t, "ps", "--admin", strings.TrimPrefix(url, "http://"), "--json", "--sort", "handled", "--limit", "1")
	var doc admin.Processes
	if err := json.Unmarshal([]byte(out), &doc); code != 0 || err != nil {
		t.Fatalf("ps --json: exit %d, %v:\n%s", code, err, out)
	}
	if len(doc.Processes) != 1 || doc.Processes[0].Name != "busy" || doc.Processes[0].Handled != 5 || doc.System != "ps" {
		t.Errorf("ps --json --limit 1 = %+v", doc)
	}
}

func TestPsErrors(t *testing.T) {
	url := psServer(t)
	for _, args := range [][]string{
		{"ps"},
		{"ps", "--admin", url, "--sort", "size"},
		{"ps", "--admin", url, "--limit", "-1"},
		{"ps", "--admin", "ftp://x"},
		{"status"},
	} {
		code, _, errOut := runCmd(t, args...)
		if code != 2 {
			t.Errorf("%v: exit %d, want 2 (usage)", args, code)
		}
		oneLine(t, errOut)
	}
	// Nothing listening there.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	for _, cmd := range []string{"ps", "status"} {
		code, _, errOut := runCmd(t, cmd, "--admin", addr, "--timeout", "5s")
		if code != 1 || !strings.Contains(errOut, addr) {
			t.Errorf("%s against a closed port: exit %d, %q", cmd, code, errOut)
		}
		oneLine(t, errOut)
	}
}
