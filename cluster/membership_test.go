package cluster

import (
	"context"
	"errors"
	"fmt"
	"net"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/enginekit/enginekit/keyholder"
	"github.com/hashicorp/memberlist"
	"github.com/rs/zerolog"
)

// fastGossip tunes memberlist for loopback tests: failures are detected
// in a fraction of a second instead of seconds.
func fastGossip(c *memberlist.Config) {
	c.TCPTimeout = time.Second
	// Lax probes: under -race on a loaded machine tight ones make members
	// flap. Leaving is announced, so no test waits for failure detection.
	c.ProbeInterval = 500 * time.Millisecond
	c.ProbeTimeout = 250 * time.Millisecond
	c.GossipInterval = 20 * time.Millisecond
	c.PushPullInterval = time.Second
	c.SuspicionMult = 4
	c.RetransmitMult = 2
	c.GossipToTheDeadTime = time.Second
	c.IndirectChecks = 1
}

// testCluster is an authority and the gossip key, shared by the members of
// one test.
type testCluster struct {
	t      *testing.T
	auth   *Authority
	gossip []byte
}

func newTestCluster(t *testing.T, seed byte) *testCluster {
	a := fixedAuthority(t, seed)
	gk, err := a.GossipKey()
	if err != nil {
		t.Fatal(err)
	}
	return &testCluster{t: t, auth: a, gossip: gk}
}

// testMember is one running Membership.
type testMember struct {
	t      *testing.T
	router keyholder.Address
	cert   *Certificate
	m      *Membership
	cancel context.CancelFunc
	done   chan error
}

type memberOpt func(*Config)

func withSeeds(seeds ...string) memberOpt {
	return func(c *Config) { c.Discovery = Static(seeds) }
}

// start runs a member whose certificate is cert (a fresh one when nil).
func (tc *testCluster) start(name string, cert *Certificate, opts ...memberOpt) *testMember {
	t := tc.t
	t.Helper()
	if cert == nil {
		var err error
		cert, err = tc.auth.Issue(randRouter(t), name, time.Now(), time.Hour)
		if err != nil {
			t.Fatal(err)
		}
	}
	cfg := Config{
		Certificate:  cert,
		GossipKey:    tc.gossip,
		Endpoints:    []string{"tcp://127.0.0.1:1" + name[len(name)-1:]},
		BindAddr:     "127.0.0.1",
		JoinInterval: 50 * time.Millisecond,
		Tune:         fastGossip,
	}
	for _, o := range opts {
		o(&cfg)
	}
	m, err := NewMembership(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return runMember(t, cert, m)
}

func runMember(t *testing.T, cert *Certificate, m *Membership) *testMember {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	tm := &testMember{t: t, router: cert.Router, cert: cert, m: m, cancel: cancel, done: make(chan error, 1)}
	ready := make(chan struct{})
	go func() { tm.done <- m.ServeReady(ctx, func() { close(ready) }) }()
	select {
	case <-ready:
	case err := <-tm.done:
		t.Fatalf("membership did not start: %v", err)
	}
	t.Cleanup(tm.stop)
	return tm
}

// stop leaves the cluster and waits for the membership to end.
func (tm *testMember) stop() {
	tm.cancel()
	if err := <-tm.done; err != nil {
		tm.t.Errorf("membership: %v", err)
	}
	tm.done <- nil // let a second stop return
}

// routers lists the routers a member sees, sorted.
func routersOf(ms []Member) []keyholder.Address {
	var out []keyholder.Address
	for _, m := range ms {
		out = append(out, m.Router)
	}
	slices.SortFunc(out, func(a, b keyholder.Address) int { return strings.Compare(a.String(), b.String()) })
	return out
}

// eventually polls cond on a ticker until it holds or 15 s pass. Gossip
// converges by its own timers; there is no single event to wait on.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.NewTimer(15 * time.Second)
	defer deadline.Stop()
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for !cond() {
		select {
		case <-deadline.C:
			t.Fatalf("timed out waiting for %s", what)
		case <-tick.C:
		}
	}
}

// seesExactly reports whether every member in ms sees exactly want.
func seesExactly(ms []*testMember, want []keyholder.Address) bool {
	slices.SortFunc(want, func(a, b keyholder.Address) int { return strings.Compare(a.String(), b.String()) })
	for _, m := range ms {
		if !slices.Equal(routersOf(m.m.Members()), want) {
			return false
		}
	}
	return true
}

