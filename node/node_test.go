package node_test

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/enginekit/enginekit/admin"
	"github.com/enginekit/enginekit/examples/echo"
	"github.com/enginekit/enginekit/genserver"
	"github.com/enginekit/enginekit/keyholder"
	"github.com/enginekit/enginekit/netconn"
	"github.com/enginekit/enginekit/node"
	"github.com/enginekit/enginekit/payload"
	"github.com/enginekit/enginekit/transport"
)

const wait = 20 * time.Second

var cheapKDF = keyholder.KDFParams{Time: 1, MemoryKiB: 64, Threads: 1}

func pass(create bool) ([]byte, error) { return []byte("correct horse"), nil }

func start(t *testing.T, cfg node.Config) *node.Node {
	t.Helper()
	n, err := node.Start(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := n.Stop(context.Background()); err != nil {
			t.Error(err)
		}
	})
	return n
}

func TestVerify(t *testing.T) {
	var r keyholder.Address
	r[0] = 1
	for _, tc := range []struct {
		name string
		cfg  node.Config
		want string
	}{
		{"file without passphrase", node.Config{Keys: node.Keys{File: "x.keys"}}, "needs Keys.Passphrase"},
		{"holder and file", node.Config{Keys: node.Keys{File: "x", Passphrase: pass, Holder: &keyholder.Keyholder{}}}, "both set"},
		{"engine twice", node.Config{Engines: []node.Engine{{Name: "e", Factory: echo.New}, {Name: "e", Factory: echo.New}}}, "given twice"},
		{"engine without factory", node.Config{Engines: []node.Engine{{Name: "e"}}}, "exactly one"},
		{"engine without name", node.Config{Engines: []node.Engine{{Factory: echo.New}}}, "1 to 255 bytes"},
		{"listen without scheme", node.Config{Listen: []node.Listener{{Endpoint: "127.0.0.1:1", Accept: netconn.AcceptAny}}}, "listen"},
		{"listen admits no one", node.Config{Listen: []node.Listener{{Endpoint: "tcp://127.0.0.1:0"}}}, "admit no one"},
		{"peer without router", node.Config{Peers: []node.Peer{{Endpoint: "tcp://127.0.0.1:1"}}}, "no Router"},
		{"transport system set", node.Config{Transport: transport.Config{System: genserver.NewSystem(genserver.Config{})}}, "node's to set"},
		{"bad auth", node.Config{Transport: transport.Config{Auth: 7}}, "Auth"},
		{"nil register", node.Config{Register: []func(*payload.Registry) error{nil}}, "Register[0]"},
		{"ok: defaults written out", node.DefaultConfig(), ""},
		{"ok: peer policy", node.Config{Listen: []node.Listener{{Endpoint: "tcp://127.0.0.1:0"}}, Peers: []node.Peer{{Endpoint: "unix:///x.sock", Router: r}}}, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.cfg.Verify()
			if tc.want == "" {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			if !errors.Is(err, node.ErrBadConfig) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Verify() = %v, want ErrBadConfig mentioning %q", err, tc.want)
			}
			if _, err := node.Start(context.Background(), tc.cfg); !errors.Is(err, node.ErrBadConfig) {
				t.Fatalf("Start: %v, want ErrBadConfig", err)
			}
		})
	}
}

// A busy listen address fails Start before any engine runs and before the
// key file is created.
func TestBusyListenAddress(t *testing.T) {
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	var incarnations atomic.Int32
	keys := filepath.Join(t.TempDir(), "n.keys")
	_, err = node.Start(context.Background(), node.Config{
		Keys:    node.Keys{File: keys, Passphrase: pass, KDF: cheapKDF},
		Engines: []node.Engine{{Name: "echo", Factory: func() genserver.Server { incarnations.Add(1); return echo.New() }}},
		Listen:  []node.Listener{{Endpoint: "tcp://" + busy.Addr().String(), Accept: netconn.AcceptAny}},
	})
	if err == nil || !strings.Contains(err.Error(), "address already in use") {
		t.Fatalf("Start on a busy port: %v", err)
	}
	if n := incarnations.Load(); n != 0 {
		t.Errorf("%d engine incarnations started", n)
	}
	if _, err := os.Lstat(keys); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("key file written: %v", err)
	}
}

