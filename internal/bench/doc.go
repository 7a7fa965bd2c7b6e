// Package bench is the suite behind `enginekit bench`: it measures the
// figures of issue 13 (cross-node speed under load) and the local targets of
// docs/design.md ("Performance") and, in the same run, the physical limits
// of the machine they are compared with (Go channels, raw loopback TCP, raw
// mutual TLS 1.3 over loopback, ed25519 and GMAC), so that results
// read as ratios that hold from one machine to another.
//
// A figure is a workload: a name ("area.figure_unit"), a unit, a target and
// the direction in which it is met, and the limit it is divided by. A target
// is absolute ("≥ 4M msg/s"), a ratio to a limit ("≤ 2× limit.tls_rtt_us"),
// or a ratio to another figure ("throughput at 4,096 callers ≥ 1× that at
// 256"), and may bound the p99 latency too. Each workload sets up and tears
// down what it uses (cross-node figures start two nodes with node.Start,
// outside the clock) and is timed as testing.B times a benchmark: the loop
// grows until a round lasts Options.RoundTime, and the figure is the median
// of Options.Rounds rounds, each after a GC. Figures of many concurrent
// callers run for a round's time instead and also report the p50 and p99
// of every call. Each figure is bounded by Options.Timeout, so a hang in
// the code under measurement is reported as a failed figure, not waited
// for.
//
// The files: bench.go (workloads, timing, the report), local.go (one
// System, skynet), remote.go (two nodes over loopback TCP: calls, the
// concurrency and payload curves, casts, ping-pong, allocations), nodes.go
// (the learn burst, the full mesh, and the learn burst's own limit: its
// proofs batch-verified on every core), limits.go and limits_tls.go (the
// machine).
package bench
