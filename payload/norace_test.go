//go:build !race

package payload_test

const raceEnabled = false
