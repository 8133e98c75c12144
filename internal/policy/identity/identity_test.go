package identity

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	josejwt "github.com/go-jose/go-jose/v4/jwt"
	"github.com/google/go-cmp/cmp"

	"github.com/gatehouse/gatehouse/internal/keys"
	"github.com/gatehouse/gatehouse/internal/policy"
	"github.com/gatehouse/gatehouse/internal/policy/policytest"
)

// clock is a settable clock for env.Now.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) set(t time.Time) {
	c.mu.Lock()
	c.t = t
	c.mu.Unlock()
}

// syncBuffer is a log sink safe for concurrent writes.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

type fixture struct {
	p   *Identity
	clk *clock
	log *syncBuffer
}

func newIdentity(t testing.TB, yaml string) *fixture {
	t.Helper()
	clk := &clock{t: policytest.Start}
	log := &syncBuffer{}
	env := policytest.Env()
	env.Now = clk.now
	env.Logger = slog.New(slog.NewTextHandler(log, nil))
	p, err := New(policytest.Node(t, yaml), env)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return &fixture{p: p.(*Identity), clk: clk, log: log}
}

func (f *fixture) apply(t testing.TB, r *http.Request, pr *policy.Principal) *policy.Exchange {
	t.Helper()
	ex := policytest.Exchange(r)
	ex.Principal = pr
	if err := f.p.Apply(context.Background(), ex); err != nil {
		t.Fatalf("Apply: %v", err)
	}
	return ex
}

// spoof adds client-supplied copies of name in several spellings.
func spoof(r *http.Request, name string) {
	r.Header.Add(name, "spoofed-1")
	r.Header.Add(name, "spoofed-2")
	r.Header[strings.ToLower(name)] = []string{"spoofed-lower"}
	r.Header[strings.ToUpper(name)] = []string{"spoofed-upper"}
	r.Header[strings.ReplaceAll(name, "-", "_")] = []string{"spoofed-underscore"}
}

// spoofed returns the header keys of h that still carry a spoofed value.
func spoofed(h http.Header) []string {
	var out []string
	for k, vs := range h {
		for _, v := range vs {
			if strings.HasPrefix(v, "spoofed") {
				out = append(out, k+"="+v)
			}
		}
	}
	slices.Sort(out)
	return out
}

const headersYAML = `
headers:
  subject: X-Auth-Subject
  client_id: X-Auth-Client-Id
  consumer: X-Auth-Consumer
  scopes: X-Auth-Scopes
  method: X-Auth-Method
  claims:
    email: X-Auth-Email
    groups: X-Auth-Groups
    age: X-Auth-Age
    admin: X-Auth-Admin
strip: [X-User, X-Roles]
`

func alice() *policy.Principal {
	return &policy.Principal{
		Subject:  "alice",
		ClientID: "web-app",
		Consumer: "acme",
		Scopes:   []string{"products:read", "products:write"},
		Method:   "jwt",
		Claims: map[string]any{
			"email":  "alice@example.com",
			"groups": []any{"staff", "buyers"},
			"age":    float64(42),
			"admin":  false,
			"name":   "Alice Liddell",
		},
	}
}

func TestStripsSpoofedHeaders(t *testing.T) {
	f := newIdentity(t, headersYAML)
	names := []string{"X-Auth-Subject", "X-Auth-Client-Id", "X-Auth-Consumer", "X-Auth-Scopes", "X-Auth-Method",
		"X-Auth-Email", "X-Auth-Groups", "X-Auth-Age", "X-Auth-Admin", "X-User", "X-Roles"}
	for _, tc := range []struct {
		name string
		pr   *policy.Principal
	}{
		{"anonymous", nil},
		{"authenticated", alice()},
		{"principal with nothing", &policy.Principal{}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := httptest.NewRequest(http.MethodGet, "/", nil)
			for _, n := range names {
				spoof(r, n)
			}
			r.Header.Set("X-Unrelated", "kept")
			r.Header.Set("X-Auth-Subjects", "kept") // longer name, not ours
			f.apply(t, r, tc.pr)
			if got := spoofed(r.Header); len(got) > 0 {
				t.Errorf("spoofed values reached the upstream: %v", got)
			}
			if got := r.Header.Get("X-Unrelated") + r.Header.Get("X-Auth-Subjects"); got != "keptkept" {
				t.Errorf("unrelated headers: %q", got)
			}
			if tc.pr == nil || tc.pr.Subject == "" {
				for _, n := range names {
					if v, ok := r.Header[n]; ok {
						t.Errorf("%s = %q on a request without identity", n, v)
					}
				}
			}
		})
	}
}

