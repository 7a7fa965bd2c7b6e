package relay_test

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"path/filepath"
	"testing"

	"github.com/enginekit/enginekit/internal/relay"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// echoServer echoes lines until closed.
func echoServer(t *testing.T, network, addr string) net.Listener {
	ln, err := net.Listen(network, addr)
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() { _, _ = io.Copy(c, c); c.Close() }()
		}
	}()
	t.Cleanup(func() { ln.Close(); <-done })
	return ln
}

func TestRelayAndCut(t *testing.T) {
	for _, network := range []string{"tcp", "unix"} {
		t.Run(network, func(t *testing.T) {
			addr := func(name string) string {
				if network == "unix" {
					return filepath.Join(t.TempDir(), name)
				}
				return "127.0.0.1:0"
			}
			srv := echoServer(t, network, addr("srv.sock"))
			r, err := relay.New(network, addr("relay.sock"), network, srv.Addr().String())
			if err != nil {
				t.Fatal(err)
			}
			defer r.Close()
			for round := 0; round < 2; round++ { // works again after a cut
				c, err := net.Dial(network, r.Addr().String())
				if err != nil {
					t.Fatal(err)
				}
				fmt.Fprintln(c, "ping")
				line, err := bufio.NewReader(c).ReadString('\n')
				if err != nil || line != "ping\n" {
					t.Fatalf("round %d: %q, %v", round, line, err)
				}
				r.Cut()
				if _, err := bufio.NewReader(c).ReadString('\n'); err == nil {
					t.Fatal("connection survived the cut")
				}
				c.Close()
			}
			if err := r.Close(); err != nil {
				t.Fatal(err)
			}
			if err := r.Close(); err != nil { // twice is fine
				t.Fatalf("second Close: %v", err)
			}
		})
	}
}

// An unplugged relay refuses new connections (the dialler's connection is
// closed at once) until it is plugged back.
func TestUnplugAndPlug(t *testing.T) {
	srv := echoServer(t, "tcp", "127.0.0.1:0")
	r, err := relay.New("tcp", "127.0.0.1:0", "tcp", srv.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	ping := func() error {
		c, err := net.Dial("tcp", r.Addr().String())
		if err != nil {
			return err
		}
		defer c.Close()
		fmt.Fprintln(c, "ping")
		line, err := bufio.NewReader(c).ReadString('\n')
		if err == nil && line != "ping\n" {
			err = fmt.Errorf("echoed %q", line)
		}
		return err
	}
	if err := ping(); err != nil {
		t.Fatal(err)
	}
	r.Unplug()
	if err := ping(); err == nil {
		t.Fatal("an unplugged relay relayed")
	}
	r.Plug()
	if err := ping(); err != nil {
		t.Fatalf("after Plug: %v", err)
	}
}
