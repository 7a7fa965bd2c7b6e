package netconn

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"testing"
	"time"

	"github.com/enginekit/enginekit/keyholder"
	"github.com/enginekit/enginekit/wire"
)

func TestHandshakeAndTraffic(t *testing.T) {
	forEachConnType(t, func(t *testing.T, ct connType) {
		forEachAuth(t, func(t *testing.T, auth Auth) {
			p := startPair(t, ct, auth, nil)
			if p.srvConn.PeerRouter() != p.cli.router() || p.cliConn.PeerRouter() != p.srv.router() {
				t.Fatal("peer routers wrong")
			}
			if p.srvConn.Auth() != auth || p.d.Conn() != p.cliConn || len(p.l.Conns()) != 1 {
				t.Fatal("accessors")
			}
			call := &wire.Envelope{Kind: wire.Call, Flags: 5, Src: p.cli.engine, Dst: p.srv.engine, Ref: 77,
				Deadline: time.Now().Add(time.Minute).UnixNano(), Payload: []byte("ping?")}
			mustSend(t, p.cliConn, call)
			got := recv(t, p.srv.delivered, "call")
			if got.Kind != wire.Call || got.Flags != 5 || got.Src != call.Src || got.Dst != call.Dst ||
				got.Ref != 77 || got.Deadline != call.Deadline || string(got.Payload) != "ping?" || got.Seq == 0 {
				t.Fatalf("delivered %v", got)
			}
			mustSend(t, p.srvConn, &wire.Envelope{Kind: wire.Reply, Src: p.srv.engine, Dst: p.cli.engine, Ref: 77, Payload: []byte("pong")})
			if e := expectPayload(t, p.cli, "pong"); e.Ref != 77 || e.Kind != wire.Reply {
				t.Fatal(e)
			}
			// Router-signed traffic (learn) and many envelopes, in order.
			mustSend(t, p.cliConn, &wire.Envelope{Kind: wire.Learn, Src: p.cli.router(), Dst: p.srv.router(), Payload: []byte("learn")})
			expectPayload(t, p.srv, "learn")
			const n = 500
			for i := range n {
				mustSend(t, p.cliConn, cast(p.cli.engine, p.srv.engine, fmt.Sprint(i)))
			}
			var last uint64
			for i := range n {
				e := expectPayload(t, p.srv, fmt.Sprint(i))
				if e.Seq <= last {
					t.Fatalf("seq %d after %d", e.Seq, last)
				}
				last = e.Seq
			}
			s := p.srvConn.Stats()
			if s.EnvelopesIn != n+2 || s.FramesIn == 0 || s.BytesIn == 0 || s.DroppedAuth+s.DroppedReplay+s.DroppedMalformed != 0 {
				t.Fatalf("server stats %+v", s)
			}
			if cs := p.cliConn.Stats(); cs.EnvelopesOut != n+2 || cs.FramesOut > cs.EnvelopesOut+cs.FramesIn {
				t.Fatalf("client stats %+v", cs)
			}
		})
	})
}

func TestPipe(t *testing.T) {
	forEachAuth(t, func(t *testing.T, auth Auth) {
		a, b := newNode(t), newNode(t)
		ra, rb := net.Pipe()
		ca, err := NewServerConn(a.config(auth), ra, AllowOnly(b.router()))
		if err != nil {
			t.Fatal(err)
		}
		cb, err := NewClientConn(b.config(auth), rb, a.router())
		if err != nil {
			t.Fatal(err)
		}
		sa, sb := runService(t, ca.Serve), runService(t, cb.Serve)
		recv(t, a.ups, "a up")
		recv(t, b.ups, "b up")
		mustSend(t, cb, cast(b.engine, a.engine, "over a pipe"))
		expectPayload(t, a, "over a pipe")
		mustSend(t, ca, cast(a.engine, b.engine, "back"))
		expectPayload(t, b, "back")

		// Closing one end closes the other: in order, with a go-away.
		if err := ca.Close(); err != nil {
			t.Fatal(err)
		}
		if err := ca.Close(); err != nil { // twice is fine
			t.Fatal(err)
		}
		if d := recv(t, a.downs, "a down"); d.err != nil {
			t.Fatalf("a down: %v", d.err)
		}
		d := recv(t, b.downs, "b down")
		expectErr(t, d.err, ErrPeerClosed)
		var g wire.GoAway
		if !errors.As(d.err, &g) || g.Code != wire.GoAwayNormal {
			t.Fatalf("b down: %v", d.err)
		}
		if err := sa.stop(t); err != nil {
			t.Fatal(err)
		}
		expectErr(t, sb.stop(t), ErrPeerClosed)
		expectErr(t, cb.Send(context.Background(), cast(b.engine, a.engine, "late")), ErrClosed)
		if ca.Serve(context.Background()) == nil {
			t.Fatal("second Serve")
		}
	})
}

