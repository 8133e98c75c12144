package jwt

import (
	"crypto/elliptic"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"

	"github.com/gatehouse/gatehouse/internal/policy/policytest"
)

// waitFor polls cond until it holds or a generous deadline passes: the
// tests wait on conditions, never assert on how long something took.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("gave up waiting: %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// cachedAndGood checks that tok is accepted and then served from the
// verified-token cache.
func cachedAndGood(t *testing.T, a *Authenticator, tok string) {
	t.Helper()
	if _, err := auth(t, a, bearer(tok)); err != nil {
		t.Fatalf("token refused: %v", err)
	}
	before := a.verifications.Load()
	if _, err := auth(t, a, bearer(tok)); err != nil || a.verifications.Load() != before {
		t.Fatalf("token not served from the cache (%v)", err)
	}
}

// A key withdrawn from the JWKS stops verifying, cached verdicts
// included, by the background refresh: within jwks_refresh.
func TestWithdrawnKeyWithinRefresh(t *testing.T) {
	k1 := signer{"k1", jose.ES256, ecKey(t, elliptic.P256())}
	k2 := signer{"k2", jose.ES256, ecKey(t, elliptic.P256())}
	p := newIDP(t, k1.jwk(), k2.jwk())
	w := newWorld()
	a := w.build(t, strings.Replace(jwksConfig(p, "ES256"), "jwks_refresh: 1h", "jwks_refresh: 2s", 1))
	tok1, tok2 := k1.sign(t, claims(p.srv.URL, "jti", "t1")), k2.sign(t, claims(p.srv.URL, "jti", "t2"))
	cachedAndGood(t, a, tok1)
	cachedAndGood(t, a, tok2)

	p.setKeys(k2.jwk())
	waitFor(t, "the withdrawn key's cached token to be refused", func() bool {
		_, err := auth(t, a, bearer(tok1))
		return err != nil
	})
	wantDenial(t, errOf(auth(t, a, bearer(tok1))), 401, "invalid_token", descKey)
	if _, err := auth(t, a, bearer(tok2)); err != nil {
		t.Fatalf("the key that stayed: %v", err)
	}
}

// Reloads (a new authenticator sharing the source, the old one closed)
// do not restart the refresh schedule: under reloads more frequent than
// jwks_refresh, a withdrawn key still goes.
func TestReloadsDoNotExtendAWithdrawnKey(t *testing.T) {
	k1 := signer{"k1", jose.ES256, ecKey(t, elliptic.P256())}
	k2 := signer{"k2", jose.ES256, ecKey(t, elliptic.P256())}
	p := newIDP(t, k1.jwk(), k2.jwk())
	w := newWorld()
	cfg := strings.Replace(jwksConfig(p, "ES256"), "jwks_refresh: 1h", "jwks_refresh: 2s", 1)
	a, err := New(policytest.Node(t, cfg), w.env())
	if err != nil {
		t.Fatal(err)
	}
	src := remoteOf(t, a)
	tok1 := k1.sign(t, claims(p.srv.URL, "jti", "t1"))
	cachedAndGood(t, a, tok1)
	p.setKeys(k2.jwk())

	reloads := 0
	waitFor(t, "the withdrawn key to be refused while reloading every 100ms", func() bool {
		// The gateway's order: the new config is built, then the old
		// one closed.
		b, err := New(policytest.Node(t, cfg), w.env())
		if err != nil {
			t.Fatal(err)
		}
		a.Close()
		a = b
		reloads++
		if remoteOf(t, a) != src {
			t.Fatal("a reload built a new key source (and so fetched again): the test would prove nothing")
		}
		time.Sleep(100 * time.Millisecond)
		_, err = auth(t, a, bearer(tok1))
		return err != nil
	})
	a.Close()
	t.Logf("withdrawn after %d reloads", reloads)
}

