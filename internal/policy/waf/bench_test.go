package waf

import (
	"net/http"
	"testing"
	"time"
)

// BenchmarkWAF compares stock Coraza+CRS with the waf policy's defaults on
// a GET with one argument and the 13-field JSON POST.
func BenchmarkWAF(b *testing.B) {
	for _, c := range []struct {
		name string
		w    func(testing.TB) *WAF
	}{
		{"stock", stockWAF},
		{"ours", func(t testing.TB) *WAF { return oursWAF(t, "") }},
	} {
		w := c.w(b)
		for _, r := range []struct {
			name string
			req  func() *http.Request
		}{{"get", getRequest}, {"json_post", postRequest}} {
			b.Run(c.name+"/"+r.name, func(b *testing.B) {
				b.ReportAllocs()
				for b.Loop() {
					if blocked(b, w, r.req()) {
						b.Fatal("blocked")
					}
				}
			})
		}
	}
}

// BenchmarkFold measures what folding (fold.go) saves: the policy's
// defaults with and without it (same gate), requests sent to each in
// alternating blocks of 50 so that the load of a shared machine falls on
// both alike. It reports the process CPU per request of each.
func BenchmarkFold(b *testing.B) {
	folded := oursWAF(b, "")
	folded.quiet = nil // every rule runs: folding is what is measured
	s := folded.s
	eng, g, err := newEngineGate(directives(s), engineOpts{fast: true, gate: true, extra: s.directives, paranoia: s.paranoia, cutPL: cutLevel(s), noFold: true})
	if err != nil {
		b.Fatal(err)
	}
	g.folded = [3][]int{}
	unfolded := &WAF{engine: eng, gate: g, release: func() error { return nil }, s: s, log: discard}
	for _, r := range []struct {
		name string
		req  func() *http.Request
	}{{"get", getRequest}, {"json_post", postRequest}} {
		b.Run(r.name, func(b *testing.B) {
			cpu := alternating(b, func() { mustPass(b, folded, r.req()) }, func() { mustPass(b, unfolded, r.req()) })
			b.ReportMetric(cpu[0], "folded-cpu-µs/op")
			b.ReportMetric(cpu[1], "unfolded-cpu-µs/op")
		})
	}
}

// alternating runs each of runs in turn, in blocks of 50, for the
// benchmark's b.N calls each, so that a shared machine's load falls on all
// alike, and returns each one's process CPU time per call in µs.
func alternating(b *testing.B, runs ...func()) []float64 {
	cpu := make([]time.Duration, len(runs))
	const block = 50
	n := 0
	for b.Loop() {
		n++
		if n%block != 0 {
			continue
		}
		for i, run := range runs {
			start := cpuTime()
			for range block {
				run()
			}
			cpu[i] += cpuTime() - start
		}
	}
	out := make([]float64, len(runs))
	if done := float64(n - n%block); done > 0 {
		for i := range cpu {
			out[i] = float64(cpu[i].Microseconds()) / done
		}
	}
	return out
}

// mustPass fails b when w refuses r.
func mustPass(b *testing.B, w *WAF, r *http.Request) {
	if blocked(b, w, r) {
		b.Fatal("blocked")
	}
}
