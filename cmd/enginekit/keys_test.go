package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/enginekit/enginekit/keyholder"
)

const testPass = "correct horse battery staple"

// fastKDF makes argon2id cheap so the tests run fast.
var fastKDF = []string{"--kdf-memory-kib", "64", "--kdf-time", "1"}

// keygen creates a key file at path with the given engines, using the
// passphrase in $ENGINEKIT_PASSPHRASE, and returns what it printed.
func keygen(t *testing.T, path string, engines ...string) string {
	t.Helper()
	args := append([]string{"keygen", "--keys", path}, fastKDF...)
	for _, e := range engines {
		args = append(args, "--engine", e)
	}
	code, out, errOut := runCmd(t, args...)
	if code != 0 {
		t.Fatalf("keygen exited %d: %s", code, errOut)
	}
	return out
}

// identityLine is all that keygen and keys may print: names and addresses.
var identityLine = regexp.MustCompile(`^(router ek1[a-z2-7]{52}|engine ek1[a-z2-7]{52} [^\s"]+|engine ek1[a-z2-7]{52} ".*")$`)

func checkIdentityLines(t *testing.T, out string, wantLines int) {
	t.Helper()
	lines := strings.Split(strings.TrimSuffix(out, "\n"), "\n")
	if len(lines) != wantLines {
		t.Errorf("got %d lines, want %d:\n%s", len(lines), wantLines, out)
	}
	for _, l := range lines {
		if !identityLine.MatchString(l) {
			t.Errorf("line %q is not a router or engine identity", l)
		}
	}
}

func TestKeygenAndKeys(t *testing.T) {
	t.Setenv(passphraseEnv, testPass)
	path := filepath.Join(t.TempDir(), "node.keys")
	out := keygen(t, path, "counter", "vault", "two words")
	checkIdentityLines(t, out, 4)
	if strings.Contains(out, testPass) {
		t.Error("keygen printed the passphrase")
	}

	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("key file mode %v, want 0600", fi.Mode().Perm())
	}

	// What was printed is what the file holds.
	kh, err := keyholder.Load(path, []byte(testPass))
	if err != nil {
		t.Fatal(err)
	}
	defer kh.Close()
	want := fmt.Sprintf("router %s\n", kh.Router())
	for _, e := range kh.Engines() {
		want += fmt.Sprintf("engine %s %s\n", e.Address, displayName(e.Name))
	}
	if out != want {
		t.Errorf("keygen printed\n%s\nthe file holds\n%s", out, want)
	}
	if !strings.Contains(out, ` "two words"`+"\n") {
		t.Errorf("a name with a space is not quoted:\n%s", out)
	}

	code, listed, errOut := runCmd(t, "keys", "--keys", path)
	if code != 0 || errOut != "" {
		t.Fatalf("keys: exit %d, stderr %q", code, errOut)
	}
	if listed != want {
		t.Errorf("keys printed\n%s\nwant\n%s", listed, want)
	}
}

func TestKeysJSON(t *testing.T) {
	t.Setenv(passphraseEnv, testPass)
	path := filepath.Join(t.TempDir(), "node.keys")
	keygen(t, path, "counter", "vault")

	code, out, errOut := runCmd(t, "keys", "--keys", path, "--json")
	if code != 0 {
		t.Fatalf("keys --json: exit %d, stderr %q", code, errOut)
	}
	// Decode strictly: any field beyond names and addresses is an error.
	var got struct {
		File    string
		Router  keyholder.Address
		Engines []struct {
			Name    string
			Address keyholder.Address
		}
	}
	dec := json.NewDecoder(strings.NewReader(out))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&got); err != nil {
		t.Fatalf("decoding %s: %v", out, err)
	}
	if dec.More() {
		t.Errorf("more than one JSON value: %s", out)
	}

	kh, err := keyholder.Load(path, []byte(testPass))
	if err != nil {
		t.Fatal(err)
	}
	defer kh.Close()
	if got.File != path || got.Router != kh.Router() || len(got.Engines) != 2 {
		t.Fatalf("got %+v, want file %s, router %v and 2 engines", got, path, kh.Router())
	}
	for i, e := range kh.Engines() {
		if got.Engines[i].Name != e.Name || got.Engines[i].Address != e.Address {
			t.Errorf("engine %d: got %+v, want %+v", i, got.Engines[i], e)
		}
	}

	// keygen --json prints the same object.
	path2 := filepath.Join(t.TempDir(), "empty.keys")
	code, out, _ = runCmd(t, append([]string{"keygen", "--keys", path2, "--json"}, fastKDF...)...)
	if code != 0 || !strings.Contains(out, `"engines":[]`) {
		t.Errorf("keygen --json with no engines: exit %d, %s", code, out)
	}
}

