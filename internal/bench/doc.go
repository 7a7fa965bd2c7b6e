// Package bench is the suite behind `enginekit bench`: it measures the
// performance targets written in docs/design.md ("Performance") and, in the
// same run, the physical limits of the machine they are compared with (Go
// channels, raw loopback TCP and Unix sockets), so that results read as
// ratios that hold from one machine to another.
//
// A figure is a workload: a name ("area.figure_unit"), a unit, a target and
// the direction in which it is met, and the limit it is divided by. Each
// workload sets up and tears down what it uses (cross-node figures start two
// nodes with node.Start, outside the clock) and is timed as testing.B times
// a benchmark: the loop grows until a round lasts Options.RoundTime, and the
// figure is the median of Options.Rounds rounds, each after a GC.
//
// The files: bench.go (workloads, timing, the report), local.go (one
// System), remote.go (two nodes over loopback), limits.go (the machine).
package bench
