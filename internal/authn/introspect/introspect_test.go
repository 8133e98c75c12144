package introspect

import (
	"context"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/internal/authn"
	"github.com/gatehouse/gatehouse/internal/authn/dpop/dpoptest"
	"github.com/gatehouse/gatehouse/internal/policy"
	"github.com/gatehouse/gatehouse/internal/policy/policytest"
	"github.com/gatehouse/gatehouse/internal/tlstest"
	"github.com/google/go-cmp/cmp"
)

// A client id and secret with the characters RFC 6749 §2.3.1 makes the
// client form-urlencode: a naive "id:secret" would split at the wrong colon.
const (
	clientID     = "gate:way"
	clientSecret = "s3:cr%et+/ x"
)

// clock is a settable clock for the authenticator.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// idp is an RFC 7662 introspection endpoint on 127.0.0.1 that checks the
// client authentication and the form as a strict authorization server would.
type idp struct {
	t        *testing.T
	srv      *httptest.Server
	method   string // client_secret_basic or client_secret_post
	requests atomic.Int64

	mu      sync.Mutex
	tokens  map[string]map[string]any
	raw     map[string]rawAnswer // tokens answered with another status
	mode    string               // "", "500", "garbage", "huge", "redirect", "hang"
	release chan struct{}        // closed to end "hang"
	entered chan struct{}        // receives when a request starts, if not nil
}

func newIDP(t *testing.T, method string) *idp {
	d := &idp{t: t, method: method, tokens: map[string]map[string]any{}, release: make(chan struct{})}
	d.srv = httptest.NewServer(d)
	t.Cleanup(func() {
		d.unhang()
		d.srv.Close()
	})
	return d
}

func (d *idp) set(token string, resp map[string]any) {
	d.mu.Lock()
	d.tokens[token] = resp
	d.mu.Unlock()
}

// rawAnswer is an endpoint's answer other than a 200 JSON object.
type rawAnswer struct {
	status int
	body   string
}

func (d *idp) setRaw(token string, status int, body string) {
	d.mu.Lock()
	if d.raw == nil {
		d.raw = map[string]rawAnswer{}
	}
	d.raw[token] = rawAnswer{status, body}
	d.mu.Unlock()
}

func (d *idp) setMode(m string) {
	d.mu.Lock()
	d.mode = m
	d.mu.Unlock()
}

func (d *idp) unhang() {
	d.mu.Lock()
	defer d.mu.Unlock()
	select {
	case <-d.release:
	default:
		close(d.release)
	}
}

func (d *idp) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	d.requests.Add(1)
	d.mu.Lock()
	mode, release, entered := d.mode, d.release, d.entered
	d.mu.Unlock()
	if entered != nil {
		entered <- struct{}{}
	}
	if r.Method != http.MethodPost || r.Header.Get("Content-Type") != "application/x-www-form-urlencoded" {
		d.t.Errorf("idp: got %s with Content-Type %q, want a form POST", r.Method, r.Header.Get("Content-Type"))
	}
	if err := r.ParseForm(); err != nil {
		d.t.Errorf("idp: %v", err)
	}
	id, secret, ok := d.clientAuth(r)
	if !ok || id != clientID || secret != clientSecret {
		d.t.Errorf("idp: client authenticated as %q/%q (ok %v), want %q/%q", id, secret, ok, clientID, clientSecret)
		http.Error(w, `{"error":"invalid_client"}`, http.StatusUnauthorized)
		return
	}
	if got := r.PostForm.Get("token_type_hint"); got != "access_token" {
		d.t.Errorf("idp: token_type_hint %q", got)
	}
	switch mode {
	case "500":
		http.Error(w, "boom", http.StatusInternalServerError)
		return
	case "garbage":
		w.Write([]byte("<html>not json</html>"))
		return
	case "huge":
		w.Write([]byte(`{"active":true,"x":"` + strings.Repeat("a", maxResponse) + `"}`))
		return
	case "redirect":
		http.Redirect(w, r, "https://elsewhere.example/introspect", http.StatusTemporaryRedirect)
		return
	case "hang":
		select {
		case <-release:
		case <-r.Context().Done():
		}
		return
	}
	d.mu.Lock()
	resp, ok := d.tokens[r.PostForm.Get("token")]
	ra, isRaw := d.raw[r.PostForm.Get("token")]
	d.mu.Unlock()
	if isRaw {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(ra.status)
		w.Write([]byte(ra.body))
		return
	}
	if !ok {
		resp = map[string]any{"active": false}
	}
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(resp)
}

