package gateway

import (
	"log/slog"
	"net/http/httptest"
	"testing"

	"github.com/gatehouse/gatehouse/internal/builtin"
)

// BenchmarkDeny measures a request refused by its chain's policy: the
// path that also records the decision, the per-code stats and (with
// audit.output off) the in-memory audit event.
func BenchmarkDeny(b *testing.B) {
	cfg := `
listeners: [{name: main, address: "127.0.0.1:0"}]
admin: {address: "off"}
store: {type: memory}
routes:
  - name: closed
    match: {path: "/closed"}
    upstream: {url: "http://127.0.0.1:1"}
    policies:
      - ipfilter: {deny: [127.0.0.0/8]}
`
	g, err := New(load(b, cfg, nil), Options{BaseDir: b.TempDir(), Registry: builtin.Registry(), Logger: slog.New(slog.DiscardHandler), AccessLog: slog.New(slog.DiscardHandler)})
	if err != nil {
		b.Fatal(err)
	}
	defer g.Close()
	b.ReportAllocs()
	for b.Loop() {
		req := httptest.NewRequest("GET", "http://gw/closed", nil)
		req.RemoteAddr = "127.0.0.1:5000"
		w := httptest.NewRecorder()
		g.ServeHTTP(w, req)
		if w.Code != 403 {
			b.Fatalf("status %d", w.Code)
		}
	}
}
