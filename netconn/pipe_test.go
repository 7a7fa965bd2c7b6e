package netconn

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"os"
	"testing"
	"time"
)

func pipePair(t *testing.T) (net.Conn, net.Conn) {
	t.Helper()
	pl := NewPipeListener("p")
	t.Cleanup(func() { pl.Close() })
	accepted := make(chan net.Conn, 1)
	go func() {
		c, _ := pl.Accept()
		accepted <- c
	}()
	cli, err := pl.Dial(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	srv := recv(t, accepted, "accept")
	t.Cleanup(func() { cli.Close(); srv.Close() })
	return srv, cli
}

// The in-memory connection buffers like a socket, so both ends can write at
// once (a TLS alert against a handshake flight) without a deadlock.
func TestPipeBuffersBothWays(t *testing.T) {
	a, b := pipePair(t)
	msg := bytes.Repeat([]byte("x"), 64<<10)
	for _, c := range []net.Conn{a, b} {
		if n, err := c.Write(msg); err != nil || n != len(msg) {
			t.Fatal(n, err)
		}
	}
	for _, c := range []net.Conn{a, b} {
		got := make([]byte, len(msg))
		if _, err := io.ReadFull(c, got); err != nil || !bytes.Equal(got, msg) {
			t.Fatal(err)
		}
	}
}

// A full buffer blocks the writer until the reader reads, or its deadline.
func TestPipeBackpressureAndDeadlines(t *testing.T) {
	a, b := pipePair(t)
	a.SetWriteDeadline(time.Now().Add(10 * time.Millisecond))
	n, err := a.Write(make([]byte, PipeBufferSize+100))
	if n != PipeBufferSize || !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("wrote %d: %v", n, err)
	}
	var ne net.Error
	if !errors.As(err, &ne) || !ne.Timeout() {
		t.Fatal("not a timeout")
	}
	a.SetWriteDeadline(time.Time{})
	done := make(chan error, 1)
	go func() {
		_, err := a.Write(make([]byte, 1000))
		done <- err
	}()
	if _, err := io.ReadFull(b, make([]byte, PipeBufferSize)); err != nil {
		t.Fatal(err)
	}
	if err := recv(t, done, "write after room"); err != nil {
		t.Fatal(err)
	}

	// A blocked read ends when its deadline moves into the past.
	if _, err := io.ReadFull(b, make([]byte, 1000)); err != nil {
		t.Fatal(err)
	}
	read := make(chan error, 1)
	go func() {
		_, err := b.Read(make([]byte, 1))
		read <- err
	}()
	b.SetReadDeadline(aLongTimeAgo)
	expectErr(t, recv(t, read, "interrupted read"), os.ErrDeadlineExceeded)
}

// Close: the peer reads what was written, then EOF; its writes fail.
// CloseWrite: the peer reads EOF, and this end still reads.
func TestPipeClose(t *testing.T) {
	a, b := pipePair(t)
	a.Write([]byte("last words"))
	a.(interface{ CloseWrite() error }).CloseWrite()
	got, err := io.ReadAll(b)
	if err != nil || string(got) != "last words" {
		t.Fatalf("%q %v", got, err)
	}
	if _, err := a.Write([]byte("more")); err == nil {
		t.Fatal("write after CloseWrite")
	}
	b.Write([]byte("reply"))
	buf := make([]byte, 5)
	if _, err := io.ReadFull(a, buf); err != nil || string(buf) != "reply" {
		t.Fatal(err)
	}
	b.Close()
	if _, err := a.Write([]byte("to nobody")); err == nil {
		t.Fatal("write to a closed peer")
	}
	if _, err := b.Read(buf); !errors.Is(err, net.ErrClosed) {
		t.Fatal(err)
	}
	pl := NewPipeListener("gone")
	pl.Close()
	if _, err := pl.Dial(context.Background()); !errors.Is(err, net.ErrClosed) {
		t.Fatal(err)
	}
	if _, err := pl.Accept(); !errors.Is(err, net.ErrClosed) {
		t.Fatal(err)
	}
}