// clientAuth returns the client's credentials from the method it must use;
// ok is false if it used the other one too.
func (d *idp) clientAuth(r *http.Request) (id, secret string, ok bool) {
	_, inForm := r.PostForm["client_secret"]
	h := r.Header.Get("Authorization")
	if d.method == "client_secret_post" {
		if h != "" {
			return "", "", false
		}
		return r.PostForm.Get("client_id"), r.PostForm.Get("client_secret"), true
	}
	if inForm || !strings.HasPrefix(h, "Basic ") {
		return "", "", false
	}
	raw, err := base64.StdEncoding.DecodeString(strings.TrimPrefix(h, "Basic "))
	if err != nil {
		return "", "", false
	}
	eid, esec, found := strings.Cut(string(raw), ":")
	id, err1 := url.QueryUnescape(eid)
	secret, err2 := url.QueryUnescape(esec)
	return id, secret, found && err1 == nil && err2 == nil
}

func settings(endpoint, extra string) string {
	return fmt.Sprintf("endpoint: %s\nclient_id: %q\nclient_secret: %q\n%s", endpoint, clientID, clientSecret, extra)
}

func newAuth(t testing.TB, yaml string, clk *clock) *Authenticator {
	t.Helper()
	env := &authn.Env{Env: policytest.Env(), Realm: "api"}
	if clk != nil {
		env.Now = clk.Now
	}
	a, err := New(policytest.Node(t, yaml), env)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { a.Close() })
	return a
}

func request(a *Authenticator, authorization string) (*policy.Principal, error) {
	r := httptest.NewRequest("GET", "/products", nil)
	if authorization != "" {
		r.Header.Set("Authorization", authorization)
	}
	return a.Authenticate(context.Background(), policytest.Exchange(r))
}

func unix(t time.Time) float64 { return float64(t.Unix()) }

func TestClientAuth(t *testing.T) {
	for _, method := range []string{"client_secret_basic", "client_secret_post"} {
		t.Run(method, func(t *testing.T) {
			d := newIDP(t, method)
			d.set("tok", map[string]any{"active": true, "sub": "alice"})
			a := newAuth(t, settings(d.srv.URL, "auth_method: "+method+"\n"), nil)
			pr, err := request(a, "Bearer tok")
			if err != nil {
				t.Fatal(err)
			}
			if pr.Subject != "alice" {
				t.Errorf("subject %q, want alice", pr.Subject)
			}
		})
	}
	// The Basic credentials, spelled out: each part form-urlencoded.
	a := newAuth(t, settings("https://idp.example/introspect", ""), nil)
	want := "Basic " + base64.StdEncoding.EncodeToString([]byte("gate%3Away:s3%3Acr%25et%2B%2F+x"))
	if a.p.basic != want {
		t.Errorf("basic header %q, want %q", a.p.basic, want)
	}
}

