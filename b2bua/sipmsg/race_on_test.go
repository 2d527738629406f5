//go:build race

package sipmsg

const raceEnabled = true
