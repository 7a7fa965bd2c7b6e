package cluster

import (
	"bufio"
	"bytes"
	"encoding/hex"
	"encoding/pem"
	"fmt"
	"github.com/enginekit/enginekit/internal/atomicfile"
	"io"
	"os"
	"runtime"
	"strings"
	"time"

	"github.com/enginekit/enginekit/keyholder"
)

// certPEMType is the PEM block type of a certificate file.
const certPEMType = "ENGINEKIT CLUSTER CERTIFICATE"

// maxSmallFile bounds certificate and gossip key files.
const maxSmallFile = 64 << 10

// MaxDenyListFile bounds a deny list file (about 15,000 entries).
const MaxDenyListFile = 1 << 20

// WriteCertFile writes c to path as one PEM block of type "ENGINEKIT CLUSTER
// CERTIFICATE" whose body is the certificate's encoding; headers repeat its
// fields for people (they are not read back). The file holds nothing secret:
// the certificate and, inside it, the cluster's public key. Mode 0644,
// written atomically.
func WriteCertFile(path string, c *Certificate) error {
	if err := c.Verify(); err != nil {
		return err
	}
	block := &pem.Block{
		Type: certPEMType,
		Headers: map[string]string{
			"Cluster": c.Cluster.String(),
			"Router":  c.Router.String(),
			"Node":    fmt.Sprintf("%q", c.Node),
			"Issued":  c.IssuedAt.Format(time.RFC3339),
			"Expires": c.Expires.Format(time.RFC3339),
			"ID":      c.ID().String(),
		},
		Bytes: c.Bytes(),
	}
	return writeFile(path, pem.EncodeToMemory(block), 0o644)
}

// ReadCertFile reads a certificate file written by WriteCertFile and checks
// the certificate's form and its signature under the cluster key it names.
// A node trusts that cluster key: it admits peers whose certificates it
// signed. Time is not checked here (Verifier does, on every use).
func ReadCertFile(path string) (*Certificate, error) {
	data, err := readSmall(path, maxSmallFile)
	if err != nil {
		return nil, err
	}
	block, rest := pem.Decode(data)
	if block == nil || block.Type != certPEMType {
		return nil, fmt.Errorf("%w: %s holds no %q PEM block", ErrBadFile, path, certPEMType)
	}
	if len(bytes.TrimSpace(rest)) != 0 {
		return nil, fmt.Errorf("%w: %s: data after the certificate", ErrBadFile, path)
	}
	c, err := ParseCertificate(block.Bytes)
	if err != nil {
		return nil, fmt.Errorf("%w (%s)", err, path)
	}
	if err := c.Verify(); err != nil {
		return nil, fmt.Errorf("%w (%s)", err, path)
	}
	return c, nil
}

// WriteGossipKeyFile writes the gossip key to path as one line of hex, mode
// 0600, atomically.
func WriteGossipKeyFile(path string, key []byte) error {
	if err := checkGossipKey(key); err != nil {
		return err
	}
	return writeFile(path, []byte(hex.EncodeToString(key)+"\n"), 0o600)
}

// ReadGossipKeyFile reads a gossip key file. Like key files, it is refused
// (ErrInsecureFile) if the group or others may access it.
func ReadGossipKeyFile(path string) ([]byte, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("cluster: %w", err)
	}
	if perm := fi.Mode().Perm(); perm&0o077 != 0 && runtime.GOOS != "windows" && runtime.GOOS != "plan9" {
		return nil, fmt.Errorf("%w: %s has mode %04o", ErrInsecureFile, path, perm)
	}
	data, err := readSmall(path, maxSmallFile)
	if err != nil {
		return nil, err
	}
	defer clear(data)
	line := bytes.TrimSpace(data)
	key := make([]byte, hex.DecodedLen(len(line)))
	if _, err := hex.Decode(key, line); err != nil {
		return nil, fmt.Errorf("%w: %s is not one line of hex", ErrBadFile, path)
	}
	if err := checkGossipKey(key); err != nil {
		return nil, fmt.Errorf("%w (%s)", err, path)
	}
	return key, nil
}

