package netconn

import (
	"bytes"
	"errors"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/enginekit/enginekit/keyholder"
	"github.com/enginekit/enginekit/wire"
)

// A listener whose AcceptPolicy refuses a router admits it anyway when
// AdmitCredential approves the credential of its hello; the others are
// refused with a go-away that says so. Credentials reach both ends.
func TestCredentialAdmission(t *testing.T) {
	forEachConnType(t, func(t *testing.T, ct connType) {
		srv := newNode(t)
		var asked atomic.Int32
		scfg := srv.config(Signatures)
		scfg.Credential = []byte("server statement")
		scfg.AdmitCredential = func(router keyholder.Address, cred []byte) bool {
			asked.Add(1)
			return string(cred) == "member:"+router.String()
		}
		friend := newNode(t)
		l, _ := startListener(t, ct, srv, scfg, AllowOnly(friend.router()))

		member := newNode(t)
		mcfg := member.config(Signatures)
		mcfg.Credential = []byte("member:" + member.router().String())
		startDialer(t, ct, mcfg, l.Addr(), srv.router())
		sc := recv(t, srv.ups, "member admitted")
		mc := recv(t, member.ups, "member up")
		if string(sc.PeerCredential()) != string(mcfg.Credential) || string(mc.PeerCredential()) != "server statement" {
			t.Fatalf("credentials %q, %q", sc.PeerCredential(), mc.PeerCredential())
		}
		mustSend(t, mc, cast(member.engine, srv.engine, "in by credential"))
		expectPayload(t, srv, "in by credential")

		// A credential for another router, or none, is refused.
		for name, cred := range map[string][]byte{"stolen": mcfg.Credential, "none": nil} {
			other := newNode(t)
			ocfg := other.config(Signatures)
			ocfg.Credential = cred
			dsvc := startDialerSvc(t, ct, ocfg, l, srv.router())
			expectErr(t, recv(t, srv.hsErrs, name+": listener error").err, ErrNotAccepted)
			err := recv(t, other.hsErrs, name+": dialer error").err
			var g wire.GoAway
			if !errors.As(err, &g) || g.Code != wire.GoAwayRefused || !strings.Contains(g.Reason, "not accepted") {
				t.Fatalf("%s: dialer got %v", name, err)
			}
			dsvc.stop(t)
		}

		if s := l.Stats(); s.NotAccepted != 2 || s.HandshakeFailures != 2 {
			t.Fatalf("listener stats %+v", s)
		}

		// A router the policy accepts is not asked about.
		before := asked.Load()
		startDialer(t, ct, friend.config(Signatures), l.Addr(), srv.router())
		recv(t, friend.ups, "friend up")
		if c := recv(t, srv.ups, "friend admitted"); c.PeerCredential() != nil {
			t.Fatalf("friend sent no credential, got %q", c.PeerCredential())
		}
		if asked.Load() != before {
			t.Fatal("AdmitCredential asked about an accepted router")
		}
	})
}

func startDialerSvc(t *testing.T, ct connType, cfg Config, l *Listener, peer keyholder.Address) *service {
	_, s := startDialer(t, ct, cfg, l.Addr(), peer)
	return s
}

// A credential of the largest size passes between nodes whose max frame
// size is the smallest: a hello may be longer than a frame.
func TestCredentialLargerThanFrame(t *testing.T) {
	cred := bytes.Repeat([]byte{0xc5}, wire.MaxCredentialSize)
	p := startPair(t, connTypes[0], MACs, func(s, c *Config) {
		s.MaxFrameSize, c.MaxFrameSize = wire.MinFrameSize, wire.MinFrameSize
		s.Credential, c.Credential = cred, cred
	})
	if !bytes.Equal(p.srvConn.PeerCredential(), cred) || !bytes.Equal(p.cliConn.PeerCredential(), cred) {
		t.Fatal("credential lost")
	}
	mustSend(t, p.cliConn, cast(p.cli.engine, p.srv.engine, "after"))
	expectPayload(t, p.srv, "after")
}

// A peer that predates credentials sends a 12-byte hello and still
// connects to a node that sends one and has AdmitCredential set.
func TestCredentialOldPeer(t *testing.T) {
	forEachAuth(t, func(t *testing.T, auth Auth) {
		srv, old := newNode(t), newNode(t)
		scfg := srv.config(auth)
		scfg.Credential = []byte("new node")
		scfg.AdmitCredential = func(keyholder.Address, []byte) bool { return false }
		l, _ := startListener(t, connTypes[0], srv, scfg, AllowOnly(old.router()))
		p := dialRawTLS(t, connTypes[0], l, old, auth)
		p.write(wire.AppendHello(nil, wire.Hello{Version: wire.Version, Auth: auth.mode(), MaxFrameSize: wire.DefaultMaxFrameSize})[:wire.FrameHeaderSize+wire.HelloSize])
		typ, body := p.read()
		if typ != wire.FrameHello {
			t.Fatalf("got %v", typ)
		}
		// What a version-1 receiver without extensions reads: 12 bytes.
		h, err := wire.ParseHello(body[:wire.HelloSize])
		if err != nil || h.Version != wire.Version {
			t.Fatalf("%+v %v", h, err)
		}
		c := recv(t, srv.ups, "old peer up")
		if c.PeerCredential() != nil {
			t.Fatal("credential from an old peer")
		}
		p.write(p.batch(old.router(), srv.engine, "old and welcome"))
		expectPayload(t, srv, "old and welcome")
	})
}

func TestCredentialConfig(t *testing.T) {
	n := newNode(t)
	cfg := n.config(MACs)
	cfg.Credential = make([]byte, wire.MaxCredentialSize+1)
	expectErr(t, cfg.Verify(), ErrBadConfig)
	cfg.Credential = cfg.Credential[:wire.MaxCredentialSize]
	if err := cfg.Verify(); err != nil {
		t.Fatal(err)
	}
}
