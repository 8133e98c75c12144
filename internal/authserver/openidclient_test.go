package authserver

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/internal/peertest"
	jose "github.com/go-jose/go-jose/v4"
)

// openidClientDir holds the npm test client (package.json, client.mjs).
const openidClientDir = "testdata/openidclient"

// needOpenIDClient installs openid-client from package-lock.json when it is
// missing, and skips loudly only when node or npm is not installed.
func needOpenIDClient(t *testing.T) {
	t.Helper()
	for _, tool := range []string{"node", "npm"} {
		if _, err := exec.LookPath(tool); err != nil {
			peertest.Unavailable(t, "the openid-client interoperability test needs %s (apt-get install nodejs npm)", tool)
		}
	}
	if _, err := os.Stat(filepath.Join(openidClientDir, "node_modules", "openid-client")); err == nil {
		return
	}
	ctx, cancel := context.WithTimeout(t.Context(), 3*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "npm", "ci", "--no-audit", "--no-fund")
	cmd.Dir = openidClientDir
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("npm ci in %s: %v\n%s", openidClientDir, err, out)
	}
}

type openidResult struct {
	Issuer        string         `json:"issuer"`
	TokenEndpoint string         `json:"token_endpoint"`
	AccessToken   string         `json:"access_token"`
	TokenType     string         `json:"token_type"`
	Scope         string         `json:"scope"`
	ExpiresIn     float64        `json:"expires_in"`
	Introspection map[string]any `json:"introspection"`
}

func runOpenIDClient(t *testing.T, args ...string) openidResult {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, "node", append([]string{"client.mjs"}, args...)...)
	cmd.Dir = openidClientDir
	out, err := cmd.Output()
	if err != nil {
		var stderr []byte
		if ee, ok := err.(*exec.ExitError); ok {
			stderr = ee.Stderr
		}
		t.Fatalf("node client.mjs %v: %v\n%s", args[1], err, stderr)
	}
	var r openidResult
	if err := json.Unmarshal(out, &r); err != nil {
		t.Fatalf("client output %q: %v", out, err)
	}
	return r
}

// TestOpenIDClient runs the npm package openid-client against the server:
// discovery (OpenID and RFC 8414), client_credentials with
// client_secret_basic and with private_key_jwt, and introspection.
func TestOpenIDClient(t *testing.T) {
	needOpenIDClient(t)
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	pub, _ := json.Marshal(jose.JSONWebKeySet{Keys: []jose.JSONWebKey{{Key: &key.PublicKey, KeyID: "node-1", Algorithm: "ES256", Use: "sig"}}})
	priv, _ := json.Marshal(jose.JSONWebKey{Key: key, KeyID: "node-1", Algorithm: "ES256", Use: "sig"})
	e := newEnv(t, defaultSection(`    - client_id: node-signer
      jwks_file: node.jwks
      scopes: [products:read, products:write]
`), func(e *env) { e.writeFile("node.jwks", pub) })

	for _, tc := range []struct {
		name, client string
		args         []string
		scope        string
	}{
		{"client_secret_basic", "reader", []string{"basic", "reader", readerSecret, "products:read"}, "products:read"},
		{"private_key_jwt", "node-signer", []string{"private_key_jwt", "node-signer", string(priv), "products:write"}, "products:write"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := runOpenIDClient(t, append([]string{e.issuer}, tc.args...)...)
			if r.Issuer != e.issuer || r.TokenEndpoint != e.issuer+PathToken {
				t.Errorf("discovered issuer %q, token endpoint %q", r.Issuer, r.TokenEndpoint)
			}
			if r.TokenType != "bearer" && r.TokenType != "Bearer" {
				t.Errorf("token_type %q", r.TokenType)
			}
			if r.Scope != tc.scope || r.ExpiresIn < 3500 {
				t.Errorf("scope %q expires_in %v", r.Scope, r.ExpiresIn)
			}
			_, c := e.verify(r.AccessToken)
			if c["client_id"] != tc.client || c["scope"] != tc.scope {
				t.Errorf("token claims %v", c)
			}
			in := r.Introspection
			if in["active"] != true || in["client_id"] != tc.client || in["jti"] != c["jti"] {
				t.Errorf("introspection %v", in)
			}
		})
	}
}
