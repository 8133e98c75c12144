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
	s := folded.s
	eng, g, err := newEngineGate(directives(s), engineOpts{fast: true, gate: true, extra: s.directives, paranoia: s.paranoia, cutPL: cutLevel(s)})
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
			var cpu [2]time.Duration
			const block = 50
			n := 0
			for b.Loop() {
				n++
				if n%block != 0 {
					continue
				}
				for i, w := range []*WAF{folded, unfolded} {
					start := cpuTime()
					for range block {
						if blocked(b, w, r.req()) {
							b.Fatal("blocked")
						}
					}
					cpu[i] += cpuTime() - start
				}
			}
			done := float64(n - n%block)
			if done == 0 {
				return
			}
			b.ReportMetric(float64(cpu[0].Microseconds())/done, "folded-cpu-µs/op")
			b.ReportMetric(float64(cpu[1].Microseconds())/done, "unfolded-cpu-µs/op")
		})
	}
}