func TestHeadersFromPrincipal(t *testing.T) {
	f := newIdentity(t, headersYAML)
	r := httptest.NewRequest(http.MethodGet, "/", nil)
	spoof(r, "X-Auth-Subject")
	f.apply(t, r, alice())
	want := http.Header{
		"X-Auth-Subject":   {"alice"},
		"X-Auth-Client-Id": {"web-app"},
		"X-Auth-Consumer":  {"acme"},
		"X-Auth-Scopes":    {"products:read products:write"},
		"X-Auth-Method":    {"jwt"},
		"X-Auth-Email":     {"alice@example.com"},
		"X-Auth-Groups":    {"staff,buyers"},
		"X-Auth-Age":       {"42"},
		"X-Auth-Admin":     {"false"},
	}
	if diff := cmp.Diff(r.Header, want); diff != "" {
		t.Errorf("headers (-got +want):\n%s", diff)
	}
	if f.log.String() != "" {
		t.Errorf("logged %s", f.log.String())
	}
}

func TestEmptyValuesNotSet(t *testing.T) {
	f := newIdentity(t, headersYAML)
	r := httptest.NewRequest(http.MethodGet, "/", nil)
	f.apply(t, r, &policy.Principal{Subject: "svc", Scopes: []string{"one"}, Claims: map[string]any{"email": "", "groups": nil}})
	want := http.Header{"X-Auth-Subject": {"svc"}, "X-Auth-Scopes": {"one"}}
	if diff := cmp.Diff(r.Header, want); diff != "" {
		t.Errorf("headers (-got +want):\n%s", diff)
	}
}

func TestClaimValues(t *testing.T) {
	f := newIdentity(t, "headers:\n  claims: {c: X-C}\n")
	tests := []struct {
		name   string
		v      any
		want   []string // nil: not set
		logged string
	}{
		{"string", "v", []string{"v"}, ""},
		{"utf-8", "Zoë", []string{"Zoë"}, ""},
		{"integer float", float64(1700000000), []string{"1700000000"}, ""},
		{"fraction", 2.5, []string{"2.5"}, ""},
		{"int", 7, []string{"7"}, ""},
		{"json number", json.Number("12345678901234567890"), []string{"12345678901234567890"}, ""},
		{"true", true, []string{"true"}, ""},
		{"string list", []string{"a", "b"}, []string{"a,b"}, ""},
		{"mixed list", []any{"a", 1.0, true}, []string{"a,1,true"}, ""},
		{"empty list", []any{}, nil, ""},
		{"object", map[string]any{"k": "v"}, nil, "a claim of type map[string]interface {} cannot be a header value"},
		{"nested list", []any{[]any{"a"}}, nil, "a list element of type []interface {}"},
		{"CRLF injection", "a@example.com\r\nX-Admin: true", nil, "control character 0x0d"},
		{"LF", "a\nb", nil, "control character 0x0a"},
		{"NUL", "a\x00b", nil, "control character 0x00"},
		{"tab", "a\tb", nil, "control character 0x09"},
		{"DEL", "a\x7f", nil, "control character 0x7f"},
		{"CR in a list", []any{"ok", "x\r"}, nil, "control character"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f.log.mu.Lock()
			f.log.b.Reset()
			f.log.mu.Unlock()
			r := httptest.NewRequest(http.MethodGet, "/", nil)
			spoof(r, "X-C")
			f.apply(t, r, &policy.Principal{Subject: "s", Claims: map[string]any{"c": tt.v}})
			if got := r.Header["X-C"]; !slices.Equal(got, tt.want) {
				t.Errorf("X-C = %q, want %q", got, tt.want)
			}
			if got := spoofed(r.Header); len(got) > 0 {
				t.Errorf("spoofed: %v", got)
			}
			if len(r.Header) > len(tt.want) {
				t.Errorf("extra headers: %v", r.Header)
			}
			log := f.log.String()
			if tt.logged == "" && log != "" {
				t.Errorf("logged %s", log)
			}
			if tt.logged != "" {
				if !strings.Contains(log, tt.logged) || !strings.Contains(log, "header=X-C") || !strings.Contains(log, "request_id="+policytest.RequestID) {
					t.Errorf("log %q, want it to contain %q, the header and the request id", log, tt.logged)
				}
				if s, ok := tt.v.(string); ok && strings.Contains(log, s) {
					t.Errorf("the refused value was logged: %s", log)
				}
			}
		})
	}
}

