package transport

import (
	"math/rand/v2"
	"time"

	"github.com/enginekit/enginekit/genserver"
	"github.com/enginekit/enginekit/keyholder"
	"github.com/enginekit/enginekit/wire"
)

// RemoteFrom is a From made portable: a handle that an engine on any node
// connected to the holder's node can answer with Transport.Reply. Put it in
// a message (it encodes as a CBOR map {1: router, 2: token}) and send it
// anywhere.
type RemoteFrom struct {
	Router keyholder.Address `cbor:"1,keyasint"` // the node that holds the call
	Token  uint64            `cbor:"2,keyasint"` // which call there; unguessable
}

// ExportFrom makes from answerable from other nodes, until it is answered
// or its deadline passes. A callee that wants an engine on another node to
// answer its caller (OTP's handing the From on) exports it and sends the
// RemoteFrom; the answer reaches the caller through this node, wherever the
// caller is.
//
// A genserver.From put in a message as it is does the same: the transport
// exports it when the message is encoded (see fromCodec).
func (t *Transport) ExportFrom(from genserver.From) RemoteFrom {
	rf := RemoteFrom{Router: t.router, Token: rand.Uint64() | 1}
	t.mu.Lock()
	t.core.exportFrom(rf.Token, from, t.logical(from.Deadline()))
	t.mu.Unlock()
	return rf
}

// Reply answers the call behind rf with v, or with err when err is not
// nil, from any node. It reports whether the answer left: false at once
// when rf's node is not connected (or, on rf's own node, when the call is
// no longer waiting); true does not mean the caller was still waiting.
func (t *Transport) Reply(rf RemoteFrom, v any, err error) bool {
	if rf.Router == t.router {
		t.mu.Lock()
		acts := t.core.answer(nil, 0, rf.Token)
		t.mu.Unlock()
		return len(acts) == 1 && genserver.Reply(acts[0].from, v, err)
	}
	t.mu.Lock()
	h, ok := t.core.routeTo(rf.Router)
	t.mu.Unlock()
	if !ok || t.ctx == nil {
		return false
	}
	payload, merr := t.encodeReply(v, err)
	if merr != nil {
		return false
	}
	env := wire.Envelope{Kind: wire.Answer, Src: t.router, Dst: rf.Router, Ref: rf.Token, Payload: payload}
	return h.(*route).conn.Send(t.ctx, &env) == nil
}

// fromWire is the wire form of a genserver.From put in a message as it is:
// a remote From with the caller's deadline (spec.md, "answer").
type fromWire struct {
	Router   keyholder.Address `cbor:"1,keyasint"`
	Token    uint64            `cbor:"2,keyasint"`
	Deadline int64             `cbor:"3,keyasint,omitempty"` // unix nanoseconds
}

// fromCodec is the System's genserver.FromCodec while the transport runs:
// a From in a message is exported (ExportFrom) when it is encoded, and a
// From decoded here answers through Reply, to the node holding the call.
type fromCodec struct{ t *Transport }

func (c fromCodec) EncodeFrom(from genserver.From) ([]byte, error) {
	rf := c.t.ExportFrom(from)
	return ctlEnc.Marshal(fromWire{Router: rf.Router, Token: rf.Token, Deadline: from.Deadline().UnixNano()})
}

func (c fromCodec) DecodeFrom(data []byte) (time.Time, bool) {
	var w fromWire
	if decodeControl(data, &w) != nil || w.Token == 0 {
		return time.Time{}, false
	}
	return time.Unix(0, w.Deadline), true
}

func (c fromCodec) ReplyFrom(data []byte, v any, err error) bool {
	var w fromWire
	if decodeControl(data, &w) != nil {
		return false
	}
	return c.t.Reply(RemoteFrom{Router: w.Router, Token: w.Token}, v, err)
}
