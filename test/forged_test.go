package test

import (
	"context"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/enginekit/enginekit/genserver"
	"github.com/enginekit/enginekit/keyholder"
	"github.com/enginekit/enginekit/netconn"
	"github.com/enginekit/enginekit/wire"
	"github.com/fxamacker/cbor/v2"
)

// A rogue peer that passes the handshake but sends forged envelopes: a
// message from an engine it never announced, a learn with a proof that is
// not for its router, a learn signed by an engine rather than the router.
// Each is dropped silently and counted; honest traffic carries on.
func TestForgedEnvelopesDropped(t *testing.T) {
	eachSetup(t, func(t *testing.T, s setup) {
		a, b := newNode(t, "a", s), newNode(t, "b", s)
		ea := a.spawnEngine("alpha", nil)
		eb := b.spawnEngine("beta", nil)
		endpoint := b.listen(s)
		must(t, a.tr.Connect(context.Background(), endpoint, b.kh.Router()))
		a.waitLearn(eb)

		rk, err := keyholder.New(keyholder.Config{})
		must(t, err)
		ghost, err := rk.NewEngine("ghost") // has a key, never announced
		must(t, err)
		replies := make(chan wire.Envelope, 16)
		cfg := netconn.Config{Keyholder: rk, Auth: s.auth, Deliver: func(_ *netconn.Conn, env *wire.Envelope) {
			if env.Kind == wire.Reply {
				replies <- *env.Clone()
			}
		}}
		raw, err := net.Dial(s.network, strings.SplitN(endpoint, "://", 2)[1])
		must(t, err)
		rogue, err := netconn.NewClientConn(cfg, raw, b.kh.Router())
		must(t, err)
		ctx, cancel := context.WithCancel(context.Background())
		served := make(chan error, 1)
		go func() { served <- rogue.Serve(ctx) }()
		defer func() { cancel(); <-served }()

		reg := registry(t)
		note, _ := reg.Marshal(Note{99})
		proofA, err := a.kh.EngineProof(ea)
		must(t, err)
		learnA, _ := cbor.Marshal(map[int]any{1: ea[:], 2: proofA})
		ghostProof, err := rk.EngineProof(ghost)
		must(t, err)
		learnGhost, _ := cbor.Marshal(map[int]any{1: ghost[:], 2: ghostProof})
		echo, _ := reg.Marshal(Echo{"from the rogue router"})
		before := b.tr.Stats()
		for _, env := range []wire.Envelope{
			{Kind: wire.Cast, Src: ghost, Dst: eb, Payload: note},                     // source never learned
			{Kind: wire.Learn, Src: rk.Router(), Dst: b.kh.Router(), Payload: learnA}, // A's engine, A's proof, wrong router
			{Kind: wire.Learn, Src: ghost, Dst: b.kh.Router(), Payload: learnGhost},   // learn not signed by the router
			{Kind: wire.Call, Src: rk.Router(), Dst: eb, Ref: 7, Payload: echo},       // legitimate: the peer router itself may call
		} {
			must(t, rogue.Send(ctx, &env))
		}
		// Envelopes on one connection are handled in order: once the call's
		// reply is back, the forgeries before it have been judged.
		select {
		case r := <-replies:
			if r.Ref != 7 || r.Src != eb {
				t.Fatalf("reply %v", &r)
			}
		case <-time.After(20 * time.Second):
			t.Fatal("no reply to the rogue router's legitimate call")
		}
		after := b.tr.Stats()
		if d := after.DroppedUnknownSrc - before.DroppedUnknownSrc; d != 1 {
			t.Errorf("DroppedUnknownSrc grew by %d, want 1", d)
		}
		if d := after.DroppedBadProof - before.DroppedBadProof; d != 1 {
			t.Errorf("DroppedBadProof grew by %d, want 1", d)
		}
		if d := after.DroppedNotRouter - before.DroppedNotRouter; d != 1 {
			t.Errorf("DroppedNotRouter grew by %d, want 1", d)
		}
		if _, ok := b.sys.Whereis(ghost.String()); ok {
			t.Error("the rogue's unproven learn created a proxy")
		}
		// The honest node's traffic is unaffected, and the forged note never arrived.
		notes, err := genserver.Call[[]int](ctxT(t), a.sys, dest(eb), Notes{})
		if err != nil || len(notes) != 0 {
			t.Fatalf("notes = %v, %v: a forged cast was delivered", notes, err)
		}
	})
}
