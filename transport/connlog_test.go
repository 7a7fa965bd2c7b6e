package transport_test

import (
	"bytes"
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/enginekit/enginekit/genserver"
	"github.com/enginekit/enginekit/keyholder"
	"github.com/enginekit/enginekit/netconn"
	"github.com/enginekit/enginekit/transport"
	"github.com/rs/zerolog"
)

// Issue #14 "Logs an operator can use": OnConnectionEvent names the remote
// endpoint and who dialled, and the transport's own connection lines name
// it too.
func TestConnectionEventNamesRemote(t *testing.T) {
	events := make(chan transport.ConnectionEvent, 8)
	var logs syncBuf
	b := newTNode(t, "b", func(c *transport.Config) {
		c.OnConnectionEvent = func(e transport.ConnectionEvent) { events <- e }
		c.Logger = zerolog.New(&logs)
	})
	a := newTNode(t, "a")
	if _, _, err := a.tr.SpawnEngine("srv", func() genserver.Server { return server{} }); err != nil {
		t.Fatal(err)
	}
	ep := b.listen(t)
	a.connect(t, b, ep)
	a.waitSynced(t, b)
	b.waitSynced(t, a)
	up := recvEvent(t, events)
	if !up.Up || !up.Inbound || up.Peer != a.kh.Router() || !strings.HasPrefix(up.Remote, "tcp://127.0.0.1:") || up.Remote == ep {
		t.Fatalf("up event %+v (listening at %s)", up, ep)
	}
	if err := a.tr.Disconnect(ep, b.kh.Router()); err != nil {
		t.Fatal(err)
	}
	down := recvEvent(t, events)
	if down.Up || down.Remote != up.Remote || down.Learned != 1 || down.Lived <= 0 {
		t.Fatalf("down event %+v", down)
	}
	for _, msg := range []string{`"connection up: announcing our engines"`, `"calls_failed"`, `"peer's engines all learned"`} {
		line := logs.line(msg)
		if !strings.Contains(line, `"remote":"`+up.Remote+`"`) {
			t.Errorf("line %s does not name the remote %s: %q", msg, up.Remote, line)
		}
	}
}

// The dialling side sees Inbound false and the endpoint it dialled.
func TestConnectionEventOutbound(t *testing.T) {
	events := make(chan transport.ConnectionEvent, 8)
	b := newTNode(t, "b")
	a := newTNode(t, "a", func(c *transport.Config) {
		c.OnConnectionEvent = func(e transport.ConnectionEvent) { events <- e }
	})
	ep := b.listen(t)
	a.connect(t, b, ep)
	if e := recvEvent(t, events); !e.Up || e.Inbound || e.Remote != ep || e.Peer != b.kh.Router() {
		t.Fatalf("event %+v, dialled %s", e, ep)
	}
}

// Issue #14 /readyz "listeners up": Listeners tells whether each listener
// is bound; one whose Accept fails for good (a ListenOn socket cannot be
// bound again) reports unbound, with its failure counted.
func TestListenersReportBound(t *testing.T) {
	b := newTNode(t, "b")
	if got := b.tr.Listeners(); len(got) != 0 {
		t.Fatalf("no listener yet: %+v", got)
	}
	addr, err := b.tr.Listen(context.Background(), "tcp://127.0.0.1:0", netconn.AcceptAny)
	if err != nil {
		t.Fatal(err)
	}
	failed := make(chan struct{}, 1)
	b2 := newTNode(t, "b2", func(c *transport.Config) {
		c.OnListenError = func(string, error) {
			select {
			case failed <- struct{}{}:
			default:
			}
		}
	})
	pl := netconn.NewPipeListener("b2-pipe")
	fl := &failingListener{Listener: pl, failNow: make(chan struct{})}
	if _, err := b2.tr.ListenOn(context.Background(), fl, netconn.AcceptAny); err != nil {
		t.Fatal(err)
	}
	got := b.tr.Listeners()
	if len(got) != 1 || !got[0].Bound || got[0].Endpoint != "tcp://"+addr.String() || got[0].Errors != 0 {
		t.Fatalf("Listeners %+v", got)
	}
	if got := b2.tr.Listeners(); len(got) != 1 || !got[0].Bound {
		t.Fatalf("before the failure: %+v", got)
	}
	close(fl.failNow)
	select {
	case <-failed:
	case <-time.After(time.Minute):
		t.Fatal("no OnListenError")
	}
	if got := b2.tr.Listeners(); len(got) != 1 || got[0].Bound || got[0].Errors == 0 {
		t.Fatalf("after the failure: %+v", got)
	}
}

func recvEvent(t *testing.T, ch <-chan transport.ConnectionEvent) transport.ConnectionEvent {
	t.Helper()
	select {
	case e := <-ch:
		return e
	case <-time.After(time.Minute):
		t.Fatal("no connection event")
		return transport.ConnectionEvent{}
	}
}

// syncBuf is a log sink transport goroutines write to while the test reads.
type syncBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuf) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

// line returns the first line that contains msg, or "".
func (s *syncBuf) line(msg string) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, l := range strings.Split(s.b.String(), "\n") {
		if strings.Contains(l, msg) {
			return l
		}
	}
	return ""
}

// A peer node that stops forgets its engines before its connection goes
// down; the down event still counts the engines it taught, so a node's log
// does not take it for a one-shot client.
func TestConnectionEventCountsForgottenEngines(t *testing.T) {
	events := make(chan transport.ConnectionEvent, 8)
	forgot := make(chan struct{}, 1)
	b := newTNode(t, "b", func(c *transport.Config) {
		c.OnConnectionEvent = func(e transport.ConnectionEvent) { events <- e }
		c.OnForget = func(keyholder.Address) { forgot <- struct{}{} }
	})
	a := newTNode(t, "a")
	_, pid, err := a.tr.SpawnEngine("srv", func() genserver.Server { return server{} })
	if err != nil {
		t.Fatal(err)
	}
	ep := b.listen(t)
	a.connect(t, b, ep)
	a.waitSynced(t, b)
	b.waitSynced(t, a)
	recvEvent(t, events) // up
	if err := a.sys.StopProcess(context.Background(), pid, nil); err != nil {
		t.Fatal(err)
	}
	select {
	case <-forgot:
	case <-time.After(10 * time.Second):
		t.Fatal("b never forgot a's engine")
	}
	if err := a.tr.Disconnect(ep, b.kh.Router()); err != nil {
		t.Fatal(err)
	}
	if down := recvEvent(t, events); down.Up || down.Learned != 1 {
		t.Fatalf("down event %+v, want Learned 1", down)
	}
}
