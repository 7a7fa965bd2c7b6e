package main

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/enginekit/enginekit/cluster"
	"github.com/enginekit/enginekit/keyholder"
)

func TestClusterInitAdmitShow(t *testing.T) {
	t.Setenv(passphraseEnv, testPass)
	dir := t.TempDir()
	keyPath := filepath.Join(dir, "cluster.key")
	gossip := filepath.Join(dir, "gossip.key")

	code, out, errOut := runCmd(t, append([]string{"cluster", "init", "--key", keyPath, "--gossip-key-out", gossip}, fastKDF...)...)
	if code != 0 {
		t.Fatalf("init exited %d: %s", code, errOut)
	}
	clusterText, ok := strings.CutPrefix(strings.TrimSpace(out), "cluster ")
	if !ok {
		t.Fatalf("init printed %q", out)
	}
	clusterAddr, err := keyholder.ParseAddress(clusterText)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{keyPath, gossip} {
		fi, err := os.Stat(p)
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode().Perm() != 0o600 {
			t.Errorf("%s has mode %v, want 0600", p, fi.Mode().Perm())
		}
	}
	if strings.Contains(out+errOut, testPass) {
		t.Error("init printed the passphrase")
	}
	// A second init refuses to replace the key.
	if code, _, errOut := runCmd(t, append([]string{"cluster", "init", "--key", keyPath}, fastKDF...)...); code != 1 || !strings.Contains(errOut, "--force") {
		t.Errorf("second init: exit %d, %q", code, errOut)
	}

	router := clusterTestRouter(t)
	certPath := filepath.Join(dir, "node.cert")
	code, out, errOut = runCmd(t, "cluster", "admit", "--key", keyPath, "--router", router.String(),
		"--name", "node-1", "--valid", "1h", "--out", certPath, "--json")
	if code != 0 {
		t.Fatalf("admit exited %d: %s", code, errOut)
	}
	var got certJSON
	if err := json.Unmarshal([]byte(out), &got); err != nil {
		t.Fatalf("admit printed %q: %v", out, err)
	}
	c, err := cluster.ReadCertFile(certPath)
	if err != nil {
		t.Fatal(err)
	}
	if c.Cluster != clusterAddr || c.Router != router || c.Node != "node-1" || got.ID != c.ID().String() {
		t.Fatalf("certificate %v, printed %+v", c, got)
	}
	if d := c.Expires.Sub(c.IssuedAt); d != time.Hour {
		t.Errorf("validity %v", d)
	}
	v, err := cluster.NewVerifier(cluster.VerifierConfig{Cluster: clusterAddr})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := v.Check(router, c.Bytes()); err != nil {
		t.Fatalf("issued certificate refused: %v", err)
	}
	// The gossip key written by init is the cluster's.
	a, err := cluster.LoadAuthority(keyPath, []byte(testPass))
	if err != nil {
		t.Fatal(err)
	}
	want, _ := a.GossipKey()
	a.Close()
	gk, err := cluster.ReadGossipKeyFile(gossip)
	if err != nil || string(gk) != string(want) {
		t.Fatalf("gossip key file: %x, %v; want %x", gk, err, want)
	}

	code, out, errOut = runCmd(t, "cluster", "show", "--cert", certPath)
	if code != 0 || !strings.Contains(out, "router "+router.String()) || !strings.Contains(out, "node node-1") {
		t.Fatalf("show: exit %d\n%s%s", code, out, errOut)
	}
}

func TestClusterErrors(t *testing.T) {
	t.Setenv(passphraseEnv, testPass)
	dir := t.TempDir()
	keyPath := filepath.Join(dir, "cluster.key")
	if code, _, errOut := runCmd(t, append([]string{"cluster", "init", "--key", keyPath}, fastKDF...)...); code != 0 {
		t.Fatal(errOut)
	}
	router := clusterTestRouter(t).String()
	out := filepath.Join(dir, "c.cert")
	cases := []struct {
		name string
		args []string
		code int
		want string
	}{
		{"no subcommand", []string{"cluster"}, 2, "missing subcommand"},
		{"unknown subcommand", []string{"cluster", "frob"}, 2, "unknown subcommand"},
		{"init without key", []string{"cluster", "init"}, 2, "--key is required"},
		{"admit without router", []string{"cluster", "admit", "--key", keyPath, "--name", "n", "--out", out}, 2, "--router is required"},
		{"bad router", []string{"cluster", "admit", "--key", keyPath, "--router", "ek1nope", "--name", "n", "--out", out}, 2, "--router"},
		{"bad name", []string{"cluster", "admit", "--key", keyPath, "--router", router, "--name", strings.Repeat("x", 65), "--out", out}, 2, "--name"},
		{"bad validity", []string{"cluster", "admit", "--key", keyPath, "--router", router, "--name", "n", "--valid", "-1h", "--out", out}, 2, "--valid"},
		{"missing key", []string{"cluster", "admit", "--key", filepath.Join(dir, "nope"), "--router", router, "--name", "n", "--out", out}, 1, "cluster init"},
		{"show missing", []string{"cluster", "show", "--cert", filepath.Join(dir, "nope")}, 1, "no such file"},
	}
	for _, c := range cases {
		code, _, errOut := runCmd(t, c.args...)
		if code != c.code || !strings.Contains(errOut, c.want) {
			t.Errorf("%s: exit %d, stderr %q; want exit %d mentioning %q", c.name, code, errOut, c.code, c.want)
		}
		if c.name != "no subcommand" {
			oneLine(t, errOut)
		}
	}

	// Wrong passphrase.
	t.Setenv(passphraseEnv, "wrong")
	code, _, errOut := runCmd(t, "cluster", "admit", "--key", keyPath, "--router", router, "--name", "n", "--out", out)
	if code != 1 || !strings.Contains(errOut, "wrong passphrase") {
		t.Errorf("wrong passphrase: exit %d, %q", code, errOut)
	}
	if _, err := os.Stat(out); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("a certificate was written despite the error: %v", err)
	}

	// A node's key file is not a cluster key.
	t.Setenv(passphraseEnv, testPass)
	nodeKeys := filepath.Join(dir, "node.keys")
	keygen(t, nodeKeys, "counter")
	code, _, errOut = runCmd(t, "cluster", "admit", "--key", nodeKeys, "--router", router, "--name", "n", "--out", out)
	if code != 1 || !strings.Contains(errOut, "node's key file") {
		t.Errorf("node key file as cluster key: exit %d, %q", code, errOut)
	}
}

func clusterTestRouter(t *testing.T) keyholder.Address {
	t.Helper()
	kh, err := keyholder.New(keyholder.Config{})
	if err != nil {
		t.Fatal(err)
	}
	defer kh.Close()
	return kh.Router()
}
