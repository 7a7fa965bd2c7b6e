package cluster

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/enginekit/enginekit/keyholder"
	"github.com/hashicorp/memberlist"
	"github.com/rs/zerolog"
)

// Config configures a Membership. Zero fields take the defaults documented
// on them; Certificate, GossipKey and Endpoints are required.
type Config struct {
	// Certificate is this node's cluster certificate. Its cluster key is
	// the one trusted (unless Verifier says otherwise) and it is what
	// peers check before they count this node as a member. Required.
	Certificate *Certificate

	// Verifier checks the certificates of other members. Default: a
	// Verifier trusting Certificate.Cluster with the default skew and no
	// deny list. Share it with the transport's AdmitCredential, so that a
	// deny list applies to both.
	Verifier *Verifier

	// GossipKey encrypts and authenticates all gossip (memberlist's
	// keyring; AES-GCM). 16, 24 or 32 bytes: Authority.GossipKey gives the
	// cluster's. Required: unencrypted gossip would let anyone on the
	// network declare members dead.
	GossipKey []byte

	// Endpoints are this node's transport endpoints, preferred first
	// (1..MaxEndpoints). Required.
	Endpoints []string

	// BindAddr and BindPort are where the gossip listens (UDP and TCP on
	// the same port). Default 127.0.0.1; port 0 picks a free one
	// (Membership.Addr tells which).
	BindAddr string
	BindPort int

	// AdvertiseAddr and AdvertisePort are the gossip address others are
	// told, when it differs from the bound one (NAT, containers).
	AdvertiseAddr string
	AdvertisePort int

	// Discovery finds seeds to join through. nil: none, this member waits
	// to be joined (the first node of a cluster).
	Discovery Discovery

	// JoinInterval is how often a member that is alone runs Discovery
	// again and tries to join. Default 2 s.
	JoinInterval time.Duration

	// Tune, when set, adjusts memberlist's configuration after this
	// package has filled it in (from memberlist.DefaultLANConfig), for
	// example timings for tests or a WAN. Name, transport, keyring, label
	// and delegates must not be changed.
	Tune func(*memberlist.Config)

	// Logger receives membership events and memberlist's own log lines.
	// Default: the zero zerolog.Logger, which discards everything.
	Logger zerolog.Logger
}

// Defaults for zero Config fields.
const (
	DefaultBindAddr     = "127.0.0.1"
	DefaultJoinInterval = 2 * time.Second
)

// Member is an admitted member of the cluster.
type Member struct {
	// Name is the memberlist name: router address, '.', 16 hex digits
	// unique to the run.
	Name string
	// Router is the member's router address (its certificate's).
	Router keyholder.Address
	// Node is the node's name from its certificate.
	Node string
	// Endpoints are its transport endpoints, preferred first.
	Endpoints []string
	// Incarnation grows with each start of the node.
	Incarnation uint64
	// Gossip is the member's gossip address.
	Gossip string
	// Certificate is its certificate.
	Certificate *Certificate
	// Self marks this node.
	Self bool
}

// MembershipStats counts what the membership refused.
type MembershipStats struct {
	// RefusedAlive counts alive messages (gossip announcing a member)
	// refused because of a bad name, metadata or certificate; one member
	// is refused again each time its announcement arrives.
	RefusedAlive uint64
	// RefusedMembers is the number of distinct member names refused (at
	// most maxRefusedNames are remembered).
	RefusedMembers int
	// LastRefusal is the reason of the latest refusal.
	LastRefusal string
	// Joins counts successful joins through a seed; JoinErrors failed
	// rounds of discovery and joining.
	Joins, JoinErrors uint64
}

const maxRefusedNames = 4096

// probeDrainSlack is added to the longest a probe in flight can take when
// the membership shuts down (see ServeReady).
const probeDrainSlack = 100 * time.Millisecond

