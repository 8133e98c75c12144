package admin

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"net/http/httptest"
	"slices"
	"sort"
	"strings"
	"testing"
)

func TestAuthorize(t *testing.T) {
	const token = "0123456789abcdef0123"
	verified := &tls.ConnectionState{VerifiedChains: [][]*x509.Certificate{{{}}}}
	tests := []struct {
		name   string
		access Access
		host   string
		auth   string
		tls    *tls.ConnectionState
		ok     bool
		status int
	}{
		{"loopback, open", Access{Address: "127.0.0.1:9901"}, "127.0.0.1:9901", "", nil, true, 0},
		{"loopback v6, open", Access{Address: "[::1]:9901"}, "[::1]:9901", "", nil, true, 0},
		{"localhost, open", Access{Address: "localhost:9901"}, "localhost:9901", "", nil, true, 0},
		{"loopback, rebound DNS name", Access{Address: "127.0.0.1:9901"}, "evil.example:9901", "", nil, false, 403},
		{"all interfaces, no auth configured", Access{Address: ":9901"}, "10.0.0.5:9901", "", nil, false, 401},
		{"public, no auth configured", Access{Address: "0.0.0.0:9901"}, "10.0.0.5:9901", "", nil, false, 401},
		{"public, token missing", Access{Address: "0.0.0.0:9901", Token: token}, "10.0.0.5:9901", "", nil, false, 401},
		{"public, token wrong", Access{Address: "0.0.0.0:9901", Token: token}, "10.0.0.5:9901", "Bearer " + token + "x", nil, false, 401},
		{"public, token as basic", Access{Address: "0.0.0.0:9901", Token: token}, "10.0.0.5:9901", "Basic " + token, nil, false, 401},
		{"public, token right", Access{Address: "0.0.0.0:9901", Token: token}, "10.0.0.5:9901", "Bearer " + token, nil, true, 0},
		{"loopback with a token set needs it", Access{Address: "127.0.0.1:9901", Token: token}, "127.0.0.1:9901", "", nil, false, 401},
		{"public, mTLS verified", Access{Address: "0.0.0.0:9901", ClientCerts: true}, "10.0.0.5:9901", "", verified, true, 0},
		{"public, mTLS without certificate", Access{Address: "0.0.0.0:9901", ClientCerts: true}, "10.0.0.5:9901", "", &tls.ConnectionState{}, false, 401},
		{"public, mTLS or token: token", Access{Address: "0.0.0.0:9901", ClientCerts: true, Token: token}, "10.0.0.5:9901", "Bearer " + token, &tls.ConnectionState{}, true, 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := httptest.NewRequest("GET", "/api/v1/config", nil)
			r.Host = tc.host
			r.TLS = tc.tls
			if tc.auth != "" {
				r.Header.Set("Authorization", tc.auth)
			}
			ok, status := tc.access.Authorize(r)
			if ok != tc.ok || status != tc.status {
				t.Errorf("got %v %d, want %v %d", ok, status, tc.ok, tc.status)
			}
		})
	}
}

// TestOpenAPIMatchesRoutes: every route the API serves is documented with
// its method, and every documented operation is a route.
func TestOpenAPIMatchesRoutes(t *testing.T) {
	var doc struct {
		OpenAPI string                                `json:"openapi"`
		Paths   map[string]map[string]json.RawMessage `json:"paths"`
	}
	if err := json.Unmarshal(openapiJSON, &doc); err != nil {
		t.Fatal(err)
	}
	if doc.OpenAPI != "3.1.0" {
		t.Errorf("openapi: got %q, want 3.1.0", doc.OpenAPI)
	}
	var documented, served []string
	for p, ops := range doc.Paths {
		for m := range ops {
			documented = append(documented, strings.ToUpper(m)+" "+p)
		}
	}
	for _, e := range endpoints {
		served = append(served, e.method+" "+e.path)
	}
	sort.Strings(documented)
	sort.Strings(served)
	if !slices.Equal(documented, served) {
		t.Errorf("documented:\n%v\nserved:\n%v", documented, served)
	}
}
