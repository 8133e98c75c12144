package jwt

import (
	"crypto/elliptic"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"

	"github.com/gatehouse/gatehouse/internal/policy/policytest"
)

// discoveryConfig is a config finding p's keys by OIDC discovery.
func discoveryConfig(p *idp, algs string, extra ...string) string {
	return fmt.Sprintf("issuer: %s\naudiences: [%s]\nalgorithms: [%s]\noidc_discovery: true\njwks_refresh: 1h\nunknown_kid_refetch: 30s\nfetch_timeout: 2s\n%s",
		p.srv.URL, testAud, algs, strings.Join(extra, "\n"))
}

func remoteOf(t *testing.T, a *Authenticator) *remote {
	t.Helper()
	r, ok := a.src.(*remote)
	if !ok {
		t.Fatalf("source is a %T, want *remote", a.src)
	}
	return r
}

// A key rotation at the issuer, driven step by step.
func TestKeyRotation(t *testing.T) {
	k1 := signer{"k1", jose.RS256, rsaKey(0)}
	k2 := signer{"k2", jose.RS256, rsaKey(1)}
	k3 := signer{"k3", jose.RS256, rsaKey(2)}
	p := newIDP(t, k1.jwk())
	w := newWorld()
	a := w.build(t, discoveryConfig(p, "RS256"))
	r := remoteOf(t, a)
	iss := p.srv.URL
	tok1 := k1.sign(t, claims(iss, "jti", "t1"))
	tok2 := k2.sign(t, claims(iss, "jti", "t2"))

	if _, err := auth(t, a, bearer(tok1)); err != nil {
		t.Fatalf("k1 before rotation: %v", err)
	}
	if got := p.discoveryHits.Load(); got != 1 {
		t.Errorf("discovery asked %d times, want 1", got)
	}
	hits := p.jwksHits.Load()

	t.Run("a new kid works at once", func(t *testing.T) {
		p.setKeys(k1.jwk(), k2.jwk())
		if _, err := auth(t, a, bearer(tok2)); err != nil {
			t.Fatalf("k2 right after it was published: %v", err)
		}
		if got := p.jwksHits.Load() - hits; got != 1 {
			t.Errorf("%d key set fetches for the new kid, want 1", got)
		}
		hits = p.jwksHits.Load()
	})

	t.Run("unknown kids are rate limited", func(t *testing.T) {
		unknown := signer{"nope", jose.RS256, rsaKey(2)}.sign(t, claims(iss))
		var wg sync.WaitGroup
		for range 20 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				wantDenial(t, errOf(auth(t, a, bearer(unknown))), 401, "invalid_token", descKey)
			}()
		}
		wg.Wait()
		if got := p.jwksHits.Load() - hits; got != 0 {
			t.Errorf("%d fetches within unknown_kid_refetch of the last, want 0", got)
		}
		w.clock.add(30 * time.Second)
		for range 20 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				wantDenial(t, errOf(auth(t, a, bearer(unknown))), 401, "invalid_token", descKey)
			}()
		}
		wg.Wait()
		if got := p.jwksHits.Load() - hits; got != 1 {
			t.Errorf("%d fetches for 20 concurrent unknown kids after the interval, want 1", got)
		}
		hits = p.jwksHits.Load()
	})

	t.Run("concurrent unknown kids share one fetch", func(t *testing.T) {
		w.clock.add(30 * time.Second)
		p.mu.Lock()
		p.gate = make(chan struct{})
		p.keys = []jose.JSONWebKey{k1.jwk(), k2.jwk(), k3.jwk()}
		p.mu.Unlock()
		tok3 := k3.sign(t, claims(iss))
		var wg sync.WaitGroup
		errs := make(chan error, 10)
		for range 10 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				_, err := auth(t, a, bearer(tok3))
				errs <- err
			}()
		}
		// Let the fetch through once it has started.
		for p.jwksHits.Load() == hits {
			time.Sleep(time.Millisecond)
		}
		p.mu.Lock()
		close(p.gate)
		p.gate = nil
		p.mu.Unlock()
		wg.Wait()
		close(errs)
		accepted := 0
		for err := range errs {
			if err == nil {
				accepted++
			}
		}
		if got := p.jwksHits.Load() - hits; got != 1 {
			t.Errorf("%d fetches, want 1", got)
		}
		// Those that arrived during the fetch waited for it; one that came
		// after it was rate limited would see the new set too.
		if accepted != 10 {
			t.Errorf("%d of 10 requests accepted, want all", accepted)
		}
		hits = p.jwksHits.Load()
	})

	t.Run("a removed key's cached tokens are refused after the refresh", func(t *testing.T) {
		if _, err := auth(t, a, bearer(tok1)); err != nil {
			t.Fatal(err)
		}
		before := a.verifications.Load()
		if _, err := auth(t, a, bearer(tok1)); err != nil || a.verifications.Load() != before {
			t.Fatalf("tok1 not served from the cache (%v)", err)
		}
		p.setKeys(k2.jwk(), k3.jwk())
		if err := r.refresh(); err != nil {
			t.Fatal(err)
		}
		wantDenial(t, errOf(auth(t, a, bearer(tok1))), 401, "invalid_token", descKey)
		// k2's cached tokens are still good and still cached.
		if _, err := auth(t, a, bearer(tok2)); err != nil {
			t.Fatalf("k2 after k1 was removed: %v", err)
		}
		before = a.verifications.Load()
		if _, err := auth(t, a, bearer(tok2)); err != nil || a.verifications.Load() != before {
			t.Errorf("k2's token was verified again (%v): a refresh that keeps a key must keep its cache", err)
		}
		hits = p.jwksHits.Load()
	})

	t.Run("a key server that is down keeps the last good keys", func(t *testing.T) {
		src := "source"
		okBefore := metric(t, w.metrics, "gatehouse_jwks_fetches_total", src, iss, "result", "success")
		last := metric(t, w.metrics, "gatehouse_jwks_last_success_timestamp_seconds", src, iss)
		if okBefore == 0 || last != float64(w.clock.now().Unix()) {
			t.Errorf("success count %v, last success %v, want > 0 and %d", okBefore, last, w.clock.now().Unix())
		}
		if got := metric(t, w.metrics, "gatehouse_jwks_keys", src, iss); got != 2 {
			t.Errorf("gatehouse_jwks_keys = %v, want 2", got)
		}
		p.setDown(true)
		w.clock.add(time.Hour)
		if err := r.refresh(); err == nil {
			t.Fatal("refresh of a down server succeeded")
		}
		tok := k2.sign(t, claims(iss, "iat", w.clock.now().Unix(), "exp", w.clock.now().Add(time.Hour).Unix()))
		if _, err := auth(t, a, bearer(tok)); err != nil {
			t.Fatalf("with the key server down: %v", err)
		}
		if got := metric(t, w.metrics, "gatehouse_jwks_fetches_total", src, iss, "result", "failure"); got < 1 {
			t.Errorf("failures = %v, want at least 1", got)
		}
		if got := metric(t, w.metrics, "gatehouse_jwks_last_success_timestamp_seconds", src, iss); got != last {
			t.Errorf("last success moved to %v on a failure", got)
		}
		p.setDown(false)
	})
}