func TestRequirePeers(t *testing.T) {
	var r keyholder.Address
	r[0] = 1
	sock := filepath.Join(t.TempDir(), "nobody.sock")
	_, err := node.Start(context.Background(), node.Config{
		Peers: []node.Peer{{Endpoint: "unix://" + sock, Router: r}}, RequirePeers: true,
	})
	if !errors.Is(err, node.ErrPeerDown) {
		t.Fatalf("Start with a peer down: %v, want ErrPeerDown", err)
	}
}

// The key file keeps addresses across runs; engines added later get an
// identity without changing the others'.
func TestKeyFile(t *testing.T) {
	keys := filepath.Join(t.TempDir(), "n.keys")
	cfg := node.Config{
		Keys:    node.Keys{File: keys, Passphrase: pass, KDF: cheapKDF},
		Engines: []node.Engine{{Name: "a", Factory: echo.New}},
	}
	run := func(cfg node.Config) (keyholder.Address, []node.EngineInfo) {
		n, err := node.Start(context.Background(), cfg)
		if err != nil {
			t.Fatal(err)
		}
		defer n.Stop(context.Background())
		return n.Router(), n.Engines()
	}
	r1, e1 := run(cfg)
	cfg.Engines = append(cfg.Engines, node.Engine{Name: "b", Factory: echo.New})
	r2, e2 := run(cfg)
	if r1 != r2 || e1[0] != e2[0] || len(e2) != 2 || e2[1].Name != "b" {
		t.Fatalf("first run %v %v, second %v %v", r1, e1, r2, e2)
	}
	kh, err := keyholder.Load(keys, []byte("correct horse"))
	if err != nil {
		t.Fatal(err)
	}
	defer kh.Close()
	if a, ok := kh.Engine("b"); !ok || a != e2[1].Address {
		t.Fatalf("engine b not saved: %v %v", a, ok)
	}

	cfg.Keys.Passphrase = func(bool) ([]byte, error) { return []byte("wrong"), nil }
	if _, err := node.Start(context.Background(), cfg); !errors.Is(err, node.ErrWrongPassphrase) {
		t.Fatalf("wrong passphrase: %v", err)
	}
}

// Two nodes, over TCP and a Unix socket: b dials a and calls a's engine;
// when b stops, a forgets b's engine at once (engines stop before the
// transport, and each stop sends a forget).
func TestTwoNodes(t *testing.T) {
	for _, network := range []string{"tcp", "unix"} {
		t.Run(network, func(t *testing.T) {
			ep := "tcp://127.0.0.1:0"
			if network == "unix" {
				ep = "unix://" + filepath.Join(t.TempDir(), "a.sock")
			}
			forgot := make(chan keyholder.Address, 4)
			a := start(t, node.Config{
				Name:     "a",
				Register: []func(*payload.Registry) error{echo.Register},
				Engines:  []node.Engine{{Name: "echo", Factory: echo.New}},
				Listen:   []node.Listener{{Endpoint: ep, Accept: netconn.AcceptAny}},
				Transport: transport.Config{Auth: netconn.MACs,
					OnForget: func(e keyholder.Address) { forgot <- e }},
			})
			learned := make(chan keyholder.Address, 4)
			b, err := node.Start(context.Background(), node.Config{
				Name:     "b",
				Register: []func(*payload.Registry) error{echo.Register},
				Engines:  []node.Engine{{Name: "echo", Factory: echo.New}},
				Peers:    []node.Peer{{Endpoint: a.ListenAddrs()[0], Router: a.Router()}}, RequirePeers: true,
				Transport: transport.Config{Auth: netconn.MACs,
					OnLearn: func(e, _ keyholder.Address) { learned <- e }},
			})
			if err != nil {
				t.Fatal(err)
			}
			aEcho, _ := a.Engine("echo")
			select {
			case e := <-learned:
				if e != aEcho {
					t.Fatalf("b learned %v, want %v", e, aEcho)
				}
			case <-time.After(wait):
				t.Fatal("b never learned a's engine")
			}
			ctx, cancel := context.WithTimeout(context.Background(), wait)
			defer cancel()
			got, err := genserver.Call[echo.Echo](ctx, b.System(), genserver.Name(aEcho.String()), echo.Echo{Text: "hi"})
			if err != nil || got.Text != "hi" {
				t.Fatalf("call across nodes: %v %v", got, err)
			}
			bEcho, _ := b.Engine("echo")
			if err := b.Stop(context.Background()); err != nil {
				t.Fatal(err)
			}
			if !errors.Is(b.Err(), node.ErrStopped) {
				t.Fatalf("Err after Stop: %v", b.Err())
			}
			select {
			case e := <-forgot:
				if e != bEcho {
					t.Fatalf("a forgot %v, want %v", e, bEcho)
				}
			case <-time.After(wait):
				t.Fatal("a never forgot b's engine")
			}
		})
	}
}

