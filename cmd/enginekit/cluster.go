package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"os"
	"time"

	"github.com/enginekit/enginekit/cluster"
	"github.com/enginekit/enginekit/keyholder"
)

// clusterCommands are the subcommands of "enginekit cluster".
func clusterCommands() []command {
	return []command{
		{"init", "create a cluster key (encrypted at rest like key files)", runClusterInit},
		{"admit", "issue a membership certificate for a node's router", runClusterAdmit},
		{"show", "print a certificate file and check it", runClusterShow},
	}
}

func clusterUsage(w io.Writer) {
	fmt.Fprintln(w, "Usage: enginekit cluster <init|admit|show> [flags]")
	fmt.Fprintln(w)
	fmt.Fprintln(w, "A cluster key signs membership certificates for router keys; nodes holding a")
	fmt.Fprintln(w, "certificate admit each other without pinning every pair (docs/clusters.md).")
	fmt.Fprintln(w, "Only 'admit' needs the cluster key; running nodes never do.")
	fmt.Fprintln(w)
	fmt.Fprintln(w, "Subcommands:")
	for _, c := range clusterCommands() {
		fmt.Fprintf(w, "  %-6s %s\n", c.name, c.summary)
	}
	fmt.Fprintln(w)
	fmt.Fprintln(w, "Run 'enginekit cluster <subcommand> --help' for its flags.")
}

func runCluster(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		clusterUsage(stderr)
		return fmt.Errorf("%w: missing subcommand", errUsage)
	}
	switch args[0] {
	case "help", "-h", "--help", "-help":
		clusterUsage(stdout)
		return flag.ErrHelp
	}
	for _, c := range clusterCommands() {
		if c.name == args[0] {
			return c.run(ctx, args[1:], stdout, stderr)
		}
	}
	return fmt.Errorf("%w: unknown subcommand %q (want init, admit or show)", errUsage, args[0])
}

// kdfFlags are the argon2id flags of commands that write key files.
type kdfFlags struct{ mem, time *uint }

func addKDFFlags(fs *flags) kdfFlags {
	return kdfFlags{
		mem:  fs.Uint("kdf-memory-kib", 0, "argon2id memory in `KiB` (default 65536); lower it only for tests or low-memory\nmachines: a cheaper KDF makes a stolen file's passphrase easier to guess"),
		time: fs.Uint("kdf-time", 0, "argon2id `passes` over memory (default 3); see --kdf-memory-kib"),
	}
}

func (k kdfFlags) params() (keyholder.KDFParams, error) {
	if *k.mem > math.MaxUint32 || *k.time > math.MaxUint32 {
		return keyholder.KDFParams{}, fmt.Errorf("%w: --kdf-memory-kib and --kdf-time must fit in 32 bits", errUsage)
	}
	return keyholder.KDFParams{Time: uint32(*k.time), MemoryKiB: uint32(*k.mem)}, nil
}

// refuseExisting fails if path exists, unless force.
func refuseExisting(path string, force bool, what string) error {
	if _, err := os.Lstat(path); err == nil && !force {
		return fmt.Errorf("%s already exists; pass --force to replace it (%s)", path, what)
	} else if err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	return nil
}

// --- cluster init ------------------------------------------------------------

