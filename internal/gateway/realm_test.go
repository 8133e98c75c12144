package gateway_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"

	"github.com/gatehouse/gatehouse/internal/builtin"
	"github.com/gatehouse/gatehouse/internal/config"
	"github.com/gatehouse/gatehouse/internal/gateway"
	"github.com/gatehouse/gatehouse/internal/gatewaytest"
)

// Every WWW-Authenticate of a route names the one realm its authenticate
// policy sets: the 401 without credentials, with a bad token, the
// scopes 403, an expr 403 with insufficient_scope, a binding refusal.
func TestOneRealmPerRoute(t *testing.T) {
	dir := t.TempDir()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	set, _ := json.Marshal(jose.JSONWebKeySet{Keys: []jose.JSONWebKey{{Key: key.Public(), KeyID: "k1", Algorithm: "ES256", Use: "sig"}}})
	if err := os.WriteFile(filepath.Join(dir, "keys.json"), set, 0o600); err != nil {
		t.Fatal(err)
	}
	sign := func(claims map[string]any) string {
		sg, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.ES256, Key: key}, (&jose.SignerOptions{}).WithHeader("kid", "k1"))
		if err != nil {
			t.Fatal(err)
		}
		payload, _ := json.Marshal(claims)
		jws, err := sg.Sign(payload)
		if err != nil {
			t.Fatal(err)
		}
		s, _ := jws.CompactSerialize()
		return s
	}
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	defer up.Close()
	jwtAuth := `
      - authenticate:
          realm: partners
          with:
            - jwt: {issuer: https://idp.test, audiences: [api], algorithms: [ES256], keys: [{file: keys.json}]}`
	g := gatewaytest.Start(t, fmt.Sprintf(`
listeners: [{name: main, address: "127.0.0.1:0"}]
admin: {address: "off"}
access_log: {disabled: true}
store: {type: memory}
routes:
  - name: scopes
    match: {path: /scopes}
    upstream: {url: %[1]q}
    policies:%[2]s
      - scopes: {all: [write]}
  - name: expr
    match: {path: /expr}
    upstream: {url: %[1]q}
    policies:%[2]s
      - expr: {allow: '"write" in principal.scopes', code: insufficient_scope, message: needs write}
  - name: binding
    match: {path: /binding}
    upstream: {url: %[1]q}
    policies:%[2]s
      - binding: {dpop: forbidden}
  - name: no-authenticate-realm
    match: {path: /other}
    upstream: {url: %[1]q}
    policies:
      - authenticate:
          with:
            - jwt: {issuer: https://idp.test, audiences: [api], algorithms: [ES256], keys: [{file: keys.json}]}
      - scopes: {all: [write], realm: elsewhere}
`, up.URL, jwtAuth), gateway.Options{Registry: builtin.Registry(), BaseDir: dir})

	now := time.Now()
	readTok := sign(map[string]any{"iss": "https://idp.test", "aud": "api", "sub": "alice", "scope": "read", "exp": now.Add(time.Hour).Unix()})
	dpopBound := sign(map[string]any{"iss": "https://idp.test", "aud": "api", "sub": "alice", "scope": "write", "exp": now.Add(time.Hour).Unix(),
		"cnf": map[string]any{"jkt": "0ZcOCORZNYy-DWpqq30jZyJGHTN0d2HglBV3uiguA4I"}})
	for _, tc := range []struct {
		name, path, authz string
		status            int
		realm             string
	}{
		{"no credentials", "/scopes", "", 401, "partners"},
		{"bad token", "/scopes", "Bearer abc.def.ghi", 401, "partners"},
		{"scopes 403", "/scopes", "Bearer " + readTok, 403, "partners"},
		{"expr 403 insufficient_scope", "/expr", "Bearer " + readTok, 403, "partners"},
		{"binding refusal", "/binding", "DPoP " + dpopBound, 401, "partners"},
		{"no credentials, realm set on scopes", "/other", "", 401, "elsewhere"},
		{"scopes 403, realm set on scopes", "/other", "Bearer " + readTok, 403, "elsewhere"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			req, _ := http.NewRequest("GET", g.URL+tc.path, nil)
			if tc.authz != "" {
				req.Header.Set("Authorization", tc.authz)
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			chs := resp.Header.Values("Www-Authenticate")
			if resp.StatusCode != tc.status || len(chs) == 0 {
				t.Fatalf("got %d %q, want %d with a challenge", resp.StatusCode, chs, tc.status)
			}
			for _, ch := range chs {
				if !strings.Contains(ch, ` realm="`+tc.realm+`"`) {
					t.Errorf("challenge %q, want realm %q", ch, tc.realm)
				}
			}
		})
	}
}

// Two realms on one route are a load error naming the second.
func TestTwoRealmsOnARoute(t *testing.T) {
	cfg, err := config.LoadBytes(filepath.Join(t.TempDir(), "gw.yaml"), []byte(`
listeners: [{name: main, address: "127.0.0.1:0"}]
admin: {address: "off"}
store: {type: memory}
routes:
  - name: r
    match: {path: /r}
    upstream: {url: "http://127.0.0.1:1"}
    policies:
      - authenticate:
          realm: api
          with: [{apikey: {keys: [{consumer: a, hash: "sha256:LCa0a2j_xo_5m0U8HTBBNBNCLXBkg7-g-YpeiGJm564"}]}}]
      - scopes: {all: [write], realm: other}
`), nil)
	if err != nil {
		t.Fatal(err)
	}
	g, err := gateway.New(cfg, gateway.Options{Registry: builtin.Registry()})
	if err == nil {
		g.Close()
		t.Fatal("two realms on one route loaded")
	}
	if !strings.Contains(err.Error(), "gw.yaml:13:") || !strings.Contains(err.Error(), "routes[0].policies[1].scopes.realm") || !strings.Contains(err.Error(), `"api"`) {
		t.Errorf("error %q, want it to name gw.yaml:13, the field and the route's realm", err)
	}
}
