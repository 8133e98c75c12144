package waf

import (
	"net/http"
	"testing"
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