func TestUnsafeFieldValue(t *testing.T) {
	f := newIdentity(t, headersYAML)
	r := httptest.NewRequest(http.MethodGet, "/", nil)
	f.apply(t, r, &policy.Principal{Subject: "bob\r\nX-Admin: 1", Scopes: []string{"a", "b\nc"}, ClientID: "ok"})
	want := http.Header{"X-Auth-Client-Id": {"ok"}}
	if diff := cmp.Diff(r.Header, want); diff != "" {
		t.Errorf("headers (-got +want):\n%s", diff)
	}
	if log := f.log.String(); strings.Count(log, "header not forwarded") != 2 {
		t.Errorf("want two warnings, got %s", log)
	}
}

func TestNilHeader(t *testing.T) {
	f := newIdentity(t, "headers: {subject: X-Sub}\n")
	r := httptest.NewRequest(http.MethodGet, "/", nil)
	r.Header = nil
	f.apply(t, r, &policy.Principal{Subject: "s"})
	if got := r.Header.Get("X-Sub"); got != "s" {
		t.Errorf("X-Sub = %q", got)
	}
}

// jwtFixture is an identity policy minting tokens with a key written to a
// file, and the JWK Set an upstream would trust, from internal/keys.
type jwtFixture struct {
	*fixture
	jwks jose.JSONWebKeySet
	alg  string
}

func newJWT(t testing.TB, alg, extra string) *jwtFixture {
	t.Helper()
	path, _ := writeKey(t, t.TempDir(), "id.pem", alg)
	f := newIdentity(t, `
jwt:
  issuer: https://gatehouse.internal
  audience: products-api
  ttl: 60s
  algorithm: `+alg+`
  key_file: `+path+`
  claims: [email, name, groups, age]
`+extra)
	// What `gatehouse keys jwks --key FILE` prints.
	k, err := keys.Load(path, alg, "")
	if err != nil {
		t.Fatal(err)
	}
	set, err := keys.JWKS(k)
	if err != nil {
		t.Fatal(err)
	}
	j := &jwtFixture{fixture: f, alg: alg}
	if err := json.Unmarshal(set, &j.jwks); err != nil {
		t.Fatal(err)
	}
	return j
}

// tokenClaims is what the tests read back from a minted token.
type tokenClaims struct {
	josejwt.Claims
	ClientID string   `json:"client_id"`
	Scope    string   `json:"scope"`
	Method   string   `json:"auth_method"`
	Email    string   `json:"email"`
	Name     string   `json:"name"`
	Groups   []string `json:"groups"`
	Age      float64  `json:"age"`
	Tier     string   `json:"tier"`
}

// verify checks raw with go-jose against the JWK Set, the way an upstream
// would at time at, and returns its claims and raw header.
func (j *jwtFixture) verify(t testing.TB, raw string, at time.Time) (tokenClaims, jose.Header) {
	t.Helper()
	tok, err := josejwt.ParseSigned(raw, []jose.SignatureAlgorithm{jose.SignatureAlgorithm(j.alg)})
	if err != nil {
		t.Fatalf("go-jose parse %q: %v", raw, err)
	}
	h := tok.Headers[0]
	found := j.jwks.Key(h.KeyID)
	if len(found) != 1 {
		t.Fatalf("kid %q not in the JWKS", h.KeyID)
	}
	var c tokenClaims
	if err := tok.Claims(found[0], &c); err != nil {
		t.Fatalf("signature: %v", err)
	}
	err = c.ValidateWithLeeway(josejwt.Expected{
		Issuer:      "https://gatehouse.internal",
		AnyAudience: josejwt.Audience{"products-api"},
		Time:        at,
	}, 0)
	if err != nil {
		t.Fatalf("claims %+v: %v", c, err)
	}
	return c, h
}

