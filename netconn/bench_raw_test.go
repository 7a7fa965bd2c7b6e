package netconn

import (
	"bufio"
	"crypto/tls"
	"encoding/binary"
	"io"
	"net"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/enginekit/enginekit/keyholder"
)

// rawTLS is the physical limit the benchmarks compare with: a mutual TLS
// 1.3 connection over loopback TCP, with the same certificates and cipher
// negotiation as a Conn, carrying length-prefixed messages and nothing else
// (no batches, no tags, no replay check).
type rawTLS struct {
	cli, srv *tls.Conn
}

func newRawTLS(b *testing.B) *rawTLS {
	b.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	defer ln.Close()
	cert := func() tls.Certificate {
		kh, err := keyholder.New(keyholder.Config{})
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { kh.Close() })
		c, err := kh.TLSCertificate()
		if err != nil {
			b.Fatal(err)
		}
		return c
	}
	scfg := &tls.Config{MinVersion: tls.VersionTLS13, Certificates: []tls.Certificate{cert()}, ClientAuth: tls.RequireAnyClientCert}
	ccfg := &tls.Config{MinVersion: tls.VersionTLS13, Certificates: []tls.Certificate{cert()}, InsecureSkipVerify: true}
	var (
		srv  *tls.Conn
		serr error
		wg   sync.WaitGroup
	)
	wg.Add(1)
	go func() {
		defer wg.Done()
		c, err := ln.Accept()
		if err != nil {
			serr = err
			return
		}
		srv = tls.Server(c, scfg)
		serr = srv.Handshake()
	}()
	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		b.Fatal(err)
	}
	cli := tls.Client(c, ccfg)
	if err := cli.Handshake(); err != nil {
		b.Fatal(err)
	}
	wg.Wait()
	if serr != nil {
		b.Fatal(serr)
	}
	r := &rawTLS{cli: cli, srv: srv}
	b.Cleanup(func() { cli.Close(); srv.Close() })
	return r
}

// stream sends n messages of size bytes from cli to srv, through a 64 KiB
// write buffer (bigger messages go straight to the TLS conn), and returns
// when srv has read them all.
func (r *rawTLS) stream(b *testing.B, n, size int) {
	done := make(chan error, 1)
	go func() {
		br := bufio.NewReaderSize(r.srv, 64<<10)
		buf := make([]byte, size)
		var hdr [4]byte
		for range n {
			if _, err := io.ReadFull(br, hdr[:]); err != nil {
				done <- err
				return
			}
			if _, err := io.ReadFull(br, buf[:binary.BigEndian.Uint32(hdr[:])]); err != nil {
				done <- err
				return
			}
		}
		done <- nil
	}()
	bw := bufio.NewWriterSize(r.cli, 64<<10)
	msg := make([]byte, size)
	var hdr [4]byte
	binary.BigEndian.PutUint32(hdr[:], uint32(size))
	for range n {
		bw.Write(hdr[:])
		bw.Write(msg)
	}
	if err := bw.Flush(); err != nil {
		b.Fatal(err)
	}
	if err := <-done; err != nil {
		b.Fatal(err)
	}
}

// pingPong sends n messages of size bytes from cli to srv, each echoed back
// before the next is sent.
func (r *rawTLS) pingPong(b *testing.B, n, size int) {
	done := make(chan error, 1)
	go func() {
		buf := make([]byte, 4+size)
		for range n {
			if _, err := io.ReadFull(r.srv, buf); err != nil {
				done <- err
				return
			}
			if _, err := r.srv.Write(buf); err != nil {
				done <- err
				return
			}
		}
		done <- nil
	}()
	buf := make([]byte, 4+size)
	binary.BigEndian.PutUint32(buf, uint32(size))
	for range n {
		if _, err := r.cli.Write(buf); err != nil {
			b.Fatal(err)
		}
		if _, err := io.ReadFull(r.cli, buf); err != nil {
			b.Fatal(err)
		}
	}
	if err := <-done; err != nil {
		b.Fatal(err)
	}
}

// cpuClock measures the CPU time (user and system, all threads) the process
// spends, which the other load on a shared machine disturbs far less than
// wall time: benchmarks report it per operation as cpu-ns/op.
type cpuClock struct{ start time.Duration }

func cpuNow() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func startCPU() cpuClock { return cpuClock{cpuNow()} }

func (c cpuClock) report(b *testing.B, ops int) {
	b.ReportMetric(float64(cpuNow()-c.start)/float64(max(ops, 1)), "cpu-ns/op")
}
