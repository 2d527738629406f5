//go:build pprof

package main

// Built only with -tags pprof (test/membench does, when SBC_MEM_PPROF is
// set): serves net/http/pprof on PPROF_ADDR, a loopback address, so a
// benchmark can take heap profiles of the running binary. Production
// builds carry none of it.

import (
	"log"
	"net/http"
	_ "net/http/pprof" // registers /debug/pprof on http.DefaultServeMux
	"os"
	"runtime"
)

func init() {
	addr := os.Getenv("PPROF_ADDR")
	if addr == "" {
		return
	}
	// One sample per 4 kB allocated instead of 512 kB: per-connection and
	// per-call objects of a few hundred bytes show up in the profile.
	runtime.MemProfileRate = 4096
	go func() {
		log.Print(http.ListenAndServe(addr, nil))
	}()
}
