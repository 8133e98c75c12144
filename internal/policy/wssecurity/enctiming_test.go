package wssecurity

import (
	"math/rand/v2"
	"slices"
	"testing"
	"time"
)

// TestDecryptionRefusalTiming measures how long the policy takes to
// refuse each class of bad encrypted message (tampered ciphertext, wrong
// key, RSA-1.5, unsigned CBC, XML bomb in the plaintext), and checks that
// no class is told apart from the others by its time: for every pair of
// classes, the two-sample Kolmogorov–Smirnov statistic of their times
// stays below a generous bound. The classes are interleaved in random
// order, round after round, so that a load change on the machine falls on
// all of them alike; the statistic compares ranks, not durations, so no
// wall-clock figure is asserted.
func TestDecryptionRefusalTiming(t *testing.T) {
	if testing.Short() {
		t.Skip("timing distribution: many samples")
	}
	if raceEnabled {
		// make test runs it again without -race (its timing stage).
		t.Skip("the race detector's instrumentation changes the timing shape; run without -race")
	}
	f := newEncFixture(t)
	now := time.Now()
	p := build(t, f.config("  allow_cbc: true\n"), &clock{now})
	classes := refusalClasses(t, f, now)
	// A real difference shows in every run; a burst of load on a shared
	// machine rarely twice in a row: up to three runs, and the test fails
	// only when every one of them separates some pair.
	for attempt := 1; ; attempt++ {
		worst, pair := measureRefusals(t, p, classes)
		if worst <= refusalBound {
			return
		}
		if attempt == 3 {
			t.Fatalf("%s are separable by time: KS D = %.3f > %.2f in %d runs", pair, worst, refusalBound, attempt)
		}
		t.Logf("run %d: %s KS D = %.3f; measuring again", attempt, pair, worst)
	}
}

// refusalBound bounds the KS statistic between two refusal classes. The
// critical value for n = m = 150 at alpha = 0.001 is about
// 1.95*sqrt(2/150) = 0.23; the bound is above it so that a loaded
// machine's noise does not fail the test, while a class that skips the
// RSA operation (most of the cost) gives D near 1, and one that skips
// the plaintext scan about 0.3.
const refusalBound = 0.3

// measureRefusals times rounds of the classes, interleaved in random
// order, and returns the largest pairwise KS statistic and its pair.
func measureRefusals(t *testing.T, p *Policy, classes []classMsg) (float64, string) {
	const rounds = 150
	samples := make([][]float64, len(classes))
	order := make([]int, len(classes))
	for i := range order {
		order[i] = i
	}
	// Warm up caches and the allocator.
	for _, c := range classes {
		apply(t, p, c.msg, true)
	}
	for range rounds {
		rand.Shuffle(len(order), func(i, j int) { order[i], order[j] = order[j], order[i] })
		for _, i := range order {
			start := time.Now()
			_, err := apply(t, p, classes[i].msg, true)
			d := time.Since(start)
			if err == nil {
				t.Fatalf("%s accepted", classes[i].name)
			}
			samples[i] = append(samples[i], float64(d))
		}
	}
	for i := range classes {
		s := slices.Clone(samples[i])
		slices.Sort(s)
		t.Logf("%-14s median %v", classes[i].name, time.Duration(s[len(s)/2]))
	}
	worst, pair := 0.0, ""
	for i := range classes {
		for j := i + 1; j < len(classes); j++ {
			d := ksStatistic(samples[i], samples[j])
			t.Logf("KS %s vs %s: D = %.3f", classes[i].name, classes[j].name, d)
			if d > worst {
				worst, pair = d, classes[i].name+" and "+classes[j].name
			}
		}
	}
	return worst, pair
}

// ksStatistic is the two-sample Kolmogorov–Smirnov statistic: the
// largest distance between the two empirical distribution functions.
func ksStatistic(a, b []float64) float64 {
	a, b = slices.Clone(a), slices.Clone(b)
	slices.Sort(a)
	slices.Sort(b)
	var i, j int
	var d float64
	for i < len(a) && j < len(b) {
		x := min(a[i], b[j])
		for i < len(a) && a[i] <= x {
			i++
		}
		for j < len(b) && b[j] <= x {
			j++
		}
		diff := float64(i)/float64(len(a)) - float64(j)/float64(len(b))
		if diff < 0 {
			diff = -diff
		}
		d = max(d, diff)
	}
	return d
}

// TestKSStatistic: the statistic itself, on distributions that are and
// are not apart.
func TestKSStatistic(t *testing.T) {
	same := []float64{1, 2, 3, 4, 5}
	if d := ksStatistic(same, same); d != 0 {
		t.Errorf("identical samples: D = %v", d)
	}
	if d := ksStatistic([]float64{1, 2, 3}, []float64{10, 11, 12}); d != 1 {
		t.Errorf("disjoint samples: D = %v", d)
	}
	if d := ksStatistic([]float64{1, 3, 5, 7}, []float64{2, 4, 6, 8}); d != 0.25 {
		t.Errorf("interleaved samples: D = %v", d)
	}
}
