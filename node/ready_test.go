package node_test

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/enginekit/enginekit/admin"
	"github.com/enginekit/enginekit/netconn"
	"github.com/enginekit/enginekit/node"
)

// brokenListener is a net.Listener whose Accept fails for good once broken
// is closed.
type brokenListener struct {
	net.Listener
	broken chan struct{}
}

func (l *brokenListener) Accept() (net.Conn, error) {
	<-l.broken
	return nil, errors.New("accept: the socket is gone")
}

func (l *brokenListener) Close() error {
	select {
	case <-l.broken:
	default:
		close(l.broken)
	}
	return l.Listener.Close()
}

func readyz(t *testing.T, n *node.Node) (int, string) {
	t.Helper()
	resp, err := http.Get(n.Admin().URL() + "/readyz")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(body)
}

// Issue #14 /readyz "listeners up": a node whose listener is not bound
// (its Accept failed for good; a listener given to ListenOn cannot bind
// again) is not ready, and /readyz names the listener.
func TestNotReadyWithUnboundListener(t *testing.T) {
	failed := make(chan struct{}, 1)
	cfg := node.Config{Admin: &admin.Config{Addr: "127.0.0.1:0"}}
	cfg.Transport.OnListenError = func(string, error) {
		select {
		case failed <- struct{}{}:
		default:
		}
	}
	n := start(t, cfg)
	if code, body := readyz(t, n); code != http.StatusOK {
		t.Fatalf("/readyz before: %d %q", code, body)
	}
	pl := netconn.NewPipeListener("ready-pipe")
	bl := &brokenListener{Listener: pl, broken: make(chan struct{})}
	if _, err := n.Transport().ListenOn(context.Background(), bl, netconn.AcceptAny); err != nil {
		t.Fatal(err)
	}
	if code, body := readyz(t, n); code != http.StatusOK {
		t.Fatalf("/readyz with the listener bound: %d %q", code, body)
	}
	close(bl.broken)
	select {
	case <-failed:
	case <-time.After(wait):
		t.Fatal("no OnListenError")
	}
	code, body := readyz(t, n)
	if code != http.StatusServiceUnavailable || !strings.Contains(body, "listener not bound") || !strings.Contains(body, "ready-pipe") {
		t.Fatalf("/readyz with the listener unbound: %d %q", code, body)
	}
}