// Membership is this node's view of the cluster, kept by gossip
// (hashicorp/memberlist). It is a suture service: Serve runs it.
type Membership struct {
	cfg      Config
	verifier *Verifier
	name     string
	meta     []byte

	changed chan struct{}

	mu   sync.Mutex
	addr string // gossip address while running
	// nodes is our copy of memberlist's live nodes, kept by the event
	// delegate: memberlist.Members returns pointers into state its
	// goroutines keep writing, so reading them races.
	nodes        map[string]node
	refusedNames map[string]bool
	lastRefusal  string

	refused, joins, joinErrors atomic.Uint64
	// leaving is set once the membership shuts down: memberlist's
	// goroutines then fail on its closed sockets, which is no error.
	leaving atomic.Bool
	// lastDrop is when another member last left (UnixNano), for the
	// shutdown's wait on a probe in flight.
	lastDrop atomic.Int64
}

func (c Config) withDefaults() Config {
	if c.BindAddr == "" {
		c.BindAddr = DefaultBindAddr
	}
	if c.JoinInterval == 0 {
		c.JoinInterval = DefaultJoinInterval
	}
	return c
}

// Verify reports what is wrong with c once defaults are applied, or nil:
// errors wrap ErrBadConfig (ErrBadMeta for endpoints, and the
// certificate's own error for a certificate that does not verify).
// NewMembership also checks the certificate with the Verifier (time, deny
// list).
func (c Config) Verify() error {
	c = c.withDefaults()
	bad := func(format string, args ...any) error {
		return fmt.Errorf("%w: "+format, append([]any{ErrBadConfig}, args...)...)
	}
	switch {
	case c.Certificate == nil:
		return bad("no Certificate")
	case c.BindPort < 0 || c.BindPort > 65535 || c.AdvertisePort < 0 || c.AdvertisePort > 65535:
		return bad("port out of range")
	case c.JoinInterval < 0:
		return bad("negative JoinInterval")
	}
	if err := c.Certificate.Verify(); err != nil {
		return fmt.Errorf("%w: own certificate: %w", ErrBadConfig, err)
	}
	if err := checkGossipKey(c.GossipKey); err != nil {
		return err
	}
	return checkEndpoints(c.Endpoints)
}

// NewMembership checks cfg and prepares a Membership; Serve starts it.
func NewMembership(cfg Config) (*Membership, error) {
	cfg = cfg.withDefaults()
	if err := cfg.Verify(); err != nil {
		return nil, err
	}
	v := cfg.Verifier
	if v == nil {
		var err error
		if v, err = NewVerifier(VerifierConfig{Cluster: cfg.Certificate.Cluster}); err != nil {
			return nil, err
		}
	}
	if _, err := v.check(cfg.Certificate.Router, cfg.Certificate.Bytes()); err != nil {
		return nil, fmt.Errorf("%w: own certificate: %w", ErrBadConfig, err)
	}
	var suffix [8]byte
	if _, err := rand.Read(suffix[:]); err != nil {
		return nil, fmt.Errorf("cluster: %w", err)
	}
	meta, err := encodeMeta(Meta{
		Certificate: cfg.Certificate.Bytes(),
		Endpoints:   slices.Clone(cfg.Endpoints),
		Incarnation: uint64(time.Now().UnixNano()),
	})
	if err != nil {
		return nil, err
	}
	return &Membership{
		cfg:          cfg,
		verifier:     v,
		name:         cfg.Certificate.Router.String() + "." + hex.EncodeToString(suffix[:]),
		meta:         meta,
		changed:      make(chan struct{}, 1),
		nodes:        make(map[string]node),
		refusedNames: make(map[string]bool),
	}, nil
}

// Name is this member's memberlist name.
func (m *Membership) Name() string { return m.name }

// Verifier returns the verifier members are checked with.
func (m *Membership) Verifier() *Verifier { return m.verifier }

// Changed receives a value (coalesced) whenever a member joins, leaves or
// changes. One consumer (the Mesh) should read it.
func (m *Membership) Changed() <-chan struct{} { return m.changed }

func (m *Membership) notify() {
	select {
	case m.changed <- struct{}{}:
	default:
	}
}

// String names the service for supervisors.
func (m *Membership) String() string { return "cluster membership" }

// Serve runs the membership until ctx ends: it binds the gossip address,
// joins through Discovery (again whenever this member is alone), then on
// ctx's end leaves the cluster (telling the others, bounded by 2 s) and
// shuts memberlist down, waiting for its goroutines (a probe in flight
// ends by its own timer: up to one probe interval, 1 s by default, scaled
// by memberlist's health score). It returns nil after
// ctx ends, or the error that kept it from starting.
func (m *Membership) Serve(ctx context.Context) error {
	return m.ServeReady(ctx, func() {})
}

