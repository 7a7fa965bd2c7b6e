package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"strings"
	"unicode"

	"github.com/enginekit/enginekit/keyholder"
)

// passphraseEnv names the environment variable that holds the key file
// passphrase.
const passphraseEnv = "ENGINEKIT_PASSPHRASE"

// stringsFlag is a repeatable string flag.
type stringsFlag []string

func (s *stringsFlag) String() string     { return strings.Join(*s, ",") }
func (s *stringsFlag) Set(v string) error { *s = append(*s, v); return nil }

// passphraseSource is where a command gets the key file passphrase: the
// --passphrase-file flag, else $ENGINEKIT_PASSPHRASE, else a prompt when
// stdin is a terminal. Commands that open key files (keygen, keys, node)
// register it with addPassphraseFlag.
type passphraseSource struct {
	file string
}

// addPassphraseFlag adds --passphrase-file to fs.
func addPassphraseFlag(fs *flags) *passphraseSource {
	var ps passphraseSource
	fs.StringVar(&ps.file, "passphrase-file", "", "read the key file passphrase from the first line of this `file`\n(default: $"+passphraseEnv+", else a prompt when stdin is a terminal)")
	return &ps
}

// get returns the passphrase. confirm asks twice when prompting, for a new
// key file. The caller clears the result when done with it.
func (ps *passphraseSource) get(ctx context.Context, prompt io.Writer, confirm bool) ([]byte, error) {
	if ps.file != "" {
		data, err := os.ReadFile(ps.file)
		if err != nil {
			return nil, fmt.Errorf("reading passphrase: %w", err)
		}
		line := data
		if i := bytes.IndexByte(line, '\n'); i >= 0 {
			line = line[:i]
		}
		line = bytes.TrimSuffix(line, []byte("\r"))
		pass := bytes.Clone(line)
		clear(data)
		if len(pass) == 0 {
			return nil, fmt.Errorf("passphrase file %s starts with an empty line", ps.file)
		}
		return pass, nil
	}
	if v, ok := os.LookupEnv(passphraseEnv); ok {
		if v == "" {
			return nil, fmt.Errorf("$%s is set but empty", passphraseEnv)
		}
		return []byte(v), nil
	}
	if !isTerminal(os.Stdin) {
		return nil, fmt.Errorf("no passphrase: set $%s or pass --passphrase-file (stdin is not a terminal to prompt on)", passphraseEnv)
	}
	pass, err := promptPassphrase(ctx, os.Stdin, prompt, "Key file passphrase: ")
	if err != nil {
		return nil, err
	}
	if len(pass) == 0 {
		return nil, errors.New("empty passphrase")
	}
	if confirm {
		again, err := promptPassphrase(ctx, os.Stdin, prompt, "Repeat passphrase: ")
		if err != nil {
			clear(pass)
			return nil, err
		}
		same := bytes.Equal(pass, again)
		clear(again)
		if !same {
			clear(pass)
			return nil, errors.New("the passphrases do not match")
		}
	}
	return pass, nil
}

// openKeys loads the key file at path, with errors that say what to do.
func openKeys(ctx context.Context, path string, ps *passphraseSource, prompt io.Writer) (*keyholder.Keyholder, error) {
	// Fail on a missing file before asking for a passphrase.
	if _, err := os.Stat(path); errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("no key file at %s (create one with 'enginekit keygen --keys %s')", path, path)
	}
	pass, err := ps.get(ctx, prompt, false)
	if err != nil {
		return nil, err
	}
	defer clear(pass)
	kh, err := keyholder.Load(path, pass)
	switch {
	case err == nil:
		return kh, nil
	case errors.Is(err, keyholder.ErrWrongPassphrase):
		return nil, fmt.Errorf("wrong passphrase for key file %s", path)
	default:
		return nil, err // keyholder's errors name the file and what is wrong with it
	}
}

// --- keygen ------------------------------------------------------------------

func runKeygen(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("keygen", "keygen --keys PATH [--engine NAME]... [flags]\n\n"+
		"Creates a key file holding a new router key and a new identity for each\n"+
		"--engine, encrypted with a passphrase (argon2id, XChaCha20-Poly1305, mode\n"+
		"0600), and prints the router's and engines' addresses (never private keys).\n"+
		"The passphrase comes from --passphrase-file, else $"+passphraseEnv+", else\n"+
		"a prompt (asked twice) when stdin is a terminal. An existing file is kept\n"+
		"unless --force is given: replacing it loses its identities for good.", stdout)
	keys := fs.String("keys", "", "`path` of the key file to create (required)")
	var engines stringsFlag
	fs.Var(&engines, "engine", "create an engine identity called `name` (repeatable)")
	force := fs.Bool("force", false, "replace an existing key file")
	asJSON := fs.Bool("json", false, "print the identities as one JSON object")
	ps := addPassphraseFlag(fs)
	kdfMem := fs.Uint("kdf-memory-kib", 0, "argon2id memory in `KiB` (default 65536); lower it only for tests or low-memory\nmachines: a cheaper KDF makes a stolen file's passphrase easier to guess")
	kdfTime := fs.Uint("kdf-time", 0, "argon2id `passes` over memory (default 3); see --kdf-memory-kib")
	if err := parse(fs, args); err != nil {
		return err
	}
	if *keys == "" {
		return fmt.Errorf("%w: --keys is required", errUsage)
	}
	if *kdfMem > math.MaxUint32 || *kdfTime > math.MaxUint32 {
		return fmt.Errorf("%w: --kdf-memory-kib and --kdf-time must fit in 32 bits", errUsage)
	}
	kh, err := keyholder.New(keyholder.Config{})
	if err != nil {
		return err
	}
	defer kh.Close()
	for _, name := range engines {
		if _, err := kh.NewEngine(name); err != nil {
			return fmt.Errorf("%w: --engine: %v", errUsage, err)
		}
	}

	if _, err := os.Lstat(*keys); err == nil && !*force {
		return fmt.Errorf("%s already exists; pass --force to replace it (its identities are then lost)", *keys)
	} else if err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}

	pass, err := ps.get(ctx, stderr, true)
	if err != nil {
		return err
	}
	defer clear(pass)
	opts := keyholder.SaveOptions{KDF: keyholder.KDFParams{Time: uint32(*kdfTime), MemoryKiB: uint32(*kdfMem)}}
	if err := kh.SaveWith(*keys, pass, opts); err != nil {
		if errors.Is(err, keyholder.ErrBadKDFParams) {
			return fmt.Errorf("%w: %v", errUsage, err)
		}
		return err
	}
	fmt.Fprintf(stderr, "wrote key file %s\n", *keys)
	return printIdentities(stdout, *keys, keyholderAddresses(kh), *asJSON)
}