func TestWrongPinnedKey(t *testing.T) {
	forEachConnType(t, func(t *testing.T, ct connType) {
		srv, cli, other := newNode(t), newNode(t), newNode(t)
		l, _ := startListener(t, ct, srv, srv.config(Signatures), AcceptAny)
		startDialer(t, ct, cli.config(Signatures), l.Addr(), other.router())
		expectErr(t, recv(t, cli.hsErrs, "dialer handshake error").err, ErrWrongPeer)
		expectErr(t, recv(t, srv.hsErrs, "listener handshake error").err, ErrHandshake)
		none(t, cli.ups, "client up")
		none(t, srv.ups, "server up")

		// A node dialing itself is refused on both ends.
		self := newNode(t)
		l2, _ := startListener(t, ct, self, self.config(Signatures), AcceptAny)
		startDialer(t, ct, self.config(Signatures), l2.Addr(), self.router())
		e1, e2 := recv(t, self.hsErrs, "self handshake error"), recv(t, self.hsErrs, "self handshake error")
		if !errors.Is(e1.err, ErrSelf) && !errors.Is(e2.err, ErrSelf) { // the dialer's; the listener gets an alert
			t.Fatalf("%v; %v", e1.err, e2.err)
		}
	})
}

func TestAcceptPolicy(t *testing.T) {
	forEachConnType(t, func(t *testing.T, ct connType) {
		srv, cli, friend := newNode(t), newNode(t), newNode(t)
		l, _ := startListener(t, ct, srv, srv.config(MACs), AllowOnly(friend.router()))
		startDialer(t, ct, cli.config(MACs), l.Addr(), srv.router())
		e := recv(t, srv.hsErrs, "listener handshake error")
		expectErr(t, e.err, ErrNotAccepted)
		expectErr(t, recv(t, cli.hsErrs, "dialer handshake error").err, ErrHandshake)
		// The friend gets in.
		startDialer(t, ct, friend.config(MACs), l.Addr(), srv.router())
		c := recv(t, friend.ups, "friend up")
		if c.PeerRouter() != srv.router() {
			t.Fatal("wrong peer")
		}
	})
}

func TestIncompatiblePeer(t *testing.T) {
	forEachConnType(t, func(t *testing.T, ct connType) {
		srv, cli := newNode(t), newNode(t)
		l, _ := startListener(t, ct, srv, srv.config(MACs), AcceptAny)
		startDialer(t, ct, cli.config(Signatures), l.Addr(), srv.router())
		expectErr(t, recv(t, srv.hsErrs, "listener error").err, ErrIncompatible)
		err := recv(t, cli.hsErrs, "dialer error").err
		var g wire.GoAway
		if !errors.As(err, &g) || g.Code != wire.GoAwayRefused || !bytes.Contains([]byte(g.Reason), []byte("macs")) {
			t.Fatalf("dialer: %v", err)
		}

		// By hand: another version, then a hello that is not one.
		srv = newNode(t)
		l, _ = startListener(t, ct, srv, srv.config(MACs), AcceptAny)
		for _, tc := range []struct {
			hello []byte
			want  error
			says  string
		}{
			{wire.AppendHello(nil, wire.Hello{Version: 2, Auth: 9, MaxFrameSize: 1 << 20}), ErrIncompatible, "version 2"},
			{wire.AppendFrame(nil, wire.FrameHello, []byte("HTTP/1.1 200 OK")), wire.ErrBadHello, "magic"},
		} {
			p := dialRawTLS(t, ct, l, cli, MACs)
			p.write(tc.hello)
			if g := p.readGoAway(); g.Code != wire.GoAwayRefused || !bytes.Contains([]byte(g.Reason), []byte(tc.says)) {
				t.Fatalf("go-away %v", g)
			}
			expectErr(t, recv(t, srv.hsErrs, "listener error").err, tc.want)
		}
	})
}