// ServeReady is Serve, calling ready once the gossip address is bound
// (Addr is then valid).
func (m *Membership) ServeReady(ctx context.Context, ready func()) error {
	mc := m.memberlistConfig()
	ml, err := memberlist.Create(mc)
	if err != nil {
		return fmt.Errorf("cluster: starting memberlist: %w", err)
	}
	// Lock order: memberlist calls our delegates holding its node lock,
	// and they take m.mu; so nothing may call into memberlist holding m.mu.
	addr := ml.LocalNode().Address()
	m.mu.Lock()
	m.addr = addr
	m.mu.Unlock()
	defer func() {
		m.leaving.Store(true)
		_ = ml.Leave(2 * time.Second)
		// memberlist's Shutdown does not wait for its ticker goroutines:
		// one may be inside a probe of another member, which ends only by
		// its own timer, within the probe interval scaled by the health
		// score (at most 8 times). So that ServeReady returning means no
		// goroutine of the membership runs (goleak, and a node's Stop), we
		// wait that out whenever there was a member to probe. This is the
		// one wait on time here: memberlist gives no event to wait on.
		// A probe may also be of a member that left a moment ago.
		window := time.Duration(ml.GetHealthScore()+1)*mc.ProbeInterval + probeDrainSlack
		drain := time.Duration(0)
		if ml.NumMembers() > 1 {
			drain = window
		} else if since := time.Since(time.Unix(0, m.lastDrop.Load())); since < window {
			drain = window - since
		}
		_ = ml.Shutdown()
		if drain > 0 {
			t := time.NewTimer(drain)
			<-t.C
		}
		m.mu.Lock()
		m.addr = ""
		clear(m.nodes)
		m.mu.Unlock()
		m.notify()
	}()
	m.cfg.Logger.Info().Str("name", m.name).Str("gossip", addr).Msg("cluster membership up")
	ready()

	tick := time.NewTicker(m.cfg.JoinInterval)
	defer tick.Stop()
	ownValid := true
	for {
		if ml.NumMembers() <= 1 && m.cfg.Discovery != nil {
			m.join(ctx, ml)
		}
		// Peers stop counting us once our certificate expires or is
		// denied; say so once, loudly, rather than vanish silently.
		_, err := m.verifier.check(m.cfg.Certificate.Router, m.cfg.Certificate.Bytes())
		if valid := err == nil; valid != ownValid {
			ownValid = valid
			if valid {
				m.cfg.Logger.Info().Msg("own cluster certificate valid again")
			} else {
				m.cfg.Logger.Error().Err(err).Msg("own cluster certificate no longer valid: other members will ignore this node")
			}
		}
		select {
		case <-ctx.Done():
			return nil
		case <-tick.C:
		}
	}
}

// join runs one round of discovery and joining.
func (m *Membership) join(ctx context.Context, ml *memberlist.Memberlist) {
	seeds, err := m.cfg.Discovery.Seeds(ctx)
	if err != nil {
		m.joinErrors.Add(1)
		m.cfg.Logger.Warn().Err(err).Msg("cluster discovery failed")
		return
	}
	self := ml.LocalNode().Address()
	seeds = slices.DeleteFunc(seeds, func(s string) bool { return s == self })
	if len(seeds) == 0 {
		return
	}
	n, err := ml.Join(seeds)
	if n == 0 {
		m.joinErrors.Add(1)
		m.cfg.Logger.Info().Err(err).Strs("seeds", seeds).Msg("cluster join failed; retrying")
		return
	}
	m.joins.Add(1)
	m.cfg.Logger.Info().Int("contacted", n).Int("members", ml.NumMembers()).Msg("joined cluster")
}

// Addr returns the bound gossip address ("127.0.0.1:7946"), or "" when not
// running.
func (m *Membership) Addr() string {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.addr
}

