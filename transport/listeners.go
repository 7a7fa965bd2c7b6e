package transport

import (
	"sync"
	"time"

	"github.com/enginekit/enginekit/keyholder"
	"github.com/enginekit/enginekit/netconn"
)

// ConnectionEvent is what Config.OnConnectionEvent gets when a connection
// comes up (Up true) and when it goes down (Up false).
type ConnectionEvent struct {
	Peer keyholder.Address // the router authenticated on the connection
	// Remote is the peer's endpoint, as Endpoint writes it ("tcp:
	// 127.0.0.1:7001", "unix:/run/x.sock"; for an accepted connection the
	// peer's source address).
	Remote string
	// Inbound: the peer dialled us (one of our listeners accepted it);
	// false for a connection we made (Connect, ConnectWith).
	Inbound bool
	Up      bool
	// Down only: Err is the reason (nil for an orderly close), Lived how
	// long the connection was up, Learned how many engines the peer
	// taught us on it over its life (forgotten ones included). A one-shot client (enginekit call) is an inbound
	// connection that lived briefly and taught nothing.
	Err     error
	Lived   time.Duration
	Learned int
}

// remoteOf returns the remote endpoint of live connection id, or "" when
// it is gone. It walks the routes: for log lines that are rate-limited or
// once per connection.
func (t *Transport) remoteOf(id connID) string {
	remote := ""
	t.routes.Range(func(_, v any) bool {
		if r := v.(*route); r.id == id {
			remote = r.remote
			return false
		}
		return true
	})
	return remote
}

// ListenerInfo is a snapshot of one listener of the transport (Listen,
// ListenOn).
type ListenerInfo struct {
	Endpoint string // as Endpoint writes it
	// Bound: the socket is bound and accepting now. A listener re-binds
	// its address with backoff after a failure (one given to ListenOn
	// cannot, and stays unbound).
	Bound bool
	// Errors counts its failures: failed accepts and failed binds.
	Errors uint64
	Conns  int // connections it holds now, handshaking or up
}

// listenerSet holds the listeners the transport runs, for Listeners.
type listenerSet struct {
	mu  sync.Mutex
	all []*listenerEntry
}

type listenerEntry struct {
	endpoint string
	mu       sync.Mutex
	cur      *netconn.Listener // nil while it is being made again
	past     uint64            // errors of listeners it replaced, and of failed makes
}

func (s *listenerSet) add(endpoint string, l *netconn.Listener) *listenerEntry {
	e := &listenerEntry{endpoint: endpoint, cur: l}
	s.mu.Lock()
	s.all = append(s.all, e)
	s.mu.Unlock()
	return e
}

func (s *listenerSet) remove(e *listenerEntry) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for i, x := range s.all {
		if x == e {
			s.all = append(s.all[:i], s.all[i+1:]...)
			return
		}
	}
}

// set replaces the entry's listener (nil: being made again); failed is
// one more failure to count.
func (e *listenerEntry) set(l *netconn.Listener, failed bool) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.cur != nil && e.cur != l {
		st := e.cur.Stats()
		e.past += st.AcceptErrors + st.BindErrors
	}
	e.cur = l
	if failed {
		e.past++
	}
}

func (e *listenerEntry) info() ListenerInfo {
	e.mu.Lock()
	defer e.mu.Unlock()
	li := ListenerInfo{Endpoint: e.endpoint, Errors: e.past}
	if e.cur != nil {
		st := e.cur.Stats()
		li.Bound, li.Conns = st.Listening, st.Conns
		li.Errors += st.AcceptErrors + st.BindErrors
	}
	return li
}

// Listeners returns the transport's listeners, in the order they were
// added, and whether each is bound now: a readiness check ("listeners
// up") reads it.
func (t *Transport) Listeners() []ListenerInfo {
	t.lns.mu.Lock()
	all := append([]*listenerEntry(nil), t.lns.all...)
	t.lns.mu.Unlock()
	out := make([]ListenerInfo, 0, len(all))
	for _, e := range all {
		out = append(out, e.info())
	}
	return out
}