func runClusterInit(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("cluster init", "cluster init --key FILE [--gossip-key-out FILE] [flags]\n\n"+
		"Creates a new cluster key, encrypted with a passphrase exactly like key files\n"+
		"(argon2id, XChaCha20-Poly1305, mode 0600), and prints the cluster's identity\n"+
		"(its public key). Keep the file offline: whoever holds it and its passphrase\n"+
		"can admit nodes. With --gossip-key-out, also writes the cluster's gossip\n"+
		"encryption key, which every node needs (mode 0600). The passphrase comes from\n"+
		"--passphrase-file, else $"+passphraseEnv+", else a prompt (asked twice).", stdout)
	keyPath := fs.String("key", "", "`path` of the cluster key file to create (required)")
	gossipOut := fs.String("gossip-key-out", "", "also write the gossip key to this `file`")
	force := fs.Bool("force", false, "replace existing files (a replaced cluster key invalidates every certificate it issued)")
	asJSON := fs.Bool("json", false, "print {\"file\", \"cluster\"} as one JSON object")
	ps := addPassphraseFlag(fs)
	kdf := addKDFFlags(fs)
	if err := parse(fs, args); err != nil {
		return err
	}
	if *keyPath == "" {
		return fmt.Errorf("%w: --key is required", errUsage)
	}
	params, err := kdf.params()
	if err != nil {
		return err
	}
	if err := refuseExisting(*keyPath, *force, "every certificate it issued would become worthless"); err != nil {
		return err
	}
	if *gossipOut != "" {
		if err := refuseExisting(*gossipOut, *force, "it is the cluster's gossip key"); err != nil {
			return err
		}
	}
	a, err := cluster.NewAuthority(nil)
	if err != nil {
		return err
	}
	defer a.Close()
	pass, err := ps.get(ctx, stderr, true)
	if err != nil {
		return err
	}
	defer clear(pass)
	if err := a.Save(*keyPath, pass, params); err != nil {
		if errors.Is(err, keyholder.ErrBadKDFParams) {
			return fmt.Errorf("%w: %v", errUsage, err)
		}
		return err
	}
	fmt.Fprintf(stderr, "wrote cluster key %s\n", *keyPath)
	if *gossipOut != "" {
		if err := writeGossipKey(a, *gossipOut); err != nil {
			return err
		}
		fmt.Fprintf(stderr, "wrote gossip key %s\n", *gossipOut)
	}
	if *asJSON {
		return json.NewEncoder(stdout).Encode(struct {
			File    string            `json:"file"`
			Cluster keyholder.Address `json:"cluster"`
		}{*keyPath, a.Cluster()})
	}
	fmt.Fprintf(stdout, "cluster %s\n", a.Cluster())
	return nil
}

func writeGossipKey(a *cluster.Authority, path string) error {
	gk, err := a.GossipKey()
	if err != nil {
		return err
	}
	defer clear(gk)
	return cluster.WriteGossipKeyFile(path, gk)
}

// openAuthority loads a cluster key file, with errors that say what to do.
func openAuthority(ctx context.Context, path string, ps *passphraseSource, prompt io.Writer) (*cluster.Authority, error) {
	if _, err := os.Stat(path); errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("no cluster key at %s (create one with 'enginekit cluster init --key %s')", path, path)
	}
	pass, err := ps.get(ctx, prompt, false)
	if err != nil {
		return nil, err
	}
	defer clear(pass)
	a, err := cluster.LoadAuthority(path, pass)
	if errors.Is(err, keyholder.ErrWrongPassphrase) {
		return nil, fmt.Errorf("wrong passphrase for cluster key %s", path)
	}
	return a, err
}

// --- cluster admit -----------------------------------------------------------

// certJSON is a certificate as --json prints it.
type certJSON struct {
	File     string            `json:"file,omitempty"`
	ID       string            `json:"id"`
	Cluster  keyholder.Address `json:"cluster"`
	Router   keyholder.Address `json:"router"`
	Node     string            `json:"node"`
	IssuedAt time.Time         `json:"issued_at"`
	Expires  time.Time         `json:"expires"`
}

func printCert(w io.Writer, path string, c *cluster.Certificate, asJSON bool) error {
	if asJSON {
		return json.NewEncoder(w).Encode(certJSON{path, c.ID().String(), c.Cluster, c.Router, c.Node, c.IssuedAt, c.Expires})
	}
	fmt.Fprintf(w, "certificate %s\n", c.ID())
	fmt.Fprintf(w, "cluster %s\n", c.Cluster)
	fmt.Fprintf(w, "router %s\n", c.Router)
	fmt.Fprintf(w, "node %s\n", displayName(c.Node))
	fmt.Fprintf(w, "issued %s\n", c.IssuedAt.Format(time.RFC3339))
	fmt.Fprintf(w, "expires %s\n", c.Expires.Format(time.RFC3339))
	return nil
}