// Members returns the admitted members, this node included, sorted by
// name. Each certificate is checked again now, so a certificate that expired
// or was denied since the member joined drops it from the list. Nil when not
// running.
func (m *Membership) Members() []Member {
	m.mu.Lock()
	nodes := make([]node, 0, len(m.nodes))
	for _, n := range m.nodes {
		nodes = append(nodes, n)
	}
	m.mu.Unlock()
	var out []Member
	for _, n := range nodes {
		// The signature was checked when the node was last updated; only
		// time and the deny list can have changed since.
		if n.err != nil || m.verifier.checkNow(n.member.Certificate) != nil {
			continue
		}
		mem := n.member
		mem.Endpoints = slices.Clone(mem.Endpoints)
		mem.Gossip = n.addr
		mem.Self = n.name == m.name
		out = append(out, mem)
	}
	slices.SortFunc(out, func(a, b Member) int { return strings.Compare(a.Name, b.Name) })
	return out
}

// node is what we keep of a memberlist node: its name, gossip address,
// and its metadata as checked when it last changed (the checks that do not
// depend on time: an ed25519 verification per update, not per Members).
type node struct {
	name, addr string
	member     Member
	err        error
}

func (m *Membership) setNode(n *memberlist.Node) {
	mem, err := m.admitStatic(n.Name, n.Meta)
	m.mu.Lock()
	m.nodes[n.Name] = node{name: n.Name, addr: n.Address(), member: mem, err: err}
	m.mu.Unlock()
	m.notify()
}

func (m *Membership) dropNode(n *memberlist.Node) {
	m.lastDrop.Store(time.Now().UnixNano())
	m.mu.Lock()
	delete(m.nodes, n.Name)
	m.mu.Unlock()
	m.notify()
}

// admit checks a member's name and metadata, without counting.
func (m *Membership) admit(name string, meta []byte) (Member, error) {
	mem, err := m.admitStatic(name, meta)
	if err != nil {
		return Member{}, err
	}
	if err := m.verifier.checkNow(mem.Certificate); err != nil {
		return Member{}, err
	}
	return mem, nil
}

// admitStatic is admit without the checks that depend on time and the deny
// list. meta is not retained.
func (m *Membership) admitStatic(name string, meta []byte) (Member, error) {
	routerText, _, ok := strings.Cut(name, ".")
	if !ok {
		return Member{}, fmt.Errorf("%w: member name %q is not ROUTER.SUFFIX", ErrBadMeta, short(name))
	}
	router, err := keyholder.ParseAddress(routerText)
	if err != nil {
		return Member{}, fmt.Errorf("%w: member name: %v", ErrBadMeta, err)
	}
	md, err := decodeMeta(meta)
	if err != nil {
		return Member{}, err
	}
	c, err := m.verifier.checkStatic(router, md.Certificate)
	if err != nil {
		return Member{}, err
	}
	return Member{Name: name, Router: router, Node: c.Node, Endpoints: md.Endpoints, Incarnation: md.Incarnation, Certificate: c}, nil
}

// Stats returns the counters.
func (m *Membership) Stats() MembershipStats {
	m.mu.Lock()
	defer m.mu.Unlock()
	return MembershipStats{
		RefusedAlive:   m.refused.Load(),
		RefusedMembers: len(m.refusedNames),
		LastRefusal:    m.lastRefusal,
		Joins:          m.joins.Load(),
		JoinErrors:     m.joinErrors.Load(),
	}
}

func (m *Membership) memberlistConfig() *memberlist.Config {
	c := memberlist.DefaultLANConfig()
	c.Name = m.name
	c.BindAddr = m.cfg.BindAddr
	c.BindPort = m.cfg.BindPort
	c.AdvertiseAddr = m.cfg.AdvertiseAddr
	c.AdvertisePort = m.cfg.AdvertisePort
	if c.AdvertisePort == 0 {
		c.AdvertisePort = c.BindPort // memberlist then uses the port it bound
	}
	if m.cfg.Tune != nil {
		m.cfg.Tune(c)
	}
	kr, _ := memberlist.NewKeyring(nil, m.cfg.GossipKey) // length checked in NewMembership
	c.Keyring = kr
	c.SecretKey = nil
	c.GossipVerifyIncoming, c.GossipVerifyOutgoing = true, true
	// The label is authenticated with every packet: gossip of another
	// cluster is refused before anything else looks at it.
	c.Label = "enginekit " + m.cfg.Certificate.Cluster.String()
	c.Name = m.name
	c.Delegate = delegate{m}
	c.Events = events{m}
	c.Alive = alive{m}
	c.Merge = merge{m}
	c.Logger = log.New(logWriter{m.cfg.Logger, &m.leaving}, "", 0)
	c.LogOutput = nil
	return c
}

