package dlp

import (
	"math/rand/v2"
	"testing"
)

// naiveRuns is nextRun's contract, byte by byte: the maximal runs of
// class in b[from:], at least minLen long, starting before hi.
func naiveRuns(b []byte, from, hi, minLen int, class *[256]bool) [][2]int {
	var out [][2]int
	for i := from; i < len(b) && i < hi; {
		if !class[b[i]] {
			i++
			continue
		}
		j := i
		for j < len(b) && class[b[j]] {
			j++
		}
		if j-i >= minLen {
			out = append(out, [2]int{i, j})
		}
		i = j
	}
	return out
}

// nextRun, called as the scanners call it, finds exactly the runs the
// byte-by-byte search finds, for every minLen and range, runs touching
// the ends of the bytes and of the range included.
func TestNextRun(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	const alphabet = "0123456789 -a,:AZ"
	for range 20000 {
		b := make([]byte, rng.IntN(80))
		for i := range b {
			if rng.IntN(4) == 0 {
				b[i] = alphabet[10+rng.IntN(len(alphabet)-10)]
			} else {
				b[i] = alphabet[rng.IntN(12)]
			}
		}
		from := rng.IntN(len(b) + 1)
		hi := from + rng.IntN(len(b)-from+1)
		minLen := 1 + rng.IntN(20)
		var got [][2]int
		for f := from; ; {
			rs, re := nextRun(b, f, hi, minLen, &cardRunByte)
			if rs < 0 {
				break
			}
			got = append(got, [2]int{rs, re})
			f = re + 1
		}
		want := naiveRuns(b, from, hi, minLen, &cardRunByte)
		if len(got) != len(want) {
			t.Fatalf("nextRun(%q, %d, %d, %d): %v, want %v", b, from, hi, minLen, got, want)
		}
		for i := range got {
			if got[i] != want[i] {
				t.Fatalf("nextRun(%q, %d, %d, %d): %v, want %v", b, from, hi, minLen, got, want)
			}
		}
	}
}

// luhnFast agrees with the reference's luhn on digit values and on ASCII
// digits, of every length a card number can have and more.
func TestLuhnFast(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 8))
	for range 20000 {
		d := make([]byte, 1+rng.IntN(24))
		for i := range d {
			d[i] = byte(rng.IntN(10))
		}
		want := luhn(d)
		ascii := make([]byte, len(d))
		for i, v := range d {
			ascii[i] = '0' + v
		}
		if got := luhnFast(d); got != want {
			t.Fatalf("luhnFast(%v) = %t, luhn %t", d, got, want)
		}
		if got := luhnFast(ascii); got != want {
			t.Fatalf("luhnFast(%q) = %t, luhn %t", ascii, got, want)
		}
	}
}