func TestHandshakeTimeout(t *testing.T) {
	forEachConnType(t, func(t *testing.T, ct connType) {
		t.Run("listener", func(t *testing.T) {
			srv := newNode(t)
			cfg := srv.config(Signatures)
			cfg.HandshakeTimeout = 50 * time.Millisecond
			l, _ := startListener(t, ct, srv, cfg, AcceptAny)
			raw, err := dialTo(t, ct, l.Addr()) // and say nothing
			if err != nil {
				t.Fatal(err)
			}
			defer raw.Close()
			expectErr(t, recv(t, srv.hsErrs, "handshake timeout").err, ErrHandshakeTimeout)
			none(t, srv.ups, "up")
		})
		t.Run("dialer", func(t *testing.T) {
			// A server that accepts and then never speaks.
			var ln net.Listener
			var err error
			if ct.pipe {
				pl := NewPipeListener(ct.address(t))
				pipes.Store(pl.Addr().String(), pl)
				defer pipes.Delete(pl.Addr().String())
				ln = pl
			} else if ln, err = net.Listen(ct.network, ct.address(t)); err != nil {
				t.Fatal(err)
			}
			defer ln.Close()
			accepted := make(chan net.Conn, 10)
			go func() {
				for {
					c, err := ln.Accept()
					if err != nil {
						close(accepted)
						return
					}
					accepted <- c
				}
			}()
			defer func() {
				ln.Close()
				for c := range accepted {
					c.Close()
				}
			}()
			cli := newNode(t)
			cfg := cli.config(Signatures)
			cfg.HandshakeTimeout = 50 * time.Millisecond
			_, svc := startDialer(t, ct, cfg, ln.Addr(), newNode(t).router())
			expectErr(t, recv(t, cli.hsErrs, "handshake timeout").err, ErrHandshakeTimeout)
			// It keeps trying.
			expectErr(t, recv(t, cli.hsErrs, "second handshake timeout").err, ErrHandshakeTimeout)
			svc.stop(t)
		})
	})
}

func TestBadAuthDroppedGoodContinues(t *testing.T) {
	forEachConnType(t, func(t *testing.T, ct connType) {
		forEachAuth(t, func(t *testing.T, auth Auth) {
			srv, cli := newNode(t), newNode(t)
			l, _ := startListener(t, ct, srv, srv.config(auth), AcceptAny)
			p := dialRaw(t, ct, l, cli, auth)
			c := recv(t, srv.ups, "up")

			p.write(p.batch(cli.engine, srv.engine, "good 1"))
			bad := p.batch(cli.engine, srv.engine, "forged", "forged too")
			wire.BatchTag(bad, auth.mode().TagSize())[3] ^= 1
			p.write(bad)
			tampered := p.batch(cli.engine, srv.engine, "tampered")
			tampered[len(tampered)-auth.mode().TagSize()-1] ^= 1 // last payload byte
			p.write(tampered)
			// Signed by an engine with another engine's address as source.
			other, _ := cli.kh.NewEngine("other")
			stolen := p.batch(other, srv.engine, "stolen")
			copy(stolen[wire.FrameHeaderSize:], cli.engine[:])
			p.write(stolen)
			// Properly authenticated for one of the receiver's own engines
			// (a leaked key; in MAC mode any peer can compute such a tag):
			// no peer may speak for them.
			p.write(p.specBatch(srv.engine, srv.engine, "impersonated", false, func(seq uint64, msg []byte) []byte {
				if auth == MACs {
					return p.specMAC(srv.engine, seq, msg, false)
				}
				sig, _ := srv.kh.Sign(srv.engine, msg)
				return sig
			}))
			// Authenticated by the sending engine, but for the other
			// direction (server to client), as a batch reflected back.
			p.write(p.specBatch(cli.engine, srv.engine, "wrong way", true, func(seq uint64, msg []byte) []byte {
				if auth == MACs {
					return p.specMAC(cli.engine, seq, msg, true)
				}
				sig, _ := cli.kh.Sign(cli.engine, msg)
				return sig
			}))
			// The same construction for the peer's own engine works: spec.md
			// and the keyholder agree.
			p.write(p.specBatch(cli.engine, srv.engine, "by the spec", false, func(seq uint64, msg []byte) []byte {
				if auth == MACs {
					return p.specMAC(cli.engine, seq, msg, false)
				}
				sig, _ := cli.kh.Sign(cli.engine, msg)
				return sig
			}))
			p.write(p.batch(cli.engine, srv.engine, "good 2"))

			expectPayload(t, srv, "good 1")
			expectPayload(t, srv, "by the spec")
			expectPayload(t, srv, "good 2")
			none(t, srv.delivered, "forged delivery")
			if s := c.Stats(); s.DroppedAuth != 6 || s.EnvelopesIn != 3 {
				t.Fatalf("stats %+v", s)
			}
			none(t, srv.downs, "disconnect")
		})
	})
}