func TestKeygenRefusesToOverwrite(t *testing.T) {
	t.Setenv(passphraseEnv, testPass)
	path := filepath.Join(t.TempDir(), "node.keys")
	first := keygen(t, path, "counter")
	before, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}

	code, out, errOut := runCmd(t, append([]string{"keygen", "--keys", path, "--engine", "other"}, fastKDF...)...)
	if code != 1 || out != "" {
		t.Errorf("exit %d, stdout %q; want 1 and nothing", code, out)
	}
	oneLine(t, errOut)
	if !strings.Contains(errOut, "already exists") || !strings.Contains(errOut, "--force") {
		t.Errorf("stderr does not say why or what to do: %q", errOut)
	}
	if after, _ := os.ReadFile(path); !bytes.Equal(after, before) {
		t.Error("the key file changed")
	}

	code, out, errOut = runCmd(t, append([]string{"keygen", "--keys", path, "--force", "--engine", "other"}, fastKDF...)...)
	if code != 0 {
		t.Fatalf("--force: exit %d, stderr %q", code, errOut)
	}
	if strings.Split(out, "\n")[0] == strings.Split(first, "\n")[0] {
		t.Error("--force kept the old router key")
	}
	code, listed, _ := runCmd(t, "keys", "--keys", path)
	if code != 0 || listed != out {
		t.Errorf("after --force, keys printed %q, want %q", listed, out)
	}
}

func TestPassphraseFile(t *testing.T) {
	t.Setenv(passphraseEnv, "not the one in the file")
	dir := t.TempDir()
	path := filepath.Join(dir, "node.keys")
	passFile := filepath.Join(dir, "pass")
	if err := os.WriteFile(passFile, []byte(testPass+"\r\nsecond line is ignored\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	code, _, errOut := runCmd(t, append([]string{"keygen", "--keys", path, "--passphrase-file", passFile}, fastKDF...)...)
	if code != 0 {
		t.Fatalf("keygen: exit %d, stderr %q", code, errOut)
	}
	// The file's first line, without its line ending, is the passphrase.
	kh, err := keyholder.Load(path, []byte(testPass))
	if err != nil {
		t.Fatal(err)
	}
	kh.Close()
	if code, _, errOut := runCmd(t, "keys", "--keys", path, "--passphrase-file", passFile); code != 0 {
		t.Errorf("keys: exit %d, stderr %q", code, errOut)
	}

	empty := filepath.Join(dir, "empty")
	if err := os.WriteFile(empty, []byte("\nsecret\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	code, _, errOut = runCmd(t, append([]string{"keygen", "--keys", filepath.Join(dir, "other.keys"), "--passphrase-file", empty}, fastKDF...)...)
	if code != 1 || !strings.Contains(errOut, "empty") {
		t.Errorf("empty first line: exit %d, stderr %q", code, errOut)
	}
	oneLine(t, errOut)
}

// keys lists the addresses of a key file without its passphrase.
func TestKeysWithoutPassphrase(t *testing.T) {
	t.Setenv(passphraseEnv, testPass)
	path := filepath.Join(t.TempDir(), "node.keys")
	want := keygen(t, path, "counter")

	t.Setenv(passphraseEnv, "wrong")
	code, out, errOut := runCmd(t, "keys", "--keys", path)
	if code != 0 || out != want || errOut != "" {
		t.Errorf("exit %d, stdout %q, stderr %q; want 0 and %q", code, out, errOut, want)
	}
}

// A key file of the old format (version 1, keyholder/testdata) still lists,
// with its passphrase, and a wrong one is an error that names the file.
func TestKeysVersion1File(t *testing.T) {
	data, err := os.ReadFile("../../keyholder/testdata/keyfile-v1.keys")
	if err != nil {
		t.Fatal(err)
	}
	want, err := os.ReadFile("../../keyholder/testdata/keyfile-v1.addresses")
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "old.keys")
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv(passphraseEnv, "correct horse battery staple")
	code, out, errOut := runCmd(t, "keys", "--keys", path)
	if code != 0 || out != string(want) || !strings.Contains(errOut, "old format") {
		t.Errorf("exit %d, stdout %q, stderr %q; want 0 and %q", code, out, errOut, want)
	}

	t.Setenv(passphraseEnv, "wrong")
	code, out, errOut = runCmd(t, "keys", "--keys", path)
	if code != 1 || out != "" {
		t.Errorf("exit %d, stdout %q; want 1 and nothing", code, out)
	}
	oneLine(t, lastLine(errOut))
	if !strings.Contains(errOut, "wrong passphrase") || !strings.Contains(errOut, path) {
		t.Errorf("stderr %q does not name the problem and the file", errOut)
	}
}

func TestKeysBadFile(t *testing.T) {
	t.Setenv(passphraseEnv, testPass)
	dir := t.TempDir()
	good := filepath.Join(dir, "good.keys")
	keygen(t, good, "counter")
	data, err := os.ReadFile(good)
	if err != nil {
		t.Fatal(err)
	}
	write := func(name string, data []byte, mode os.FileMode) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, data, mode); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(p, mode); err != nil { // past the umask
			t.Fatal(err)
		}
		return p
	}
	flipped := bytes.Clone(data)
	flipped[100] ^= 1 // the first byte of the address list

	for _, tc := range []struct {
		name, path, want string
	}{
		{"missing", filepath.Join(dir, "nothing-here"), "enginekit keygen"},
		{"directory", dir, "not a regular file"},
		{"not a key file", write("garbage", []byte("this is not a key file\n"), 0o600), "corrupt key file"},
		{"empty", write("empty", nil, 0o600), "corrupt key file"},
		{"truncated", write("truncated", data[:len(data)/2], 0o600), "corrupt key file"},
		{"damaged", write("damaged", flipped, 0o600), "corrupt key file"},
		{"readable by others", write("open", data, 0o644), "chmod 600"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, out, errOut := runCmd(t, "keys", "--keys", tc.path)
			if code != 1 || out != "" {
				t.Errorf("exit %d, stdout %q; want 1 and nothing", code, out)
			}
			oneLine(t, errOut)
			if !strings.Contains(errOut, tc.want) {
				t.Errorf("stderr %q lacks %q", errOut, tc.want)
			}
		})
	}
}

