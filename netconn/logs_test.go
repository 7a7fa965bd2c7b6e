package netconn

import (
	"bytes"
	"context"
	"errors"
	"net"
	"strings"
	"sync"
	"testing"

	"github.com/rs/zerolog"
)

// lockedBuffer is a log sink the connection goroutines may write to while
// the test reads it.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// The Dialer's "redialling" line names the endpoint it dials, so an
// operator sees where the node fails to connect.
func TestRedialLogNamesRemote(t *testing.T) {
	n, peer := newNode(t), newNode(t)
	var logs lockedBuffer
	cfg := n.config(MACs)
	cfg.Logger = zerolog.New(&logs).Level(zerolog.DebugLevel)
	calls := make(chan struct{}, 10)
	d, err := NewDialerFunc(cfg, "relay-7.example:4711", func(ctx context.Context) (net.Conn, error) {
		select {
		case calls <- struct{}{}:
		default:
		}
		return nil, errors.New("test: no route")
	}, peer.router())
	if err != nil {
		t.Fatal(err)
	}
	runService(t, d.Serve)
	recv(t, calls, "first dial")
	recv(t, calls, "second dial") // the redialling line is written before it
	for _, line := range strings.Split(logs.String(), "\n") {
		if strings.Contains(line, `"redialling"`) {
			if !strings.Contains(line, `"remote":"relay-7.example:4711"`) {
				t.Fatalf("redialling line without the endpoint: %s", line)
			}
			return
		}
	}
	t.Fatalf("no redialling line in:\n%s", logs.String())
}
