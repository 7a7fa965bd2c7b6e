package bench

import (
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/tls"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"strconv"
	"time"

	"github.com/enginekit/enginekit/keyholder"
)

// The limits of an authenticated link: raw mutual TLS 1.3 over loopback
// TCP, with the node's own kind of certificates (keyholder.TLSCertificate)
// and nothing else (no envelopes, no batches, no replay check), and the
// machine's cost of the per-message authentication the nodes add.

// payloadSizes are the points of the payload curve.
var payloadSizes = []int{limitPayload, 4 << 10, 64 << 10, 1 << 20}

// sizeName names a payload size in figure names: 128b, 4kb, 64kb, 1mb.
func sizeName(size int) string {
	switch {
	case size >= 1<<20 && size%(1<<20) == 0:
		return strconv.Itoa(size>>20) + "mb"
	case size >= 1<<10 && size%(1<<10) == 0:
		return strconv.Itoa(size>>10) + "kb"
	}
	return strconv.Itoa(size) + "b"
}

// newTLSPair connects two TLS 1.3 endpoints over loopback TCP, each with a
// router certificate of a fresh keyholder, the client's required by the
// server, as netconn does.
func newTLSPair() (*connPair, error) {
	cp, err := newConnPair("tcp")
	if err != nil {
		return nil, err
	}
	// The certificates sign with the keyholders' keys during the
	// handshake, so the keyholders live as long as the pair.
	certs := make([]tls.Certificate, 2)
	for i := range certs {
		kh, err := keyholder.New(keyholder.Config{})
		if err != nil {
			cp.close()
			return nil, err
		}
		cleanup := cp.cleanup
		cp.cleanup = func() { kh.Close(); cleanup() }
		if certs[i], err = kh.TLSCertificate(); err != nil {
			cp.close()
			return nil, err
		}
	}
	srv := tls.Server(cp.server, &tls.Config{
		MinVersion: tls.VersionTLS13, Certificates: certs[:1], ClientAuth: tls.RequireAnyClientCert,
	})
	cli := tls.Client(cp.client, &tls.Config{
		MinVersion: tls.VersionTLS13, Certificates: certs[1:], InsecureSkipVerify: true, // a bench of the link, not of trust
	})
	errc := make(chan error, 1)
	go func() { errc <- srv.Handshake() }()
	err = cli.Handshake()
	if err != nil {
		cp.client.Close() // unblocks the server's handshake
	}
	if serr := <-errc; err == nil {
		err = serr
	}
	if err != nil {
		cp.close()
		return nil, fmt.Errorf("TLS handshake: %w", err)
	}
	cp.client, cp.server = cli, srv
	return cp, nil
}

// tlsRTT is a ping-pong of 128-byte messages over raw TLS.
func tlsRTT(ctx context.Context, o benchOpts) (float64, error) {
	cp, err := newTLSPair()
	if err != nil {
		return 0, err
	}
	defer cp.close()
	return pingPong(ctx, o, cp)
}

var errBadTag = errors.New("signature does not verify")

// tlsStreamRate is the raw TLS stream of framed 128-byte messages.
func tlsStreamRate(ctx context.Context, o benchOpts) (float64, error) {
	cp, err := newTLSPair()
	if err != nil {
		return 0, err
	}
	defer cp.close()
	return streamRate(ctx, o, cp, limitPayload)
}

// tlsStreamMBps is the raw TLS stream of framed messages of size bytes, in
// MB/s of payload.
func tlsStreamMBps(size int) func(context.Context, benchOpts) (float64, error) {
	return func(ctx context.Context, o benchOpts) (float64, error) {
		cp, err := newTLSPair()
		if err != nil {
			return 0, err
		}
		defer cp.close()
		rate, err := streamRate(ctx, o, cp, size)
		return rate * float64(size) / 1e6, err
	}
}

func ed25519Sign(ctx context.Context, o benchOpts) (float64, error) {
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return 0, err
	}
	msg := make([]byte, limitPayload)
	return o.latencyUS(ctx, math.MaxInt, func(n int) (time.Duration, error) {
		start := time.Now()
		for range n {
			msg[0] = ed25519.Sign(priv, msg)[0]
		}
		return time.Since(start), nil
	})
}

func ed25519Verify(ctx context.Context, o benchOpts) (float64, error) {
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return 0, err
	}
	msg := make([]byte, limitPayload)
	sig := ed25519.Sign(priv, msg)
	return o.latencyUS(ctx, math.MaxInt, func(n int) (time.Duration, error) {
		start := time.Now()
		for range n {
			if !ed25519.Verify(pub, msg, sig) {
				return 0, errBadTag
			}
		}
		return time.Since(start), nil
	})
}

// gmac128 is one GMAC of 128 bytes, as a MAC-mode batch tag is made
// (keyholder.MACSession): AES-256-GCM sealing an empty plaintext with the
// message as additional data, on a reused AEAD, a fresh nonce each time.
func gmac128(ctx context.Context, o benchOpts) (float64, error) {
	block, err := aes.NewCipher(make([]byte, 32))
	if err != nil {
		return 0, err
	}
	gcm, err := cipher.NewGCM(block)
	if err != nil {
		return 0, err
	}
	msg := make([]byte, limitPayload)
	nonce := make([]byte, gcm.NonceSize())
	tag := make([]byte, 0, gcm.Overhead())
	return o.latencyUS(ctx, math.MaxInt, func(n int) (time.Duration, error) {
		start := time.Now()
		for range n {
			binary.BigEndian.PutUint64(nonce[4:], binary.BigEndian.Uint64(nonce[4:])+1)
			tag = gcm.Seal(tag[:0], nonce, nil, msg)
			msg[0] = tag[0]
		}
		return time.Since(start), nil
	})
}

// goSkynet is skynet in plain Go: a goroutine per node of the tree, each
// sending its sum to its parent over a channel.
func goSkynet(ctx context.Context, o benchOpts) (float64, error) {
	return o.heavy(ctx, func() (time.Duration, error) {
		c := make(chan int, 1)
		start := time.Now()
		go skynetGo(c, 0, o.skynet)
		sum := <-c
		d := time.Since(start)
		if want := o.skynet * (o.skynet - 1) / 2; sum != want {
			return 0, fmt.Errorf("sum %d, want %d", sum, want)
		}
		return d, nil
	})
}

func skynetGo(parent chan<- int, num, size int) {
	if size == 1 {
		parent <- num
		return
	}
	c := make(chan int, 10)
	size /= 10
	for i := range 10 {
		go skynetGo(c, num+i*size, size)
	}
	sum := 0
	for range 10 {
		sum += <-c
	}
	parent <- sum
}
