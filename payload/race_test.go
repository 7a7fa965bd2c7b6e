//go:build race

package payload_test

const raceEnabled = true
