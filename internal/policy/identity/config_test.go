package identity

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/internal/config"
	"github.com/gatehouse/gatehouse/internal/keys"
	"github.com/gatehouse/gatehouse/internal/policy/policytest"
	"github.com/google/go-cmp/cmp"
)

// writeKey generates a key for alg, writes it as PEM into dir and returns
// the file's path and the key.
func writeKey(t testing.TB, dir, name, alg string) (string, *keys.Key) {
	t.Helper()
	k, err := keys.Generate(alg)
	if err != nil {
		t.Fatal(err)
	}
	data, err := k.MarshalPEM()
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, name)
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
	return path, k
}

func TestConfigErrors(t *testing.T) {
	dir := t.TempDir()
	es256, _ := writeKey(t, dir, "es256.pem", "ES256")
	p384, err := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	der, err := x509.MarshalPKCS8PrivateKey(p384)
	if err != nil {
		t.Fatal(err)
	}
	es384 := filepath.Join(dir, "p384.pem")
	if err := os.WriteFile(es384, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	hmacJWK := filepath.Join(dir, "hmac.jwk")
	if err := os.WriteFile(hmacJWK, []byte(`{"kty":"oct","alg":"HS256","k":"c2VjcmV0LXNlY3JldC1zZWNyZXQtc2VjcmV0"}`), 0o600); err != nil {
		t.Fatal(err)
	}
	// jwt is a valid jwt block whose lines 2.. follow "jwt:" on line 1.
	jwt := func(extra string) string {
		return "jwt:\n  issuer: https://gh\n  audience: api\n  key_file: " + es256 + "\n" + extra
	}
	tests := []struct {
		name string
		yaml string
		line int
		path string
		msg  string
	}{
		{"empty", "{}\n", 1, "", "identity needs headers, strip or jwt"},
		{"empty headers", "headers: {}\nstrip: []\n", 1, "", "identity needs"},
		{"unknown field", "headers:\n  subjekt: X-Sub\n", 2, "headers.subjekt", `unknown field "subjekt"`},
		{"unknown jwt field", jwt("  audiences: [a]\n"), 5, "jwt.audiences", `unknown field "audiences"`},
		{"bad header name", "headers:\n  subject: \"X Sub\"\n", 2, "headers.subject", `invalid header name "X Sub"`},
		{"header with colon", "headers:\n  method: \"X-M:\"\n", 2, "headers.method", "invalid header name"},
		{"empty claim header", "headers:\n  claims:\n    email: \"\"\n", 3, "headers.claims.email", `invalid header name ""`},
		{"empty claim name", "headers:\n  claims:\n    \"\": X-E\n", 3, `headers.claims[""]`, "claim name must not be empty"},
		{"managed header", "headers:\n  subject: host\n", 2, "headers.subject", "Host is managed by the gateway"},
		{"framing header", "strip: [X-A, transfer-encoding]\n", 1, "strip[1]", "Transfer-Encoding is managed"},
		{"forwarding header", "headers:\n  client_id: X-Forwarded-For\n", 2, "headers.client_id", "X-Forwarded-For is managed"},
		{"proxy header", "strip:\n  - Proxy-Authorization\n", 2, "strip[0]", "Proxy-Authorization is managed"},
		{"same header twice", "headers:\n  subject: X-Who\n  client_id: x-who\n", 3, "headers.client_id", "X-Who is already used by headers.subject"},
		{"claim on a field's header", "headers:\n  scopes: X-S\n  claims:\n    s: X-S\n", 4, "headers.claims.s", "already used by headers.scopes"},
		{"strip a set header", "headers:\n  subject: X-Sub\nstrip: [X-Other, X-SUB]\n", 3, "strip[1]", "X-Sub is set by headers.subject and so stripped already"},
		{"strip twice", "strip:\n  - X-A\n  - x-a\n", 3, "strip[1]", "X-A is already used by strip[0]"},
		{"strip the jwt header", jwt("strip: [X-Gatehouse-Identity]\n"), 5, "strip[0]", "set by jwt.header"},
		{"jwt header on a set header", "headers:\n  subject: X-Id\n" + jwt("  header: X-Id\n"), 7, "jwt.header", "already used by headers.subject"},
		{"bad jwt header", jwt("  header: \"a b\"\n"), 5, "jwt.header", "invalid header name"},
		{"no issuer", "jwt:\n  audience: api\n  key_file: " + es256 + "\n", 1, "jwt", "issuer is required"},
		{"no audience", "jwt:\n  issuer: i\n  key_file: " + es256 + "\n", 1, "jwt", "audience is required"},
		{"no key file", "jwt:\n  issuer: i\n  audience: a\n", 1, "jwt", "key_file is required"},
		{"empty jwt", "jwt: {}\n", 1, "jwt", "issuer is required"},
		{"null jwt", "headers: {subject: X-A}\njwt:\n", 2, "jwt", "issuer is required"},
		{"issuer with LF", "jwt:\n  issuer: \"a\\nb\"\n  audience: api\n  key_file: " + es256 + "\n", 2, "jwt.issuer", "control character"},
		{"kid with CR", jwt("  kid: \"k\\r\"\n"), 5, "jwt.kid", "control character"},
		{"ttl too long", jwt("  ttl: 2h\n"), 5, "jwt.ttl", "at most 1h0m0s"},
		{"ttl fraction", jwt("  ttl: 1500ms\n"), 5, "jwt.ttl", "whole seconds"},
		{"ttl bare number", jwt("  ttl: 60\n"), 5, "jwt.ttl", "use a unit"},
		{"ttl negative", jwt("  ttl: -1s\n"), 5, "jwt.ttl", "must not be negative"},
		{"cache size", jwt("  cache_size: -1\n"), 5, "jwt.cache_size", "between 1 and"},
		{"cache size huge", jwt("  cache_size: 100000000\n"), 5, "jwt.cache_size", "between 1 and"},
		{"HS256", jwt("  algorithm: HS256\n"), 5, "jwt.algorithm", `"HS256" (want one of ES256`},
		{"none", jwt("  algorithm: none\n"), 5, "jwt.algorithm", `"none"`},
		{"algorithm unfit", jwt("  algorithm: RS256\n"), 4, "jwt.key_file", "RS256 needs an RSA key, got an ECDSA P-256 key"},
		{"wrong curve", "jwt:\n  issuer: i\n  audience: a\n  algorithm: ES256\n  key_file: " + es384 + "\n", 5, "jwt.key_file", "ES256 needs an ECDSA P-256 key, got an ECDSA P-384"},
		{"symmetric JWK", "jwt:\n  issuer: i\n  audience: a\n  key_file: " + hmacJWK + "\n", 4, "jwt.key_file", "symmetric"},
		{"missing key file", "jwt:\n  issuer: i\n  audience: a\n  key_file: " + filepath.Join(dir, "nope.pem") + "\n", 4, "jwt.key_file", "no such file"},
		{"reserved claim", jwt("  claims: [email, iss]\n"), 5, "jwt.claims[1]", `"iss" is set by the gateway`},
		{"reserved method claim", jwt("  claims:\n    - auth_method\n"), 6, "jwt.claims[0]", `"auth_method" is set by the gateway`},
		{"claim twice", jwt("  claims: [email, email]\n"), 5, "jwt.claims[1]", "listed twice"},
		{"empty jwt claim", jwt("  claims: [\"\"]\n"), 5, "jwt.claims[0]", "must not be empty"},
		{"claims not a list", jwt("  claims: email\n"), 5, "jwt.claims", "expected a sequence"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := New(policytest.Node(t, tt.yaml), policytest.Env())
			policytest.WantConfigError(t, err, tt.line, tt.path, tt.msg)
		})
	}
}