func TestFiveMembersJoinLeaveRestart(t *testing.T) {
	tc := newTestCluster(t, 1)
	seed := tc.start("node-0", nil)
	members := []*testMember{seed}
	for i := 1; i < 5; i++ {
		members = append(members, tc.start(fmt.Sprintf("node-%d", i), nil, withSeeds(seed.m.Addr())))
	}
	all := func(ms []*testMember) []keyholder.Address {
		var out []keyholder.Address
		for _, m := range ms {
			out = append(out, m.router)
		}
		return out
	}
	eventually(t, "five members to see each other", func() bool { return seesExactly(members, all(members)) })
	for _, mem := range members[1].m.Members() {
		if len(mem.Endpoints) != 1 || mem.Certificate == nil || mem.Node == "" || mem.Gossip == "" {
			t.Fatalf("member %+v lacks fields", mem)
		}
	}

	// node-4 leaves for good.
	members[4].stop()
	rest := members[:4]
	eventually(t, "the others to see node-4 gone", func() bool { return seesExactly(rest, all(rest)) })

	// node-3 restarts under a new gossip port (and so a new name and
	// incarnation), with the same certificate, and rejoins through the seed.
	old := members[3]
	oldGossip, oldName := old.m.Addr(), old.m.Name()
	old.stop()
	again := tc.start("node-3", old.cert, withSeeds(seed.m.Addr()))
	if again.m.Addr() == oldGossip {
		t.Fatalf("restart got the same port %s", oldGossip)
	}
	rest[3] = again
	eventually(t, "node-3 back under its new address", func() bool {
		if !seesExactly(rest, all(rest)) {
			return false
		}
		for _, mem := range seed.m.Members() {
			if mem.Router == again.router && (mem.Name == oldName || mem.Gossip != again.m.Addr()) {
				return false
			}
		}
		return true
	})
	if s := seed.m.Stats(); s.RefusedAlive != 0 {
		t.Fatalf("refusals among valid members: %+v", s)
	}
}

