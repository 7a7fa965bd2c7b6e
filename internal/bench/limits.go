package bench

import (
	"bufio"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
	"net"
	"os"
	"path/filepath"
	"time"
)

// The physical limits: what the machine does with no framework in the way,
// measured the way the figures they bound are measured.

// limitWorkloads returns the limit rows of the bench table.
func limitWorkloads() []workload {
	ws := []workload{
		{name: "limit.chan_rtt_us", unit: "us", run: plain(chanRTT)},
		{name: "limit.chan_stream_msgs_per_s", unit: "msg/s", better: higherIsBetter, run: plain(chanStream)},
		{name: "limit.skynet_goroutines_ms", unit: "ms", run: plain(goSkynet)},
		{name: "limit.tcp_rtt_us", unit: "us", run: plain(netRTT("tcp"))},
		{name: "limit.tcp_stream_msgs_per_s", unit: "msg/s", better: higherIsBetter, run: plain(netStream("tcp"))},
		{name: "limit.tls_rtt_us", unit: "us", run: plain(tlsRTT)},
		// The critical path of an authenticated round trip: the request
		// is signed (or MACed) and checked, then the reply. Each part is
		// measured alone; the sum is a bound no implementation beats
		// without doing less crypto (a raw TLS ping-pong doing the crypto
		// inline measures more than the sum on a loaded machine, as the
		// scheduler wakes the other side after each long step).
		{name: "limit.tls_rtt_signed_us", unit: "us", derive: &derivation{
			from: []string{"limit.tls_rtt_us", "limit.ed25519_sign_us", "limit.ed25519_verify_us"},
			f:    func(v []float64) float64 { return v[0] + 2*v[1] + 2*v[2] },
			text: "limit.tls_rtt_us + 2 × (limit.ed25519_sign_us + limit.ed25519_verify_us)",
		}},
		{name: "limit.tls_rtt_maced_us", unit: "us", derive: &derivation{
			from: []string{"limit.tls_rtt_us", "limit.gmac_128b_us"},
			f:    func(v []float64) float64 { return v[0] + 4*v[1] },
			text: "limit.tls_rtt_us + 4 × limit.gmac_128b_us",
		}},
		{name: "limit.tls_stream_msgs_per_s", unit: "msg/s", better: higherIsBetter, run: plain(tlsStreamRate)},
	}
	for _, size := range payloadSizes {
		ws = append(ws, workload{name: "limit.tls_stream_" + sizeName(size) + "_mb_per_s", unit: "MB/s", better: higherIsBetter, run: plain(tlsStreamMBps(size))})
	}
	return append(ws,
		workload{name: "limit.ed25519_sign_us", unit: "us", run: plain(ed25519Sign)},
		workload{name: "limit.ed25519_verify_us", unit: "us", run: plain(ed25519Verify)},
		workload{name: "limit.gmac_128b_us", unit: "us", run: plain(gmac128)},
	)
}

const (
	limitPayload = 128
	chanCapacity = 1024
	bufioSize    = 256 << 10
)

// chanRTT is a ping-pong over two unbuffered channels.
func chanRTT(ctx context.Context, o benchOpts) (float64, error) {
	ping, pong := make(chan *[limitPayload]byte), make(chan *[limitPayload]byte)
	done := make(chan struct{})
	go func() {
		defer close(done)
		for m := range ping {
			pong <- m
		}
	}()
	defer func() { close(ping); <-done }()
	msg := new([limitPayload]byte)
	return o.latencyUS(ctx, math.MaxInt, func(n int) (time.Duration, error) {
		start := time.Now()
		for range n {
			ping <- msg
			<-pong
		}
		return time.Since(start), nil
	})
}

// chanStream sends n messages from one goroutine to another over a
// buffered channel, until the receiver has taken them all.
func chanStream(ctx context.Context, o benchOpts) (float64, error) {
	msg := new([limitPayload]byte)
	return o.rate(ctx, math.MaxInt, func(n int) (time.Duration, error) {
		c := make(chan *[limitPayload]byte, chanCapacity)
		done := make(chan struct{})
		start := time.Now()
		go func() {
			defer close(done)
			for range n {
				<-c
			}
		}()
		for range n {
			c <- msg
		}
		<-done
		return time.Since(start), nil
	})
}

// connPair is a connected pair of loopback sockets, TCP on 127.0.0.1 or a
// Unix socket in a temporary directory (or TLS over TCP: newTLSPair).
type connPair struct {
	client, server net.Conn
	cleanup        func()
}

// close closes both ends and removes what the pair made.
func (cp *connPair) close() {
	cp.client.Close()
	cp.server.Close()
	cp.cleanup()
}

