package session_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/json"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	josejwt "github.com/go-jose/go-jose/v4/jwt"

	"github.com/gatehouse/gatehouse/internal/authn"
	"github.com/gatehouse/gatehouse/internal/authn/jwt"
	"github.com/gatehouse/gatehouse/internal/authn/oidcpeer"
	"github.com/gatehouse/gatehouse/internal/authn/session"
	"github.com/gatehouse/gatehouse/internal/benchcpu"
	"github.com/gatehouse/gatehouse/internal/config"
	"github.com/gatehouse/gatehouse/internal/policy"
	"github.com/gatehouse/gatehouse/internal/policy/policytest"
	"github.com/gatehouse/gatehouse/internal/store"
	"github.com/gatehouse/gatehouse/internal/store/redistest"
)

var benchClaims = map[string]any{
	"iss": "https://idp.example", "sub": "alice", "aud": "web", "email": "alice@example.com",
	"name": "Alice", "email_verified": true, "auth_time": 1.7e9, "iat": 1.7e9, "exp": 1.7e9 + 3600,
}

func newSession(b *testing.B, st store.Store, extra string) *session.Authenticator {
	env := policytest.Env()
	env.Now = time.Now
	env.Store = st
	n, err := config.ParseNode(policytest.File, []byte("issuer: https://idp.example\nclient_id: web\n"+extra), nil)
	if err != nil {
		b.Fatal(err)
	}
	a, err := session.New(n, &authn.Env{Env: env, Realm: "app"})
	if err != nil {
		b.Fatal(err)
	}
	return a
}

func benchSession(b *testing.B, st store.Store, extra string) {
	a := newSession(b, st, extra)
	defer a.Close()
	cookie, err := a.PlantSession(b.Context(), "alice", benchClaims, false)
	if err != nil {
		b.Fatal(err)
	}
	r := httptest.NewRequest(http.MethodGet, "http://app.test/api/products", nil)
	r.Header.Set("Accept", "application/json")
	ex := policytest.Exchange(r)
	ctx := b.Context()
	vals := make([]string, 1)
	run := func() {
		// A session cookie and one of the application's.
		vals[0] = cookie + "; theme=dark"
		r.Header["Cookie"] = vals
		pr, err := a.Authenticate(ctx, ex)
		if err != nil || pr.Subject != "alice" {
			b.Fatal(pr, err)
		}
	}
	run()
	b.ReportAllocs()
	cpu := benchcpu.Start(b)
	for b.Loop() {
		run()
	}
	cpu.Report()
}

// A request with a valid session, the state store in memory.
func BenchmarkSessionMemory(b *testing.B) { benchSession(b, store.NewMemory(time.Now), "") }

// The same without the session cache: the store read, the AES-GCM
// decryption and the JSON decoding on every request.
func BenchmarkSessionMemoryUncached(b *testing.B) {
	benchSession(b, store.NewMemory(time.Now), "cache: {disabled: true}\n")
}

// A request with a valid session, the state store in Redis (one GET a
// request: several instances share the session).
func BenchmarkSessionRedis(b *testing.B) {
	srv := redistest.Start(b)
	st, err := store.NewRedis(store.RedisOptions{Addrs: []string{srv.Addr()}, KeyPrefix: "bench-session:"})
	if err != nil {
		b.Fatal(err)
	}
	defer st.Close()
	b.Run("cached", func(b *testing.B) { benchSession(b, st, "") })
	b.Run("uncached", func(b *testing.B) { benchSession(b, st, "cache: {disabled: true}\n") })
}

// The comparison: a request with a JWT the jwt authenticator has cached
// (ES256, the same claims).
func BenchmarkCachedJWT(b *testing.B) {
	k, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	jwk := jose.JSONWebKey{Key: k.Public(), KeyID: "k", Algorithm: "ES256", Use: "sig"}
	dir := b.TempDir()
	set, _ := json.Marshal(jose.JSONWebKeySet{Keys: []jose.JSONWebKey{jwk}})
	os.WriteFile(filepath.Join(dir, "keys.json"), set, 0o600)
	n, err := config.ParseNode(filepath.Join(dir, "gatehouse.yaml"),
		[]byte("issuer: https://idp.example\naudiences: [web]\nalgorithms: [ES256]\nkeys: [{file: keys.json}]\n"), nil)
	if err != nil {
		b.Fatal(err)
	}
	env := policytest.Env()
	env.Now = time.Now
	a, err := jwt.New(n, &authn.Env{Env: env, Realm: "app"})
	if err != nil {
		b.Fatal(err)
	}
	defer a.Close()
	sig, _ := jose.NewSigner(jose.SigningKey{Algorithm: jose.ES256, Key: jose.JSONWebKey{Key: k, KeyID: "k"}}, (&jose.SignerOptions{}).WithType("JWT"))
	c := map[string]any{}
	for k, v := range benchClaims {
		c[k] = v
	}
	now := time.Now().Unix()
	c["iat"], c["exp"] = now, now+3600
	tok, err := josejwt.Signed(sig).Claims(c).Serialize()
	if err != nil {
		b.Fatal(err)
	}
	r := httptest.NewRequest(http.MethodGet, "http://app.test/api/products", nil)
	r.Header.Set("Authorization", "Bearer "+tok)
	ex := policytest.Exchange(r)
	ctx := b.Context()
	if _, err := a.Authenticate(ctx, ex); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	cpu := benchcpu.Start(b)
	for b.Loop() {
		if _, err := a.Authenticate(ctx, ex); err != nil {
			b.Fatal(err)
		}
	}
	cpu.Report()
}