func TestAuthenticate(t *testing.T) {
	now := policytest.Start
	d := newIDP(t, "client_secret_basic")
	d.set("full", map[string]any{
		"active": true, "sub": "alice", "client_id": "web", "scope": "products:read  products:write",
		"exp": unix(now.Add(time.Hour)), "iat": unix(now), "iss": "https://idp.example", "aud": []any{"other", "https://api.example"},
		"username": "alice@example.com",
	})
	d.set("machine", map[string]any{"active": true, "client_id": "batch", "aud": "https://api.example", "iss": "https://idp.example"})
	d.set("expired", map[string]any{"active": true, "sub": "a", "exp": unix(now.Add(-time.Second))})
	d.set("expires-now", map[string]any{"active": true, "sub": "a", "exp": unix(now)})
	d.set("skewed", map[string]any{"active": true, "sub": "a", "exp": unix(now.Add(-10 * time.Second))})
	d.set("not-yet", map[string]any{"active": true, "sub": "a", "nbf": unix(now.Add(time.Minute))})
	d.set("nbf-past", map[string]any{"active": true, "sub": "a", "nbf": unix(now.Add(-time.Minute))})
	d.set("wrong-aud", map[string]any{"active": true, "sub": "a", "aud": []any{"https://other.example"}, "iss": "https://idp.example"})
	d.set("no-aud", map[string]any{"active": true, "sub": "a", "iss": "https://idp.example"})
	d.set("wrong-iss", map[string]any{"active": true, "sub": "a", "aud": "https://api.example", "iss": "https://evil.example"})
	d.set("dpop", map[string]any{"active": true, "sub": "a", "cnf": map[string]any{"jkt": "0ZcOCORZNYy-DWpqq30jZyJGHTN0d2HglBV3uiguA4I"}})
	d.set("scp", map[string]any{"active": true, "sub": "a", "scp": []any{"x", "y"}})
	d.set("no-active", map[string]any{"sub": "a"})
	d.set("string-active", map[string]any{"active": "true", "sub": "a"})
	d.set("sub-number", map[string]any{"active": true, "sub": 42})
	d.set("exp-string", map[string]any{"active": true, "exp": "tomorrow"})
	d.set("exp-millis", map[string]any{"active": true, "exp": 1.7e12})
	d.set("scope-object", map[string]any{"active": true, "scope": map[string]any{}})

	plain := newAuth(t, settings(d.srv.URL, ""), nil)
	strict := newAuth(t, settings(d.srv.URL, "audiences: [https://api.example]\nissuer: https://idp.example\n"), nil)
	lenient := newAuth(t, settings(d.srv.URL, "leeway: 30s\n"), nil)
	scp := newAuth(t, settings(d.srv.URL, "scope_field: scp\n"), nil)

	tests := []struct {
		name    string
		a       *Authenticator
		authz   string
		subject string
		scopes  []string
		status  int
		code    string
		scheme  string // of the denial's challenge, when it has one
	}{
		{name: "active", a: strict, authz: "Bearer full", subject: "alice", scopes: []string{"products:read", "products:write"}},
		{name: "client credentials token", a: strict, authz: "Bearer machine", subject: "batch"},
		{name: "scheme case-insensitive", a: plain, authz: "bearer full", subject: "alice", scopes: []string{"products:read", "products:write"}},
		{name: "no header", a: plain, authz: ""},
		{name: "basic is not ours", a: plain, authz: "Basic Zm9vOmJhcg=="},
		{name: "malformed header", a: plain, authz: "Bearer a b", status: 400, code: "invalid_request", scheme: "Bearer"},
		{name: "inactive", a: plain, authz: "Bearer unknown", status: 401, code: "invalid_token", scheme: "Bearer"},
		{name: "expired", a: plain, authz: "Bearer expired", status: 401, code: "invalid_token", scheme: "Bearer"},
		{name: "expires now", a: plain, authz: "Bearer expires-now", status: 401, code: "invalid_token", scheme: "Bearer"},
		{name: "expired within leeway", a: lenient, authz: "Bearer skewed", subject: "a"},
		{name: "not yet valid", a: plain, authz: "Bearer not-yet", status: 401, code: "invalid_token", scheme: "Bearer"},
		{name: "nbf past", a: plain, authz: "Bearer nbf-past", subject: "a"},
		{name: "wrong audience", a: strict, authz: "Bearer wrong-aud", status: 401, code: "invalid_token", scheme: "Bearer"},
		{name: "no audience", a: strict, authz: "Bearer no-aud", status: 401, code: "invalid_token", scheme: "Bearer"},
		{name: "wrong issuer", a: strict, authz: "Bearer wrong-iss", status: 401, code: "invalid_token", scheme: "Bearer"},
		{name: "audience unchecked when not configured", a: plain, authz: "Bearer wrong-aud", subject: "a"},
		{name: "dpop-bound token as bearer", a: plain, authz: "Bearer dpop", status: 401, code: "invalid_token", scheme: "DPoP"},
		{name: "dpop-bound token with dpop scheme, no proof", a: plain, authz: "DPoP dpop", status: 401, code: "invalid_dpop_proof", scheme: "DPoP"},
		{name: "scope list in another field", a: scp, authz: "Bearer scp", subject: "a", scopes: []string{"x", "y"}},
		{name: "token too large", a: plain, authz: "Bearer " + strings.Repeat("a", maxToken+1), status: 401, code: "invalid_token", scheme: "Bearer"},
		{name: "no active member", a: plain, authz: "Bearer no-active", status: 503, code: "introspection_unavailable"},
		{name: "active not a boolean", a: plain, authz: "Bearer string-active", status: 503, code: "introspection_unavailable"},
		{name: "sub not a string", a: plain, authz: "Bearer sub-number", status: 503, code: "introspection_unavailable"},
		{name: "exp not a number", a: plain, authz: "Bearer exp-string", status: 503, code: "introspection_unavailable"},
		{name: "exp in milliseconds", a: plain, authz: "Bearer exp-millis", status: 503, code: "introspection_unavailable"},
		{name: "scope an object", a: plain, authz: "Bearer scope-object", status: 503, code: "introspection_unavailable"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			pr, err := request(tt.a, tt.authz)
			switch {
			case tt.status != 0:
				den, ok := policy.AsDenial(err)
				if !ok {
					t.Fatalf("got %+v, %v, want a denial", pr, err)
				}
				if den.Status != tt.status || den.Code != tt.code {
					t.Fatalf("got %d %s, want %d %s", den.Status, den.Code, tt.status, tt.code)
				}
				ch := den.Header.Get("Www-Authenticate")
				if tt.scheme != "" && !strings.HasPrefix(ch, tt.scheme+` realm="api", error="`+tt.code+`"`) {
					t.Errorf("challenge %q, want %s with error %s", ch, tt.scheme, tt.code)
				}
				if tt.status == 503 && (ch != "" || den.Header.Get("Retry-After") == "" || !errors.Is(den, ErrUnavailable)) {
					t.Errorf("unavailable denial: headers %v, cause %v", den.Header, den.Err)
				}
			case tt.subject == "":
				if !errors.Is(err, authn.ErrNoCredentials) {
					t.Fatalf("got %+v, %v, want ErrNoCredentials", pr, err)
				}
			default:
				if err != nil {
					t.Fatal(err)
				}
				if pr.Subject != tt.subject || pr.Method != "introspection" || !cmp.Equal(pr.Scopes, tt.scopes) {
					t.Errorf("got %s %v by %s, want %s %v by introspection", pr.Subject, pr.Scopes, pr.Method, tt.subject, tt.scopes)
				}
			}
		})
	}

	t.Run("principal", func(t *testing.T) {
		pr, err := request(strict, "Bearer full")
		if err != nil {
			t.Fatal(err)
		}
		want := &policy.Principal{
			Subject: "alice", ClientID: "web", Consumer: "web",
			Scopes: []string{"products:read", "products:write"},
			Claims: map[string]any{
				"active": true, "sub": "alice", "client_id": "web", "scope": "products:read  products:write",
				"exp": unix(now.Add(time.Hour)), "iat": unix(now), "iss": "https://idp.example",
				"aud": []any{"other", "https://api.example"}, "username": "alice@example.com",
			},
			Method: "introspection",
		}
		if diff := cmp.Diff(want, pr); diff != "" {
			t.Errorf("principal (-want +got):\n%s", diff)
		}
	})
}

