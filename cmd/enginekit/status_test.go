package main

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/enginekit/enginekit/admin"
	"github.com/enginekit/enginekit/examples/echo"
	"github.com/enginekit/enginekit/internal/nodetest"
	"github.com/enginekit/enginekit/netconn"
	"github.com/enginekit/enginekit/supervisor"
)

func TestStatus(t *testing.T) {
	a := nodetest.New(t, "alice", netconn.MACs, echo.Register)
	b := nodetest.New(t, "bob", netconn.MACs, echo.Register)
	engine, _, err := b.Tr.SpawnEngine("echo", echo.New)
	if err != nil {
		t.Fatal(err)
	}
	nodetest.Connect(t, a, b, "tcp")
	a.WaitLearn(t, engine)
	srv, err := admin.New(admin.Config{Addr: "127.0.0.1:0", Source: admin.Source{
		System: a.Sys, Supervisors: []*supervisor.Supervisor{a.Node.Supervisor()}, Transport: a.Tr,
	}})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()

	code, out, errOut := runCmd(t, "status", "--admin", srv.URL())
	if code != 0 {
		t.Fatalf("status exited %d: %s", code, errOut)
	}
	for _, want := range []string{
		"node alice, router " + a.Keys.Router().String(),
		"processes ",
		"supervisors (0 restarts)",
		"connections 1",
		"FRAMES IN",
		"tcp://127.0.0.1:",
		"macs",
		"peers 1",
		b.Keys.Router().String() + "  1 engine learned: " + shortAddr(engine.String()),
		"transport  conn_downs 0, delivered 0",
		"drops 0",
		"at 0: netconn_auth ",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("status lacks %q:\n%s", want, out)
		}
	}

	if strings.Contains(out, "\nmembers ") {
		t.Errorf("status of a node outside a cluster shows members:\n%s", out)
	}
	t.Logf("status:\n%s", out)
	code, out, _ = runCmd(t, "status", "--admin", srv.URL(), "--json")
	var doc statusDoc
	if err := json.Unmarshal([]byte(out), &doc); code != 0 || err != nil {
		t.Fatalf("status --json: exit %d, %v", code, err)
	}
	if len(doc.Connections.Connections) != 1 || len(doc.Connections.Peers) != 1 || doc.Connections.Peers[0].Engines[0] != engine.String() ||
		doc.Stats.System != "alice" || len(doc.Tree.Trees) != 1 || doc.Members.Cluster || doc.Members.Members == nil {
		t.Errorf("status --json = %+v", doc)
	}
}
