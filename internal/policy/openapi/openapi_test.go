package openapi

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/internal/demo"
	"github.com/gatehouse/gatehouse/internal/gateway"
	"github.com/gatehouse/gatehouse/internal/gatewaytest"
	"github.com/gatehouse/gatehouse/internal/policy"
)

const gatewayYAML = `
listeners: [{name: main, address: "127.0.0.1:0"}]
admin: {address: "off"}
routes:
  - name: products
    match: {path_prefix: /api}
    upstream: {url: "UPSTREAM"}
    policies:
      - openapi: OPENAPI
`

// startGateway runs a gateway in front of upstream with the openapi policy
// configured by settings; the config file sits next to a copy of the demo
// spec, which settings name as products.openapi.yaml.
func startGateway(t *testing.T, settings, upstream string) string {
	t.Helper()
	dir := t.TempDir()
	spec, err := os.ReadFile("testdata/products.openapi.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "products.openapi.yaml"), spec, 0o600); err != nil {
		t.Fatal(err)
	}
	src := strings.NewReplacer("OPENAPI", settings, "UPSTREAM", upstream).Replace(gatewayYAML)
	return gatewaytest.Start(t, src, gateway.Options{Registry: policy.NewRegistry(Unit), BaseDir: dir}).URL
}

func demoUpstream(t *testing.T) string {
	t.Helper()
	// The demo serves /product; the gateway route and server_base are /api.
	srv := httptest.NewServer(http.StripPrefix("/api", demo.RESTHandler(demo.NewStore())))
	t.Cleanup(srv.Close)
	return srv.URL
}

var client = &http.Client{Timeout: 10 * time.Second}

type problem struct {
	Status int
	Code   string
	Detail string
}

func do(t *testing.T, method, url, ct, body string) (int, problem, string) {
	t.Helper()
	req, _ := http.NewRequest(method, url, strings.NewReader(body))
	if ct != "" {
		req.Header.Set("Content-Type", ct)
	}
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	var p problem
	if strings.Contains(resp.Header.Get("Content-Type"), "problem+json") {
		json.Unmarshal(b, &p)
	}
	return resp.StatusCode, p, string(b)
}

func TestRequests(t *testing.T) {
	url := startGateway(t, "{spec: products.openapi.yaml, server_base: /api}", demoUpstream(t))
	tests := []struct {
		name, method, path, ct, body string
		wantStatus                   int
		wantCode, wantDetail         string
	}{
		{"list", "GET", "/api/product", "", "", 200, "", ""},
		{"list with limit", "GET", "/api/product?limit=10", "", "", 200, "", ""},
		{"limit not an integer", "GET", "/api/product?limit=ten", "", "", 400, CodeInvalid, "query.limit"},
		{"limit too big", "GET", "/api/product?limit=1000", "", "", 400, CodeInvalid, "query.limit"},
		{"create", "POST", "/api/product", "application/json", `{"name":"Tamper","price":19.5,"currency":"EUR"}`, 201, "", ""},
		{"negative price", "POST", "/api/product", "application/json", `{"name":"Tamper","price":-1}`, 400, CodeInvalid, "body.price"},
		{"price a string", "POST", "/api/product", "application/json", `{"name":"Tamper","price":"cheap"}`, 400, CodeInvalid, "body.price"},
		{"missing name", "POST", "/api/product", "application/json", `{"price":1}`, 400, CodeInvalid, "body"},
		{"unknown field", "POST", "/api/product", "application/json", `{"name":"x","price":1,"admin":true}`, 400, CodeInvalid, "body"},
		{"not JSON", "POST", "/api/product", "application/json", `{"name":`, 400, CodeInvalid, ""},
		{"bad path param", "GET", "/api/product/abc", "", "", 400, CodeInvalid, "path.id"},
		{"unknown path", "GET", "/api/admin", "", "", 404, CodeNotFound, ""},
		{"outside the route", "GET", "/apix/product", "", "", 404, "no_route", ""},
		{"unknown method", "DELETE", "/api/product/p-1", "", "", 405, CodeMethodNotAllowed, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			status, p, body := do(t, tt.method, url+tt.path, tt.ct, tt.body)
			if status != tt.wantStatus {
				t.Fatalf("got %d %s, want %d", status, body, tt.wantStatus)
			}
			if p.Code != tt.wantCode || !strings.Contains(p.Detail, tt.wantDetail) {
				t.Errorf("got code %q detail %q, want %q containing %q", p.Code, p.Detail, tt.wantCode, tt.wantDetail)
			}
		})
	}
}

// Response validation: an upstream answering against the spec is logged
// and passed, or with block replaced by 502.
func TestResponses(t *testing.T) {
	bad := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		io.WriteString(w, `[{"id":"p-1","name":"x","price":"free","currency":"EUR"}]`)
	}))
	t.Cleanup(bad.Close)
	url := startGateway(t, "{spec: products.openapi.yaml, server_base: /api, validate: {response: true}, on_response_mismatch: block}", bad.URL)
	status, p, body := do(t, "GET", url+"/api/product", "", "")
	if status != 502 || p.Code != CodeResponseInvalid || strings.Contains(body, "free") {
		t.Errorf("block: got %d %s", status, body)
	}
	url = startGateway(t, "{spec: products.openapi.yaml, server_base: /api, validate: {response: true}}", bad.URL)
	if status, _, body := do(t, "GET", url+"/api/product", "", ""); status != 200 || !strings.Contains(body, "free") {
		t.Errorf("log: got %d %s", status, body)
	}
	// The demo answers by the spec.
	url = startGateway(t, "{spec: products.openapi.yaml, server_base: /api, validate: {response: true}, on_response_mismatch: block}", demoUpstream(t))
	if status, _, body := do(t, "GET", url+"/api/product", "", ""); status != 200 {
		t.Errorf("demo: got %d %s", status, body)
	}
}