// TestBoundToken: an introspection answer's cnf binds the token as a
// JWT's does: DPoP-bound, it is accepted only with the DPoP scheme and a
// proof by its key over this request and token; certificate-bound, only
// over a connection with that verified certificate; a cnf that cannot be
// read refuses the token; each on the cached answer too, and without any
// binding policy. unsafe_ignore_token_binding turns the proof check off.
func TestBoundToken(t *testing.T) {
	d := newIDP(t, "client_secret_basic")
	key, other := dpoptest.NewKey(t), dpoptest.NewKey(t)
	ca := tlstest.NewCA(t, "client CA")
	mine, theirs := ca.Client(t, "mine"), ca.Client(t, "theirs")
	sum := sha256.Sum256(mine.TLS.Leaf.Raw)
	d.set("dpop-tok", map[string]any{"active": true, "sub": "a", "cnf": map[string]any{"jkt": key.JKT(t)}})
	d.set("cert-tok", map[string]any{"active": true, "sub": "a", "cnf": map[string]any{"x5t#S256": base64.RawURLEncoding.EncodeToString(sum[:])}})
	d.set("bad-cnf", map[string]any{"active": true, "sub": "a", "cnf": map[string]any{"jkt": 7}})
	d.set("cnf-string", map[string]any{"active": true, "sub": "a", "cnf": "x"})
	d.set("cnf-jwk", map[string]any{"active": true, "sub": "a", "cnf": map[string]any{"jwk": map[string]any{"kty": "EC"}}})
	a := newAuth(t, settings(d.srv.URL, ""), nil)
	unsafe := newAuth(t, settings(d.srv.URL, "unsafe_ignore_token_binding: true\n"), nil)
	const url = "http://gw.example/products"
	now := policytest.Start
	call := func(a *Authenticator, authz string, proof string, l *tlstest.Leaf, verified bool) error {
		r := httptest.NewRequest(http.MethodGet, url, nil)
		r.Header.Set("Authorization", authz)
		if proof != "" {
			r.Header.Set("DPoP", proof)
		}
		if l != nil {
			st := &tls.ConnectionState{PeerCertificates: []*x509.Certificate{l.TLS.Leaf}}
			if verified {
				st.VerifiedChains = [][]*x509.Certificate{{l.TLS.Leaf, ca.Cert}}
			}
			r.TLS = st
		}
		_, err := a.Authenticate(context.Background(), policytest.Exchange(r))
		return err
	}
	want := func(err error, status int, code string) {
		t.Helper()
		if status == 0 {
			if err != nil {
				t.Fatalf("got %v, want accepted", err)
			}
			return
		}
		den, ok := policy.AsDenial(err)
		if !ok || den.Status != status || den.Code != code {
			t.Fatalf("got %v, want %d %s", err, status, code)
		}
	}
	for range 2 { // the second round reads the cached answers
		want(call(a, "Bearer dpop-tok", "", nil, false), 401, "invalid_token")
		want(call(a, "DPoP dpop-tok", "", nil, false), 401, "invalid_dpop_proof")
		want(call(a, "DPoP dpop-tok", other.Proof(t, "GET", url, "dpop-tok", now), nil, false), 401, "invalid_dpop_proof")
		want(call(a, "DPoP dpop-tok", key.Proof(t, "GET", url, "other-tok", now), nil, false), 401, "invalid_dpop_proof")
		proof := key.Proof(t, "GET", url, "dpop-tok", now)
		want(call(a, "DPoP dpop-tok", proof, nil, false), 0, "")
		want(call(a, "DPoP dpop-tok", proof, nil, false), 401, "invalid_dpop_proof") // replayed

		want(call(a, "Bearer cert-tok", "", nil, false), 401, "invalid_token")
		want(call(a, "Bearer cert-tok", "", theirs, true), 401, "invalid_token")
		want(call(a, "Bearer cert-tok", "", mine, false), 401, "invalid_token")
		want(call(a, "Bearer cert-tok", "", mine, true), 0, "")

		want(call(a, "Bearer bad-cnf", "", nil, false), 401, "invalid_token")
		want(call(a, "Bearer cnf-string", "", nil, false), 401, "invalid_token")
		want(call(a, "Bearer cnf-jwk", "", nil, false), 401, "invalid_token")
	}
	want(call(unsafe, "DPoP dpop-tok", "", nil, false), 0, "")
	want(call(unsafe, "Bearer cert-tok", "", nil, false), 0, "")
	want(call(unsafe, "Bearer dpop-tok", "", nil, false), 401, "invalid_token")
}

