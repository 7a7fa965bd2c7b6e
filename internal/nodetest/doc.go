// Package nodetest starts real enginekit nodes for tests: a System with an
// event broker, a keyholder and a running transport whose registry knows the
// types a test registers, connected over loopback TCP or a Unix socket in
// the test's temporary directory. Nodes stop at the test's cleanup.
//
// New tests should use the public testkit package, which also waits on
// connection events, cuts and heals links and checks for leaks; this one
// stays for the tests that still use it.
package nodetest
