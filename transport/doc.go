// Package transport makes an engine on another node look exactly like a
// local one. It is the "Transport" of the design note
// (shared/seed/transport-engine-design.txt):
//
//	Transport (a suture.Service, supervising)
//	├── listeners and dialers   (netconn; each holds its connections)
//	├── proxies                 one genserver process per foreign engine,
//	│                           registered under the engine's address
//	└── watcher                 monitors proxies and unsupervised engines
//
// A sender does nothing special: Call, Cast and Send to
// genserver.Name(addr.String()) reach a local engine or, when addr is a
// foreign engine, its proxy. The proxy encodes the message with the
// Registry and hands the envelope to a live route's connection, whose
// writer authenticates it with the sending engine's key (the router's when
// the sender is no engine) through the keyholder. The receiving
// connection verifies it and the transport delivers it as an ordinary
// call, cast or info message, coming from the sending engine's proxy on
// that node (Process.Sender, From.PID), with the verified address in
// From.Address.
//
// # Learning and forgetting
//
// When a connection comes up each side bursts router-signed learn messages
// for all its engines, each carrying the engine's own proof that it belongs
// to that router. The receiver creates a proxy (or adds a route to an
// existing one) only when the learn is signed by the router authenticated
// on that connection and the proof verifies for that router. Engines
// started later are announced the same way; stopped engines are forgotten
// with a forget message, and their proxies go away at once. A message whose
// source is not an engine learned on its connection (or the peer router
// itself) is dropped and counted, as is one for an engine that is not ours.
//
// An engine known over several connections has several routes; its proxy
// uses the first live one. When its last route goes down, the calls pending
// on that route fail at once with ErrNoConnection, and the proxy waits
// ForgetGrace for a route to come back before it is forgotten and its name
// released. Connections we dialled are re-dialled with backoff by netconn.
//
// # Calls
//
// Calls use the callbridge package: the proxy registers a call replier for
// each call and returns at once (it never blocks, so one proxy serves any
// number of concurrent calls); the receiving side runs a dummy caller that
// calls the engine locally with the caller's deadline and sends the result
// back. Deferred replies therefore work across nodes unchanged, including a
// From handed on to another engine. Errors come back as the same sentinels a
// local caller would get (genserver.ErrNoProcess, ErrTimeout, *ExitError...).
//
// # Use
//
//	tr, err := transport.New(transport.Config{System: sys, Keyholder: kh, Registry: reg})
//	tr.Start()                                   // or run tr as a suture.Service
//	tr.Listen(ctx, "tcp://127.0.0.1:7001", netconn.AcceptAny)
//	tr.Connect(ctx, "unix:///run/peer.sock", peerRouter)
//	addr, pid, err := tr.SpawnEngine("vault", newVault) // or tr.Engine(...) under a supervisor
//
// Messages crossing the wire must be of types registered in the Registry
// under the same names on both nodes (wire.Register).
package transport
