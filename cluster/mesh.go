package cluster

import (
	"bytes"
	"cmp"
	"context"
	"fmt"
	"maps"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/enginekit/enginekit/keyholder"
	"github.com/rs/zerolog"
)

// Connector makes and drops transport connections; *transport.Transport
// satisfies it. Connect keeps a connection to router at endpoint (re-dialling
// as needed) and returns at once; Disconnect stops that.
type Connector interface {
	Connect(ctx context.Context, endpoint string, router keyholder.Address) error
	Disconnect(endpoint string, router keyholder.Address) error
}

// MeshConfig configures a Mesh. Self, Connector and Members are required.
type MeshConfig struct {
	// Self is this node's router address.
	Self keyholder.Address
	// Connector is the transport.
	Connector Connector
	// Members returns the admitted members (Membership.Members).
	Members func() []Member
	// Changed signals that Members may have changed
	// (Membership.Changed). Optional: without it the mesh only follows
	// members every Resync.
	Changed <-chan struct{}
	// Resync is how often the mesh looks at the members even without a
	// change: it retries failed connects and drops members whose
	// certificates expired. Default 1 s.
	Resync time.Duration
	// Pick chooses which of a member's endpoints to dial. Default: the
	// first (the member's preferred one).
	Pick func(endpoints []string) string
	// DepartGrace is how long a member may be missing from the members
	// before the mesh disconnects it. Gossip's failure detector runs over
	// UDP and can flap on a loaded network while the TCP connection is
	// fine; a missing member that comes back within the grace keeps its
	// connection (and the transport its engines). A member that comes back
	// under a new endpoint is moved there at once. Default
	// DefaultDepartGrace; negative means none.
	DepartGrace time.Duration
	// Now is the clock for DepartGrace. Default time.Now.
	Now func() time.Time
	// Logger receives connects and disconnects at info, failures at warn.
	Logger zerolog.Logger
}

// Defaults of MeshConfig's zero fields.
const (
	DefaultResync      = time.Second
	DefaultDepartGrace = 5 * time.Second
)

// Mesh keeps a full mesh: one transport connection between each pair of
// admitted members. Of each pair the member with the lower router address
// (bytewise) dials; the other accepts it through cluster admission. So each
// pair has exactly one connection whoever learns of the other first, and no
// two dials race (Erlang's distribution lets both dial and drops one; a fixed
// rule is simpler and deterministic). When a member has been gone for
// DepartGrace, the mesh disconnects it (the transport forgets its engines
// after its own grace period);
// when a router comes back under a new endpoint, it disconnects the old one
// and dials the new one, following the member with the highest incarnation.
//
// A Mesh is a suture service. The deciding part (plan) is a pure function of
// the members and the connections made; Serve is the goroutine around it.
type Mesh struct {
	cfg MeshConfig

	mu       sync.Mutex
	have     map[keyholder.Address]string    // router → endpoint we Connected
	lastSeen map[keyholder.Address]time.Time // routers we Connected: last seen among the members
	failures map[Target]int                  // consecutive failed Connects
	retryAt  map[Target]time.Time            // no Connect before then

	connects, connectErrors, disconnects, disconnectErrors atomic.Uint64
}

// MeshStats counts the mesh's calls on its Connector.
type MeshStats struct {
	Connects, ConnectErrors, Disconnects, DisconnectErrors uint64
}