// --- keys --------------------------------------------------------------------

func runKeys(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("keys", "keys --keys PATH [--json]\n\n"+
		"Lists the identities in a key file: the router's address and each engine's\n"+
		"name and address, one per line (\"router ADDRESS\", \"engine ADDRESS NAME\").\n"+
		"The addresses are read from the file's address list, without the passphrase\n"+
		"(keyholder/keyfile.md); the private keys stay encrypted and are never printed.\n"+
		"The list is authenticated only when the keys are decrypted: a changed list is\n"+
		"caught by the next node that opens the file. A key file of the old format\n"+
		"(version 1) keeps its addresses encrypted: for it the passphrase comes from\n"+
		"--passphrase-file, else $"+passphraseEnv+", else a prompt when stdin is a terminal.", stdout)
	keys := fs.String("keys", "", "`path` of the key file (required)")
	asJSON := fs.Bool("json", false, "print one JSON object: {\"file\", \"router\", \"engines\": [{\"name\", \"address\"}]}")
	ps := addPassphraseFlag(fs)
	if err := parse(fs, args); err != nil {
		return err
	}
	if *keys == "" {
		return fmt.Errorf("%w: --keys is required", errUsage)
	}
	if _, err := os.Stat(*keys); errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("no key file at %s (create one with 'enginekit keygen --keys %s')", *keys, *keys)
	}
	addrs, err := keyholder.ReadAddresses(*keys)
	if errors.Is(err, keyholder.ErrNoAddressList) {
		fmt.Fprintf(stderr, "%s is a key file of the old format (version 1): its addresses need the passphrase\n", *keys)
		kh, err := openKeys(ctx, *keys, ps, stderr)
		if err != nil {
			return err
		}
		defer kh.Close()
		return printIdentities(stdout, *keys, keyholderAddresses(kh), *asJSON)
	}
	if err != nil {
		return err // keyholder's errors name the file and what is wrong with it
	}
	return printIdentities(stdout, *keys, addrs, *asJSON)
}

// keyholderAddresses lists the addresses of kh's keys.
func keyholderAddresses(kh *keyholder.Keyholder) keyholder.KeyFileAddresses {
	a := keyholder.KeyFileAddresses{Router: kh.Router()}
	for _, e := range kh.Engines() {
		a.Engines = append(a.Engines, keyholder.NamedAddress(e))
	}
	return a
}

type engineJSON struct {
	Name    string            `json:"name"`
	Address keyholder.Address `json:"address"`
}

// printIdentities prints the router and engine addresses of a key file.
// Only addresses and names reach it; it has no way to print more.
func printIdentities(w io.Writer, path string, a keyholder.KeyFileAddresses, asJSON bool) error {
	if asJSON {
		out := struct {
			File    string            `json:"file"`
			Router  keyholder.Address `json:"router"`
			Engines []engineJSON      `json:"engines"`
		}{File: path, Router: a.Router, Engines: make([]engineJSON, 0, len(a.Engines))}
		for _, e := range a.Engines {
			out.Engines = append(out.Engines, engineJSON(e))
		}
		return json.NewEncoder(w).Encode(out)
	}
	// Name last: names may hold spaces, addresses never do, so
	// `awk '{print $2}'` gives the addresses.
	fmt.Fprintf(w, "router %s\n", a.Router)
	for _, e := range a.Engines {
		fmt.Fprintf(w, "engine %s %s\n", e.Address, displayName(e.Name))
	}
	return nil
}

// displayName quotes engine names that would not read back as one word at
// the end of a line.
func displayName(name string) string {
	if name == "" || strings.HasPrefix(name, `"`) || strings.ContainsFunc(name, func(r rune) bool {
		return unicode.IsSpace(r) || !unicode.IsPrint(r)
	}) {
		return fmt.Sprintf("%q", name)
	}
	return name
}

// readLine reads up to a newline one byte at a time, so nothing after the
// line is consumed, and drops the newline.
func readLine(r io.Reader) ([]byte, error) {
	b := make([]byte, 0, 256) // no regrowth, so no stray copies, for any sane passphrase
	var c [1]byte
	for {
		n, err := r.Read(c[:])
		if n == 1 {
			if c[0] == '\n' {
				if len(b) > 0 && b[len(b)-1] == '\r' {
					b = b[:len(b)-1]
				}
				return b, nil
			}
			b = append(b, c[0])
		}
		if err == io.EOF && len(b) > 0 {
			return b, nil
		}
		if err != nil {
			return b, err
		}
	}
}