func TestJWTMinted(t *testing.T) {
	for _, alg := range []string{"ES256", "EdDSA", "PS256"} {
		t.Run(alg, func(t *testing.T) {
			j := newJWT(t, alg, "")
			r := httptest.NewRequest(http.MethodGet, "/", nil)
			spoof(r, DefaultJWTHeader)
			r.Header.Set("Authorization", "Bearer client-token")
			r.Header.Set("DPoP", "client-proof")
			pr := alice()
			pr.Claims["tier"] = "gold" // not listed: not copied
			j.apply(t, r, pr)
			if got := spoofed(r.Header); len(got) > 0 {
				t.Errorf("spoofed: %v", got)
			}
			// The default header leaves the client's credential alone.
			if r.Header.Get("Authorization") != "Bearer client-token" || r.Header.Get("DPoP") != "client-proof" {
				t.Errorf("client credential changed: %v", r.Header)
			}
			raw := r.Header[DefaultJWTHeader]
			if len(raw) != 1 {
				t.Fatalf("%s = %q", DefaultJWTHeader, raw)
			}
			c, h := j.verify(t, raw[0], policytest.Start)
			if h.Algorithm != alg || h.ExtraHeaders["typ"] != "JWT" {
				t.Errorf("header alg %q typ %v", h.Algorithm, h.ExtraHeaders["typ"])
			}
			if c.IssuedAt == nil || c.Expiry == nil {
				t.Fatalf("no iat or exp: %+v", c)
			}
			if got, want := c.IssuedAt.Time(), policytest.Start; !got.Equal(want) {
				t.Errorf("iat = %v, want %v", got, want)
			}
			if got, want := c.Expiry.Time().Sub(c.IssuedAt.Time()), 60*time.Second; got != want {
				t.Errorf("exp - iat = %v, want %v", got, want)
			}
			want := tokenClaims{
				ClientID: "web-app", Scope: "products:read products:write", Method: "jwt",
				Email: "alice@example.com", Name: "Alice Liddell", Groups: []string{"staff", "buyers"}, Age: 42,
			}
			got := c
			got.Claims = josejwt.Claims{}
			if diff := cmp.Diff(got, want); diff != "" {
				t.Errorf("claims (-got +want):\n%s", diff)
			}
			if c.Subject != "alice" || len(c.ID) < 20 {
				t.Errorf("sub %q jti %q", c.Subject, c.ID)
			}
			// An upstream checking later than exp refuses it.
			if err := c.ValidateWithLeeway(josejwt.Expected{Time: policytest.Start.Add(61 * time.Second)}, 0); err == nil {
				t.Error("the token is still valid after exp")
			}
		})
	}
}

// TestJWTWrongKey makes sure verification can fail: a token checked
// against another key's JWKS is refused.
func TestJWTWrongKey(t *testing.T) {
	a, b := newJWT(t, "ES256", ""), newJWT(t, "ES256", "")
	r := httptest.NewRequest(http.MethodGet, "/", nil)
	a.apply(t, r, alice())
	tok, err := josejwt.ParseSigned(r.Header.Get(DefaultJWTHeader), []jose.SignatureAlgorithm{jose.ES256})
	if err != nil {
		t.Fatal(err)
	}
	var c tokenClaims
	if err := tok.Claims(b.jwks.Keys[0], &c); err == nil {
		t.Error("a token verified with another key")
	}
}

