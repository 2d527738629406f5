//go:build !race

package rtpproc

const raceEnabled = false
