package cluster

import (
	"encoding/pem"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/enginekit/enginekit/keyholder"
)

func TestCertFile(t *testing.T) {
	a := fixedAuthority(t, 1)
	c, err := a.Issue(randRouter(t), "node-1", goldenTime, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "node.cert")
	if err := WriteCertFile(path, c); err != nil {
		t.Fatal(err)
	}
	got, err := ReadCertFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if got.ID() != c.ID() {
		t.Fatal("certificate changed on the way through the file")
	}
	data, _ := os.ReadFile(path)
	if !strings.Contains(string(data), "Router: "+c.Router.String()) {
		t.Errorf("file lacks the readable headers:\n%s", data)
	}

	bad := func(name, content string, want error) {
		t.Helper()
		p := filepath.Join(t.TempDir(), name)
		os.WriteFile(p, []byte(content), 0o644)
		if _, err := ReadCertFile(p); !errors.Is(err, want) {
			t.Errorf("%s: %v, want %v", name, err, want)
		}
	}
	bad("empty", "", ErrBadFile)
	bad("not pem", "hello\n", ErrBadFile)
	bad("other pem", "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n", ErrBadFile)
	bad("trailing", string(data)+"junk\n", ErrBadFile)
	// Flip one bit of the signature inside the PEM body.
	block, _ := pem.Decode(data)
	block.Bytes[len(block.Bytes)-1] ^= 1
	b := pem.EncodeToMemory(block)
	bad("forged", string(b), ErrBadSignature)
	if _, err := ReadCertFile(filepath.Join(t.TempDir(), "missing")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("missing: %v", err)
	}
}

func TestGossipKeyFile(t *testing.T) {
	a := fixedAuthority(t, 1)
	gk, _ := a.GossipKey()
	path := filepath.Join(t.TempDir(), "gossip.key")
	if err := WriteGossipKeyFile(path, gk); err != nil {
		t.Fatal(err)
	}
	if fi, _ := os.Stat(path); fi.Mode().Perm() != 0o600 {
		t.Fatalf("mode %v", fi.Mode().Perm())
	}
	got, err := ReadGossipKeyFile(path)
	if err != nil || string(got) != string(gk) {
		t.Fatalf("%x, %v", got, err)
	}
	os.Chmod(path, 0o644)
	if _, err := ReadGossipKeyFile(path); !errors.Is(err, ErrInsecureFile) {
		t.Fatalf("readable by others: %v", err)
	}
	os.Chmod(path, 0o600)
	os.WriteFile(path, []byte("zz\n"), 0o600)
	if _, err := ReadGossipKeyFile(path); !errors.Is(err, ErrBadFile) {
		t.Fatalf("not hex: %v", err)
	}
	os.WriteFile(path, []byte("00112233\n"), 0o600)
	if _, err := ReadGossipKeyFile(path); !errors.Is(err, ErrBadConfig) {
		t.Fatalf("short key: %v", err)
	}
	if err := WriteGossipKeyFile(path, []byte{1}); !errors.Is(err, ErrBadConfig) {
		t.Fatalf("writing a short key: %v", err)
	}
}

func TestAuthorityFile(t *testing.T) {
	a, err := NewAuthority(nil)
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	path := filepath.Join(t.TempDir(), "cluster.key")
	fast := keyholder.KDFParams{Time: 1, MemoryKiB: 64, Threads: 1}
	if err := a.Save(path, []byte("pass"), fast); err != nil {
		t.Fatal(err)
	}
	b, err := LoadAuthority(path, []byte("pass"))
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	if b.Cluster() != a.Cluster() {
		t.Fatal("a different key came back")
	}
	k1, _ := a.GossipKey()
	k2, _ := b.GossipKey()
	if string(k1) != string(k2) {
		t.Fatal("the gossip key is not a function of the cluster key")
	}
	if _, err := LoadAuthority(path, []byte("wrong")); !errors.Is(err, keyholder.ErrWrongPassphrase) {
		t.Fatalf("wrong passphrase: %v", err)
	}
	// A node's key file (with engines) is refused.
	kh, _ := keyholder.New(keyholder.Config{})
	defer kh.Close()
	kh.NewEngine("counter")
	nodePath := filepath.Join(t.TempDir(), "node.keys")
	if err := kh.SaveWith(nodePath, []byte("pass"), keyholder.SaveOptions{KDF: fast}); err != nil {
		t.Fatal(err)
	}
	if _, err := LoadAuthority(nodePath, []byte("pass")); !errors.Is(err, ErrBadFile) {
		t.Fatalf("node key file: %v", err)
	}
	// Closed authorities sign nothing.
	b.Close()
	if _, err := b.Issue(randRouter(t), "n", goldenTime, time.Hour); err == nil {
		t.Fatal("closed authority issued a certificate")
	}
}

func TestDenyListFile(t *testing.T) {
	r := randRouter(t)
	id := CertID{0xab, 0xcd, 0xef}
	d, err := ParseDenyList(strings.NewReader("# revoked\n\nrouter " + r.String() + "\ncert " + id.String() + "\n"))
	if err != nil {
		t.Fatal(err)
	}
	if d.Len() != 2 || !d.routers[r] || !d.certs[id] {
		t.Fatalf("parsed %+v", d)
	}
	for _, in := range []string{"router nope\n", "cert 12\n", "cert " + strings.ToUpper(id.String()) + "\n", "frob x\n", strings.Repeat("#", 5000) + "\n"} {
		if _, err := ParseDenyList(strings.NewReader(in)); !errors.Is(err, ErrBadFile) {
			t.Errorf("%.20q: %v", in, err)
		}
	}
	path := filepath.Join(t.TempDir(), "deny")
	os.WriteFile(path, []byte("router "+r.String()+"\n"), 0o644)
	if d, err := ReadDenyListFile(path); err != nil || d.Len() != 1 {
		t.Fatalf("%v %v", d, err)
	}
}
