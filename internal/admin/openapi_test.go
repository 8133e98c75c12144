package admin_test

import (
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/gatehouse/gatehouse/internal/audit"
	"github.com/gatehouse/gatehouse/internal/builtin"
	"github.com/gatehouse/gatehouse/internal/config"
	"github.com/gatehouse/gatehouse/internal/gateway"
)

// TestEveryDocumentedPathAnswers sends each documented operation to the
// admin handler of a real gateway and checks that a handler of the API
// answered it (JSON or problem+json, never the mux's 404 or 405).
func TestEveryDocumentedPathAnswers(t *testing.T) {
	cfg, err := config.LoadBytes("gw.yaml", []byte(`
listeners: [{address: "127.0.0.1:0"}]
admin: {address: "127.0.0.1:0"}
access_log: {disabled: true}
store: {type: memory}
routes:
  - name: a
    match: {path: /a}
    upstream: {url: "http://127.0.0.1:1"}
    policies:
      - ipfilter: {allow: [10.0.0.0/8]}
`), nil)
	if err != nil {
		t.Fatal(err)
	}
	g, err := gateway.New(cfg, gateway.Options{Registry: builtin.Registry(), Logger: slog.New(slog.DiscardHandler), Audit: audit.Discard()})
	if err != nil {
		t.Fatal(err)
	}
	defer g.Close()
	h := g.AdminHandler()

	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest("GET", "http://127.0.0.1/api/v1/openapi.json", nil))
	var doc struct {
		Paths map[string]map[string]json.RawMessage `json:"paths"`
	}
	if err := json.Unmarshal(rec.Body.Bytes(), &doc); err != nil || len(doc.Paths) == 0 {
		t.Fatalf("openapi.json: %d %v", rec.Code, err)
	}
	for p, ops := range doc.Paths {
		for m := range ops {
			method := strings.ToUpper(m)
			t.Run(method+" "+p, func(t *testing.T) {
				var body io.Reader
				if p == "/api/v1/tokens/revoke" {
					body = strings.NewReader(`{"jti":"some-jti"}`)
				}
				req := httptest.NewRequest(method, "http://127.0.0.1"+strings.ReplaceAll(p, "{request_id}", "unknown-id"), body)
				rec := httptest.NewRecorder()
				h.ServeHTTP(rec, req)
				ct := rec.Header().Get("Content-Type")
				if rec.Code == http.StatusMethodNotAllowed || !strings.HasPrefix(ct, "application/") {
					t.Errorf("got %d %s %q", rec.Code, ct, rec.Body.String())
				}
			})
		}
	}
}