type crasher struct{}

func (crasher) HandleCall(*genserver.Process, genserver.From, any) (any, error) { return nil, nil }
func (crasher) HandleCast(*genserver.Process, any)                              { panic("boom") }

// An engines' supervisor that gives up closes Done, and Err says why.
func TestSupervisorGivesUp(t *testing.T) {
	n := start(t, node.Config{
		MaxRestarts: -1, // no restart at all
		Engines:     []node.Engine{{Name: "crasher", Factory: func() genserver.Server { return crasher{} }}},
	})
	addr, _ := n.Engine("crasher")
	if err := n.System().Cast(genserver.Name(addr.String()), "crash"); err != nil {
		t.Fatal(err)
	}
	select {
	case <-n.Done():
	case <-time.After(wait):
		t.Fatal("Done not closed")
	}
	if err := n.Err(); err == nil || errors.Is(err, node.ErrStopped) || !strings.Contains(err.Error(), "engines supervisor") {
		t.Fatalf("Err = %v", err)
	}
}

// A stale Unix socket file left by a killed node is replaced.
func TestStaleSocket(t *testing.T) {
	sock := filepath.Join(t.TempDir(), "s.sock")
	ln, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	ln.(*net.UnixListener).SetUnlinkOnClose(false)
	ln.Close() // the file stays, as after a kill
	n := start(t, node.Config{Listen: []node.Listener{{Endpoint: "unix://" + sock, Accept: netconn.AcceptAny}}})
	if got := n.ListenAddrs(); len(got) != 1 || got[0] != "unix://"+sock {
		t.Fatalf("ListenAddrs = %v", got)
	}
}

// An admin server runs with the node, and a busy admin address fails Start
// before anything runs.
func TestAdmin(t *testing.T) {
	n := start(t, node.Config{Admin: &admin.Config{Addr: "127.0.0.1:0"}, Engines: []node.Engine{{Name: "echo", Factory: echo.New}}})
	resp, err := http.Get(n.Admin().URL() + "/api/processes")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || !strings.Contains(string(body), "echo") {
		t.Fatalf("admin /api/processes: %d %s", resp.StatusCode, body)
	}

	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	var incarnations atomic.Int32
	_, err = node.Start(context.Background(), node.Config{
		Admin:   &admin.Config{Addr: busy.Addr().String()},
		Engines: []node.Engine{{Name: "echo", Factory: func() genserver.Server { incarnations.Add(1); return echo.New() }}},
	})
	if err == nil || !strings.Contains(err.Error(), "address already in use") || incarnations.Load() != 0 {
		t.Fatalf("busy admin address: %v, %d incarnations", err, incarnations.Load())
	}
}

// DefaultConfig writes out what the zero Config's fields default to.
func TestDefaultConfig(t *testing.T) {
	d := node.DefaultConfig()
	if d.Name != node.DefaultName || d.MaxRestarts != node.DefaultMaxRestarts || d.Period != node.DefaultPeriod {
		t.Fatalf("%+v", d)
	}
}
