//go:build race

package keyholder

const raceEnabled = true
