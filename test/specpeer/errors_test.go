package specpeer_test

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"testing"
	"time"

	"github.com/enginekit/enginekit/netconn"
	"github.com/enginekit/enginekit/test/specpeer"
)

// TestProtocolErrors sends the node what §2, §3 and §6 call protocol
// errors and bad batches, one connection each, and checks the GOAWAY code
// it answers with; and the frames it must accept: a hello with extensions
// it does not know (§3.1) and a PING (§8). The node serves on throughout.
func TestProtocolErrors(t *testing.T) {
	for _, m := range []struct {
		auth netconn.Auth
		mode byte
	}{{netconn.Signatures, specpeer.ModeSignatures}, {netconn.MACs, specpeer.ModeMACs}} {
		t.Run(m.auth.String(), func(t *testing.T) { protocolErrors(t, m.auth, m.mode) })
	}
}

func frame(typ byte, body []byte) []byte {
	var b bytes.Buffer
	_ = specpeer.WriteFrame(&b, typ, body)
	return b.Bytes()
}

func protocolErrors(t *testing.T, auth netconn.Auth, mode byte) {
	n, _ := startNode(t, auth)
	nodeRouter := specpeer.Address(n.Router())
	dial := func(cfg specpeer.Config) *specpeer.Conn {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), wait)
		defer cancel()
		cfg.Router, cfg.Mode = newKey(t), mode
		c, err := specpeer.Dial(ctx, hostPort(t, n), nodeRouter, cfg)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = c.Close() })
		_ = c.SetDeadline(time.Now().Add(wait))
		return c
	}
	router := newKey(t)
	seq := uint64(time.Now().UnixNano())
	batch := func(c *specpeer.Conn) []byte {
		t.Helper()
		seq++
		b, err := c.Seal(router, seq, []specpeer.Envelope{{Kind: specpeer.KindInfo, Dst: nodeRouter, Payload: payloadOf(t, "nil", nil)}})
		if err != nil {
			t.Fatal(err)
		}
		return b
	}

	// A hello with a credential (which a listener accepting anyone does not
	// need) and an extension of an unknown type is accepted (§3.1); a PING
	// gets a PONG with its bytes (§8).
	c := dial(specpeer.Config{Credential: []byte("not a certificate"), Extensions: []specpeer.Extension{{Type: 0x7777, Value: []byte{1, 2, 3}}}})
	ping := []byte("specpeer")
	if err := c.WriteFrame(specpeer.FramePing, ping); err != nil {
		t.Fatal(err)
	}
	for {
		f, err := c.Next()
		if err != nil {
			t.Fatal(err)
		}
		if f.Type == specpeer.FramePong {
			if !bytes.Equal(f.Body, ping) {
				t.Fatalf("PONG %q for PING %q", f.Body, ping)
			}
			break
		}
	}

	bad := func(name string, code uint32, send func(c *specpeer.Conn) []byte) {
		t.Helper()
		c := dial(specpeer.Config{})
		if err := c.WriteRaw(send(c)); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		for {
			_, err := c.Next()
			var ga *specpeer.GoawayError
			if errors.As(err, &ga) {
				if ga.Code != code {
					t.Errorf("%s: GOAWAY %d %q, want code %d", name, ga.Code, ga.Reason, code)
				}
				return
			}
			if err != nil {
				t.Fatalf("%s: %v before a GOAWAY", name, err)
			}
		}
	}
	bad("length 0", 1, func(*specpeer.Conn) []byte { return []byte{0, 0, 0, 0} })
	bad("unknown frame type", 1, func(*specpeer.Conn) []byte { return frame(9, []byte{0}) })
	bad("hello after the hellos", 1, func(*specpeer.Conn) []byte {
		return frame(specpeer.FrameHello, specpeer.Hello{Mode: mode, MaxFrame: specpeer.DefaultFrameSize}.Marshal())
	})
	bad("frame too large", 3, func(c *specpeer.Conn) []byte {
		// Only the header: the node checks L before reading the body (§2).
		return binary.BigEndian.AppendUint32(nil, c.PeerMaxFrame()+1)
	})
	bad("count over the records", 1, func(c *specpeer.Conn) []byte {
		b := batch(c)
		binary.BigEndian.PutUint32(b[40:], 2)
		return frame(specpeer.FrameBatch, b)
	})
	bad("byte left over", 1, func(c *specpeer.Conn) []byte {
		b := batch(c)
		return frame(specpeer.FrameBatch, append(b[:len(b)-specpeer.TagSize(mode)], make([]byte, specpeer.TagSize(mode)+1)...))
	})
	bad("seq past 2⁶⁴−1", 1, func(c *specpeer.Conn) []byte {
		b, err := c.Seal(router, ^uint64(0), []specpeer.Envelope{{Kind: specpeer.KindInfo}, {Kind: specpeer.KindInfo}})
		if err != nil {
			t.Fatal(err)
		}
		return frame(specpeer.FrameBatch, b)
	})
	bad("too many bad tags", 4, func(c *specpeer.Conn) []byte {
		var all []byte
		for range 17 { // enginekit: more than 16 (§6)
			b := batch(c)
			b[len(b)-1] ^= 1
			all = append(all, frame(specpeer.FrameBatch, b)...)
		}
		return all
	})

	// The node still serves.
	c = dial(specpeer.Config{})
	if err := c.WriteFrame(specpeer.FramePing, ping); err != nil {
		t.Fatal(err)
	}
	for {
		if f, err := c.Next(); err != nil {
			t.Fatal(err)
		} else if f.Type == specpeer.FramePong {
			break
		}
	}
}
