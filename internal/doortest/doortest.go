// Package doortest starts, for the tests of the doors other proxies ask
// the gateway through (extauthz, forwardauth), a real gateway with a
// zero-trust route (jwt, scopes, a rate limit, identity headers and a
// gateway-signed identity token), the benchmarks' route (jwt, a local
// rate limit never reached, scopes), a rate-limited route, a route that
// reads bodies and a SOAP route, in front of an upstream that records
// the fields it is sent.
package doortest

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/internal/builtin"
	"github.com/gatehouse/gatehouse/internal/gateway"
	"github.com/gatehouse/gatehouse/internal/gatewaytest"
)

// Config is the gateway's config; ${UPSTREAM}, ${JWKS} and ${IDKEY} are
// filled in by Start.
const Config = `
store: {type: memory}
listeners:
  - {name: main, address: "127.0.0.1:0"}
admin: {address: "off"}
access_log: {disabled: true}
trusted_proxies: [127.0.0.1/32, "::1/128"]
routes:
  - name: products
    match: {path_prefix: /product}
    upstream: {url: "${UPSTREAM}"}
    policies:
      - authenticate:
          with:
            - jwt:
                issuer: https://issuer.gatehouse.invalid
                audiences: [products]
                algorithms: [ES256]
                keys: [{file: "${JWKS}"}]
      - rate_limit: {key: client_id, rate: 1000000, per: 1s}
      - scopes:
          methods:
            GET: [products:read]
            POST: [products:write]
      - identity:
          headers: {subject: X-Auth-Subject, scopes: X-Auth-Scopes}
          strip: [X-User]
          jwt: {issuer: https://gatehouse.internal, audience: products-api, key_file: "${IDKEY}"}
  - name: limited
    match: {path_prefix: /limited}
    upstream: {url: "${UPSTREAM}"}
    policies:
      - authenticate:
          with:
            - jwt:
                issuer: https://issuer.gatehouse.invalid
                audiences: [products]
                algorithms: [ES256]
                keys: [{file: "${JWKS}"}]
      - rate_limit: {key: client_id, rate: 3, per: 1h}
  - name: bench
    match: {path_prefix: /bench}
    upstream: {url: "${UPSTREAM}"}
    policies:
      - authenticate:
          with:
            - jwt:
                issuer: https://issuer.gatehouse.invalid
                audiences: [products]
                algorithms: [ES256]
                keys: [{file: "${JWKS}"}]
      - rate_limit: {key: client_id, rate: 1000000, per: 1s}
      - scopes:
          methods:
            GET: [products:read]
  - name: orders
    match: {path_prefix: /orders}
    upstream: {url: "${UPSTREAM}"}
    policies:
      - json_limits: {max_depth: 3}
  - name: soap
    match: {path: /soap}
    soap: "1.1"
    upstream: {url: "${UPSTREAM}"}
    policies:
      - authenticate:
          with:
            - jwt:
                issuer: https://issuer.gatehouse.invalid
                audiences: [products]
                algorithms: [ES256]
                keys: [{file: "${JWKS}"}]
`

// Env is a started gateway with its tokens and upstream.
type Env struct {
	GW *gatewaytest.Gateway
	// Reader holds products:read, Writer products:write, both for the
	// client "reader" / "writer".
	Reader, Writer string
	// Upstream records the fields of each request it receives, by
	// X-Request-Id.
	Upstream *Upstream
	Dir      string
	// Key signs further tokens (Mint).
	Key *Signer
}

// Upstream is the recording upstream.
type Upstream struct {
	*httptest.Server
	mu   sync.Mutex
	seen map[string]http.Header
}

// Seen returns the fields the upstream received with request id id.
func (u *Upstream) Seen(id string) http.Header {
	u.mu.Lock()
	defer u.mu.Unlock()
	return u.seen[id]
}

// Start starts the gateway of Config (with extra appended to it: the
// ext_authz or forward_auth sections).
func Start(t testing.TB, extra string) *Env {
	t.Helper()
	up := &Upstream{seen: map[string]http.Header{}}
	up.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		up.mu.Lock()
		up.seen[r.Header.Get("X-Request-Id")] = r.Header.Clone()
		up.mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		// Echoed, for the tests of peers that do not pass the gateway's
		// own answer fields on to the client.
		w.Header().Set("X-Echo-Request-Id", r.Header.Get("X-Request-Id"))
		w.Write([]byte(`{"ok":true}`))
	}))
	t.Cleanup(up.Close)
	dir := t.TempDir()
	jwks := filepath.Join(dir, "jwks.json")
	key := writeJWKS(t, jwks)
	idkey := filepath.Join(dir, "identity.pem")
	writeKey(t, idkey)
	src := strings.NewReplacer("${UPSTREAM}", up.URL, "${JWKS}", jwks, "${IDKEY}", idkey).Replace(Config + extra)
	gw := gatewaytest.Start(t, src, gateway.Options{Registry: builtin.Registry(), BaseDir: dir})
	return &Env{GW: gw, Upstream: up, Dir: dir, Key: key,
		Reader: Mint(t, key, "reader", "products:read"),
		Writer: Mint(t, key, "writer", "products:write")}
}

func writeKey(t testing.TB, file string) {
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	der, err := x509.MarshalPKCS8PrivateKey(k)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(file, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
}

// writeJWKS writes the public JWK Set of a new P-256 key to file.
func writeJWKS(t testing.TB, file string) *Signer {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	enc := base64.RawURLEncoding
	pub, err := key.PublicKey.Bytes()
	if err != nil {
		t.Fatal(err)
	}
	s := sha256.Sum256(pub)
	kid := enc.EncodeToString(s[:8])
	set, _ := json.Marshal(map[string]any{"keys": []map[string]string{{
		"kty": "EC", "crv": "P-256", "kid": kid, "alg": "ES256", "use": "sig",
		"x": enc.EncodeToString(pub[1:33]), "y": enc.EncodeToString(pub[33:]),
	}}})
	if err := os.WriteFile(file, set, 0o644); err != nil {
		t.Fatal(err)
	}
	return &Signer{key: key, kid: kid}
}

// Signer is the test issuer's key.
type Signer struct {
	key *ecdsa.PrivateKey
	kid string
}

// Mint returns an ES256 access token of the test issuer for client with
// scope, valid for an hour.
func Mint(t testing.TB, s *Signer, client, scope string) string {
	enc := base64.RawURLEncoding
	now := time.Now()
	hdr, _ := json.Marshal(map[string]string{"alg": "ES256", "kid": s.kid, "typ": "JWT"})
	claims, _ := json.Marshal(map[string]any{
		"iss": "https://issuer.gatehouse.invalid", "sub": client, "aud": []string{"products"},
		"iat": now.Unix(), "exp": now.Add(time.Hour).Unix(), "jti": strconv.FormatInt(now.UnixNano(), 10),
		"client_id": client, "scope": scope,
	})
	signing := enc.EncodeToString(hdr) + "." + enc.EncodeToString(claims)
	sum := sha256.Sum256([]byte(signing))
	r, ss, err := ecdsa.Sign(rand.Reader, s.key, sum[:])
	if err != nil {
		t.Fatal(err)
	}
	sig := make([]byte, 64)
	r.FillBytes(sig[:32])
	ss.FillBytes(sig[32:])
	return signing + "." + enc.EncodeToString(sig)
}