func TestTooManyBadBatches(t *testing.T) {
	forEachConnType(t, func(t *testing.T, ct connType) {
		srv, cli := newNode(t), newNode(t)
		cfg := srv.config(MACs)
		cfg.MaxBadBatches = 2
		l, _ := startListener(t, ct, srv, cfg, AcceptAny)
		p := dialRaw(t, ct, l, cli, MACs)
		recv(t, srv.ups, "up")
		for range 3 {
			bad := p.batch(cli.engine, srv.engine, "x")
			bad[len(bad)-1] ^= 1
			p.write(bad)
		}
		if g := p.readGoAway(); g.Code != wire.GoAwayTooManyBad {
			t.Fatal(g)
		}
		expectErr(t, recv(t, srv.downs, "down").err, ErrTooManyBad)
	})
}

func TestReplayNotDelivered(t *testing.T) {
	forEachConnType(t, func(t *testing.T, ct connType) {
		forEachAuth(t, func(t *testing.T, auth Auth) {
			srv, cli := newNode(t), newNode(t)
			l, _ := startListener(t, ct, srv, srv.config(auth), AcceptAny)
			p := dialRaw(t, ct, l, cli, auth)
			c := recv(t, srv.ups, "up")

			base := p.seq
			b := p.batch(cli.engine, srv.engine, "once", "only")
			p.write(b)
			p.write(b) // same connection
			p.seq -= 1
			p.write(p.batch(cli.engine, srv.engine, "overlapping", "fresh")) // first seq reused
			p.seq = 10                                                       // far below the window
			p.write(p.batch(cli.engine, srv.engine, "ancient"))
			p.seq = base + 10_000
			p.write(p.batch(cli.engine, srv.engine, "after"))
			for _, want := range []string{"once", "only", "fresh", "after"} {
				expectPayload(t, srv, want)
			}
			if s := c.Stats(); s.DroppedReplay != 4 || s.EnvelopesIn != 4 {
				t.Fatalf("stats %+v", s)
			}

			// Another connection from the same node.
			p2 := dialRaw(t, ct, l, cli, auth)
			c2 := recv(t, srv.ups, "second up")
			p2.write(b)
			p2.seq = base + 20_000
			p2.write(p2.batch(cli.engine, srv.engine, "second conn"))
			expectPayload(t, srv, "second conn")
			s := c2.Stats()
			switch auth {
			case Signatures: // the signature is still good: the replay window catches it
				if s.DroppedReplay != 2 {
					t.Fatalf("stats %+v", s)
				}
			case MACs: // the MAC belongs to the first connection
				if s.DroppedAuth != 2 {
					t.Fatalf("stats %+v", s)
				}
			}
			none(t, srv.delivered, "replayed delivery")
		})
	})
}

