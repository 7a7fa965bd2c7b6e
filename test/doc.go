// Package test holds enginekit's cross-package integration tests: several
// nodes in one OS process talking over real loopback TCP and Unix sockets,
// in both authentication modes, with faults injected; and multi-process
// tests that run the built enginekit binary.
package test