func TestJWTAuthorization(t *testing.T) {
	j := newJWT(t, "ES256", "  header: Authorization\n")
	r := httptest.NewRequest(http.MethodGet, "/", nil)
	r.Header.Set("Authorization", "DPoP client-token")
	r.Header["authorization"] = []string{"Bearer second"}
	r.Header.Set("DPoP", "client-proof")
	r.Header["dpop"] = []string{"another-proof"}
	j.apply(t, r, alice())
	got := r.Header["Authorization"]
	if len(got) != 1 || !strings.HasPrefix(got[0], "Bearer ") {
		t.Fatalf("Authorization = %q", got)
	}
	c, _ := j.verify(t, strings.TrimPrefix(got[0], "Bearer "), policytest.Start)
	if c.Subject != "alice" {
		t.Errorf("sub %q", c.Subject)
	}
	for k := range r.Header {
		if k != "Authorization" {
			t.Errorf("header %s = %q left", k, r.Header[k])
		}
	}

	// Anonymous: the client's credential and proof are removed, no token.
	r = httptest.NewRequest(http.MethodGet, "/", nil)
	r.Header.Set("Authorization", "Bearer forged")
	r.Header.Set("DPoP", "proof")
	j.apply(t, r, nil)
	if len(r.Header) != 0 {
		t.Errorf("anonymous request keeps %v", r.Header)
	}
}

func TestJWTAnonymous(t *testing.T) {
	j := newJWT(t, "ES256", "")
	r := httptest.NewRequest(http.MethodGet, "/", nil)
	spoof(r, DefaultJWTHeader)
	j.apply(t, r, nil)
	if len(r.Header) != 0 {
		t.Errorf("anonymous request has %v", r.Header)
	}
	if j.p.cache.len() != 0 {
		t.Error("a token was minted for no one")
	}
}

func TestJWTCache(t *testing.T) {
	j := newJWT(t, "ES256", "")
	mint := func(pr *policy.Principal) string {
		t.Helper()
		r := httptest.NewRequest(http.MethodGet, "/", nil)
		j.apply(t, r, pr)
		return r.Header.Get(DefaultJWTHeader)
	}
	first := mint(alice())
	if again := mint(alice()); again != first {
		t.Error("the same principal got a new token at once")
	}
	// Every field that goes into the token is part of the key.
	for name, change := range map[string]func(*policy.Principal){
		"subject":        func(p *policy.Principal) { p.Subject = "alice2" },
		"client":         func(p *policy.Principal) { p.ClientID = "other" },
		"scopes":         func(p *policy.Principal) { p.Scopes = p.Scopes[:1] },
		"scope boundary": func(p *policy.Principal) { p.Scopes = []string{"products:read products:write"} },
		"method":         func(p *policy.Principal) { p.Method = "mtls" },
		"claim":          func(p *policy.Principal) { p.Claims["email"] = "eve@example.com" },
		"claim type":     func(p *policy.Principal) { p.Claims["age"] = "42" },
		"list claim":     func(p *policy.Principal) { p.Claims["groups"] = []any{"staff"} },
		"claim removed":  func(p *policy.Principal) { delete(p.Claims, "name") },
	} {
		pr := alice()
		change(pr)
		if mint(pr) == first {
			t.Errorf("%s changed but the cached token was reused", name)
		}
	}
	// A field that is not in the token does not split the cache.
	pr := alice()
	pr.Consumer = "other"
	pr.Claims["tier"] = "gold"
	if mint(pr) != first {
		t.Error("a field not in the token made a new one")
	}

	// Reused while more than half the ttl (60s) remains, renewed after.
	j.clk.set(policytest.Start.Add(29 * time.Second))
	if mint(alice()) != first {
		t.Error("renewed with 31s of 60s left")
	}
	j.clk.set(policytest.Start.Add(30 * time.Second))
	renewed := mint(alice())
	if renewed == first {
		t.Fatal("reused with half the ttl left")
	}
	c, _ := j.verify(t, renewed, policytest.Start.Add(30*time.Second))
	if got, want := c.IssuedAt.Time(), policytest.Start.Add(30*time.Second); !got.Equal(want) {
		t.Errorf("renewed iat %v, want %v", got, want)
	}
	if got := c.Expiry.Time().Sub(c.IssuedAt.Time()); got != 60*time.Second {
		t.Errorf("renewed exp - iat = %v", got)
	}
	if mint(alice()) != renewed {
		t.Error("the renewed token is not reused")
	}
}