func TestOversizeAndGarbageFrames(t *testing.T) {
	frames := map[string]func(p *rawPeer, srv *node) []byte{
		"oversize": func(*rawPeer, *node) []byte {
			return wire.AppendFrameHeader(nil, wire.FrameBatch, wire.MinFrameSize)
		},
		"huge length": func(*rawPeer, *node) []byte { return []byte{0xff, 0xff, 0xff, 0xff, 2} },
		"zero length": func(*rawPeer, *node) []byte { return []byte{0, 0, 0, 0} },
		"unknown type": func(*rawPeer, *node) []byte {
			return wire.AppendFrame(nil, 42, []byte("hello?"))
		},
		"malformed batch": func(p *rawPeer, srv *node) []byte {
			b := p.batch(p.n.engine, srv.engine, "x")
			b[wire.FrameHeaderSize+43]++ // count 2 for one record
			return b
		},
		"short ping": func(*rawPeer, *node) []byte { return wire.AppendFrame(nil, wire.FramePing, []byte{1}) },
		"second hello": func(*rawPeer, *node) []byte {
			return wire.AppendHello(nil, wire.Hello{Version: 1, Auth: wire.AuthMACs, MaxFrameSize: 1 << 20})
		},
		"garbage": func(*rawPeer, *node) []byte { return []byte("GET / HTTP/1.1\r\nHost: x\r\n\r\n") },
	}
	forEachConnType(t, func(t *testing.T, ct connType) {
		srv, cli := newNode(t), newNode(t)
		cfg := srv.config(MACs)
		cfg.MaxFrameSize = wire.MinFrameSize
		l, _ := startListener(t, ct, srv, cfg, AcceptAny)
		// A well-behaved neighbour, whose traffic must be unaffected.
		good := newNode(t)
		startDialer(t, ct, good.config(MACs), l.Addr(), srv.router())
		gc := recv(t, good.ups, "good up")
		goodSrv := recv(t, srv.ups, "server side of good")
		i := 0
		for name, frame := range frames {
			t.Run(name, func(t *testing.T) {
				p := dialRaw(t, ct, l, cli, MACs)
				sc := recv(t, srv.ups, "up")
				p.write(p.batch(cli.engine, srv.engine, "before"))
				expectPayload(t, srv, "before")
				p.write(frame(p, srv))
				g := p.readGoAway()
				if g.Code != wire.GoAwayProtocolError && g.Code != wire.GoAwayFrameTooLarge {
					t.Fatalf("go-away %v", g)
				}
				d := recv(t, srv.downs, "down")
				if d.c != sc {
					t.Fatal("wrong connection went down")
				}
				expectErr(t, d.err, ErrProtocol)
				i++
				mustSend(t, gc, cast(good.engine, srv.engine, fmt.Sprint("still fine ", i)))
				expectPayload(t, srv, fmt.Sprint("still fine ", i))
			})
		}
		none(t, srv.downs, "other disconnect")
		select {
		case <-goodSrv.Done():
			t.Fatal("good connection closed")
		default:
		}
	})
}

func TestGarbageInsteadOfTLS(t *testing.T) {
	forEachConnType(t, func(t *testing.T, ct connType) {
		srv := newNode(t)
		l, _ := startListener(t, ct, srv, srv.config(Signatures), AcceptAny)
		raw, err := dialTo(t, ct, l.Addr())
		if err != nil {
			t.Fatal(err)
		}
		defer raw.Close()
		raw.Write(bytes.Repeat([]byte("garbage!"), 1000))
		expectErr(t, recv(t, srv.hsErrs, "handshake error").err, ErrHandshake)
		// A TLS client that speaks another protocol.
		cli := newNode(t)
		cfg := rawTLSConfig(cli)
		cfg.NextProtos = []string{"h2"}
		raw2, err := dialTo(t, ct, l.Addr())
		if err != nil {
			t.Fatal(err)
		}
		defer raw2.Close()
		tc := tls.Client(raw2, cfg)
		_ = tc.Handshake()
		expectErr(t, recv(t, srv.hsErrs, "handshake error").err, ErrHandshake)
		none(t, srv.ups, "up")
	})
}

