package main

import (
	"encoding/json"
	"strings"
	"testing"
)

// Issue #14 "Logs an operator can use": a one-shot `enginekit call` leaves
// no info line about its connection in the node's log (its up and down
// lines are debug), and the lines it does get name the remote endpoint.
func TestCallConnectionLogsAtDebug(t *testing.T) {
	dir := t.TempDir()
	n := startNode(t, append(nodeArgs(t, dir, "a.keys"),
		"--listen", "tcp://127.0.0.1:0", "--accept", "any", "--auth", "macs", "--log-level", "debug")...)
	code, out, errOut := n.cmd(t, "call", n.listen[0], "echo", "--auth", "macs", "echo", "hi")
	if code != 0 || out != "hi\n" {
		t.Fatalf("call: exit %d, %q, %q", code, out, errOut)
	}
	// The down line is the last the node writes about the connection.
	n.stderr.waitFor(t, `"event":"down"`)
	var remote string
	for _, line := range strings.Split(n.stderr.String(), "\n") {
		var l map[string]any
		if json.Unmarshal([]byte(line), &l) != nil {
			continue
		}
		if l["event"] == "up" || l["event"] == "down" {
			if l["level"] != "debug" || l["remote"] == "" || l["remote"] == nil {
				t.Errorf("one-shot client's connection line: %s", line)
			}
			remote, _ = l["remote"].(string)
		}
	}
	if remote == "" {
		t.Fatalf("no connection line:\n%s", n.stderr)
	}
	// Nothing at info or above names the client's connection, except the
	// transport's own lines (shown with --log-level debug only).
	for _, line := range strings.Split(n.stderr.String(), "\n") {
		var l map[string]any
		if json.Unmarshal([]byte(line), &l) != nil || l["level"] == "debug" || l["component"] == "transport" {
			continue
		}
		if strings.Contains(line, remote) {
			t.Errorf("info line about the client's connection: %s", line)
		}
	}
}

// A connection the node made (--peer) is logged at info, up and down,
// with the endpoint it dialled.
func TestPeerConnectionLogsAtInfo(t *testing.T) {
	dir := t.TempDir()
	a := startNode(t, append(nodeArgs(t, dir, "a.keys"),
		"--listen", "tcp://127.0.0.1:0", "--accept", "any", "--auth", "macs")...)
	b := startNode(t, append(nodeArgs(t, dir, "b.keys"), "--engines", "", "--auth", "macs",
		"--peer", a.listen[0]+"="+a.router)...)
	b.stderr.waitFor(t, `"event":"up"`)
	a.stop(t)
	b.stderr.waitFor(t, `"event":"down"`)
	for _, line := range strings.Split(b.stderr.String(), "\n") {
		if strings.Contains(line, `"event":"up"`) || strings.Contains(line, `"event":"down"`) {
			if !strings.Contains(line, `"level":"info"`) || !strings.Contains(line, `"remote":"`+a.listen[0]+`"`) {
				t.Errorf("peer connection line: %s", line)
			}
		}
	}
}