// RefreshKeySets (the admin API's keys/refresh and `gatehouse keys
// refresh`) withdraws at once, whatever jwks_refresh says.
func TestRefreshKeySets(t *testing.T) {
	k1 := signer{"k1", jose.ES256, ecKey(t, elliptic.P256())}
	k2 := signer{"k2", jose.ES256, ecKey(t, elliptic.P256())}
	p := newIDP(t, k1.jwk(), k2.jwk())
	other := newIDP(t, k2.jwk())
	w := newWorld()
	a := w.build(t, jwksConfig(p, "ES256")) // jwks_refresh: 1h
	b := w.build(t, discoveryConfig(other, "ES256"))
	tok1, tok2 := k1.sign(t, claims(p.srv.URL, "jti", "t1")), k2.sign(t, claims(p.srv.URL, "jti", "t2"))
	cachedAndGood(t, a, tok1)
	cachedAndGood(t, a, tok2)
	if _, err := auth(t, b, bearer(k2.sign(t, claims(other.srv.URL)))); err != nil {
		t.Fatal(err)
	}

	t.Run("withdrawn at once", func(t *testing.T) {
		p.setKeys(k2.jwk())
		res := RefreshKeySets(t.Context(), w.pool)
		slices.SortFunc(res, func(x, y KeySetRefresh) int { return strings.Compare(x.Source, y.Source) })
		want := []KeySetRefresh{{Source: p.srv.URL + "/keys", Keys: 1}, {Source: other.srv.URL, Keys: 1}}
		slices.SortFunc(want, func(x, y KeySetRefresh) int { return strings.Compare(x.Source, y.Source) })
		if !slices.Equal(res, want) {
			t.Errorf("got %+v, want %+v", res, want)
		}
		wantDenial(t, errOf(auth(t, a, bearer(tok1))), 401, "invalid_token", descKey)
		if _, err := auth(t, a, bearer(tok2)); err != nil {
			t.Fatalf("the key that stayed: %v", err)
		}
	})

	t.Run("a fetch in flight is not taken for the refresh", func(t *testing.T) {
		p.setKeys(k1.jwk(), k2.jwk())
		if res := RefreshKeySets(t.Context(), w.pool); len(res) != 2 {
			t.Fatalf("got %+v", res)
		}
		cachedAndGood(t, a, tok1)
		// A fetch starts and reads the set that still has k1; then k1 is
		// withdrawn and the refresh asked for while that fetch is held.
		hits := p.jwksHits.Load()
		p.mu.Lock()
		gate := make(chan struct{})
		p.gate = gate
		p.mu.Unlock()
		r := remoteOf(t, a)
		go r.refresh()
		waitFor(t, "the background fetch to start", func() bool { return p.jwksHits.Load() > hits })
		p.setKeys(k2.jwk())
		done := make(chan []KeySetRefresh)
		go func() { done <- RefreshKeySets(t.Context(), w.pool) }()
		// Give the refresh time to find the fetch in flight (were it not,
		// the test would pass without proving anything, never fail).
		time.Sleep(50 * time.Millisecond)
		p.mu.Lock()
		close(gate)
		p.gate = nil
		p.mu.Unlock()
		res := <-done
		for _, k := range res {
			if k.Error != "" {
				t.Errorf("%s: %s", k.Source, k.Error)
			}
		}
		wantDenial(t, errOf(auth(t, a, bearer(tok1))), 401, "invalid_token", descKey)
	})

	t.Run("a failed fetch is reported and keeps the last good keys", func(t *testing.T) {
		p.setDown(true)
		defer p.setDown(false)
		res := RefreshKeySets(t.Context(), w.pool)
		var failed int
		for _, k := range res {
			if k.Error != "" {
				failed++
				if k.Source != p.srv.URL+"/keys" || k.Keys != 1 || !strings.Contains(k.Error, "503") {
					t.Errorf("failure %+v", k)
				}
			}
		}
		if failed != 1 {
			t.Errorf("%d failures in %+v, want 1", failed, res)
		}
		if _, err := auth(t, a, bearer(tok2)); err != nil {
			t.Fatalf("the last good keys: %v", err)
		}
	})

	t.Run("local keys and released sources are not refreshed", func(t *testing.T) {
		b.Close()
		a.Close()
		if res := RefreshKeySets(t.Context(), w.pool); len(res) != 0 {
			t.Errorf("got %+v, want nothing", res)
		}
	})
}