func TestDownAtLoad(t *testing.T) {
	k1 := signer{"k1", jose.ES256, ecKey(t, elliptic.P256())}
	p := newIDP(t, k1.jwk())
	p.setDown(true)
	w := newWorld()
	a := w.build(t, jwksConfig(p, "ES256")) // loads although the IdP is down
	tok := k1.sign(t, claims(p.srv.URL))
	d := wantDenial(t, errOf(auth(t, a, bearer(tok))), 503, "jwks_unavailable", "")
	if d.Header.Get("Retry-After") == "" {
		t.Error("no Retry-After")
	}
	hits := p.jwksHits.Load()
	// Rate limited: no fetch for every request while the IdP is down.
	wantDenial(t, errOf(auth(t, a, bearer(tok))), 503, "jwks_unavailable", "")
	if got := p.jwksHits.Load(); got != hits {
		t.Errorf("%d more fetches within the refetch interval, want 0", got-hits)
	}
	p.setDown(false)
	w.clock.add(30 * time.Second)
	if _, err := auth(t, a, bearer(tok)); err != nil {
		t.Fatalf("after recovery: %v", err)
	}
}

func TestSharedSource(t *testing.T) {
	rs := signer{"rsa", jose.RS256, rsaKey(0)}
	es := signer{"ec", jose.ES256, ecKey(t, elliptic.P256())}
	p := newIDP(t, rs.jwk(), es.jwk())
	w := newWorld()
	onlyRSA := w.build(t, discoveryConfig(p, "RS256"))
	onlyEC := w.build(t, discoveryConfig(p, "ES256"))
	if remoteOf(t, onlyRSA) != remoteOf(t, onlyEC) {
		t.Fatal("two routes naming the same issuer run two key sources")
	}
	rsaTok, ecTok := rs.sign(t, claims(p.srv.URL)), es.sign(t, claims(p.srv.URL))
	for _, tc := range []struct {
		name string
		a    *Authenticator
		tok  string
		ok   bool
	}{
		{"RS256 route, RSA token", onlyRSA, rsaTok, true},
		{"RS256 route, EC token", onlyRSA, ecTok, false},
		{"ES256 route, EC token", onlyEC, ecTok, true},
		{"ES256 route, RSA token", onlyEC, rsaTok, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := auth(t, tc.a, bearer(tc.tok))
			if tc.ok && err != nil {
				t.Fatal(err)
			}
			if !tc.ok {
				wantDenial(t, err, 401, "invalid_token", descAlg)
			}
		})
	}
	if got := p.jwksHits.Load(); got != 1 {
		t.Errorf("%d fetches for two routes, want 1", got)
	}

	t.Run("a reload keeps the source", func(t *testing.T) {
		old := remoteOf(t, onlyRSA)
		// The new config is built before the old one is closed.
		reloaded := w.build(t, discoveryConfig(p, "RS256"))
		onlyRSA.Close()
		onlyEC.Close()
		if remoteOf(t, reloaded) != old {
			t.Fatal("the reload built a new source")
		}
		if _, err := auth(t, reloaded, bearer(rsaTok)); err != nil {
			t.Fatal(err)
		}
		if got := p.jwksHits.Load(); got != 1 {
			t.Errorf("%d fetches after the reload, want still 1", got)
		}
		reloaded.Close()
		if w.pool.Len() != 0 {
			t.Errorf("pool holds %d sources after the last user closed, want 0", w.pool.Len())
		}
	})

	t.Run("other fetch settings, other source", func(t *testing.T) {
		a := w.build(t, discoveryConfig(p, "RS256"))
		b := w.build(t, strings.Replace(discoveryConfig(p, "RS256"), "fetch_timeout: 2s", "fetch_timeout: 3s", 1))
		if remoteOf(t, a) == remoteOf(t, b) {
			t.Error("sources with different fetch settings are shared")
		}
	})
}

