//go:build pprof

package main

// Built only with -tags pprof (test/membench does, when SBC_MEM_PPROF is
// set): the heap is sampled every 4 kB allocated instead of every 512 kB,
// so that per-connection and per-call objects of a few hundred bytes show
// up in the heap profiles the benchmark takes from the admin API's
// /debug/pprof/heap. Production builds sample at Go's default rate.

import "runtime"

func init() { runtime.MemProfileRate = 4096 }
