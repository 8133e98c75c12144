package gateway

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/gatehouse/gatehouse/internal/builtin"
)

// BenchmarkChain measures running a route's chain on a pooled exchange:
// empty, and the three shipped policies that all allow.
func BenchmarkChain(b *testing.B) {
	cfg := `
listeners: [{name: main, address: "127.0.0.1:0"}]
admin: {address: "off"}
routes:
  - name: empty
    match: {path: /empty}
    upstream: {url: "http://127.0.0.1:1"}
  - name: three
    match: {path: /three}
    upstream: {url: "http://127.0.0.1:1"}
    policies:
      - ipfilter: {allow: [127.0.0.0/8]}
      - size_limit: {body: 1MiB, headers: 16KiB}
      - headers: {request: {set: {X-Via-Gatehouse: "1"}}}
`
	g, err := New(load(b, cfg, nil), Options{BaseDir: b.TempDir(), Registry: builtin.Registry(), Logger: slog.New(slog.DiscardHandler), AccessLog: slog.New(slog.DiscardHandler)})
	if err != nil {
		b.Fatal(err)
	}
	defer g.Close()
	rt := g.current.Load()
	for _, name := range []string{"empty", "three"} {
		b.Run(name, func(b *testing.B) {
			var chain []link
			for _, r := range rt.routes {
				if r.info.Name == name {
					chain = r.chain
				}
			}
			req := httptest.NewRequest("GET", "http://x/"+name, nil)
			req.RemoteAddr = "127.0.0.1:5000"
			ctx := context.Background()
			b.ReportAllocs()
			for b.Loop() {
				x := getExchange()
				x.Request = req
				x.ClientIP = rt.trusted0()
				if err := x.runChain(ctx, chain); err != nil {
					b.Fatal(err)
				}
				putExchange(x)
			}
		})
	}
}

// BenchmarkServeHTTP measures the whole gateway handler in process (no
// client socket) in front of a real loopback upstream, and the gateway's
// own 404 path without an upstream, and the proxy path through a route
// with response filters (security headers, dlp masking).
func BenchmarkServeHTTP(b *testing.B) {
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, `{"id":"p-1001"}`)
	}))
	defer up.Close()
	cfg := `
listeners: [{name: main, address: "127.0.0.1:0"}]
admin: {address: "off"}
routes:
  - name: product
    match: {path: "/product/{id}"}
    upstream: {url: "` + up.URL + `"}
  - name: filtered
    match: {path: "/filtered/{id}"}
    upstream: {url: "` + up.URL + `"}
    policies:
      - headers: {security: {frame_options: DENY, content_type_options: true}}
      - dlp: {credit_cards: {}}
`
	g, err := New(load(b, cfg, nil), Options{BaseDir: b.TempDir(), Registry: builtin.Registry(), Logger: slog.New(slog.DiscardHandler), AccessLog: slog.New(slog.DiscardHandler)})
	if err != nil {
		b.Fatal(err)
	}
	defer g.Close()
	for _, tc := range []struct{ name, path string }{{"proxy", "/product/p-1001"}, {"no_route", "/nowhere"}, {"proxy_filtered", "/filtered/p-1001"}} {
		b.Run(tc.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				req := httptest.NewRequest("GET", "http://gw"+tc.path, nil)
				req.RemoteAddr = "127.0.0.1:5000"
				w := httptest.NewRecorder()
				g.ServeHTTP(w, req)
				if w.Code != 200 && w.Code != 404 {
					b.Fatalf("status %d", w.Code)
				}
			}
		})
	}
}
