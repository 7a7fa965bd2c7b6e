package netconn

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/enginekit/enginekit/wire"
)

// SendTail delivers env.Payload followed by tail as one payload, in order
// with Send's envelopes, in batches and alone (a tail as large as the
// frame allows), and checks the size on the whole: one byte over fails at
// once with a SizeError naming the joined size.
func TestSendTail(t *testing.T) {
	forEachAuth(t, func(t *testing.T, auth Auth) {
		const frameMax = 256 << 10
		p := startPair(t, connTypes[0], auth, func(s, c *Config) { s.MaxFrameSize = frameMax })
		c := p.cliConn
		ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
		defer cancel()
		limit := c.MaxPayload()
		big := bytes.Repeat([]byte("0123456789"), limit/10+1)[:limit-3]
		sends := []struct{ head, tail string }{
			{"head-", "tail"},
			{"", "only tail"},
			{"only head", ""},
			{"abc", string(big)},
		}
		for i, s := range sends {
			mustSend(t, c, cast(p.cli.engine, p.srv.engine, "plain"))
			env := cast(p.cli.engine, p.srv.engine, s.head)
			tail := []byte(s.tail)
			if err := c.SendTail(ctx, env, tail); err != nil {
				t.Fatalf("send %d: %v", i, err)
			}
			if string(env.Payload) != s.head {
				t.Fatalf("send %d: env.Payload changed to %q", i, env.Payload)
			}
		}
		for _, s := range sends {
			expectPayload(t, p.srv, "plain")
			expectPayload(t, p.srv, s.head+s.tail)
		}
		env := cast(p.cli.engine, p.srv.engine, "abcd")
		err := c.SendTail(ctx, env, big)
		var se *SizeError
		if !errors.As(err, &se) || !errors.Is(err, ErrTooLarge) || se.Size != limit+1 || se.Limit != limit {
			t.Fatalf("one byte over: got %v, want a SizeError for %d over %d", err, limit+1, limit)
		}
		bad := &wire.Envelope{Kind: 0, Src: p.cli.engine, Dst: p.srv.engine}
		if err := c.SendTail(ctx, bad, []byte("x")); !errors.Is(err, wire.ErrUnknownKind) {
			t.Fatalf("bad kind: got %v", err)
		}
		mustSend(t, c, cast(p.cli.engine, p.srv.engine, "after"))
		expectPayload(t, p.srv, "after")
	})
}

// A SendTail from a source that is not ours fails as Send's does.
func TestSendTailNotOurs(t *testing.T) {
	p := startPair(t, connTypes[0], MACs, nil)
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()
	env := cast(p.srv.engine, p.srv.engine, "x")
	if err := p.cliConn.SendTail(ctx, env, []byte("y")); err == nil || !strings.Contains(err.Error(), "not one of our engines") {
		t.Fatalf("got %v, want the not-ours error", err)
	}
}