// toCallback follows the provider's redirects from loc as a browser
// (client keeps its cookies), logging alice in when the provider asks,
// until the redirect to callback, whose URL it returns.
func toCallback(tb testing.TB, client *http.Client, loc, callback string) string {
	tb.Helper()
	next := loc
	for range 20 {
		if strings.HasPrefix(next, callback) {
			return next
		}
		resp, err := client.Get(next)
		if err == nil && resp.StatusCode == http.StatusOK && strings.Contains(next, "/interaction/") {
			resp.Body.Close()
			resp, err = client.PostForm(next, url.Values{"login": {"alice"}, "password": {oidcpeer.Users["alice"]}})
		}
		if err != nil {
			tb.Fatal(err)
		}
		resp.Body.Close()
		l, err := resp.Request.URL.Parse(resp.Header.Get("Location"))
		if err != nil || resp.StatusCode/100 != 3 {
			tb.Fatalf("provider answered %s at %s", resp.Status, next)
		}
		next = l.String()
	}
	tb.Fatalf("no redirect to %s", callback)
	return ""
}

func cpuNow() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// BenchmarkLoginRoundTrip: the gateway's part of a login against
// node-oidc-provider: the redirect, and the callback (code exchange,
// ID token verification, userinfo, the session written). gw-cpu-ns/op
// counts this process's CPU during those two steps only: not the
// provider's (another process; its password check included) nor the
// test's browser between them. The user is logged in at the provider
// after the first round, so the provider asks for no password.
func BenchmarkLoginRoundTrip(b *testing.B) {
	idp := oidcpeer.Start(b)
	idp.AddClient(b, "web", "web-secret", []string{"http://app.test/oauth2/callback"}, nil)
	env := policytest.Env()
	env.Now = time.Now
	env.Store = store.NewMemory(time.Now)
	n, err := config.ParseNode(policytest.File, []byte("issuer: "+idp.Issuer+"\nclient_id: web\nclient_secret: web-secret\n"), nil)
	if err != nil {
		b.Fatal(err)
	}
	a, err := session.New(n, &authn.Env{Env: env, Realm: "app"})
	if err != nil {
		b.Fatal(err)
	}
	defer a.Close()
	jar, _ := cookiejar.New(nil)
	client := &http.Client{Jar: jar, Timeout: 30 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	ctx := context.Background()
	var gw time.Duration
	step := func(r *http.Request) *policy.Denial {
		t0 := cpuNow()
		_, err := a.Authenticate(ctx, policytest.Exchange(r))
		gw += cpuNow() - t0
		d, ok := policy.AsDenial(err)
		if !ok {
			b.Fatalf("want a redirect, got %v", err)
		}
		return d
	}
	round := func() {
		r := httptest.NewRequest(http.MethodGet, "http://app.test/app", nil)
		r.Header.Set("Accept", "text/html")
		d := step(r)
		loginCookie := strings.SplitN(d.Header.Get("Set-Cookie"), ";", 2)[0]
		next := toCallback(b, client, d.Header.Get("Location"), "http://app.test/oauth2/callback")
		cb := httptest.NewRequest(http.MethodGet, next, nil)
		cb.Header.Set("Cookie", loginCookie)
		if d := step(cb); d.Code != "login_complete" {
			b.Fatalf("callback: %v", d)
		}
	}
	round() // discovery, keys, the password
	gw = 0
	b.ReportAllocs()
	for b.Loop() {
		round()
	}
	b.ReportMetric(float64(gw.Nanoseconds())/float64(b.N), "gw-cpu-ns/op")
}