func TestNoPassphrase(t *testing.T) {
	if isTerminal(os.Stdin) {
		t.Skip("stdin is a terminal: the commands would prompt")
	}
	t.Setenv(passphraseEnv, "")
	os.Unsetenv(passphraseEnv) // t.Setenv restores it afterwards
	path := filepath.Join(t.TempDir(), "node.keys")
	code, out, errOut := runCmd(t, append([]string{"keygen", "--keys", path}, fastKDF...)...)
	if code != 1 || out != "" {
		t.Errorf("exit %d, stdout %q; want 1 and nothing", code, out)
	}
	oneLine(t, errOut)
	if !strings.Contains(errOut, passphraseEnv) || !strings.Contains(errOut, "--passphrase-file") {
		t.Errorf("stderr %q does not say where a passphrase comes from", errOut)
	}
	if _, err := os.Stat(path); !os.IsNotExist(err) {
		t.Errorf("a key file was written: %v", err)
	}

	t.Setenv(passphraseEnv, "")
	code, _, errOut = runCmd(t, append([]string{"keygen", "--keys", path}, fastKDF...)...)
	if code != 1 || !strings.Contains(errOut, "empty") {
		t.Errorf("empty $%s: exit %d, stderr %q", passphraseEnv, code, errOut)
	}
}

func TestReadLine(t *testing.T) {
	for in, want := range map[string]string{
		"secret\nrest": "secret",
		"secret\r\n":   "secret",
		"secret":       "secret",
		"\n":           "",
	} {
		r := strings.NewReader(in)
		got, err := readLine(r)
		if err != nil || string(got) != want {
			t.Errorf("readLine(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	if _, err := readLine(strings.NewReader("")); err != io.EOF {
		t.Errorf("readLine of nothing: %v, want EOF", err)
	}
}

// A key file for a node with two engines; the passphrase comes from a file
// here, usually from $ENGINEKIT_PASSPHRASE.
func Example_keygen() {
	dir, _ := os.MkdirTemp("", "enginekit-example-")
	defer os.RemoveAll(dir)
	passFile := filepath.Join(dir, "passphrase")
	_ = os.WriteFile(passFile, []byte("correct horse battery staple\n"), 0o600)

	var out bytes.Buffer
	run(context.Background(), []string{"keygen",
		"--keys", filepath.Join(dir, "node.keys"),
		"--engine", "counter", "--engine", "vault",
		"--passphrase-file", passFile,
		"--kdf-memory-kib", "64", "--kdf-time", "1", // for a fast example; leave out in earnest
	}, &out, io.Discard)

	// Addresses are random; show their shape.
	addr := regexp.MustCompile(`ek1[a-z2-7]{52}`)
	fmt.Print(addr.ReplaceAllString(out.String(), "ek1…"))
	// Output:
	// router ek1…
	// engine ek1… counter
	// engine ek1… vault
}