func TestReconnectAfterSocketClosed(t *testing.T) {
	forEachConnType(t, func(t *testing.T, ct connType) {
		p := startPair(t, ct, MACs, nil)
		mustSend(t, p.cliConn, cast(p.cli.engine, p.srv.engine, "first"))
		expectPayload(t, p.srv, "first")

		p.cliConn.raw.Close() // under the holder's feet
		recv(t, p.cli.downs, "client down")
		recv(t, p.srv.downs, "server down")
		c2 := recv(t, p.cli.ups, "client up again")
		s2 := recv(t, p.srv.ups, "server up again")
		if c2 == p.cliConn {
			t.Fatal("same conn")
		}
		mustSend(t, c2, cast(p.cli.engine, p.srv.engine, "second"))
		expectPayload(t, p.srv, "second")
		mustSend(t, s2, cast(p.srv.engine, p.cli.engine, "reverse"))
		expectPayload(t, p.cli, "reverse")
		if s := p.d.Stats(); s.Reconnects != 1 || s.EnvelopesOut != 2 {
			t.Fatalf("dialer stats %+v", s)
		}
		if c2.Stats().Reconnects != 1 {
			t.Fatal(c2.Stats())
		}
		expectErr(t, p.cliConn.Send(context.Background(), cast(p.cli.engine, p.srv.engine, "x")), ErrClosed)

		// And again when the listener side drops it.
		s2.Close()
		recv(t, p.cli.downs, "client down")
		recv(t, p.srv.downs, "server down")
		recv(t, p.cli.ups, "client up a third time")
		recv(t, p.srv.ups, "server up a third time")
	})
}

func TestCleanShutdown(t *testing.T) {
	forEachConnType(t, func(t *testing.T, ct connType) {
		forEachAuth(t, func(t *testing.T, auth Auth) {
			p := startPair(t, ct, auth, nil)
			for i := range 100 {
				mustSend(t, p.cliConn, cast(p.cli.engine, p.srv.engine, fmt.Sprint(i)))
				mustSend(t, p.srvConn, cast(p.srv.engine, p.cli.engine, fmt.Sprint(i)))
			}
			for i := range 100 {
				expectPayload(t, p.srv, fmt.Sprint(i))
				expectPayload(t, p.cli, fmt.Sprint(i))
			}
			if err := p.dsvc.stop(t); err != nil {
				t.Fatal(err)
			}
			if d := recv(t, p.cli.downs, "client down"); d.err != nil {
				t.Fatal(d.err)
			}
			expectErr(t, recv(t, p.srv.downs, "server down").err, ErrPeerClosed)
			if err := p.lsvc.stop(t); err != nil {
				t.Fatal(err)
			}
			if err := p.l.Close(); err != nil {
				t.Fatal(err)
			}
			if len(p.l.Conns()) != 0 || p.d.Conn() != nil {
				t.Fatal("connections left")
			}
			expectErr(t, p.l.Serve(context.Background()), ErrClosed)
			goleakVerifyNone(t)
		})
	})
}

func TestListenerStopClosesConns(t *testing.T) {
	p := startPair(t, connTypes[0], Signatures, nil)
	if err := p.lsvc.stop(t); err != nil {
		t.Fatal(err)
	}
	if d := recv(t, p.srv.downs, "server down"); d.err != nil {
		t.Fatal(d.err)
	}
	expectErr(t, recv(t, p.cli.downs, "client down").err, ErrPeerClosed)
	p.l.Close()
}

func TestIdleTimeout(t *testing.T) {
	forEachConnType(t, func(t *testing.T, ct connType) {
		t.Run("silent peer", func(t *testing.T) {
			srv, cli := newNode(t), newNode(t)
			cfg := srv.config(MACs)
			cfg.IdleTimeout = 100 * time.Millisecond
			l, _ := startListener(t, ct, srv, cfg, AcceptAny)
			p := dialRaw(t, ct, l, cli, MACs)
			recv(t, srv.ups, "up")
			// Read the pings but never answer.
			pings := 0
			for {
				typ, _ := p.read()
				if typ == wire.FramePing {
					pings++
					continue
				}
				if typ != wire.FrameGoAway || pings == 0 {
					t.Fatalf("%v after %d pings", typ, pings)
				}
				break
			}
			expectErr(t, recv(t, srv.downs, "down").err, ErrIdleTimeout)
		})
		t.Run("live peer", func(t *testing.T) {
			p := startPair(t, ct, MACs, func(s, c *Config) {
				s.IdleTimeout = 300 * time.Millisecond
				c.IdleTimeout = 300 * time.Millisecond
			})
			// Pings and pongs keep an idle pair up; here nothing must happen.
			select {
			case d := <-p.srv.downs:
				t.Fatalf("went down: %v", d.err)
			case d := <-p.cli.downs:
				t.Fatalf("went down: %v", d.err)
			case <-time.After(4 * 300 * time.Millisecond):
			}
			if p.srvConn.Stats().FramesIn == 0 || p.cliConn.Stats().FramesIn == 0 {
				t.Fatal("no keepalive traffic")
			}
		})
	})
}

