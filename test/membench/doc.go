// Package membench measures what the SBC process holds per idle WSS
// connection and per established relayed call (issue 15, point 6). It has
// only benchmarks: each builds cmd/sbc, runs it as a child process, and
// reports the change of the child's resident set size (VmRSS) divided by
// the number of connections or calls. Run them one at a time with
// -benchtime=1x; see BENCHMARKS.md for the command.
package membench
