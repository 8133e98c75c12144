package identity_test

import (
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	jose "github.com/go-jose/go-jose/v4"
	josejwt "github.com/go-jose/go-jose/v4/jwt"

	"github.com/gatehouse/gatehouse/internal/authn/apikey"
	"github.com/gatehouse/gatehouse/internal/builtin"
	"github.com/gatehouse/gatehouse/internal/gateway"
	"github.com/gatehouse/gatehouse/internal/gatewaytest"
	"github.com/gatehouse/gatehouse/internal/keys"
)

// TestThroughGateway runs a request through a real gateway, authenticated
// with an API key, to a real upstream that verifies the minted token with
// the JWK Set `gatehouse keys jwks` would print.
func TestThroughGateway(t *testing.T) {
	dir := t.TempDir()
	k, err := keys.Generate("ES256")
	if err != nil {
		t.Fatal(err)
	}
	pemData, err := k.MarshalPEM()
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "identity.pem"), pemData, 0o600); err != nil {
		t.Fatal(err)
	}
	jwksJSON, err := keys.JWKS(k)
	if err != nil {
		t.Fatal(err)
	}
	var jwks jose.JSONWebKeySet
	if err := json.Unmarshal(jwksJSON, &jwks); err != nil {
		t.Fatal(err)
	}

	got := make(chan http.Header, 4)
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got <- r.Header.Clone()
	}))
	defer up.Close()

	apiKey, hash, err := apikey.GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	yaml := `
listeners: [{name: main, address: "127.0.0.1:0"}]
routes:
  - name: products
    match: {path_prefix: /}
    upstream: {url: "` + up.URL + `"}
    policies:
      - authenticate:
          optional: true
          with:
            - apikey:
                keys:
                  - consumer: billing-app
                    hash: "` + hash + `"
                    scopes: [products:read, invoices:write]
                    metadata:
                      email: billing@example.com
                      evil: "x\r\nX-Admin: true"
      - identity:
          headers:
            subject: X-Auth-Subject
            scopes: X-Auth-Scopes
            claims: {email: X-Auth-Email, evil: X-Auth-Evil}
          strip: [X-Admin]
          jwt:
            header: Authorization
            issuer: https://gatehouse.internal
            audience: products-api
            key_file: identity.pem
            claims: [email]
`
	base := gatewaytest.Start(t, yaml, gateway.Options{
		Registry:  builtin.Registry(),
		AccessLog: slog.New(slog.DiscardHandler),
		BaseDir:   dir,
	}).URL

	send := func(h http.Header) http.Header {
		t.Helper()
		req, err := http.NewRequest(http.MethodGet, base+"/products", nil)
		if err != nil {
			t.Fatal(err)
		}
		req.Header = h
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 200 {
			t.Fatalf("status %d", resp.StatusCode)
		}
		return <-got
	}

	// Authenticated, with spoofed identity headers on the wire.
	h := send(http.Header{
		"X-Api-Key":      {apiKey},
		"X-Auth-Subject": {"root"},
		"x-auth-email":   {"root@example.com"},
		"X-Admin":        {"true"},
		"Dpop":           {"proof"},
	})
	if got, want := h.Get("X-Auth-Subject"), "billing-app"; got != want {
		t.Errorf("X-Auth-Subject = %q, want %q", got, want)
	}
	if got, want := h.Get("X-Auth-Scopes"), "products:read invoices:write"; got != want {
		t.Errorf("X-Auth-Scopes = %q, want %q", got, want)
	}
	if got := h.Values("X-Auth-Email"); len(got) != 1 || got[0] != "billing@example.com" {
		t.Errorf("X-Auth-Email = %q", got)
	}
	for _, name := range []string{"X-Admin", "X-Auth-Evil", "Dpop", "X-Api-Key"} {
		if v := h.Values(name); len(v) > 0 {
			t.Errorf("%s = %q reached the upstream", name, v)
		}
	}
	auth := h.Get("Authorization")
	raw, ok := strings.CutPrefix(auth, "Bearer ")
	if !ok {
		t.Fatalf("Authorization = %q", auth)
	}
	tok, err := josejwt.ParseSigned(raw, []jose.SignatureAlgorithm{jose.ES256})
	if err != nil {
		t.Fatal(err)
	}
	keyset := jwks.Key(tok.Headers[0].KeyID)
	if len(keyset) != 1 {
		t.Fatalf("kid %q not in the JWKS", tok.Headers[0].KeyID)
	}
	var c struct {
		josejwt.Claims
		Scope  string `json:"scope"`
		Method string `json:"auth_method"`
		Email  string `json:"email"`
	}
	if err := tok.Claims(keyset[0], &c); err != nil {
		t.Fatalf("the upstream cannot verify the token: %v", err)
	}
	if err := c.Validate(josejwt.Expected{Issuer: "https://gatehouse.internal", AnyAudience: josejwt.Audience{"products-api"}, Subject: "billing-app"}); err != nil {
		t.Errorf("claims %+v: %v", c, err)
	}
	if c.Scope != "products:read invoices:write" || c.Method != "apikey" || c.Email != "billing@example.com" {
		t.Errorf("claims %+v", c)
	}

	// Anonymous (authentication is optional here): everything stripped.
	h = send(http.Header{"X-Auth-Subject": {"root"}, "Authorization": {"Bearer forged"}, "X-Admin": {"1"}})
	for _, name := range []string{"X-Auth-Subject", "Authorization", "X-Admin"} {
		if v := h.Values(name); len(v) > 0 {
			t.Errorf("anonymous: %s = %q reached the upstream", name, v)
		}
	}
}