func TestConfigKeyErrorCause(t *testing.T) {
	yaml := "jwt:\n  issuer: i\n  audience: a\n  key_file: " + filepath.Join(t.TempDir(), "nope.pem") + "\n"
	_, err := New(policytest.Node(t, yaml), policytest.Env())
	if !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("got %v, want it to wrap fs.ErrNotExist", err)
	}
}

func TestConfigCompiles(t *testing.T) {
	dir := t.TempDir()
	path, key := writeKey(t, dir, "id.pem", "ES256")
	c, err := decode(policytest.Node(t, `
headers:
  subject: x-auth-subject
  client_id: X-Auth-Client-Id
  consumer: X-Auth-Consumer
  scopes: X-Auth-Scopes
  method: X-Auth-Method
  claims:
    email: X-Auth-Email
    groups: X-Auth-Groups
strip: [X-User, x-roles]
jwt:
  header: authorization
  issuer: https://gatehouse.internal
  audience: products-api
  ttl: 2m
  key_file: `+path+`
  claims: [email, name]
`))
	if err != nil {
		t.Fatal(err)
	}
	wantSet := []setter{
		{key: "X-Auth-Subject", field: fSubject, at: "headers.subject"},
		{key: "X-Auth-Client-Id", field: fClientID, at: "headers.client_id"},
		{key: "X-Auth-Consumer", field: fConsumer, at: "headers.consumer"},
		{key: "X-Auth-Scopes", field: fScopes, at: "headers.scopes"},
		{key: "X-Auth-Method", field: fMethod, at: "headers.method"},
		{key: "X-Auth-Email", field: fClaim, claim: "email", at: "headers.claims.email"},
		{key: "X-Auth-Groups", field: fClaim, claim: "groups", at: "headers.claims.groups"},
	}
	if diff := cmp.Diff(c.set, wantSet, cmp.AllowUnexported(setter{})); diff != "" {
		t.Errorf("set (-got +want):\n%s", diff)
	}
	wantProtect := []string{"X-Auth-Subject", "X-Auth-Client-Id", "X-Auth-Consumer", "X-Auth-Scopes", "X-Auth-Method",
		"X-Auth-Email", "X-Auth-Groups", "Authorization", "X-User", "X-Roles", "Dpop"}
	if diff := cmp.Diff(c.protect, wantProtect); diff != "" {
		t.Errorf("protect (-got +want):\n%s", diff)
	}
	j := c.jwt
	if j.header != "Authorization" || !j.bearer || j.issuer != "https://gatehouse.internal" || j.audience != "products-api" ||
		j.ttl != 2*time.Minute || j.cacheSize != DefaultCacheSize || !cmp.Equal(j.claims, []string{"email", "name"}) {
		t.Errorf("jwt settings %+v", j)
	}
	if j.key.KeyID() != key.KeyID() || j.key.Algorithm() != "ES256" {
		t.Errorf("key %s/%s, want ES256/%s", j.key.Algorithm(), j.key.KeyID(), key.KeyID())
	}
}

