package cluster

import (
	"context"
	"fmt"
	"sync"
	"time"
)

// AgentConfig configures an Agent: a Membership and the Mesh that follows
// it.
type AgentConfig struct {
	// Config configures the membership (certificate, gossip key,
	// endpoints, gossip address, discovery, logger).
	Config
	// Connector is the transport the mesh connects and disconnects.
	// Required.
	Connector Connector
	// Resync is the mesh's resync period; default DefaultResync.
	Resync time.Duration
	// Pick chooses which of a member's endpoints to dial; default the
	// first.
	Pick func(endpoints []string) string
	// DepartGrace is how long a member may be missing before the mesh
	// disconnects it; default DefaultDepartGrace.
	DepartGrace time.Duration
}

// Agent is what a node runs to be in a cluster: its membership and its
// mesh, as one suture service. A node wires it as follows:
//
//	v, _ := cluster.NewVerifier(cluster.VerifierConfig{Cluster: cert.Cluster})
//	netCfg.Credential = cert.Bytes()     // we present our certificate
//	netCfg.AdmitCredential = v.Admit     // we admit members by theirs
//	tr, _ := transport.New(transport.Config{..., Net: netCfg})
//	// ... tr.Start, tr.Listen ...
//	a, _ := cluster.NewAgent(cluster.AgentConfig{Config: cluster.Config{
//		Certificate: cert, Verifier: v, GossipKey: key, Endpoints: endpoints,
//		Discovery: cluster.Static{"10.0.0.2:7946"}}, Connector: tr})
//	// supervise a (ServeReady) after the transport, stop it before.
type Agent struct {
	m    *Membership
	mesh *Mesh
}

// NewAgent checks cfg and prepares an Agent; ServeReady runs it.
func NewAgent(cfg AgentConfig) (*Agent, error) {
	if cfg.Connector == nil {
		return nil, fmt.Errorf("%w: no Connector", ErrBadConfig)
	}
	m, err := NewMembership(cfg.Config)
	if err != nil {
		return nil, err
	}
	mesh, err := NewMesh(MeshConfig{
		Self:        cfg.Certificate.Router,
		Connector:   cfg.Connector,
		Members:     m.Members,
		Changed:     m.Changed(),
		Resync:      cfg.Resync,
		Pick:        cfg.Pick,
		DepartGrace: cfg.DepartGrace,
		Logger:      cfg.Logger,
	})
	if err != nil {
		return nil, err
	}
	return &Agent{m: m, mesh: mesh}, nil
}

// Membership returns the agent's membership (members, gossip address,
// counters).
func (a *Agent) Membership() *Membership { return a.m }

// Mesh returns the agent's mesh (connections made, counters).
func (a *Agent) Mesh() *Mesh { return a.mesh }

// Members returns the admitted members (Membership.Members).
func (a *Agent) Members() []Member { return a.m.Members() }

// String names the service for supervisors.
func (a *Agent) String() string { return "cluster agent" }

// Serve is ServeReady without the callback.
func (a *Agent) Serve(ctx context.Context) error { return a.ServeReady(ctx, func() {}) }

// ServeReady joins the cluster and keeps the mesh until ctx ends. ready is
// called once the gossip address is bound. On ctx's end the mesh stops
// first (disconnecting what it connected), then the membership leaves the
// cluster; ServeReady returns when both have stopped.
func (a *Agent) ServeReady(ctx context.Context, ready func()) error {
	mctx, stopMembership := context.WithCancel(context.WithoutCancel(ctx))
	defer stopMembership()
	meshCtx, stopMesh := context.WithCancel(ctx)
	defer stopMesh()

	var wg sync.WaitGroup
	up := make(chan struct{})
	errc := make(chan error, 1)
	wg.Add(1)
	go func() {
		defer wg.Done()
		errc <- a.m.ServeReady(mctx, func() { close(up) })
	}()
	select {
	case <-up:
	case err := <-errc:
		wg.Wait()
		return err
	}
	ready()
	meshDone := make(chan struct{})
	go func() {
		defer close(meshDone)
		_ = a.mesh.Serve(meshCtx) // returns nil once meshCtx ends
	}()
	var err error
	select {
	case <-ctx.Done():
	case err = <-errc: // the membership failed on its own
	}
	stopMesh()
	<-meshDone
	stopMembership()
	wg.Wait()
	if err == nil {
		select {
		case err = <-errc:
		default:
		}
	}
	return err
}