func TestCache(t *testing.T) {
	start := policytest.Start
	d := newIDP(t, "client_secret_basic")
	d.set("long", map[string]any{"active": true, "sub": "a"})
	d.set("short", map[string]any{"active": true, "sub": "b", "exp": unix(start.Add(5 * time.Second))})
	clk := &clock{t: start}
	a := newAuth(t, settings(d.srv.URL, "cache: {ttl: 60s, negative_ttl: 10s}\n"), clk)

	use := func(token string, wantOK bool, wantRequests int64) {
		t.Helper()
		_, err := request(a, "Bearer "+token)
		if (err == nil) != wantOK {
			t.Errorf("%s at +%v: err %v, want ok=%v", token, clk.Now().Sub(start), err, wantOK)
		}
		if got := d.requests.Load(); got != wantRequests {
			t.Errorf("%s at +%v: %d requests to the endpoint, want %d", token, clk.Now().Sub(start), got, wantRequests)
		}
	}
	use("long", true, 1)
	use("long", true, 1) // positive hit
	use("short", true, 2)
	use("bad", false, 3)
	use("bad", false, 3) // negative hit
	clk.Advance(4 * time.Second)
	use("short", true, 3) // still cached
	clk.Advance(time.Second)
	// At exp the entry is gone although the TTL is 60s; the endpoint is
	// asked again and its exp is past.
	use("short", false, 4)
	use("bad", false, 4)
	clk.Advance(5 * time.Second)
	use("bad", false, 5) // negative TTL over
	// A token activated since it was refused is accepted once the
	// negative entry expires.
	d.set("bad", map[string]any{"active": true, "sub": "c"})
	use("bad", false, 5)
	clk.Advance(10 * time.Second)
	use("bad", true, 6)
	// Revoked at the authorization server: accepted until the positive TTL
	// runs out, then refused.
	d.set("long", map[string]any{"active": false})
	clk.Advance(39 * time.Second) // +59s
	use("long", true, 6)
	clk.Advance(time.Second)
	use("long", false, 7)

	// The caches hold hashes of tokens, never tokens.
	for _, c := range []*cache{a.pos, a.neg} {
		for i := range c.shards {
			for k := range c.shards[i].m {
				if k != sha256.Sum256([]byte("long")) && k != sha256.Sum256([]byte("bad")) && k != sha256.Sum256([]byte("short")) {
					t.Errorf("cache key %x is not a token's hash", k)
				}
			}
		}
	}

	t.Run("disabled", func(t *testing.T) {
		d := newIDP(t, "client_secret_basic")
		d.set("tok", map[string]any{"active": true, "sub": "a"})
		a := newAuth(t, settings(d.srv.URL, "cache: {disabled: true}\n"), nil)
		for i := range 3 {
			if _, err := request(a, "Bearer tok"); err != nil {
				t.Fatal(err)
			}
			if got := d.requests.Load(); got != int64(i+1) {
				t.Errorf("%d requests, want %d", got, i+1)
			}
		}
	})
}

