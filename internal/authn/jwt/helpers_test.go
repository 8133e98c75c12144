package jwt

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"

	"github.com/gatehouse/gatehouse/internal/authn"
	"github.com/gatehouse/gatehouse/internal/config"
	"github.com/gatehouse/gatehouse/internal/policy"
	"github.com/gatehouse/gatehouse/internal/policy/policytest"
	"github.com/gatehouse/gatehouse/internal/revocation"
	"github.com/gatehouse/gatehouse/internal/telemetry"
	"github.com/gatehouse/gatehouse/internal/usagepool"
)

// Keys are generated once per test binary: RSA key generation is slow.
var (
	keysOnce sync.Once
	rsaKeys  [3]*rsa.PrivateKey
)

func rsaKey(i int) *rsa.PrivateKey {
	keysOnce.Do(func() {
		for j := range rsaKeys {
			k, err := rsa.GenerateKey(rand.Reader, 2048)
			if err != nil {
				panic(err)
			}
			rsaKeys[j] = k
		}
	})
	return rsaKeys[i]
}

func ecKey(t testing.TB, c elliptic.Curve) *ecdsa.PrivateKey {
	k, err := ecdsa.GenerateKey(c, rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func edKey(t testing.TB) ed25519.PrivateKey {
	_, k, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// signer is a signing key of the test issuer (or of an attacker).
type signer struct {
	kid string
	alg jose.SignatureAlgorithm
	key crypto.Signer
}

// jwk is the public JWK the issuer publishes for s.
func (s signer) jwk() jose.JSONWebKey {
	return jose.JSONWebKey{Key: s.key.Public(), KeyID: s.kid, Algorithm: string(s.alg), Use: "sig"}
}

// sign signs claims with go-jose, independently of the code under test.
func (s signer) sign(t testing.TB, claims map[string]any, opts ...func(*jose.SignerOptions)) string {
	t.Helper()
	payload, err := json.Marshal(claims)
	if err != nil {
		t.Fatal(err)
	}
	return s.signRaw(t, payload, opts...)
}

func (s signer) signRaw(t testing.TB, payload []byte, opts ...func(*jose.SignerOptions)) string {
	t.Helper()
	o := &jose.SignerOptions{}
	if s.kid != "" {
		o.WithHeader("kid", s.kid)
	}
	for _, f := range opts {
		f(o)
	}
	sg, err := jose.NewSigner(jose.SigningKey{Algorithm: s.alg, Key: s.key}, o)
	if err != nil {
		t.Fatal(err)
	}
	jws, err := sg.Sign(payload)
	if err != nil {
		t.Fatal(err)
	}
	tok, err := jws.CompactSerialize()
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

const (
	testAud = "api://products"
)

// claims returns good claims for issuer, valid at policytest.Start.
func claims(issuer string, extra ...any) map[string]any {
	c := map[string]any{
		"iss":       issuer,
		"aud":       testAud,
		"sub":       "alice",
		"client_id": "app",
		"scope":     "products:read products:write",
		"iat":       policytest.Start.Unix(),
		"exp":       policytest.Start.Add(time.Hour).Unix(),
		"jti":       "jti-1",
	}
	for i := 0; i+1 < len(extra); i += 2 {
		if extra[i+1] == nil {
			delete(c, extra[i].(string))
			continue
		}
		c[extra[i].(string)] = extra[i+1]
	}
	return c
}

// clock is a settable clock.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock() *clock { return &clock{t: policytest.Start} }
func (c *clock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}
func (c *clock) add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// idp is a real OIDC provider on 127.0.0.1: discovery and JWKS, with keys
// that can be rotated and a switch to take it down.
type idp struct {
	srv           *httptest.Server
	mu            sync.Mutex
	keys          []jose.JSONWebKey
	issuer        string // what discovery claims; default the server URL
	down          bool
	jwksHits      atomic.Int32
	discoveryHits atomic.Int32
	// gate, when set, holds JWKS answers until it is closed.
	gate chan struct{}
}

func newIDP(t testing.TB, keys ...jose.JSONWebKey) *idp {
	p := &idp{keys: keys}
	p.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p.mu.Lock()
		down, keys, issuer, gate := p.down, p.keys, p.issuer, p.gate
		p.mu.Unlock()
		switch r.URL.Path {
		case "/.well-known/openid-configuration":
			p.discoveryHits.Add(1)
			if down {
				http.Error(w, "down", http.StatusServiceUnavailable)
				return
			}
			if issuer == "" {
				issuer = p.srv.URL
			}
			json.NewEncoder(w).Encode(map[string]any{"issuer": issuer, "jwks_uri": p.srv.URL + "/keys"})
		case "/keys":
			p.jwksHits.Add(1)
			if gate != nil {
				<-gate
			}
			if down {
				http.Error(w, "down", http.StatusServiceUnavailable)
				return
			}
			w.Header().Set("Content-Type", "application/jwk-set+json")
			json.NewEncoder(w).Encode(jose.JSONWebKeySet{Keys: keys})
		default:
			http.NotFound(w, r)
		}
	}))
	t.Cleanup(p.srv.Close)
	return p
}

func (p *idp) setKeys(keys ...jose.JSONWebKey) {
	p.mu.Lock()
	p.keys = keys
	p.mu.Unlock()
}

func (p *idp) setDown(down bool) {
	p.mu.Lock()
	p.down = down
	p.mu.Unlock()
}

// world is what one test's authenticators share: a clock, a pool, a
// revocation list and metrics, like one gateway.
type world struct {
	clock   *clock
	pool    *usagepool.Pool
	revs    *revocation.List
	metrics *telemetry.Metrics
}

func newWorld() *world {
	c := newClock()
	return &world{clock: c, pool: usagepool.New(), revs: revocation.New(c.now), metrics: telemetry.NewMetrics()}
}

func (w *world) env() *authn.Env {
	return &authn.Env{Realm: "api", Env: &policy.Env{
		Route:       policy.Route{Name: "test"},
		Logger:      slog.New(slog.NewTextHandler(io.Discard, nil)),
		Now:         w.clock.now,
		Pool:        w.pool,
		Metrics:     w.metrics,
		Revocations: w.revs,
	}}
}

// build builds an authenticator from yaml and closes it at the end of t.
func (w *world) build(t testing.TB, yaml string) *Authenticator {
	t.Helper()
	a, err := New(policytest.Node(t, yaml), w.env())
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	t.Cleanup(func() { a.Close() })
	return a
}

// jwksConfig is a config reading keys from p's JWKS URL.
func jwksConfig(p *idp, algs string, extra ...string) string {
	return fmt.Sprintf("issuer: %s\naudiences: [%s]\nalgorithms: [%s]\njwks_url: %s/keys\njwks_refresh: 1h\nunknown_kid_refetch: 30s\nfetch_timeout: 2s\n%s",
		p.srv.URL, testAud, algs, p.srv.URL, strings.Join(extra, "\n"))
}

func bearer(tok string) *policy.Exchange {
	r := httptest.NewRequest(http.MethodGet, "http://gw.example/products", nil)
	r.Header.Set("Authorization", "Bearer "+tok)
	return policytest.Exchange(r)
}

func auth(t testing.TB, a *Authenticator, ex *policy.Exchange) (*policy.Principal, error) {
	t.Helper()
	return a.Authenticate(t.Context(), ex)
}

// wantDenial fails t unless err is a Denial with status and code whose
// detail contains desc; it returns the Denial.
func wantDenial(t testing.TB, err error, status int, code, desc string) *policy.Denial {
	t.Helper()
	d, ok := policy.AsDenial(err)
	if !ok {
		t.Fatalf("got %v, want a %d %s denial", err, status, code)
	}
	if d.Status != status || d.Code != code {
		t.Fatalf("got %d %s (%v), want %d %s", d.Status, d.Code, d.Err, status, code)
	}
	if !strings.Contains(d.Detail, desc) {
		t.Errorf("detail %q (cause %v), want it to contain %q", d.Detail, d.Err, desc)
	}
	return d
}

// metric returns the value of the series of name with labels.
func metric(t testing.TB, m *telemetry.Metrics, name string, labels ...string) float64 {
	t.Helper()
	mfs, err := m.Registry.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
	series:
		for _, s := range mf.GetMetric() {
			got := map[string]string{}
			for _, l := range s.GetLabel() {
				got[l.GetName()] = l.GetValue()
			}
			for i := 0; i+1 < len(labels); i += 2 {
				if got[labels[i]] != labels[i+1] {
					continue series
				}
			}
			if c := s.GetCounter(); c != nil {
				return c.GetValue()
			}
			return s.GetGauge().GetValue()
		}
	}
	return 0
}

func jsonMarshal(v any) ([]byte, error) { return json.Marshal(v) }

func itoa(n int64) string { return fmt.Sprint(n) }

func rsaKeyOfBits(t testing.TB, bits int) (*rsa.PublicKey, error) {
	// crypto/rsa refuses to generate keys under 1024 bits; 1024 is enough
	// to test that such a key is refused.
	k, err := rsa.GenerateKey(rand.Reader, bits)
	if err != nil {
		t.Fatal(err)
	}
	return &k.PublicKey, nil
}

func asConfigError(err error, ce **config.Error) bool { return errors.As(err, ce) }

func contains(s, sub string) bool { return strings.Contains(s, sub) }
