//go:build race

package wssecurity

// raceEnabled: the race detector instruments every memory access, which
// changes what each refusal path costs relative to the others; a timing
// shape measured under it says nothing about the production build.
const raceEnabled = true