func runClusterAdmit(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("cluster admit", "cluster admit --key FILE --router ROUTER --name NAME --out CERT [flags]\n\n"+
		"Issues a membership certificate: the cluster key's signature that ROUTER (a\n"+
		"node's router address, as 'enginekit keys' prints it) belongs to the cluster\n"+
		"under NAME until the validity runs out. The certificate file holds the\n"+
		"certificate and the cluster's public key, nothing secret; give it to the node.\n"+
		"With --gossip-key-out, also writes the cluster's gossip key (mode 0600).\n"+
		"The passphrase comes from --passphrase-file, else $"+passphraseEnv+", else a\n"+
		"prompt.", stdout)
	keyPath := fs.String("key", "", "`path` of the cluster key file (required)")
	routerText := fs.String("router", "", "the node's router `address` (required)")
	name := fs.String("name", "", "the node's `name`, 1..64 bytes (required)")
	valid := fs.Duration("valid", 8760*time.Hour, "validity `period` from now (at most ten years)")
	out := fs.String("out", "", "write the certificate to this `file` (required)")
	gossipOut := fs.String("gossip-key-out", "", "also write the gossip key to this `file`")
	force := fs.Bool("force", false, "replace existing output files")
	asJSON := fs.Bool("json", false, "print the certificate as one JSON object")
	ps := addPassphraseFlag(fs)
	if err := parse(fs, args); err != nil {
		return err
	}
	switch {
	case *keyPath == "":
		return fmt.Errorf("%w: --key is required", errUsage)
	case *routerText == "":
		return fmt.Errorf("%w: --router is required", errUsage)
	case *name == "":
		return fmt.Errorf("%w: --name is required", errUsage)
	case *out == "":
		return fmt.Errorf("%w: --out is required", errUsage)
	}
	router, err := keyholder.ParseAddress(*routerText)
	if err != nil {
		return fmt.Errorf("%w: --router: %v", errUsage, err)
	}
	if *valid < time.Second || *valid > cluster.MaxValidity {
		return fmt.Errorf("%w: --valid %v not in 1s..%v", errUsage, *valid, cluster.MaxValidity)
	}
	if err := refuseExisting(*out, *force, "a certificate"); err != nil {
		return err
	}
	if *gossipOut != "" {
		if err := refuseExisting(*gossipOut, *force, "it is the cluster's gossip key"); err != nil {
			return err
		}
	}
	a, err := openAuthority(ctx, *keyPath, ps, stderr)
	if err != nil {
		return err
	}
	defer a.Close()
	c, err := a.Issue(router, *name, time.Now(), *valid)
	if err != nil {
		if errors.Is(err, cluster.ErrBadName) {
			return fmt.Errorf("%w: --name: %v", errUsage, err)
		}
		return err
	}
	if err := cluster.WriteCertFile(*out, c); err != nil {
		return err
	}
	fmt.Fprintf(stderr, "wrote certificate %s\n", *out)
	if *gossipOut != "" {
		if err := writeGossipKey(a, *gossipOut); err != nil {
			return err
		}
		fmt.Fprintf(stderr, "wrote gossip key %s\n", *gossipOut)
	}
	return printCert(stdout, *out, c, *asJSON)
}

// --- cluster show ------------------------------------------------------------

func runClusterShow(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("cluster show", "cluster show --cert FILE [--json]\n\n"+
		"Prints a certificate file's fields and checks its signature and validity\n"+
		"now; exits 1 if it is not valid now. Needs no passphrase.", stdout)
	certPath := fs.String("cert", "", "`path` of the certificate file (required)")
	asJSON := fs.Bool("json", false, "print the certificate as one JSON object")
	if err := parse(fs, args); err != nil {
		return err
	}
	if *certPath == "" {
		return fmt.Errorf("%w: --cert is required", errUsage)
	}
	c, err := cluster.ReadCertFile(*certPath)
	if err != nil {
		return err
	}
	if err := printCert(stdout, *certPath, c, *asJSON); err != nil {
		return err
	}
	return c.ValidAt(time.Now(), cluster.DefaultSkew)
}
