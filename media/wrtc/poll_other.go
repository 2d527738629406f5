//go:build !linux

package wrtc

// attachPoller is false off Linux: each Mux reads its socket with a
// goroutine.
func attachPoller(*Mux) bool { return false }

// detachPoller is never called off Linux.
func detachPoller(*Mux) {}

// pollLoop does not exist off Linux.
type pollLoop struct{}