func TestOutsidersKeptOut(t *testing.T) {
	tc := newTestCluster(t, 1)
	seed := tc.start("node-0", nil)
	inside := tc.start("node-1", nil, withSeeds(seed.m.Addr()))
	eventually(t, "two members", func() bool {
		return seesExactly([]*testMember{seed, inside}, []keyholder.Address{seed.router, inside.router})
	})

	// An expired certificate: its holder believes it valid (its clock is
	// an hour behind), the cluster does not.
	past := time.Now().Add(-90 * time.Minute)
	expiredCert, err := tc.auth.Issue(randRouter(t), "late", past, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	lateVerifier, _ := NewVerifier(VerifierConfig{Cluster: tc.auth.Cluster(), Now: func() time.Time { return past.Add(time.Minute) }})
	expired := tc.start("node-5", expiredCert, withSeeds(seed.m.Addr()), func(c *Config) { c.Verifier = lateVerifier })

	// Someone else's certificate, under the thief's own router name.
	thief := randRouter(t)
	stolenCfg := Config{Certificate: inside.cert, GossipKey: tc.gossip, Endpoints: []string{"tcp://127.0.0.1:16"},
		BindAddr: "127.0.0.1", JoinInterval: 50 * time.Millisecond, Tune: fastGossip, Discovery: Static{seed.m.Addr()}}
	sm, err := NewMembership(stolenCfg)
	if err != nil {
		t.Fatal(err)
	}
	sm.name = thief.String() + ".0000000000000000"
	stolen := runMember(t, &Certificate{Router: thief}, sm)

	// A foreign cluster's member that knows our gossip key: its packets
	// carry another cluster's label.
	other := newTestCluster(t, 2)
	other.gossip = tc.gossip
	foreign := other.start("node-7", nil, withSeeds(seed.m.Addr()))

	eventually(t, "the expired and the stolen certificate to be refused", func() bool {
		s := seed.m.Stats()
		return s.RefusedMembers >= 2
	})
	// Give gossip the time of several rounds to spread anything it would:
	// wait until the foreign member has tried to join a few times.
	eventually(t, "the foreign member to have failed joining", func() bool { return foreign.m.Stats().JoinErrors >= 3 })
	for _, m := range []*testMember{seed, inside} {
		got := routersOf(m.m.Members())
		for _, out := range []keyholder.Address{expired.router, thief, foreign.router} {
			if slices.Contains(got, out) {
				t.Fatalf("%s admitted outsider %s", m.m.Name(), out)
			}
		}
		if len(got) != 2 {
			t.Fatalf("%s sees %d members", m.m.Name(), len(got))
		}
	}
	_ = stolen
	reasons := seed.m.Stats().LastRefusal + inside.m.Stats().LastRefusal
	if !strings.Contains(reasons, "expired") && !strings.Contains(reasons, "another router") {
		t.Errorf("refusal reasons %q", reasons)
	}
}

func TestMembershipConfigErrors(t *testing.T) {
	tc := newTestCluster(t, 1)
	good, _ := tc.auth.Issue(randRouter(t), "n", time.Now(), time.Hour)
	expired, _ := tc.auth.Issue(randRouter(t), "n", time.Now().Add(-2*time.Hour), time.Hour)
	base := Config{Certificate: good, GossipKey: tc.gossip, Endpoints: []string{"tcp://127.0.0.1:1"}}
	cases := []struct {
		name string
		mod  func(*Config)
		want error
	}{
		{"no cert", func(c *Config) { c.Certificate = nil }, ErrBadConfig},
		{"expired cert", func(c *Config) { c.Certificate = expired }, ErrExpired},
		{"no gossip key", func(c *Config) { c.GossipKey = nil }, ErrBadConfig},
		{"short gossip key", func(c *Config) { c.GossipKey = make([]byte, 15) }, ErrBadConfig},
		{"no endpoints", func(c *Config) { c.Endpoints = nil }, ErrBadMeta},
		{"too many endpoints", func(c *Config) { c.Endpoints = make([]string, MaxEndpoints+1) }, ErrBadMeta},
		{"endpoint with space", func(c *Config) { c.Endpoints = []string{"tcp://a b"} }, ErrBadMeta},
		{"bad port", func(c *Config) { c.BindPort = 70000 }, ErrBadConfig},
	}
	for _, c := range cases {
		cfg := base
		c.mod(&cfg)
		if _, err := NewMembership(cfg); !errors.Is(err, c.want) {
			t.Errorf("%s: %v, want %v", c.name, err, c.want)
		}
	}
	// Metadata that does not fit memberlist's 512 bytes.
	cfg := base
	cfg.Endpoints = []string{strings.Repeat("a", MaxEndpointLen), strings.Repeat("b", MaxEndpointLen), strings.Repeat("c", MaxEndpointLen), strings.Repeat("d", MaxEndpointLen)}
	if _, err := NewMembership(cfg); !errors.Is(err, ErrBadMeta) {
		t.Errorf("oversize meta: %v", err)
	}
}

// fakeResolver answers DNS questions from maps.
type fakeResolver struct {
	hosts map[string][]string
	srv   map[string][]*net.SRV
}

func (f fakeResolver) LookupHost(_ context.Context, host string) ([]string, error) {
	if a, ok := f.hosts[host]; ok {
		return a, nil
	}
	return nil, &net.DNSError{Err: "no such host", Name: host, IsNotFound: true}
}

func (f fakeResolver) LookupSRV(_ context.Context, service, proto, name string) (string, []*net.SRV, error) {
	if s, ok := f.srv[name]; ok && service == "" && proto == "" {
		return name, s, nil
	}
	return "", nil, &net.DNSError{Err: "no such host", Name: name, IsNotFound: true}
}

func TestDiscovery(t *testing.T) {
	r := fakeResolver{
		hosts: map[string][]string{"nodes.default.svc.cluster.local": {"127.0.0.1", "127.0.0.2"}},
		srv: map[string][]*net.SRV{"_gossip._udp.nodes.default.svc.cluster.local": {
			{Target: "node-0.nodes.default.svc.cluster.local.", Port: 7946},
			{Target: "127.0.0.1", Port: 7947},
		}},
	}
	ctx := context.Background()
	seeds, err := DNS{Name: "nodes.default.svc.cluster.local", Port: 7946, Resolver: r}.Seeds(ctx)
	if err != nil || !slices.Equal(seeds, []string{"127.0.0.1:7946", "127.0.0.2:7946"}) {
		t.Fatalf("A: %v, %v", seeds, err)
	}
	seeds, err = DNS{Name: "_gossip._udp.nodes.default.svc.cluster.local", Resolver: r}.Seeds(ctx)
	if err != nil || !slices.Equal(seeds, []string{"node-0.nodes.default.svc.cluster.local:7946", "127.0.0.1:7947"}) {
		t.Fatalf("SRV: %v, %v", seeds, err)
	}
	if _, err := (DNS{Name: "nowhere", Port: 1, Resolver: r}).Seeds(ctx); err == nil {
		t.Fatal("unknown name gave seeds")
	}

	for in, want := range map[string]Discovery{
		"dns:nodes.svc:7946":      DNS{Name: "nodes.svc", Port: 7946},
		"dns+srv:_g._udp.nodes":   DNS{Name: "_g._udp.nodes"},
		"127.0.0.1:1,127.0.0.1:2": Static{"127.0.0.1:1", "127.0.0.1:2"},
		"[::1]:7946":              Static{"[::1]:7946"},
	} {
		got, err := ParseDiscovery(in)
		if err != nil || fmt.Sprint(got) != fmt.Sprint(want) {
			t.Errorf("ParseDiscovery(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
	for _, in := range []string{"", "dns:", "dns:name", "dns:name:0", "dns:name:x", "dns+srv:", "host", "127.0.0.1:1,"} {
		if _, err := ParseDiscovery(in); !errors.Is(err, ErrBadConfig) {
			t.Errorf("ParseDiscovery(%q): %v", in, err)
		}
	}
}

// TestJoinThroughDNS joins a member through an A record that names the
// seed, as a Kubernetes headless service would.
func TestJoinThroughDNS(t *testing.T) {
	tc := newTestCluster(t, 1)
	seed := tc.start("node-0", nil)
	host, port, err := net.SplitHostPort(seed.m.Addr())
	if err != nil {
		t.Fatal(err)
	}
	p, _ := strconv.Atoi(port)
	r := fakeResolver{hosts: map[string][]string{"nodes.test": {host}}}
	joiner := tc.start("node-1", nil, func(c *Config) { c.Discovery = DNS{Name: "nodes.test", Port: p, Resolver: r} })
	both := []*testMember{seed, joiner}
	eventually(t, "the DNS-discovered seed to be joined", func() bool {
		return seesExactly(both, []keyholder.Address{seed.router, joiner.router})
	})
}

// TestLogWriter: memberlist's log lines reach zerolog at their level.
func TestLogWriter(t *testing.T) {
	var buf strings.Builder
	var leaving atomic.Bool
	w := logWriter{zerolog.New(&buf), &leaving}
	for _, line := range []string{
		"[DEBUG] memberlist: Stream connection from=127.0.0.1:1\n",
		"[WARN] memberlist: ignoring alive message for 'x'\n",
		"[ERR] memberlist: Failed to send ping\n",
		"[INFO] memberlist: Marking x as failed\n",
		"no level\n",
	} {
		if n, err := w.Write([]byte(line)); n != len(line) || err != nil {
			t.Fatalf("Write: %d, %v", n, err)
		}
	}
	want := []string{`"level":"debug"`, `"level":"warn"`, `"level":"error"`, `"level":"info"`, `"level":"info"`}
	lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
	if len(lines) != len(want) {
		t.Fatalf("%d lines:\n%s", len(lines), buf.String())
	}
	for i, l := range lines {
		if !strings.Contains(l, want[i]) || !strings.Contains(l, `"from":"memberlist"`) || strings.Contains(l, "[") {
			t.Errorf("line %d: %s", i, l)
		}
	}
	// Leaving, a failed send on a closed socket is no error.
	buf.Reset()
	leaving.Store(true)
	w.Write([]byte("[ERR] memberlist: Failed to send gossip to 127.0.0.1:1: use of closed network connection\n"))
	if !strings.Contains(buf.String(), `"level":"debug"`) {
		t.Errorf("while leaving: %s", buf.String())
	}
}

// TestMemberExpiresWhileIn: a member whose certificate expires (on the
// observer's clock) or is denied drops out of Members at once, without new
// gossip.
func TestMemberExpiresWhileIn(t *testing.T) {
	tc := newTestCluster(t, 1)
	var mu sync.Mutex
	now := time.Now()
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	v, _ := NewVerifier(VerifierConfig{Cluster: tc.auth.Cluster(), Now: clock})
	long, _ := tc.auth.Issue(randRouter(t), "observer", now, 10*time.Hour)
	short, _ := tc.auth.Issue(randRouter(t), "short", now, time.Hour)
	denied, _ := tc.auth.Issue(randRouter(t), "denied", now, 10*time.Hour)
	obs := tc.start("node-0", long, func(c *Config) { c.Verifier = v })
	tc.start("node-1", short, withSeeds(obs.m.Addr()))
	tc.start("node-2", denied, withSeeds(obs.m.Addr()))
	eventually(t, "three members", func() bool { return len(obs.m.Members()) == 3 })

	v.SetDenyList(NewDenyList([]keyholder.Address{denied.Router}, nil))
	if got := routersOf(obs.m.Members()); len(got) != 2 || slices.Contains(got, denied.Router) {
		t.Fatalf("denied member still listed: %v", got)
	}
	mu.Lock()
	now = now.Add(2 * time.Hour)
	mu.Unlock()
	if got := routersOf(obs.m.Members()); len(got) != 1 || got[0] != long.Router {
		t.Fatalf("expired member still listed: %v", got)
	}
}