func checkGossipKey(key []byte) error {
	switch len(key) {
	case 16, 24, 32:
		return nil
	}
	return fmt.Errorf("%w: gossip key of %d bytes (want 16, 24 or 32)", ErrBadConfig, len(key))
}

// DenyList revokes certificates: those it names by ID, and every
// certificate of the routers it names. The zero DenyList denies nothing. A
// DenyList is immutable once in use; to change one, make a new one and
// Verifier.SetDenyList it.
type DenyList struct {
	routers map[keyholder.Address]bool
	certs   map[CertID]bool
}

// NewDenyList returns a deny list of the given routers and certificates.
func NewDenyList(routers []keyholder.Address, certs []CertID) *DenyList {
	d := &DenyList{routers: make(map[keyholder.Address]bool), certs: make(map[CertID]bool)}
	for _, r := range routers {
		d.routers[r] = true
	}
	for _, c := range certs {
		d.certs[c] = true
	}
	return d
}

// Denies reports whether d revokes c.
func (d *DenyList) Denies(c *Certificate) bool {
	return d != nil && (d.routers[c.Router] || d.certs[c.ID()])
}

// Len is the number of entries.
func (d *DenyList) Len() int {
	if d == nil {
		return 0
	}
	return len(d.routers) + len(d.certs)
}

// ParseDenyList reads a deny list: one entry a line, "router ADDRESS" or
// "cert ID" (64 hex digits, as Certificate.ID prints), blank lines and lines
// starting with '#' ignored. At most MaxDenyListFile bytes are read.
func ParseDenyList(r io.Reader) (*DenyList, error) {
	d := NewDenyList(nil, nil)
	sc := bufio.NewScanner(io.LimitReader(r, MaxDenyListFile+1))
	sc.Buffer(make([]byte, 0, 256), 4096)
	n, total := 0, 0
	for sc.Scan() {
		n++
		total += len(sc.Bytes()) + 1
		if total > MaxDenyListFile {
			return nil, fmt.Errorf("%w: deny list longer than %d bytes", ErrBadFile, MaxDenyListFile)
		}
		line := strings.TrimSpace(sc.Text())
		if line == "" || line[0] == '#' {
			continue
		}
		kind, val, _ := strings.Cut(line, " ")
		val = strings.TrimSpace(val)
		switch kind {
		case "router":
			a, err := keyholder.ParseAddress(val)
			if err != nil {
				return nil, fmt.Errorf("%w: deny list line %d: %v", ErrBadFile, n, err)
			}
			d.routers[a] = true
		case "cert":
			id, err := ParseCertID(val)
			if err != nil {
				return nil, fmt.Errorf("deny list line %d: %w", n, err)
			}
			d.certs[id] = true
		default:
			return nil, fmt.Errorf("%w: deny list line %d: want \"router ADDRESS\" or \"cert ID\", got %q", ErrBadFile, n, short(line))
		}
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("%w: deny list: %v", ErrBadFile, err)
	}
	return d, nil
}

// ReadDenyListFile reads a deny list file (see ParseDenyList).
func ReadDenyListFile(path string) (*DenyList, error) {
	data, err := readSmall(path, MaxDenyListFile)
	if err != nil {
		return nil, err
	}
	d, err := ParseDenyList(bytes.NewReader(data))
	if err != nil {
		return nil, fmt.Errorf("%w (%s)", err, path)
	}
	return d, nil
}

// readSmall reads a regular file of at most limit bytes.
func readSmall(path string, limit int64) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("cluster: %w", err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("cluster: %w", err)
	}
	if !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("%w: %s is not a regular file", ErrBadFile, path)
	}
	data, err := io.ReadAll(io.LimitReader(f, limit+1))
	if err != nil {
		return nil, fmt.Errorf("cluster: reading %s: %w", path, err)
	}
	if int64(len(data)) > limit {
		return nil, fmt.Errorf("%w: %s is larger than %d bytes", ErrBadFile, path, limit)
	}
	return data, nil
}

// writeFile replaces path with data atomically (as keyholder writes key
// files), naming the file in its error.
func writeFile(path string, data []byte, mode os.FileMode) error {
	if err := atomicfile.Write(path, data, mode); err != nil {
		return fmt.Errorf("cluster: writing %s: %w", path, err)
	}
	return nil
}
