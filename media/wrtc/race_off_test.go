//go:build !race

package wrtc

const raceEnabled = false
