//go:build !race

package wssecurity

const raceEnabled = false
