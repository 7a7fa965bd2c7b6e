// Package netconn holds the physical connections between enginekit nodes:
// listeners and dialers for TCP and Unix sockets, and a connection holder
// (Conn) per socket that runs the secure channel, the framing of package
// wire, and verify-then-deliver. The protocol is specified in
// ../wire/spec.md.
//
// # Services
//
// Listener and Dialer are suture.Services (Serve(ctx) error):
//
//	cfg := netconn.Config{Keyholder: kh, Auth: netconn.MACs, Deliver: deliver,
//		OnUp: up, OnDown: down, Replay: replay}
//	l, err := netconn.NewListener(cfg, "tcp", "127.0.0.1:7000", netconn.AllowOnly(peers...))
//	d, err := netconn.NewDialer(cfg, "unix", "/run/bob.sock", bobRouter)
//	sup.Add(l); sup.Add(d)
//
// NewListener binds at once (Addr is known before Serve runs); each accepted
// socket gets a Conn owned by the Listener, which closes them all before its
// Serve returns. A fault of the socket stays there: when accepting fails for
// good the Listener binds the same address again with Config.Backoff, for
// as long as its ctx lives, while its connections keep serving; each
// failure goes to Config.OnListenError and Listener.Stats. A Dialer keeps
// one connection up and re-dials with exponential backoff and jitter. Both
// report connections through OnUp and OnDown; transport keeps its routes
// from those.
//
// NewListenerOn serves a net.Listener you made and NewDialerFunc dials with
// your function; with a PipeListener they connect nodes in memory:
//
//	pl := netconn.NewPipeListener("alice")
//	l, err := netconn.NewListenerOn(cfg, pl, netconn.AcceptAny)
//	d, err := netconn.NewDialerFunc(cfg, "alice", pl.Dial, aliceRouter)
//
// NewServerConn and NewClientConn hold a socket you connected yourself.
//
// # The channel
//
// TLS 1.3 only, mutual, with the self-signed certificate that the keyholder
// makes from the router's ed25519 key; peers are identified by that key
// alone. The dialer pins the router it expects; the listener asks its
// AcceptPolicy. Then each side sends a hello (version, auth mode, maximum
// frame size, and an optional opaque credential, Config.Credential); a
// mismatch closes the connection with a reason on both sides. A listener
// with Config.AdmitCredential also admits a router its AcceptPolicy refused
// if that approves the credential of its hello (cluster admission);
// Conn.PeerCredential returns what the peer sent. Config.HandshakeTimeout
// bounds all of it.
//
// # Sending
//
// Conn.Send queues an envelope, encoded straight into a batch frame in the
// connection's buffer, and returns. The writer goroutine takes everything
// queued at once, numbers each batch from the node's ReplayGuard, has the
// keyholder sign or MAC it with the key of its source engine, and writes
// it out, a stretch of 64 KiB or more at a time as it seals, so the peer
// starts on the first frames early. Consecutive envelopes of one source
// share a batch and so one tag: under light load a batch is one envelope,
// under load it grows to 256 KiB with MACs (an envelope of 64 KiB or more
// goes alone, up to the peer's frame size, so the peer's reader can hand
// its payload over uncopied) and to the peer's frame size
// with signatures, which is how ed25519 signatures (≈15 µs to sign, 35 µs
// to check) keep up with a stream of casts. Batches grow with load (group
// commit) in two ways that never wait for time: woken by a first envelope,
// the writer yields its processor to runnable goroutines (senders woken by
// the same event) as long as that makes the queue grow, a few times at
// most; and while the reader
// delivers a batch, what Deliver sends in answer does not wake the writer
// until the whole batch is delivered, so the answers leave in one batch
// rather than one alone and then the rest. Sending allocates nothing per
// envelope.
//
// Send waits while the queue holds Config.MaxQueueBytes; TrySend never
// waits and fails with ErrQueueFull instead, for callers (the transport's
// core) that must not block. Both refuse at once, with a *SizeError
// (ErrTooLarge), an envelope that can never fit in a frame to the peer.
// Conn.SendTail is Send for a payload in two pieces (an encoding's head,
// then a large value's own bytes), each copied once, into the queue.
//
// A sender about to wait for an answer, alone on the connection (one call
// and its reply), saves the hand-off to the writer with Conn.SendDirect, or
// Conn.TryQueue then Conn.Flush: when its envelope opens an empty queue and
// no one is writing (nor the reader holding the queue), it seals and
// writes the queue in its own goroutine, under the lock the writer writes
// under, so frames keep their order. Otherwise they queue as Send does. Such
// a write may block when the peer stops reading, up to Config.IdleTimeout,
// after which the connection fails; other senders only queue behind it. The
// reader path never writes: TrySend never does. Under load they are not
// worth it (a write per envelope costs more than a hand-off): the transport
// uses them only for a lone call and the reply to a lone call.
// Conn.QueueBytes and Conn.UpSince are there for introspection. Conn.Close
// ends a connection in order with a go-away frame; Conn.CloseWith lets the
// layer above say why (wire.GoAwayOverLimit when it refuses a peer).
//
// # Receiving
//
// The reader goroutine checks each batch frame (layout, then tag, then the
// replay window of its source) and calls Config.Deliver for each envelope
// that passes, in order. A batch that fails authentication is dropped
// silently and counted; a peer that sends more than Config.MaxBadBatches of
// them, or any oversize, malformed or unknown frame, is sent a go-away frame
// and disconnected, without affecting other connections. A peer that stays
// silent (it is pinged) for Config.IdleTimeout is disconnected too. Lengths
// are checked before anything is allocated for them, and nothing a peer
// sends can panic the node. Conn.Stats counts frames, bytes, envelopes and
// drops by cause. Frames are read through one reused buffer, except that a
// batch holding a single envelope of 64 KiB or more is read into a buffer of
// its own and handed over with the envelope (wire.Envelope.Owned), so a
// large payload reaches the layer above with one copy (TLS's) and can be
// kept without another.
//
// The reader never waits for the writer (a ping is answered by flagging the
// writer), so two nodes that both send far more than their queues and
// socket buffers hold cannot deadlock as long as their readers keep
// reading. For that, Config.OnUp and Config.Deliver must not block on a
// full send queue: they use TrySend, or send from another goroutine.
//
// # Replays
//
// A ReplayGuard (Config.Replay), shared by all connections of a node,
// numbers our engines' envelopes and keeps a sliding window per peer
// engine, so an envelope replayed on the same or another connection is not
// delivered twice. See ReplayGuard for the clock assumption and the memory
// bound.
//
// # Source layout
//
// conn.go holds the Conn and its lifecycle (Serve, Send, TrySend, Close);
// handshake.go the TLS handshake and the hello; read.go the reader loop and
// batch verification; write.go the writer loop and sealing; queue.go the
// send queue; listener.go, dialer.go and pipe.go the services and the
// in-memory listener; replay.go the ReplayGuard; config.go the Config.
package netconn
