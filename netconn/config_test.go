package netconn

import (
	"context"
	"errors"
	"math"
	"net"
	"testing"
	"time"

	"github.com/enginekit/enginekit/keyholder"
	"github.com/enginekit/enginekit/wire"
)

func TestConfigVerify(t *testing.T) {
	n := newNode(t)
	good := n.config(MACs)
	if err := good.Verify(); err != nil {
		t.Fatal(err)
	}
	d := DefaultConfig()
	if d.MaxFrameSize != wire.DefaultMaxFrameSize || d.IdleTimeout != DefaultIdleTimeout || d.Auth != Signatures || d.Backoff.Max != DefaultBackoffMax {
		t.Fatalf("%+v", d)
	}
	for name, mut := range map[string]func(c *Config){
		"no keyholder":  func(c *Config) { c.Keyholder = nil },
		"no deliver":    func(c *Config) { c.Deliver = nil },
		"auth":          func(c *Config) { c.Auth = 7 },
		"small frames":  func(c *Config) { c.MaxFrameSize = 100 },
		"huge frames":   func(c *Config) { c.MaxFrameSize = 1 << 30 },
		"queue":         func(c *Config) { c.MaxQueueBytes = -1 },
		"handshake":     func(c *Config) { c.HandshakeTimeout = -1 },
		"idle":          func(c *Config) { c.IdleTimeout = time.Millisecond },
		"bad batches":   func(c *Config) { c.MaxBadBatches = -1 },
		"backoff":       func(c *Config) { c.Backoff = Backoff{Min: time.Second, Max: time.Millisecond} },
		"backoff min<0": func(c *Config) { c.Backoff.Min = -1 },
	} {
		c := good
		mut(&c)
		if err := c.Verify(); !errors.Is(err, ErrBadConfig) {
			t.Errorf("%s: %v", name, err)
		}
		if _, err := NewListener(c, "tcp", "127.0.0.1:0", AcceptAny); !errors.Is(err, ErrBadConfig) {
			t.Errorf("%s: listener: %v", name, err)
		}
		if _, err := NewDialer(c, "tcp", "127.0.0.1:1", n.router()); !errors.Is(err, ErrBadConfig) {
			t.Errorf("%s: dialer: %v", name, err)
		}
	}
	if _, err := NewListener(good, "udp", "127.0.0.1:0", AcceptAny); !errors.Is(err, ErrBadConfig) {
		t.Error(err)
	}
	if _, err := NewListener(good, "tcp", "127.0.0.1:0", nil); !errors.Is(err, ErrBadConfig) {
		t.Error(err)
	}
	if _, err := NewDialer(good, "tcp", "127.0.0.1:1", keyholder.Address{}); !errors.Is(err, ErrBadConfig) {
		t.Error(err)
	}
	a, b := net.Pipe()
	defer a.Close()
	defer b.Close()
	if _, err := NewServerConn(good, a, nil); !errors.Is(err, ErrBadConfig) {
		t.Error(err)
	}
	if _, err := NewClientConn(good, a, keyholder.Address{}); !errors.Is(err, ErrBadConfig) {
		t.Error(err)
	}
}

func TestBackoff(t *testing.T) {
	b := Backoff{Min: 100 * time.Millisecond, Max: time.Second}
	for n, want := range []time.Duration{100, 200, 400, 800, 1000, 1000, 1000} {
		want *= time.Millisecond
		for range 20 {
			if d := b.delay(n); d < want/2 || d > want {
				t.Fatalf("delay(%d) = %v, want in [%v, %v]", n, d, want/2, want)
			}
		}
	}
	if d := b.delay(1000); d > time.Second {
		t.Fatal(d)
	}
	huge := Backoff{Min: time.Second, Max: math.MaxInt64}
	if d := huge.delay(100); d < huge.Max/2 {
		t.Fatal(d)
	}
	if d := (Backoff{}).delay(3); d != 0 {
		t.Fatal(d)
	}
}

func TestAcceptPolicies(t *testing.T) {
	a, b := keyholder.Address{1}, keyholder.Address{2}
	p := AllowOnly(a)
	if !p(a) || p(b) || !AcceptAny(b) {
		t.Fatal("policies")
	}
	if Signatures.String() != "signatures" || MACs.String() != "macs" || Auth(9).String() != "auth(9)" {
		t.Fatal("names")
	}
}

func TestCloseBeforeServe(t *testing.T) {
	n := newNode(t)
	a, b := net.Pipe()
	defer b.Close()
	c, err := NewServerConn(n.config(MACs), a, AcceptAny)
	if err != nil {
		t.Fatal(err)
	}
	c.Close()
	c.Close()
	<-c.Done()
	if err := c.Serve(context.Background()); err == nil {
		t.Fatal("served after Close")
	}
	if err := c.Send(context.Background(), cast(n.engine, n.engine, "x")); !errors.Is(err, ErrClosed) {
		t.Fatal(err)
	}
	if !c.PeerRouter().IsZero() {
		t.Fatal("peer before up")
	}
	l, err := NewListener(n.config(MACs), "tcp", "127.0.0.1:0", AcceptAny)
	if err != nil {
		t.Fatal(err)
	}
	l.Close()
	l.Close()
	if err := l.Serve(context.Background()); !errors.Is(err, ErrClosed) {
		t.Fatal(err)
	}
}

func TestListenerRestart(t *testing.T) {
	forEachSocketType(t, func(t *testing.T, ct connType) { // a pipe cannot be listened on again
		p := startPair(t, ct, MACs, nil)
		p.lsvc.stop(t)
		recv(t, p.srv.downs, "server down")
		recv(t, p.cli.downs, "client down")
		// Serve again, as a supervisor would: same address.
		runService(t, p.l.Serve)
		c := recv(t, p.cli.ups, "client up again")
		recv(t, p.srv.ups, "server up again")
		mustSend(t, c, cast(p.cli.engine, p.srv.engine, "back"))
		expectPayload(t, p.srv, "back")
	})
}