func TestConfigDefaults(t *testing.T) {
	dir := t.TempDir()
	path, _ := writeKey(t, dir, "id.pem", "EdDSA")
	c, err := decode(policytest.Node(t, "jwt:\n  issuer: i\n  audience: a\n  key_file: "+path+"\n  kid: my-key\n"))
	if err != nil {
		t.Fatal(err)
	}
	j := c.jwt
	if j.header != DefaultJWTHeader || j.bearer || j.ttl != DefaultTTL || j.key.Algorithm() != "EdDSA" || j.key.KeyID() != "my-key" {
		t.Errorf("got header %s bearer %v ttl %s alg %s kid %s", j.header, j.bearer, j.ttl, j.key.Algorithm(), j.key.KeyID())
	}
	// Only the jwt header is protected: no DPoP without Authorization.
	if diff := cmp.Diff(c.protect, []string{DefaultJWTHeader}); diff != "" {
		t.Errorf("protect (-got +want):\n%s", diff)
	}
	c, err = decode(policytest.Node(t, "jwt:\n  header: Authorization\n  issuer: i\n  audience: a\n  key_file: "+path+"\nstrip: [dpop]\n"))
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(c.protect, []string{"Authorization", "Dpop"}); diff != "" {
		t.Errorf("DPoP stripped and bearer (-got +want):\n%s", diff)
	}
}

// TestConfigRelativeKeyFile checks that key_file is read relative to the
// config file's directory, not the working directory.
func TestConfigRelativeKeyFile(t *testing.T) {
	dir := t.TempDir()
	if err := os.Mkdir(filepath.Join(dir, "keys"), 0o700); err != nil {
		t.Fatal(err)
	}
	_, key := writeKey(t, filepath.Join(dir, "keys"), "id.pem", "ES384")
	n, err := config.ParseNode(filepath.Join(dir, "gatehouse.yaml"), []byte("jwt:\n  issuer: i\n  audience: a\n  key_file: keys/id.pem\n"), nil)
	if err != nil {
		t.Fatal(err)
	}
	c, err := decode(n)
	if err != nil {
		t.Fatal(err)
	}
	if c.jwt.key.KeyID() != key.KeyID() || c.jwt.key.Algorithm() != "ES384" {
		t.Errorf("loaded %s/%s", c.jwt.key.Algorithm(), c.jwt.key.KeyID())
	}
}

// TestConfigErrorsTogether checks that independent problems are reported
// in one load, each at its place, before the key file is read.
func TestConfigErrorsTogether(t *testing.T) {
	yaml := "headers:\n  subject: Host\n  client_id: X-Client\nstrip: [x-client, 'a b']\n" +
		"jwt:\n  issuer: \"i\\n\"\n  ttl: 1500ms\n  claims: [sub, x, x]\n  key_file: /nonexistent.pem\n"
	_, err := New(policytest.Node(t, yaml), policytest.Env())
	policytest.WantConfigErrors(t, err,
		policytest.ConfigErrorAt{Line: 2, Path: "headers.subject"},
		policytest.ConfigErrorAt{Line: 4, Path: "strip[0]"},
		policytest.ConfigErrorAt{Line: 4, Path: "strip[1]"},
		policytest.ConfigErrorAt{Line: 5, Path: "jwt"},
		policytest.ConfigErrorAt{Line: 6, Path: "jwt.issuer"},
		policytest.ConfigErrorAt{Line: 7, Path: "jwt.ttl"},
		policytest.ConfigErrorAt{Line: 8, Path: "jwt.claims[0]"},
		policytest.ConfigErrorAt{Line: 8, Path: "jwt.claims[2]"},
	)
}
