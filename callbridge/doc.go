// Package callbridge makes Call transport-transparent, the two small pieces
// the design note asks for:
//
//   - On the sending side, a call to a foreign engine gets a call replier:
//     an entry in a table that owns the caller's From until the reply
//     envelope comes back, the route dies (every call on it fails at once
//     with ErrNoConnection) or the caller gives up. Package transport keeps
//     these entries in its synchronous core, next to the routes they
//     depend on; Pending is the same table as a standalone piece, for a
//     transport of your own and for this package's tests.
//   - On the receiving side, an incoming call may get a dummy caller: a
//     short-lived goroutine (owned by Incoming) that calls the destination
//     locally with the remote caller's deadline and identity and hands the
//     result back to be sent as the reply envelope. Deferred replies need
//     nothing special: the dummy caller simply waits like any caller.
//     (The transport uses one only for traced calls, whose server span it
//     covers; others go straight into the engine's mailbox with a From made
//     by genserver.Relay.RemoteFrom, answered without a goroutine per call.)
//
// In Erlang both pieces would be processes, because only a process can
// receive a message. Here the call replier does not need to receive
// anything: a table entry whose From is answered by the connection's reader
// does the same job without a goroutine per pending call.
//
// Errors cross the wire as a code and a message (WireError), so the caller
// on the other node gets the same sentinel errors (genserver.ErrNoProcess,
// ErrTimeout, an *ExitError, ...) as a local caller would.
package callbridge