// While the issuer cannot be reached its withdrawals cannot be seen: the
// last good set is trusted for jwks_max_stale after the last successful
// fetch, then dropped (cached verdicts too) until a fetch succeeds.
func TestStaleKeySetExpires(t *testing.T) {
	k1 := signer{"k1", jose.ES256, ecKey(t, elliptic.P256())}
	p := newIDP(t, k1.jwk())
	w := newWorld()
	a := w.build(t, jwksConfig(p, "ES256", "jwks_max_stale: 90m")) // jwks_refresh: 1h
	r := remoteOf(t, a)
	tok := k1.sign(t, claims(p.srv.URL, "exp", policytest.Start.Add(10*time.Hour).Unix()))
	cachedAndGood(t, a, tok)

	p.setDown(true)
	w.clock.add(89 * time.Minute)
	if err := r.refresh(); err == nil {
		t.Fatal("a fetch from a down server succeeded")
	}
	if _, err := auth(t, a, bearer(tok)); err != nil {
		t.Fatalf("within jwks_max_stale the last good keys stay: %v", err)
	}
	w.clock.add(time.Minute)
	if err := r.refresh(); err == nil {
		t.Fatal("a fetch from a down server succeeded")
	}
	d := wantDenial(t, errOf(auth(t, a, bearer(tok))), 503, "jwks_unavailable", "")
	if d.Header.Get("Retry-After") == "" {
		t.Error("no Retry-After")
	}

	p.setDown(false)
	w.clock.add(30 * time.Second) // the rate limit of fetches requests trigger
	if _, err := auth(t, a, bearer(tok)); err != nil {
		t.Fatalf("after the issuer is back: %v", err)
	}
}

func TestMaxStaleConfig(t *testing.T) {
	p := newIDP(t)
	w := newWorld()
	for _, tc := range []struct {
		extra string
		want  time.Duration
		err   string
	}{
		{"", time.Hour, ""},
		{"jwks_max_stale: 2h", 2 * time.Hour, ""},
		{"jwks_max_stale: 1h", 0, "jwks_max_stale: must be more than jwks_refresh"},
		{"jwks_max_stale: 10m", 0, "jwks_max_stale: must be more than jwks_refresh"},
	} {
		cfg := strings.Replace(jwksConfig(p, "ES256", tc.extra), "jwks_refresh: 1h", "jwks_refresh: 5m", 1)
		if tc.err != "" {
			cfg = jwksConfig(p, "ES256", tc.extra)
		}
		a, err := New(policytest.Node(t, cfg), w.env())
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("%q: got %v, want %q", tc.extra, err, tc.err)
			}
			continue
		}
		if err != nil {
			t.Fatal(err)
		}
		if a.s.maxStale != tc.want {
			t.Errorf("%q: max stale %v, want %v", tc.extra, a.s.maxStale, tc.want)
		}
		a.Close()
	}
	// Default with a long refresh: twice it.
	a := w.build(t, strings.Replace(jwksConfig(p, "ES256"), "jwks_refresh: 1h", "jwks_refresh: 45m", 1))
	if a.s.maxStale != 90*time.Minute {
		t.Errorf("max stale %v with jwks_refresh 45m, want 1h30m", a.s.maxStale)
	}
}

// An issuer that narrows a key's "alg" withdraws it for the other
// algorithms: tokens verified under them, cached ones too, are refused
// after the refresh.
func TestKeyNarrowedToAnotherAlg(t *testing.T) {
	rs := signer{"k", jose.RS256, rsaKey(0)}
	p := newIDP(t, jose.JSONWebKey{Key: rsaKey(0).Public(), KeyID: "k", Use: "sig"}) // no alg: any RSA one
	w := newWorld()
	a := w.build(t, jwksConfig(p, "RS256, PS256"))
	tok := rs.sign(t, claims(p.srv.URL))
	cachedAndGood(t, a, tok)
	p.setKeys(jose.JSONWebKey{Key: rsaKey(0).Public(), KeyID: "k", Algorithm: "PS256", Use: "sig"})
	if res := RefreshKeySets(t.Context(), w.pool); len(res) != 1 || res[0].Error != "" {
		t.Fatalf("refresh: %+v", res)
	}
	wantDenial(t, errOf(auth(t, a, bearer(tok))), 401, "invalid_token", descKey)
	ps := signer{"k", jose.PS256, rsaKey(0)}
	if _, err := auth(t, a, bearer(ps.sign(t, claims(p.srv.URL, "jti", "ps")))); err != nil {
		t.Fatalf("the algorithm the key kept: %v", err)
	}
}