// NewMesh checks cfg.
func NewMesh(cfg MeshConfig) (*Mesh, error) {
	switch {
	case cfg.Self.IsZero():
		return nil, fmt.Errorf("%w: no Self router", ErrBadConfig)
	case cfg.Connector == nil:
		return nil, fmt.Errorf("%w: no Connector", ErrBadConfig)
	case cfg.Members == nil:
		return nil, fmt.Errorf("%w: no Members function", ErrBadConfig)
	case cfg.Resync < 0:
		return nil, fmt.Errorf("%w: negative Resync", ErrBadConfig)
	}
	if cfg.Resync == 0 {
		cfg.Resync = DefaultResync
	}
	if cfg.Pick == nil {
		cfg.Pick = func(eps []string) string { return eps[0] }
	}
	switch {
	case cfg.DepartGrace == 0:
		cfg.DepartGrace = DefaultDepartGrace
	case cfg.DepartGrace < 0:
		cfg.DepartGrace = 0
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	return &Mesh{cfg: cfg, have: make(map[keyholder.Address]string), lastSeen: make(map[keyholder.Address]time.Time),
		failures: make(map[Target]int), retryAt: make(map[Target]time.Time)}, nil
}

// Dials reports whether, of the pair self–peer, self is the one that dials.
func Dials(self, peer keyholder.Address) bool { return bytes.Compare(self[:], peer[:]) < 0 }

// Target is one connection: a router at an endpoint.
type Target struct {
	Router   keyholder.Address
	Endpoint string
}

// plan returns the connections to drop and to make so that, from have (the
// connections this node made), this node dials exactly the members it
// should, at the endpoint of their latest incarnation. Both lists are sorted
// by router.
func plan(self keyholder.Address, have map[keyholder.Address]string, members []Member, pick func([]string) string) (disconnect, connect []Target) {
	latest := make(map[keyholder.Address]Member)
	for _, m := range members {
		if m.Router == self || !Dials(self, m.Router) || len(m.Endpoints) == 0 {
			continue
		}
		if prev, ok := latest[m.Router]; !ok || m.Incarnation > prev.Incarnation {
			latest[m.Router] = m
		}
	}
	want := make(map[keyholder.Address]string, len(latest))
	for r, m := range latest {
		if ep := pick(m.Endpoints); ep != "" {
			want[r] = ep
		}
	}
	for r, ep := range have {
		if want[r] != ep {
			disconnect = append(disconnect, Target{r, ep})
		}
	}
	for r, ep := range want {
		if have[r] != ep {
			connect = append(connect, Target{r, ep})
		}
	}
	byRouter := func(a, b Target) int { return bytes.Compare(a.Router[:], b.Router[:]) }
	slices.SortFunc(disconnect, byRouter)
	slices.SortFunc(connect, byRouter)
	return disconnect, connect
}

// String names the service for supervisors.
func (m *Mesh) String() string { return "cluster mesh" }

// Serve keeps the mesh until ctx ends, then disconnects every connection it
// made and returns nil.
func (m *Mesh) Serve(ctx context.Context) error {
	tick := time.NewTicker(m.cfg.Resync)
	defer tick.Stop()
	defer m.dropAll()
	for {
		m.Sync(ctx)
		select {
		case <-ctx.Done():
			return nil
		case <-m.cfg.Changed:
		case <-tick.C:
		}
	}
}

// Sync looks at the members once and connects and disconnects as needed.
// Serve calls it; tests and callers that drive the mesh themselves may too
// (not concurrently with Serve).
func (m *Mesh) Sync(ctx context.Context) {
	members := m.cfg.Members()
	now := m.cfg.Now()
	m.mu.Lock()
	have := maps.Clone(m.have)
	present := make(map[keyholder.Address]bool, len(members))
	for _, mem := range members {
		present[mem.Router] = true
		if _, ok := have[mem.Router]; ok {
			m.lastSeen[mem.Router] = now
		}
	}
	// A connected member missing for less than the grace is kept as it
	// was (a stand-in member at its current endpoint).
	for r, ep := range have {
		if !present[r] && now.Sub(m.lastSeen[r]) < m.cfg.DepartGrace {
			members = append(members, Member{Router: r, Endpoints: []string{ep}})
		}
	}
	m.mu.Unlock()
	drop, dial := plan(m.cfg.Self, have, members, m.cfg.Pick)
	for _, t := range drop {
		m.disconnect(t)
	}
	for _, t := range dial {
		if ctx.Err() != nil {
			return
		}
		m.mu.Lock()
		wait := now.Before(m.retryAt[t])
		m.mu.Unlock()
		if wait {
			continue
		}
		if err := m.cfg.Connector.Connect(ctx, t.Endpoint, t.Router); err != nil {
			m.connectErrors.Add(1)
			m.mu.Lock()
			n := m.failures[t]
			m.failures[t] = n + 1
			m.retryAt[t] = now.Add(retryDelay(m.cfg.Resync, n))
			m.mu.Unlock()
			ev := m.cfg.Logger.Debug()
			if n == 0 {
				ev = m.cfg.Logger.Warn()
			}
			ev.Err(err).Str("router", t.Router.String()).Str("endpoint", t.Endpoint).Int("failures", n+1).Msg("cluster mesh: connect failed; retrying with backoff")
			continue
		}
		m.connects.Add(1)
		m.mu.Lock()
		m.have[t.Router] = t.Endpoint
		m.lastSeen[t.Router] = now
		delete(m.failures, t)
		delete(m.retryAt, t)
		m.mu.Unlock()
		m.cfg.Logger.Info().Str("router", t.Router.String()).Str("endpoint", t.Endpoint).Msg("cluster mesh: connecting")
	}
	// Forget the backoff of targets no longer wanted.
	m.mu.Lock()
	for t := range m.failures {
		if !slices.Contains(dial, t) {
			delete(m.failures, t)
			delete(m.retryAt, t)
		}
	}
	m.mu.Unlock()
}

// MaxConnectRetry bounds the backoff between failed Connects of one target.
const MaxConnectRetry = time.Minute

// retryDelay is the wait after the (n+1)-th consecutive failed Connect:
// resync·2ⁿ, at most MaxConnectRetry. Connect failing at once is a local
// refusal (bad endpoint, already connecting), not a network error — the
// transport redials those itself — so retrying every resync would only
// repeat it.
func retryDelay(resync time.Duration, n int) time.Duration {
	d := resync
	for range min(n, 16) {
		d *= 2
		if d >= MaxConnectRetry {
			return MaxConnectRetry
		}
	}
	return min(d, MaxConnectRetry)
}

func (m *Mesh) disconnect(t Target) {
	m.mu.Lock()
	delete(m.have, t.Router)
	delete(m.lastSeen, t.Router)
	m.mu.Unlock()
	if err := m.cfg.Connector.Disconnect(t.Endpoint, t.Router); err != nil {
		m.disconnectErrors.Add(1)
		m.cfg.Logger.Warn().Err(err).Str("router", t.Router.String()).Str("endpoint", t.Endpoint).Msg("cluster mesh: disconnect failed")
		return
	}
	m.disconnects.Add(1)
	m.cfg.Logger.Info().Str("router", t.Router.String()).Str("endpoint", t.Endpoint).Msg("cluster mesh: disconnected")
}

func (m *Mesh) dropAll() {
	for _, t := range m.Connected() {
		m.disconnect(t)
	}
}

// Connected returns the connections this mesh made, sorted by router.
func (m *Mesh) Connected() []Target {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := make([]Target, 0, len(m.have))
	for r, ep := range m.have {
		out = append(out, Target{r, ep})
	}
	slices.SortFunc(out, func(a, b Target) int {
		return cmp.Or(bytes.Compare(a.Router[:], b.Router[:]), cmp.Compare(a.Endpoint, b.Endpoint))
	})
	return out
}

// Stats returns the counters.
func (m *Mesh) Stats() MeshStats {
	return MeshStats{m.connects.Load(), m.connectErrors.Load(), m.disconnects.Load(), m.disconnectErrors.Load()}
}
