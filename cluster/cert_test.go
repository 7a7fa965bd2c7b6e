package cluster

import (
	"bytes"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/enginekit/enginekit/keyholder"
)

var update = flag.Bool("update", false, "rewrite the golden vectors in wire/testdata/cluster_*")

// seeded returns a reader that yields seed (repeated) for fixed-seed keys.
func seeded(b byte) *bytes.Reader { return bytes.NewReader(bytes.Repeat([]byte{b}, 32)) }

func fixedAuthority(t testing.TB, b byte) *Authority {
	t.Helper()
	a, err := NewAuthority(seeded(b))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { a.Close() })
	return a
}

func fixedRouter(t testing.TB, b byte) keyholder.Address {
	t.Helper()
	kh, err := keyholder.New(keyholder.Config{Rand: seeded(b)})
	if err != nil {
		t.Fatal(err)
	}
	defer kh.Close()
	return kh.Router()
}

func randRouter(t testing.TB) keyholder.Address {
	t.Helper()
	kh, err := keyholder.New(keyholder.Config{})
	if err != nil {
		t.Fatal(err)
	}
	defer kh.Close()
	return kh.Router()
}

var goldenTime = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

func TestIssueAndVerify(t *testing.T) {
	a := fixedAuthority(t, 1)
	router := randRouter(t)
	c, err := a.Issue(router, "node-1", goldenTime.Add(1500*time.Millisecond), 8760*time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	if c.Cluster != a.Cluster() || c.Router != router || c.Node != "node-1" {
		t.Fatalf("fields: %v", c)
	}
	if !c.IssuedAt.Equal(goldenTime.Add(time.Second)) || !c.Expires.Equal(c.IssuedAt.Add(8760*time.Hour)) {
		t.Fatalf("validity %v .. %v", c.IssuedAt, c.Expires)
	}
	if err := c.Verify(); err != nil {
		t.Fatal(err)
	}
	p, err := ParseCertificate(c.Bytes())
	if err != nil {
		t.Fatal(err)
	}
	if p.ID() != c.ID() || p.Router != router || !p.Expires.Equal(c.Expires) || p.Verify() != nil {
		t.Fatalf("round trip: %v vs %v", p, c)
	}
	if len(c.Bytes()) > MaxCertificateSize {
		t.Fatalf("%d bytes", len(c.Bytes()))
	}
	// The longest name gives the largest certificate, which the bound
	// documented on MaxCertificateSize must cover.
	big, err := a.Issue(router, strings.Repeat("é", MaxNodeName/2), goldenTime, MaxValidity)
	if err != nil {
		t.Fatal(err)
	}
	// 215 bytes with times that fit 32 bits (until 2106); 64-bit times
	// add 4 bytes each.
	if n := len(big.Bytes()); n != 215 {
		t.Fatalf("largest certificate is %d bytes; update the comment on MaxCertificateSize", n)
	}
}

func TestIssueRefuses(t *testing.T) {
	a := fixedAuthority(t, 1)
	r := randRouter(t)
	cases := []struct {
		router keyholder.Address
		name   string
		valid  time.Duration
		want   error
	}{
		{keyholder.Address{}, "n", time.Hour, ErrBadCertificate},
		{r, "", time.Hour, ErrBadName},
		{r, strings.Repeat("x", MaxNodeName+1), time.Hour, ErrBadName},
		{r, "a\nb", time.Hour, ErrBadName},
		{r, "\xff", time.Hour, ErrBadName},
		{r, "n", 0, ErrBadValidity},
		{r, "n", -time.Hour, ErrBadValidity},
		{r, "n", MaxValidity + time.Second, ErrBadValidity},
	}
	for _, c := range cases {
		if _, err := a.Issue(c.router, c.name, goldenTime, c.valid); !errors.Is(err, c.want) {
			t.Errorf("Issue(%q, %v): %v, want %v", c.name, c.valid, err, c.want)
		}
	}
}

func TestVerifier(t *testing.T) {
	a := fixedAuthority(t, 1)
	other := fixedAuthority(t, 9)
	router, stranger := randRouter(t), randRouter(t)
	now := goldenTime.Add(time.Hour)
	v, err := NewVerifier(VerifierConfig{Cluster: a.Cluster(), Now: func() time.Time { return now }})
	if err != nil {
		t.Fatal(err)
	}
	issue := func(a *Authority, r keyholder.Address, from time.Time, valid time.Duration) []byte {
		c, err := a.Issue(r, "n", from, valid)
		if err != nil {
			t.Fatal(err)
		}
		return c.Bytes()
	}
	good := issue(a, router, goldenTime, 24*time.Hour)
	forged := bytes.Clone(good)
	forged[len(forged)-1] ^= 1

	cases := []struct {
		name   string
		router keyholder.Address
		cred   []byte
		want   error
	}{
		{"valid", router, good, nil},
		{"empty", router, nil, ErrBadCertificate},
		{"garbage", router, []byte("hello"), ErrBadCertificate},
		{"foreign", router, issue(other, router, goldenTime, 24*time.Hour), ErrForeignCluster},
		{"forged", router, forged, ErrBadSignature},
		{"someone else's", stranger, good, ErrRouterMismatch},
		{"expired", router, issue(a, router, goldenTime.Add(-48*time.Hour), 24*time.Hour), ErrExpired},
		{"expires now", router, issue(a, router, goldenTime, time.Hour), ErrExpired},
		{"future", router, issue(a, router, now.Add(DefaultSkew+time.Minute), time.Hour), ErrNotYetValid},
		{"within skew", router, issue(a, router, now.Add(DefaultSkew-time.Minute), time.Hour), nil},
	}
	for _, c := range cases {
		_, err := v.Check(c.router, c.cred)
		if c.want == nil && err != nil || c.want != nil && !errors.Is(err, c.want) {
			t.Errorf("%s: %v, want %v", c.name, err, c.want)
		}
		if v.Admit(c.router, c.cred) != (c.want == nil) {
			t.Errorf("%s: Admit disagrees with Check", c.name)
		}
	}
	s := v.Stats()
	want := VerifierStats{Admitted: 4, Malformed: 4, Foreign: 2, BadSignature: 2, RouterMismatch: 2, Expired: 4, NotYetValid: 2}
	if s != want {
		t.Fatalf("stats %+v, want %+v", s, want)
	}

	// Deny by certificate ID, then by router; a new certificate for the
	// router denied by ID is admitted again.
	c, _ := ParseCertificate(good)
	v.SetDenyList(NewDenyList(nil, []CertID{c.ID()}))
	if _, err := v.Check(router, good); !errors.Is(err, ErrDenied) {
		t.Fatalf("denied cert: %v", err)
	}
	if !v.Admit(router, issue(a, router, goldenTime, 48*time.Hour)) {
		t.Fatal("a fresh certificate was refused")
	}
	v.SetDenyList(NewDenyList([]keyholder.Address{router}, nil))
	if v.Admit(router, issue(a, router, goldenTime, 48*time.Hour)) {
		t.Fatal("denied router admitted")
	}
	if got := v.Stats().Denied; got != 2 {
		t.Fatalf("denied %d", got)
	}
	if _, err := NewVerifier(VerifierConfig{}); !errors.Is(err, ErrBadConfig) {
		t.Fatalf("no cluster: %v", err)
	}
}

func TestParseRefusesNonCanonical(t *testing.T) {
	a := fixedAuthority(t, 1)
	c, err := a.Issue(fixedRouter(t, 2), "node-1", goldenTime, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	raw := c.Bytes()
	// Re-encode the outer array with a needlessly long tbs length (0x59).
	tbs := c.tbs
	long := []byte{0x82, 0x59, byte(len(tbs) >> 8), byte(len(tbs))}
	long = append(long, tbs...)
	long = append(long, raw[len(raw)-66:]...)
	if _, err := ParseCertificate(long); !errors.Is(err, ErrBadCertificate) {
		t.Fatalf("long length accepted: %v", err)
	}
	// Trailing bytes.
	if _, err := ParseCertificate(append(bytes.Clone(raw), 0)); !errors.Is(err, ErrBadCertificate) {
		t.Fatalf("trailing byte accepted: %v", err)
	}
	// Every truncation.
	for i := range raw {
		if _, err := ParseCertificate(raw[:i]); !errors.Is(err, ErrBadCertificate) {
			t.Fatalf("truncated to %d accepted: %v", i, err)
		}
	}
	if _, err := ParseCertificate(make([]byte, MaxCertificateSize+1)); !errors.Is(err, ErrBadCertificate) {
		t.Fatalf("oversize: %v", err)
	}
}

// golden is one vector file: "key: value" lines, '#' comments.
type golden map[string]string

func readGolden(t *testing.T, path string) golden {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	g := golden{}
	for _, line := range strings.Split(string(data), "\n") {
		if line == "" || line[0] == '#' {
			continue
		}
		k, v, ok := strings.Cut(line, ": ")
		if !ok {
			t.Fatalf("%s: bad line %q", path, line)
		}
		g[k] = v
	}
	return g
}

const goldenDir = "../wire/testdata"

// TestGoldenCertificate pins the certificate of wire/spec.md's section
// "Cluster membership certificates" to wire/testdata/cluster_cert.txt:
// fixed-seed keys must give exactly these bytes, and the bytes must parse
// and verify.
func TestGoldenCertificate(t *testing.T) {
	a := fixedAuthority(t, 0x01)
	router := fixedRouter(t, 0x02)
	c, err := a.Issue(router, "node-1", goldenTime, 8760*time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	gk, err := a.GossipKey()
	if err != nil {
		t.Fatal(err)
	}
	meta, err := encodeMeta(Meta{Certificate: c.Bytes(), Endpoints: []string{"tcp://127.0.0.1:7001"}, Incarnation: uint64(goldenTime.UnixNano())})
	if err != nil {
		t.Fatal(err)
	}
	lines := []string{
		"# Golden vector for wire/spec.md, \"Cluster membership certificates\".",
		"# Checked by TestGoldenCertificate in cluster/; regenerate with go test ./cluster -run Golden -update.",
		"# Keys: ed25519 (RFC 8032) from 32-byte seeds.",
		"cluster-seed: " + strings.Repeat("01", 32),
		"router-seed: " + strings.Repeat("02", 32),
		"cluster: " + hex.EncodeToString(c.Cluster[:]),
		"cluster-text: " + c.Cluster.String(),
		"router: " + hex.EncodeToString(c.Router[:]),
		"router-text: " + c.Router.String(),
		"node: " + c.Node,
		fmt.Sprintf("issued-at: %d", c.IssuedAt.Unix()),
		fmt.Sprintf("expires: %d", c.Expires.Unix()),
		"tbs: " + hex.EncodeToString(c.tbs),
		"signed-message: " + hex.EncodeToString(signedMessage(c.tbs)),
		"signature: " + hex.EncodeToString(c.sig),
		"certificate: " + hex.EncodeToString(c.Bytes()),
		"id: " + c.ID().String(),
		"gossip-key: " + hex.EncodeToString(gk),
		"# Gossip metadata of a member with this certificate, one endpoint and incarnation issued-at × 10⁹.",
		"meta-endpoint: tcp://127.0.0.1:7001",
		fmt.Sprintf("meta-incarnation: %d", goldenTime.UnixNano()),
		"meta: " + hex.EncodeToString(meta),
	}
	path := filepath.Join(goldenDir, "cluster_cert.txt")
	if *update {
		if err := os.WriteFile(path, []byte(strings.Join(lines, "\n")+"\n"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	g := readGolden(t, path)
	for _, l := range lines {
		if l[0] == '#' {
			continue
		}
		k, v, _ := strings.Cut(l, ": ")
		if g[k] != v {
			t.Errorf("%s:\n got %s\nwant %s", k, v, g[k])
		}
	}
	raw, err := hex.DecodeString(g["certificate"])
	if err != nil {
		t.Fatal(err)
	}
	p, err := ParseCertificate(raw)
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Verify(); err != nil {
		t.Fatal(err)
	}
	v, _ := NewVerifier(VerifierConfig{Cluster: p.Cluster, Now: func() time.Time { return goldenTime }})
	if _, err := v.Check(router, raw); err != nil {
		t.Fatal(err)
	}
	rawMeta, _ := hex.DecodeString(g["meta"])
	m, err := decodeMeta(rawMeta)
	if err != nil || !bytes.Equal(m.Certificate, raw) || m.Endpoints[0] != g["meta-endpoint"] || fmt.Sprint(m.Incarnation) != g["meta-incarnation"] {
		t.Fatalf("golden meta: %+v, %v", m, err)
	}
}

// TestGoldenRefused pins wire/testdata/cluster_cert_refused.txt: encodings
// a receiver must refuse, each with the reason, checked against the golden
// certificate's cluster and router at its issue time.
func TestGoldenRefused(t *testing.T) {
	a := fixedAuthority(t, 0x01)
	router := fixedRouter(t, 0x02)
	good, err := a.Issue(router, "node-1", goldenTime, 8760*time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	other := fixedAuthority(t, 0x03)
	foreign, _ := other.Issue(router, "node-1", goldenTime, 8760*time.Hour)
	expired, _ := a.Issue(router, "node-1", goldenTime.Add(-2*time.Hour), time.Hour)
	strange, _ := a.Issue(fixedRouter(t, 0x04), "node-1", goldenTime, time.Hour)
	forged := bytes.Clone(good.Bytes())
	forged[len(forged)-64] ^= 0x80

	// Hand-built signed parts, signed by the golden cluster key, that break
	// one rule each.
	signBad := func(tbs []byte) []byte {
		sig, err := a.kh.Sign(a.Cluster(), signedMessage(tbs))
		if err != nil {
			t.Fatal(err)
		}
		raw, err := certEnc.Marshal(wireCert{TBS: tbs, Sig: sig})
		if err != nil {
			t.Fatal(err)
		}
		return raw
	}
	tbsWith := func(mod func(*wireTBS)) []byte {
		w := wireTBS{Version: 1, Cluster: good.Cluster[:], Router: good.Router[:], Node: "node-1",
			IssuedAt: good.IssuedAt.Unix(), Expires: good.Expires.Unix()}
		mod(&w)
		b, err := certEnc.Marshal(w)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	type vec struct {
		reason string
		want   error
		raw    []byte
	}
	vecs := []vec{
		{"foreign-cluster", ErrForeignCluster, foreign.Bytes()},
		{"bad-signature", ErrBadSignature, forged},
		{"other-router", ErrRouterMismatch, strange.Bytes()},
		{"expired", ErrExpired, expired.Bytes()},
		{"version-2", ErrBadCertificate, signBad(tbsWith(func(w *wireTBS) { w.Version = 2 }))},
		{"short-router", ErrBadCertificate, signBad(tbsWith(func(w *wireTBS) { w.Router = w.Router[:31] }))},
		{"empty-node", ErrBadCertificate, signBad(tbsWith(func(w *wireTBS) { w.Node = "" }))},
		{"expires-before-issue", ErrBadCertificate, signBad(tbsWith(func(w *wireTBS) { w.Expires = w.IssuedAt }))},
		{"trailing-byte", ErrBadCertificate, append(bytes.Clone(good.Bytes()), 0x00)},
	}
	path := filepath.Join(goldenDir, "cluster_cert_refused.txt")
	if *update {
		var b strings.Builder
		b.WriteString("# Certificates a receiver must refuse, as \"reason: hex\"; the trusted cluster and the\n")
		b.WriteString("# presenting router are those of cluster_cert.txt, the time is its issued-at.\n")
		b.WriteString("# Checked by TestGoldenRefused in cluster/.\n")
		for _, v := range vecs {
			fmt.Fprintf(&b, "%s: %s\n", v.reason, hex.EncodeToString(v.raw))
		}
		if err := os.WriteFile(path, []byte(b.String()), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	g := readGolden(t, path)
	if len(g) != len(vecs) {
		t.Fatalf("%s has %d vectors, want %d", path, len(g), len(vecs))
	}
	ver, _ := NewVerifier(VerifierConfig{Cluster: a.Cluster(), Now: func() time.Time { return goldenTime }})
	for _, v := range vecs {
		raw, err := hex.DecodeString(g[v.reason])
		if err != nil || !bytes.Equal(raw, v.raw) {
			t.Errorf("%s: file differs from the generated vector", v.reason)
			continue
		}
		if _, err := ver.Check(router, raw); !errors.Is(err, v.want) {
			t.Errorf("%s: %v, want %v", v.reason, err, v.want)
		}
	}
}

func FuzzParseCertificate(f *testing.F) {
	a, err := NewAuthority(seeded(1))
	if err != nil {
		f.Fatal(err)
	}
	defer a.Close()
	kh, _ := keyholder.New(keyholder.Config{Rand: seeded(2)})
	router := kh.Router()
	kh.Close()
	c, err := a.Issue(router, "node-1", goldenTime, time.Hour)
	if err != nil {
		f.Fatal(err)
	}
	f.Add(c.Bytes())
	f.Add([]byte{0x82, 0x40, 0x40})
	f.Add([]byte{0x9f, 0xff})
	meta, _ := encodeMeta(Meta{Certificate: c.Bytes(), Endpoints: []string{"tcp://127.0.0.1:1"}})
	f.Add(meta)
	v, _ := NewVerifier(VerifierConfig{Cluster: a.Cluster(), Now: func() time.Time { return goldenTime }})
	f.Fuzz(func(t *testing.T, data []byte) {
		p, err := ParseCertificate(data)
		if err == nil {
			// Whatever parses re-encodes to the same bytes.
			if !bytes.Equal(p.Bytes(), data) {
				t.Fatal("parsed certificate does not round-trip")
			}
			_ = p.Verify()
		}
		_, _ = v.Check(router, data)
		if m, err := decodeMeta(data); err == nil {
			if again, err := encodeMeta(m); err != nil || !bytes.Equal(again, data) {
				t.Fatal("meta does not round-trip")
			}
		}
	})
}