func TestDiscoveryAndFetchRefusals(t *testing.T) {
	k1 := signer{"k1", jose.ES256, ecKey(t, elliptic.P256())}
	tok := func(iss string) string { return k1.sign(t, claims(iss)) }

	t.Run("discovery for another issuer", func(t *testing.T) {
		p := newIDP(t, k1.jwk())
		p.issuer = "https://evil.example"
		w := newWorld()
		a := w.build(t, discoveryConfig(p, "ES256"))
		wantDenial(t, errOf(auth(t, a, bearer(tok(p.srv.URL)))), 503, "jwks_unavailable", "")
		if p.jwksHits.Load() != 0 {
			t.Error("the keys of a mismatched discovery document were fetched")
		}
		if got := metric(t, w.metrics, "gatehouse_jwks_fetches_total", "source", p.srv.URL, "result", "failure"); got < 1 {
			t.Errorf("failures = %v, want at least 1", got)
		}
	})

	t.Run("redirect to another host", func(t *testing.T) {
		other := newIDP(t, k1.jwk())
		redir := httptest.NewServer(http.RedirectHandler(other.srv.URL+"/keys", http.StatusFound))
		defer redir.Close()
		w := newWorld()
		a := w.build(t, fmt.Sprintf("issuer: %s\naudiences: [%s]\nalgorithms: [ES256]\njwks_url: %s/keys\nfetch_timeout: 2s", redir.URL, testAud, redir.URL))
		wantDenial(t, errOf(auth(t, a, bearer(tok(redir.URL)))), 503, "jwks_unavailable", "")
		if other.jwksHits.Load() != 0 {
			t.Error("followed a redirect to another host")
		}
	})

	t.Run("redirect on the same host", func(t *testing.T) {
		p := newIDP(t, k1.jwk())
		mux := http.NewServeMux()
		var srv *httptest.Server
		mux.Handle("/old", http.RedirectHandler("/keys", http.StatusMovedPermanently))
		mux.Handle("/keys", p.srv.Config.Handler)
		srv = httptest.NewServer(mux)
		defer srv.Close()
		w := newWorld()
		a := w.build(t, fmt.Sprintf("issuer: %s\naudiences: [%s]\nalgorithms: [ES256]\njwks_url: %s/old\nfetch_timeout: 2s", srv.URL, testAud, srv.URL))
		if _, err := auth(t, a, bearer(tok(srv.URL))); err != nil {
			t.Fatal(err)
		}
	})

	t.Run("huge key set", func(t *testing.T) {
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.Write([]byte(`{"keys":[],"pad":"`))
			w.Write([]byte(strings.Repeat("x", maxDocBytes)))
			w.Write([]byte(`"}`))
		}))
		defer srv.Close()
		w := newWorld()
		a := w.build(t, fmt.Sprintf("issuer: %s\naudiences: [%s]\nalgorithms: [ES256]\njwks_url: %s/keys\nfetch_timeout: 2s", srv.URL, testAud, srv.URL))
		d := wantDenial(t, errOf(auth(t, a, bearer(tok(srv.URL)))), 503, "jwks_unavailable", "")
		_ = d
		if got := metric(t, w.metrics, "gatehouse_jwks_fetches_total", "source", srv.URL+"/keys", "result", "failure"); got < 1 {
			t.Errorf("failures = %v, want at least 1", got)
		}
	})

	t.Run("private and symmetric keys in the set are not used", func(t *testing.T) {
		priv := jose.JSONWebKey{Key: k1.key, KeyID: "k1", Algorithm: "ES256", Use: "sig"}
		oct := jose.JSONWebKey{Key: []byte("0123456789abcdef0123456789abcdef"), KeyID: "k1", Algorithm: "HS256"}
		p := newIDP(t, priv, oct)
		w := newWorld()
		a := w.build(t, jwksConfig(p, "ES256"))
		wantDenial(t, errOf(auth(t, a, bearer(tok(p.srv.URL)))), 503, "jwks_unavailable", "")
	})
}

// Requests wait for the first fetch instead of failing while it runs.
func TestFirstFetchAwaited(t *testing.T) {
	k1 := signer{"k1", jose.ES256, ecKey(t, elliptic.P256())}
	p := newIDP(t, k1.jwk())
	p.gate = make(chan struct{})
	w := newWorld()
	a := w.build(t, jwksConfig(p, "ES256"))
	done := make(chan error)
	go func() { done <- errOf(a.Authenticate(t.Context(), bearer(k1.sign(t, claims(p.srv.URL))))) }()
	for p.jwksHits.Load() == 0 { // the first fetch is under way, held at the gate
		time.Sleep(time.Millisecond)
	}
	p.mu.Lock()
	close(p.gate)
	p.gate = nil
	p.mu.Unlock()
	if err := <-done; err != nil {
		t.Fatalf("request during the first fetch: %v", err)
	}
}

var _ = policytest.Start
