package transport

import (
	"context"
	"sync"
	"sync/atomic"
	"time"

	"github.com/enginekit/enginekit/callbridge"
	"github.com/enginekit/enginekit/keyholder"
	"github.com/enginekit/enginekit/netconn"
	"github.com/enginekit/enginekit/wire"
)

// route is one live connection as the transport sees it: the peer router
// it authenticated, the foreign engines learned on it, and the calls
// pending on it.
type route struct {
	conn     *netconn.Conn
	peer     keyholder.Address
	pending  *callbridge.Pending
	inflight atomic.Int64 // incoming calls being served

	mu      sync.Mutex
	learned map[keyholder.Address]*proxy
	down    bool
}

func (t *Transport) route(c *netconn.Conn) *route {
	if r, ok := t.routes.Load(c); ok {
		return r.(*route)
	}
	return nil
}

func (t *Transport) eachRoute(f func(r *route)) {
	t.routes.Range(func(_, v any) bool { f(v.(*route)); return true })
}

// connUp burst-announces all our engines on a new connection.
func (t *Transport) connUp(c *netconn.Conn) {
	r := &route{conn: c, peer: c.PeerRouter(), pending: callbridge.NewPending(), learned: make(map[keyholder.Address]*proxy)}
	t.mu.RLock()
	t.routes.Store(c, r)
	learns := make([][]byte, 0, len(t.engines))
	for _, e := range t.engines {
		learns = append(learns, e.learn)
	}
	t.mu.RUnlock()
	t.log.Info().Stringer("peer", r.peer).Int("engines", len(learns)).Msg("connection up: announcing our engines")
	for _, l := range learns {
		t.sendControl(r, wire.Learn, l)
	}
	if t.cfg.OnConnection != nil {
		t.cfg.OnConnection(r.peer, true, nil)
	}
}

// connDown fails the calls pending on the connection at once and takes the
// route away from the proxies that used it; a proxy left without routes is
// forgotten after the grace period unless a route comes back.
func (t *Transport) connDown(c *netconn.Conn, err error) {
	v, ok := t.routes.LoadAndDelete(c)
	if !ok {
		return
	}
	r := v.(*route)
	r.mu.Lock()
	r.down = true
	learned := r.learned
	r.learned = nil
	r.mu.Unlock()
	failed := r.pending.Close(ErrNoConnection)
	for _, px := range learned {
		px.removeRoute(r)
	}
	t.stats.connDown.Add(1)
	t.log.Info().Stringer("peer", r.peer).AnErr("reason", err).Int("calls_failed", failed).Msg("connection down")
	if t.cfg.OnConnection != nil {
		t.cfg.OnConnection(r.peer, false, err)
	}
}

// sendControl sends a router-signed learn or forget on r.
func (t *Transport) sendControl(r *route, kind wire.Kind, payload []byte) {
	env := wire.Envelope{Kind: kind, Src: t.router, Dst: r.peer, Payload: payload}
	t.send(r, &env)
}

// send queues env on r, bounded by the transport's lifetime. A failure
// means the connection is going down, which connDown handles.
func (t *Transport) send(r *route, env *wire.Envelope) error {
	ctx := t.ctx
	if ctx == nil {
		ctx = context.Background()
	}
	err := r.conn.Send(ctx, env)
	if err != nil {
		t.stats.sendFailed.Add(1)
	}
	return err
}

// farewell tells every peer to forget our engines, before the connections
// close at shutdown.
func (t *Transport) farewell() {
	t.mu.RLock()
	var forgets [][]byte
	for a := range t.engines {
		f, _ := ctlEnc.Marshal(forgetMsg{Engine: a})
		forgets = append(forgets, f)
	}
	t.mu.RUnlock()
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	t.eachRoute(func(r *route) {
		for _, f := range forgets {
			env := wire.Envelope{Kind: wire.Forget, Src: t.router, Dst: r.peer, Payload: f}
			if r.conn.Send(ctx, &env) != nil {
				return
			}
		}
	})
}