// refuse counts a refused member.
func (m *Membership) refuse(name string, err error) error {
	m.refused.Add(1)
	m.mu.Lock()
	if len(m.refusedNames) < maxRefusedNames {
		m.refusedNames[name] = true
	}
	m.lastRefusal = err.Error()
	m.mu.Unlock()
	m.cfg.Logger.Debug().Str("member", short(name)).Err(err).Msg("cluster member refused")
	return err
}

// delegate advertises our metadata; we use no user messages.
type delegate struct{ m *Membership }

func (d delegate) NodeMeta(limit int) []byte {
	if len(d.m.meta) > limit {
		return nil // cannot happen: encodeMeta bounds it by MetaMaxSize
	}
	return d.m.meta
}
func (delegate) NotifyMsg([]byte)                {}
func (delegate) GetBroadcasts(int, int) [][]byte { return nil }
func (delegate) LocalState(bool) []byte          { return nil }
func (delegate) MergeRemoteState([]byte, bool)   {}

// alive refuses members without a valid certificate, so they never enter
// our member list (and we never gossip about them).
type alive struct{ m *Membership }

func (a alive) NotifyAlive(n *memberlist.Node) error {
	if n.Name == a.m.name {
		return nil
	}
	if _, err := a.m.admit(n.Name, n.Meta); err != nil {
		return a.m.refuse(n.Name, err)
	}
	return nil
}

// merge refuses a push/pull that would bring in a member without a valid
// certificate (the alive check then refuses them one by one anyway; this
// stops a foreign cluster's state wholesale).
type merge struct{ m *Membership }

func (g merge) NotifyMerge(peers []*memberlist.Node) error {
	for _, n := range peers {
		if n.Name == g.m.name {
			continue
		}
		if _, err := g.m.admit(n.Name, n.Meta); err != nil && (errors.Is(err, ErrForeignCluster) || errors.Is(err, ErrBadMeta)) {
			return g.m.refuse(n.Name, err)
		}
	}
	return nil
}

type events struct{ m *Membership }

// The event delegate runs under memberlist's node lock, so n can be read.
func (e events) NotifyJoin(n *memberlist.Node) {
	e.m.cfg.Logger.Info().Str("member", n.Name).Str("gossip", n.Address()).Msg("cluster member joined")
	e.m.setNode(n)
}
func (e events) NotifyLeave(n *memberlist.Node) {
	e.m.cfg.Logger.Info().Str("member", n.Name).Msg("cluster member left")
	e.m.dropNode(n)
}
func (e events) NotifyUpdate(n *memberlist.Node) { e.m.setNode(n) }

// logWriter turns memberlist's log lines ("[WARN] memberlist: ...") into
// zerolog events at the matching level; once leaving is set, warnings and
// errors are debug (sends on sockets the shutdown closed).
type logWriter struct {
	l       zerolog.Logger
	leaving *atomic.Bool
}

func (w logWriter) Write(p []byte) (int, error) {
	line := string(bytes.TrimSpace(p))
	level := zerolog.InfoLevel
	if strings.HasPrefix(line, "[") {
		if i := strings.IndexByte(line, ']'); i > 0 {
			switch line[1:i] {
			case "DEBUG", "TRACE":
				level = zerolog.DebugLevel
			case "WARN":
				level = zerolog.WarnLevel
			case "ERR", "ERROR":
				level = zerolog.ErrorLevel
			}
			line = strings.TrimSpace(line[i+1:])
		}
	}
	if level > zerolog.InfoLevel && w.leaving != nil && w.leaving.Load() {
		level = zerolog.DebugLevel
	}
	w.l.WithLevel(level).Str("from", "memberlist").Msg(line)
	return len(p), nil
}