func TestSendErrors(t *testing.T) {
	p := startPair(t, connTypes[0], Signatures, func(s, c *Config) { c.MaxQueueBytes = 64 << 10 })
	ctx := context.Background()
	expectErr(t, p.cliConn.Send(ctx, &wire.Envelope{Kind: 0, Src: p.cli.engine}), wire.ErrUnknownKind)
	expectErr(t, p.cliConn.Send(ctx, cast(p.srv.engine, p.srv.engine, "not ours")), keyholder.ErrNotOurs)
	big := &wire.Envelope{Kind: wire.Cast, Src: p.cli.engine, Payload: make([]byte, wire.DefaultMaxFrameSize)}
	expectErr(t, p.cliConn.Send(ctx, big), ErrTooLarge)
	big.Payload = big.Payload[:wire.DefaultMaxFrameSize-200]
	mustSend(t, p.cliConn, big)
	if e := recv(t, p.srv.delivered, "big"); len(e.Payload) != len(big.Payload) {
		t.Fatal(len(e.Payload))
	}
}

func TestSendBackpressure(t *testing.T) {
	a, b := newNode(t), newNode(t)
	release := make(chan struct{})
	blocked := make(chan struct{}, 1)
	acfg := a.config(MACs)
	acfg.Deliver = func(c *Conn, env *wire.Envelope) {
		select {
		case blocked <- struct{}{}:
		default:
		}
		<-release
		a.delivered <- env.Clone()
	}
	bcfg := b.config(MACs)
	bcfg.MaxQueueBytes = 4096
	ra, rb := net.Pipe() // no buffering: a blocked reader blocks the writer at once
	ca, _ := NewServerConn(acfg, ra, AcceptAny)
	cb, _ := NewClientConn(bcfg, rb, a.router())
	runService(t, ca.Serve)
	runService(t, cb.Serve)
	recv(t, b.ups, "up")
	sent := 0
	for ; ; sent++ {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
		err := cb.Send(ctx, cast(b.engine, a.engine, fmt.Sprint(sent)))
		cancel()
		if err != nil {
			expectErr(t, err, context.DeadlineExceeded)
			break
		}
		if sent > 1e6 {
			t.Fatal("Send never blocked")
		}
	}
	recv(t, blocked, "receiver blocked")
	close(release)
	for i := range sent {
		expectPayload(t, a, fmt.Sprint(i))
	}
}

// A connection closed while the peer is still sending ends in order on both
// sides: the peer gets our go-away, not a reset.
func TestShutdownUnderTraffic(t *testing.T) {
	forEachConnType(t, func(t *testing.T, ct connType) {
		enough := make(chan struct{})
		n := 0
		p := startPair(t, ct, MACs, func(s, c *Config) {
			s.Deliver = func(*Conn, *wire.Envelope) {
				if n++; n == 1000 {
					close(enough)
				}
			}
		})
		flooding := make(chan error, 1)
		go func() {
			env := cast(p.cli.engine, p.srv.engine, string(make([]byte, 128)))
			for {
				if err := p.cliConn.Send(context.Background(), env); err != nil {
					flooding <- err
					return
				}
			}
		}()
		recv(t, enough, "some traffic")
		p.srvConn.Close()
		expectErr(t, recv(t, flooding, "flood end"), ErrClosed)
		d := recv(t, p.cli.downs, "client down")
		var g wire.GoAway
		if !errors.As(d.err, &g) || g.Code != wire.GoAwayNormal {
			t.Fatalf("client down: %v", d.err)
		}
		if d := recv(t, p.srv.downs, "server down"); d.err != nil {
			t.Fatal(d.err)
		}
	})
}