func newConnPair(network string) (*connPair, error) {
	var ln net.Listener
	var err error
	var dir string
	switch network {
	case "tcp":
		ln, err = net.Listen("tcp", "127.0.0.1:0")
	case "unix":
		if dir, err = os.MkdirTemp("", "enginekit-bench-"); err == nil {
			ln, err = net.Listen("unix", filepath.Join(dir, "s"))
		}
	default:
		err = fmt.Errorf("unknown network %q", network)
	}
	cleanup := func() {
		if ln != nil {
			ln.Close()
		}
		if dir != "" {
			os.RemoveAll(dir)
		}
	}
	if err != nil {
		cleanup()
		return nil, err
	}
	// The kernel completes the connection in the listen backlog, so Dial
	// does not wait for Accept.
	client, err := net.Dial(ln.Addr().Network(), ln.Addr().String())
	if err != nil {
		cleanup()
		return nil, err
	}
	server, err := ln.Accept()
	if err != nil {
		client.Close()
		cleanup()
		return nil, err
	}
	for _, c := range []net.Conn{client, server} {
		if tc, ok := c.(*net.TCPConn); ok {
			if err := tc.SetNoDelay(true); err != nil {
				client.Close()
				server.Close()
				cleanup()
				return nil, err
			}
		}
	}
	return &connPair{client: client, server: server, cleanup: cleanup}, nil
}

// netRTT is a ping-pong of 128-byte messages over a loopback connection.
func netRTT(network string) func(context.Context, benchOpts) (float64, error) {
	return func(ctx context.Context, o benchOpts) (float64, error) {
		cp, err := newConnPair(network)
		if err != nil {
			return 0, err
		}
		defer cp.close()
		return pingPong(ctx, o, cp)
	}
}

// pingPong times round trips of 128-byte messages over cp: the client
// writes one, the server echoes it, the client reads it back.
func pingPong(ctx context.Context, o benchOpts, cp *connPair) (float64, error) {
	done := make(chan struct{})
	go func() { // echo until the client hangs up
		defer close(done)
		defer cp.server.Close()
		var buf [limitPayload]byte
		for {
			if _, err := io.ReadFull(cp.server, buf[:]); err != nil {
				return
			}
			if _, err := cp.server.Write(buf[:]); err != nil {
				return
			}
		}
	}()
	defer func() { cp.client.Close(); <-done }()
	var buf [limitPayload]byte
	return o.latencyUS(ctx, math.MaxInt, func(n int) (time.Duration, error) {
		start := time.Now()
		for range n {
			if _, err := cp.client.Write(buf[:]); err != nil {
				return 0, err
			}
			if _, err := io.ReadFull(cp.client, buf[:]); err != nil {
				return 0, err
			}
		}
		return time.Since(start), nil
	})
}

// netStream is the stream of framed 128-byte messages over a loopback
// connection.
func netStream(network string) func(context.Context, benchOpts) (float64, error) {
	return func(ctx context.Context, o benchOpts) (float64, error) {
		cp, err := newConnPair(network)
		if err != nil {
			return 0, err
		}
		defer cp.close()
		return streamRate(ctx, o, cp, limitPayload)
	}
}

// streamRate sends n framed messages of size bytes one way over cp,
// through a bufio.Writer (bigger messages go straight to the connection),
// to a reader that parses each frame (4-byte big-endian length, then the
// payload) from a bufio.Reader; the clock stops when the reader has parsed
// all n. It returns messages per second.
func streamRate(ctx context.Context, o benchOpts, cp *connPair, size int) (float64, error) {
	want := make(chan int)
	got := make(chan error, 1)
	done := make(chan struct{})
	go func() {
		defer close(done)
		// Closing on a read error makes the writer fail instead of
		// blocking on a full socket buffer.
		defer cp.server.Close()
		br := bufio.NewReaderSize(cp.server, bufioSize)
		buf := make([]byte, size)
		for n := range want {
			err := readFrames(br, buf, n)
			got <- err
			if err != nil {
				return
			}
		}
	}()
	defer func() { close(want); cp.client.Close(); <-done }()

	bw := bufio.NewWriterSize(cp.client, bufioSize)
	var hdr [4]byte
	binary.BigEndian.PutUint32(hdr[:], uint32(size))
	payload := make([]byte, size)
	// Bound a round's bytes, so that the loop sizing cannot run away on
	// big messages.
	maxN := max(1, (256<<20)/size)
	return o.rate(ctx, maxN, func(n int) (time.Duration, error) {
		start := time.Now()
		want <- n
		for range n {
			bw.Write(hdr[:])
			bw.Write(payload)
		}
		if err := bw.Flush(); err != nil {
			return 0, err
		}
		if err := <-got; err != nil {
			return 0, err
		}
		return time.Since(start), nil
	})
}

var errFrameTooLong = errors.New("frame longer than the buffer")

func readFrames(br *bufio.Reader, buf []byte, n int) error {
	var hdr [4]byte
	for range n {
		if _, err := io.ReadFull(br, hdr[:]); err != nil {
			return err
		}
		l := binary.BigEndian.Uint32(hdr[:])
		if l > uint32(len(buf)) {
			return errFrameTooLong
		}
		if _, err := io.ReadFull(br, buf[:l]); err != nil {
			return err
		}
	}
	return nil
}