func TestJWTCacheBounded(t *testing.T) {
	j := newJWT(t, "EdDSA", "  cache_size: 8\n")
	seen := map[string]bool{}
	for i := range 50 {
		r := httptest.NewRequest(http.MethodGet, "/", nil)
		j.apply(t, r, &policy.Principal{Subject: fmt.Sprint("user-", i)})
		tok := r.Header.Get(DefaultJWTHeader)
		if seen[tok] {
			t.Fatalf("user-%d got another's token", i)
		}
		seen[tok] = true
		if n := j.p.cache.len(); n > 8 {
			t.Fatalf("cache holds %d tokens, bound 8", n)
		}
	}
	// Expired entries go first when the cache is full.
	j.clk.set(policytest.Start.Add(time.Minute))
	for i := range 2 {
		r := httptest.NewRequest(http.MethodGet, "/", nil)
		j.apply(t, r, &policy.Principal{Subject: fmt.Sprint("late-", i)})
	}
	if n := j.p.cache.len(); n != 2 {
		t.Errorf("cache holds %d tokens after the others expired, want 2", n)
	}
}

func TestJWTConcurrent(t *testing.T) {
	j := newJWT(t, "ES256", "")
	var wg sync.WaitGroup
	errs := make(chan error, 64)
	for i := range 8 {
		wg.Go(func() {
			for k := range 8 {
				r := httptest.NewRequest(http.MethodGet, "/", nil)
				ex := policytest.Exchange(r)
				ex.Principal = &policy.Principal{Subject: fmt.Sprint("u", (i+k)%4)}
				if err := j.p.Apply(context.Background(), ex); err != nil {
					errs <- err
				}
				if r.Header.Get(DefaultJWTHeader) == "" {
					errs <- fmt.Errorf("no token")
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

// TestJWTHeaderJSON reads the protected header without a JOSE library, to
// pin exactly what the upstream receives.
func TestJWTHeaderJSON(t *testing.T) {
	j := newJWT(t, "ES256", "  kid: identity-2025\n")
	r := httptest.NewRequest(http.MethodGet, "/", nil)
	j.apply(t, r, &policy.Principal{Subject: "s"})
	head, _, _ := strings.Cut(r.Header.Get(DefaultJWTHeader), ".")
	raw, err := base64.RawURLEncoding.DecodeString(head)
	if err != nil {
		t.Fatal(err)
	}
	var got map[string]string
	if err := json.Unmarshal(raw, &got); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(got, map[string]string{"alg": "ES256", "kid": "identity-2025", "typ": "JWT"}); diff != "" {
		t.Errorf("header (-got +want):\n%s", diff)
	}
}

func BenchmarkHeaders(b *testing.B) {
	f := newIdentity(b, headersYAML)
	r := httptest.NewRequest(http.MethodGet, "/", nil)
	r.Header.Set("Accept", "application/json")
	r.Header.Set("User-Agent", "bench")
	ex := policytest.Exchange(r)
	ex.Principal = alice()
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		r.Header.Set("X-Auth-Subject", "spoofed")
		if err := f.p.Apply(ctx, ex); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkJWTCacheHit(b *testing.B) {
	j := newJWT(b, "ES256", "  header: Authorization\n")
	r := httptest.NewRequest(http.MethodGet, "/", nil)
	r.Header.Set("Accept", "application/json")
	ex := policytest.Exchange(r)
	ex.Principal = alice()
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		r.Header.Set("Authorization", "Bearer client")
		if err := j.p.Apply(ctx, ex); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkJWTMintES256(b *testing.B) {
	j := newJWT(b, "ES256", "")
	r := httptest.NewRequest(http.MethodGet, "/", nil)
	ex := policytest.Exchange(r)
	ex.Principal = alice()
	ctx := context.Background()
	b.ReportAllocs()
	var i int64
	for b.Loop() {
		// A new second each time: the cached token is due for renewal.
		i += 31
		j.clk.set(policytest.Start.Add(time.Duration(i) * time.Second))
		if err := j.p.Apply(ctx, ex); err != nil {
			b.Fatal(err)
		}
	}
}