func TestCacheBounded(t *testing.T) {
	now := policytest.Start
	for _, size := range []int{1, 10, 300, 5000} {
		c := newCache(size)
		for i := range 3 * size {
			k := sha256.Sum256([]byte(fmt.Sprint(i)))
			c.put(&k, &answer{}, now.Add(time.Minute), now)
		}
		// Rounded up to a multiple of the shard count.
		if got, limit := c.len(), c.perShard*len(c.shards); got > limit || limit > size+15 {
			t.Errorf("size %d: %d entries, limit %d", size, got, limit)
		}
		k := sha256.Sum256([]byte("last"))
		c.put(&k, &answer{desc: "x"}, now.Add(time.Minute), now)
		if v, ok := c.get(&k, now); !ok || v.desc != "x" {
			t.Errorf("size %d: the entry just put is missing", size)
		}
	}
	// A full shard makes room from expired entries first.
	c := newCache(4)
	for i := range 4 {
		k := sha256.Sum256([]byte(fmt.Sprint(i)))
		c.put(&k, &answer{}, now.Add(time.Second), now)
	}
	live := sha256.Sum256([]byte("live"))
	c.put(&live, &answer{}, now.Add(time.Hour), now.Add(2*time.Second))
	if c.len() > 4 {
		t.Errorf("%d entries, want at most 4", c.len())
	}
}

func TestOutage(t *testing.T) {
	for _, mode := range []string{"500", "garbage", "huge", "redirect", "hang", "closed"} {
		t.Run(mode, func(t *testing.T) {
			d := newIDP(t, "client_secret_basic")
			d.set("tok", map[string]any{"active": true, "sub": "alice"})
			a := newAuth(t, settings(d.srv.URL, "timeout: 200ms\n"), nil)
			if mode == "closed" {
				d.srv.Listener.Close()
			} else {
				d.setMode(mode)
			}
			for range 2 { // failures are not cached
				pr, err := request(a, "Bearer tok")
				den, ok := policy.AsDenial(err)
				if !ok || den.Status != 503 || den.Code != "introspection_unavailable" || !errors.Is(err, ErrUnavailable) {
					t.Fatalf("got %+v, %v, want 503 introspection_unavailable", pr, err)
				}
				if den.Header.Get("Retry-After") != "1" {
					t.Errorf("Retry-After %q", den.Header.Get("Retry-After"))
				}
			}
			// The endpoint comes back.
			if mode == "closed" {
				ln, err := net.Listen("tcp", d.srv.Listener.Addr().String())
				if err != nil {
					t.Skipf("cannot listen again on %s: %v", d.srv.Listener.Addr(), err)
				}
				srv := &http.Server{Handler: d}
				go srv.Serve(ln)
				defer srv.Close()
			} else {
				d.unhang()
				d.setMode("")
			}
			pr, err := request(a, "Bearer tok")
			if err != nil || pr.Subject != "alice" {
				t.Fatalf("after recovery: got %+v, %v", pr, err)
			}
		})
	}
}