// An issuer that withdraws every signature key (an empty set, or only
// encryption keys left) is taken at its word: an empty key set, not a
// failed fetch that would keep the last good keys.
func TestIssuerWithdrawsEveryKey(t *testing.T) {
	k1 := signer{"k1", jose.ES256, ecKey(t, elliptic.P256())}
	enc := jose.JSONWebKey{Key: ecKey(t, elliptic.P256()).Public(), KeyID: "e1", Algorithm: "ECDH-ES", Use: "enc"}
	for name, left := range map[string][]jose.JSONWebKey{"empty": nil, "only an encryption key": {enc}} {
		t.Run(name, func(t *testing.T) {
			p := newIDP(t, k1.jwk())
			w := newWorld()
			a := w.build(t, jwksConfig(p, "ES256"))
			tok := k1.sign(t, claims(p.srv.URL))
			cachedAndGood(t, a, tok)
			if left == nil {
				left = []jose.JSONWebKey{}
			}
			p.setKeys(left...)
			res := RefreshKeySets(t.Context(), w.pool)
			if len(res) != 1 || res[0].Error != "" || res[0].Keys != 0 {
				t.Fatalf("refresh: %+v", res)
			}
			wantDenial(t, errOf(auth(t, a, bearer(tok))), 401, "invalid_token", descKey)
			if got := metric(t, w.metrics, "gatehouse_jwks_keys", "source", p.srv.URL+"/keys"); got != 0 {
				t.Errorf("gatehouse_jwks_keys = %v, want 0", got)
			}
			// Published again: a token naming it triggers a fetch.
			p.setKeys(k1.jwk())
			w.clock.add(30 * time.Second)
			if _, err := auth(t, a, bearer(tok)); err != nil {
				t.Fatalf("after the key is published again: %v", err)
			}
		})
	}
}

// An issuer that moves its keys to a new jwks_uri, leaving the old URL
// serving the old set (the withdrawn key in it), is followed at the next
// refresh: discovery is read at every fetch.
func TestJWKSURIMoved(t *testing.T) {
	k1 := signer{"k1", jose.ES256, ecKey(t, elliptic.P256())}
	k2 := signer{"k2", jose.ES256, ecKey(t, elliptic.P256())}
	var mu sync.Mutex
	path := "/old"
	var srv *httptest.Server
	srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		p := path
		mu.Unlock()
		switch r.URL.Path {
		case "/.well-known/openid-configuration":
			json.NewEncoder(w).Encode(map[string]any{"issuer": srv.URL, "jwks_uri": srv.URL + p})
		case "/old":
			json.NewEncoder(w).Encode(jose.JSONWebKeySet{Keys: []jose.JSONWebKey{k1.jwk(), k2.jwk()}})
		case "/new":
			json.NewEncoder(w).Encode(jose.JSONWebKeySet{Keys: []jose.JSONWebKey{k2.jwk()}})
		default:
			http.NotFound(w, r)
		}
	}))
	defer srv.Close()
	w := newWorld()
	a := w.build(t, fmt.Sprintf("issuer: %s\naudiences: [%s]\nalgorithms: [ES256]\noidc_discovery: true\njwks_refresh: 1h\nfetch_timeout: 2s\n", srv.URL, testAud))
	tok1 := k1.sign(t, claims(srv.URL))
	cachedAndGood(t, a, tok1)
	mu.Lock()
	path = "/new"
	mu.Unlock()
	if res := RefreshKeySets(t.Context(), w.pool); len(res) != 1 || res[0].Error != "" || res[0].Keys != 1 {
		t.Fatalf("refresh: %+v", res)
	}
	wantDenial(t, errOf(auth(t, a, bearer(tok1))), 401, "invalid_token", descKey)
	if _, err := auth(t, a, bearer(k2.sign(t, claims(srv.URL, "jti", "2")))); err != nil {
		t.Fatal(err)
	}
}
