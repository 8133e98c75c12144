package main

import (
	"fmt"
	"io"
	"net/http"
	"path/filepath"
	"testing"
)

// TestServeOpensTheDoors: `gatehouse serve` with ext_authz (its HTTP
// flavour) and forward_auth in the config opens both listeners, and each
// decides with the config's routes: an allowed request is answered 200,
// a refused one with the route's denial.
func TestServeOpensTheDoors(t *testing.T) {
	main, extAddr, fwdAddr := freeAddr(t), freeAddr(t), freeAddr(t)
	cfgFile := filepath.Join(t.TempDir(), "gatehouse.yaml")
	writeFile(t, cfgFile, fmt.Sprintf(`
listeners: [{name: main, address: "%s"}]
admin: {address: "off"}
access_log: {disabled: true}
client_ip: {trusted_proxies: [127.0.0.1/32]}
ext_authz: {http_address: "%s"}
forward_auth: {address: "%s"}
routes:
  - name: open
    match: {path: /open}
    upstream: {url: "http://127.0.0.1:1"}
    policies:
      - ipfilter: {allow: [127.0.0.0/8]}
  - name: closed
    match: {path: /closed}
    upstream: {url: "http://127.0.0.1:1"}
    policies:
      - ipfilter: {allow: [10.0.0.0/8]}
`, main, extAddr, fwdAddr))
	p := start(t, "serve", "--config", cfgFile)
	_ = p

	ask := func(req *http.Request) (int, string) {
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return 0, err.Error()
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(body)
	}
	forward := func(path string) *http.Request {
		req, _ := http.NewRequest("GET", "http://"+fwdAddr+"/", nil)
		req.Header.Set("X-Forwarded-Method", "GET")
		req.Header.Set("X-Forwarded-Uri", path)
		req.Header.Set("X-Forwarded-Host", "app.test")
		req.Header.Set("X-Forwarded-Proto", "https")
		return req
	}
	envoy := func(path string) *http.Request {
		req, _ := http.NewRequest("GET", "http://"+extAddr+path, nil)
		return req
	}
	for _, tc := range []struct {
		door string
		req  func(string) *http.Request
	}{{"forward_auth", forward}, {"ext_authz http", envoy}} {
		eventually(t, tc.door+" allows /open", func() string {
			if status, body := ask(tc.req("/open")); status != http.StatusOK {
				return fmt.Sprintf("status %d: %s", status, body)
			}
			return ""
		})
		if status, body := ask(tc.req("/closed")); status != http.StatusForbidden {
			t.Errorf("%s /closed: status %d, want 403: %s", tc.door, status, body)
		}
	}
}