func TestTLS(t *testing.T) {
	d := &idp{t: t, method: "client_secret_basic", tokens: map[string]map[string]any{"tok": {"active": true, "sub": "alice"}}, release: make(chan struct{})}
	srv := httptest.NewTLSServer(d)
	defer srv.Close()
	dir := t.TempDir()
	ca := dir + "/ca.pem"
	writePEM(t, ca, srv.Certificate().Raw)

	trusted := newAuth(t, settings(srv.URL, "ca_file: "+ca+"\n"), nil)
	if pr, err := request(trusted, "Bearer tok"); err != nil || pr.Subject != "alice" {
		t.Errorf("with ca_file: got %+v, %v", pr, err)
	}
	// Without it the test server's certificate is unknown: fail closed.
	untrusted := newAuth(t, settings(srv.URL, ""), nil)
	_, err := request(untrusted, "Bearer tok")
	if den, ok := policy.AsDenial(err); !ok || den.Status != 503 {
		t.Errorf("without ca_file: got %v, want 503", err)
	}
	if n := d.requests.Load(); n != 1 {
		t.Errorf("%d requests reached the endpoint, want 1", n)
	}
}

func TestSingleflight(t *testing.T) {
	d := newIDP(t, "client_secret_basic")
	d.set("tok", map[string]any{"active": true, "sub": "alice"})
	d.entered = make(chan struct{}, 1)
	d.setMode("hang")
	a := newAuth(t, settings(d.srv.URL, "cache: {disabled: true}\n"), nil)

	const n = 8
	firstCtx, cancelFirst := context.WithCancel(context.Background())
	errs := make(chan error, n)
	subjects := make(chan string, n)
	for i := range n {
		ctx := context.Background()
		if i == 0 {
			ctx = firstCtx
		}
		go func() {
			r := httptest.NewRequest("GET", "/", nil)
			r.Header.Set("Authorization", "Bearer tok")
			pr, err := a.Authenticate(ctx, policytest.Exchange(r))
			if err != nil {
				errs <- err
				return
			}
			subjects <- pr.Subject
		}()
		if i == 0 {
			<-d.entered // the first caller's introspection is in flight
		}
	}
	for {
		a.flight.mu.Lock()
		joined := a.flight.joined
		a.flight.mu.Unlock()
		if joined == n-1 {
			break
		}
		time.Sleep(time.Millisecond)
	}
	// The caller that started the introspection goes away; the others
	// still get its answer.
	cancelFirst()
	if err := <-errs; !errors.Is(err, context.Canceled) {
		t.Errorf("first caller: %v, want context.Canceled", err)
	}
	d.setMode("")
	d.unhang()
	// The hung request ended with an empty 200: that is one failure for
	// all. Nothing was cached, so the next call introspects again.
	for range n - 1 {
		if err := <-errs; !errors.Is(err, ErrUnavailable) {
			t.Errorf("joined caller: %v, want the shared failure", err)
		}
	}
	if got := d.requests.Load(); got != 1 {
		t.Errorf("%d requests for %d concurrent callers, want 1", got, n)
	}
	if pr, err := request(a, "Bearer tok"); err != nil || pr.Subject != "alice" {
		t.Errorf("afterwards: %+v, %v", pr, err)
	}
	select {
	case s := <-subjects:
		t.Errorf("a caller got subject %q from a failed introspection", s)
	default:
	}
}

