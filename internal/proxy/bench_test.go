//go:build unix

package proxy

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/gatehouse/gatehouse/internal/benchcpu"
	"github.com/gatehouse/gatehouse/internal/config"
)

// BenchmarkUpstream measures one proxied exchange, the upstream a real
// server on loopback, through the HTTP/1.1 client (h1) and, for
// comparison, through httputil.ReverseProxy and http.Transport (the path
// https://, h2c and upgrades take). The client side is a direct call of
// ServeHTTP with a recorder, so what is measured is the proxy's work and
// the upstream's, not a server in front. cpu-ns/op is the figure to read:
// the transport's read and write loops run beside the benchmark on the
// other core, which hides their cost from the wall time.
//
//	go test -run XXX -bench BenchmarkUpstream -benchmem ./internal/proxy/
func BenchmarkUpstream(b *testing.B) {
	body := []byte(`{"id":"p-1001","name":"Widget","price":9.5}`)
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(body)
	}))
	defer up.Close()
	cfg := config.Upstream{
		URL:                   up.URL,
		ConnectTimeout:        config.Duration(config.DefaultConnectTimeout),
		ResponseHeaderTimeout: config.Duration(config.DefaultResponseHeaderTimeout),
		IdleConnTimeout:       config.Duration(config.DefaultIdleConnTimeout),
		MaxIdleConnsPerHost:   config.DefaultMaxIdleConnsPerHost,
	}
	for _, tc := range []struct {
		name     string
		h1       bool
		post     bool
		parallel bool // 16 goroutines, as wrk's 16 connections
	}{
		{"h1/GET", true, false, false},
		{"transport/GET", false, false, false},
		{"h1/POST", true, true, false},
		{"transport/POST", false, true, false},
		{"h1/GET/parallel", true, false, true},
		{"transport/GET/parallel", false, false, true},
	} {
		b.Run(tc.name, func(b *testing.B) {
			u, err := New(cfg, Options{OnError: func(w http.ResponseWriter, r *http.Request, err error) { b.Fatal(err) }})
			if err != nil {
				b.Fatal(err)
			}
			defer u.Close()
			if !tc.h1 {
				u.h1 = nil
			}
			b.ReportAllocs()
			c := benchcpu.Start(b)
			if tc.parallel {
				b.SetParallelism(8) // x GOMAXPROCS (2 here)
				b.RunParallel(func(pb *testing.PB) {
					for pb.Next() {
						req := httptest.NewRequest("GET", "http://gw/product/p-1001", nil)
						req.RemoteAddr = "127.0.0.1:5000"
						w := httptest.NewRecorder()
						u.ServeHTTP(w, req)
						if w.Code != http.StatusOK {
							b.Errorf("status %d", w.Code)
							return
						}
					}
				})
				c.Report()
				return
			}
			for b.Loop() {
				var req *http.Request
				if tc.post {
					req = httptest.NewRequest("POST", "http://gw/product/p-1001", strings.NewReader(`{"q":1}`))
				} else {
					req = httptest.NewRequest("GET", "http://gw/product/p-1001", nil)
				}
				req.RemoteAddr = "127.0.0.1:5000"
				req.Header.Set("Authorization", "Bearer "+strings.Repeat("x", 500))
				w := httptest.NewRecorder()
				u.ServeHTTP(w, req)
				if w.Code != http.StatusOK {
					b.Fatalf("status %d", w.Code)
				}
			}
			c.Report()
		})
	}
}
