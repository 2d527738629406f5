//go:build race

package timeline

const raceOn = true