func BenchmarkAuthenticate(b *testing.B) {
	d := &idp{method: "client_secret_basic", tokens: map[string]map[string]any{}, release: make(chan struct{})}
	srv := httptest.NewServer(d)
	defer srv.Close()
	token := strings.Repeat("t", 40)
	d.tokens[token] = map[string]any{"active": true, "sub": "alice", "scope": "products:read"}
	a := newAuth(b, settings(srv.URL, ""), nil)
	r := httptest.NewRequest("GET", "/", nil)
	r.Header.Set("Authorization", "Bearer "+token)
	ex := policytest.Exchange(r)
	ctx := context.Background()
	if _, err := a.Authenticate(ctx, ex); err != nil {
		b.Fatal(err)
	}
	b.Run("cache_hit", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := a.Authenticate(ctx, ex); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// lockedBuffer is a log sink safe for the goroutines of introspections.
type lockedBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// TestEndpointAnswers holds the meaning of the endpoint's answers other
// than 200: a refusal of the token is the token's 401 invalid_token (and
// cached like an inactive token); unsupported_token_type is a "not mine";
// a refusal of the gateway's own client credentials and the endpoint's
// failures are 503 introspection_unavailable, never cached, the
// misconfiguration logged.
func TestEndpointAnswers(t *testing.T) {
	const (
		token   = "token"    // 401 invalid_token
		decline = "declined" // Declined, refusal 401 invalid_token
		outage  = "outage"   // 503, nothing logged
		misconf = "misconf"  // 503, an error logged
	)
	tests := []struct {
		name   string
		status int
		body   string
		want   string
	}{
		{"node-oidc-provider on a JWT", 400, `{"error":"unsupported_token_type","error_description":"Structured JWT Tokens cannot be introspected via the introspection_endpoint"}`, decline},
		{"invalid_request", 400, `{"error":"invalid_request","error_description":"token is malformed"}`, token},
		{"invalid_token", 400, `{"error":"invalid_token"}`, token},
		{"400 without a body", 400, ``, token},
		{"400 not JSON", 400, `<html>bad request</html>`, token},
		{"400 error not a string", 400, `{"error":["unsupported_token_type"]}`, token},
		{"413", 413, ``, token},
		{"422", 422, `{"error":"invalid_request"}`, token},
		{"our credentials refused, 401", 401, `{"error":"invalid_client"}`, misconf},
		{"our credentials refused, 400 invalid_client", 400, `{"error":"invalid_client"}`, misconf},
		{"our client not allowed, 400 unauthorized_client", 400, `{"error":"unauthorized_client"}`, misconf},
		{"403", 403, `{"error":"access_denied"}`, misconf},
		{"404: not the introspection URL", 404, `not found`, misconf},
		{"405", 405, ``, misconf},
		{"429", 429, ``, outage},
		{"500", 500, `{"error":"server_error"}`, outage},
		{"502", 502, ``, outage},
		{"503", 503, ``, outage},
		{"204", 204, ``, misconf},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := newIDP(t, "client_secret_basic")
			d.setRaw("tok", tt.status, tt.body)
			clk := &clock{t: policytest.Start}
			var logs lockedBuffer
			env := &authn.Env{Env: policytest.Env(), Realm: "api"}
			env.Now, env.Logger = clk.Now, slog.New(slog.NewTextHandler(&logs, nil))
			a, err := New(policytest.Node(t, settings(d.srv.URL, "")), env)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { a.Close() })

			for i := range 2 {
				_, err := request(a, "Bearer tok")
				var dec *authn.Declined
				declined := errors.As(err, &dec)
				if declined {
					err = dec.Refusal
				}
				if declined != (tt.want == decline) {
					t.Fatalf("request %d: declined %v (%v), want %v", i, declined, err, tt.want == decline)
				}
				den, ok := policy.AsDenial(err)
				if !ok {
					t.Fatalf("request %d: got %v, want a denial", i, err)
				}
				switch tt.want {
				case token, decline:
					if den.Status != 401 || den.Code != "invalid_token" ||
						!strings.HasPrefix(den.Header.Get("Www-Authenticate"), `Bearer realm="api", error="invalid_token"`) {
						t.Fatalf("request %d: got %d %s %v, want 401 invalid_token", i, den.Status, den.Code, den.Header)
					}
				default:
					if den.Status != 503 || den.Code != "introspection_unavailable" || den.Header.Get("Retry-After") == "" ||
						den.Header.Get("Www-Authenticate") != "" || !errors.Is(den, ErrUnavailable) {
						t.Fatalf("request %d: got %d %s %v (%v), want 503 introspection_unavailable", i, den.Status, den.Code, den.Header, den.Err)
					}
				}
			}
			// A refusal of the token is cached; an outage or a
			// misconfiguration never is: the next request asks again.
			wantAsked := int64(2)
			if tt.want == token || tt.want == decline {
				wantAsked = 1
			}
			if n := d.requests.Load(); n != wantAsked {
				t.Errorf("the endpoint was asked %d times, want %d", n, wantAsked)
			}
			logged := strings.Count(logs.String(), "level=ERROR")
			if want := map[bool]int{true: 1, false: 0}[tt.want == misconf]; logged != want {
				t.Errorf("%d errors logged, want %d:\n%s", logged, want, logs.String())
			}
			if strings.Contains(logs.String(), clientSecret) {
				t.Error("the log holds the client secret")
			}
		})
	}
}
