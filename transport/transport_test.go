package transport_test

import (
	"context"
	"errors"
	"testing"

	"github.com/enginekit/enginekit/genserver"
	"github.com/enginekit/enginekit/keyholder"
	"github.com/enginekit/enginekit/netconn"
	"github.com/enginekit/enginekit/payload"
	"github.com/enginekit/enginekit/transport"
)

func TestParseEndpoint(t *testing.T) {
	for _, tc := range []struct {
		in, network, address string
		ok                   bool
	}{
		{"tcp://127.0.0.1:7001", "tcp", "127.0.0.1:7001", true},
		{"tcp://[::1]:7001", "tcp", "[::1]:7001", true},
		{"unix:///run/node.sock", "unix", "/run/node.sock", true},
		{"unix://relative.sock", "unix", "relative.sock", true},
		{"tcp://", "", "", false},
		{"tcp://host:1/path", "", "", false},
		{"unix://", "", "", false},
		{"udp://127.0.0.1:1", "", "", false},
		{"127.0.0.1:7001", "", "", false},
		{"::::", "", "", false},
	} {
		n, a, err := transport.ParseEndpoint(tc.in)
		if (err == nil) != tc.ok || n != tc.network || a != tc.address {
			t.Errorf("ParseEndpoint(%q) = %q, %q, %v", tc.in, n, a, err)
		}
		if tc.ok && transport.Endpoint(n, a) != tc.in {
			t.Errorf("Endpoint(%q, %q) = %q, want %q", n, a, transport.Endpoint(n, a), tc.in)
		}
	}
}

func TestNewValidates(t *testing.T) {
	kh, _ := keyholder.New(keyholder.Config{})
	reg, _ := payload.NewRegistry(payload.Limits{})
	sys := genserver.NewSystem(genserver.Config{})
	for _, cfg := range []transport.Config{
		{},
		{System: sys, Keyholder: kh},
		{System: sys, Keyholder: kh, Registry: reg, ForgetGrace: -1},
		{System: sys, Keyholder: kh, Registry: reg, Net: netconn.Config{MaxFrameSize: 3}},
	} {
		if _, err := transport.New(cfg); err == nil {
			t.Errorf("New(%+v) accepted a bad config", cfg)
		}
	}
}

func TestNotRunning(t *testing.T) {
	kh, _ := keyholder.New(keyholder.Config{})
	reg, _ := payload.NewRegistry(payload.Limits{})
	tr, err := transport.New(transport.Config{System: genserver.NewSystem(genserver.Config{}), Keyholder: kh, Registry: reg})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tr.Listen(context.Background(), "tcp://127.0.0.1:0", netconn.AcceptAny); !errors.Is(err, transport.ErrNotRunning) {
		t.Fatalf("Listen before Start: %v", err)
	}
	if err := tr.Connect(context.Background(), "tcp://127.0.0.1:1", kh.Router()); !errors.Is(err, transport.ErrNotRunning) {
		t.Fatalf("Connect before Start: %v", err)
	}
	if _, _, err := tr.SpawnEngine("x", func() genserver.Server { return nil }); !errors.Is(err, transport.ErrNotRunning) {
		t.Fatalf("SpawnEngine before Start: %v", err)
	}
}

func TestListenErrors(t *testing.T) {
	kh, _ := keyholder.New(keyholder.Config{})
	reg, _ := payload.NewRegistry(payload.Limits{})
	sys := genserver.NewSystem(genserver.Config{})
	defer sys.Stop(context.Background())
	tr, err := transport.New(transport.Config{System: sys, Keyholder: kh, Registry: reg})
	if err != nil {
		t.Fatal(err)
	}
	if err := tr.Start(); err != nil {
		t.Fatal(err)
	}
	defer tr.Close()
	addr, err := tr.Listen(context.Background(), "tcp://127.0.0.1:0", netconn.AcceptAny)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tr.Listen(context.Background(), "tcp://"+addr.String(), netconn.AcceptAny); err == nil {
		t.Fatal("listening twice on one port succeeded")
	}
	if _, err := tr.Listen(context.Background(), "carrier-pigeon://x", netconn.AcceptAny); err == nil {
		t.Fatal("a bad endpoint was accepted")
	}
}

// A bad netconn config inside a transport Config is refused with an error
// that matches both packages' ErrBadConfig.
func TestVerifyWrapsNetconnError(t *testing.T) {
	cfg := transport.DefaultConfig()
	cfg.System = genserver.NewSystem(genserver.Config{Name: "verify"})
	defer cfg.System.Stop(context.Background())
	kh, err := keyholder.New(keyholder.Config{})
	if err != nil {
		t.Fatal(err)
	}
	cfg.Keyholder = kh
	cfg.Registry, _ = payload.NewRegistry(payload.Limits{})
	cfg.Net.MaxFrameSize = 1 // below wire.MinFrameSize
	err = cfg.Verify()
	if !errors.Is(err, transport.ErrBadConfig) || !errors.Is(err, netconn.ErrBadConfig) {
		t.Fatalf("Verify = %v; want both ErrBadConfigs", err)
	}
}

// Close is safe from several goroutines at once and after the first: each
// returns once the transport has stopped.
func TestCloseConcurrentAndTwice(t *testing.T) {
	sys := genserver.NewSystem(genserver.Config{Name: "close"})
	defer sys.Stop(context.Background())
	kh, err := keyholder.New(keyholder.Config{})
	if err != nil {
		t.Fatal(err)
	}
	reg, _ := payload.NewRegistry(payload.Limits{})
	tr, err := transport.New(transport.Config{System: sys, Keyholder: kh, Registry: reg})
	if err != nil {
		t.Fatal(err)
	}
	if err := tr.Start(); err != nil {
		t.Fatal(err)
	}
	errs := make(chan error, 2)
	for range 2 {
		go func() { errs <- tr.Close() }()
	}
	for range 2 {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	if _, err := tr.Listen(context.Background(), "tcp://127.0.0.1:0", netconn.AcceptAny); !errors.Is(err, transport.ErrNotRunning) {
		t.Fatalf("Listen after Close: %v, want ErrNotRunning", err)
	}
	if err := tr.Close(); err != nil {
		t.Fatal(err)
	}
}
