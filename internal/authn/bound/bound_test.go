package bound_test

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/internal/authn"
	"github.com/gatehouse/gatehouse/internal/authn/bound"
	"github.com/gatehouse/gatehouse/internal/authn/dpop"
	"github.com/gatehouse/gatehouse/internal/authn/dpop/dpoptest"
	"github.com/gatehouse/gatehouse/internal/policy"
	"github.com/gatehouse/gatehouse/internal/store"
	"github.com/gatehouse/gatehouse/internal/store/redistest"
)

func TestCnf(t *testing.T) {
	for _, tc := range []struct {
		name     string
		v        any
		jkt, x5t string
		bad      bool
	}{
		{"absent", nil, "", "", false},
		{"empty object", map[string]any{}, "", "", false},
		{"jkt", map[string]any{"jkt": "a"}, "a", "", false},
		{"x5t", map[string]any{"x5t#S256": "b"}, "", "b", false},
		{"both", map[string]any{"jkt": "a", "x5t#S256": "b"}, "a", "b", false},
		{"jwk confirmation, unverifiable here", map[string]any{"jwk": map[string]any{"kty": "EC"}}, "", "", true},
		{"kid confirmation", map[string]any{"kid": "k"}, "", "", true},
		{"jkt beside an unknown method", map[string]any{"jkt": "a", "x5t": "sha1"}, "", "", true},
		{"jkt empty", map[string]any{"jkt": ""}, "", "", true},
		{"jkt a number", map[string]any{"jkt": 7}, "", "", true},
		{"x5t null", map[string]any{"x5t#S256": nil}, "", "", true},
		{"x5t an array", map[string]any{"x5t#S256": []any{"b"}}, "", "", true},
		{"a string", "a", "", "", true},
		{"an array", []any{"a"}, "", "", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			jkt, x5t, err := bound.Cnf(tc.v)
			if tc.bad != (err != nil) || (err != nil && !errors.Is(err, bound.ErrCnf)) || jkt != tc.jkt || x5t != tc.x5t {
				t.Fatalf("got %q %q %v", jkt, x5t, err)
			}
		})
	}
}

func request(url, tok, proof, remote string, hdr ...string) *http.Request {
	r := httptest.NewRequest(http.MethodGet, url, nil)
	r.Header.Set("Authorization", "DPoP "+tok)
	if proof != "" {
		r.Header.Set("DPoP", proof)
	}
	if remote != "" {
		r.RemoteAddr = remote
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		r.Header.Add(hdr[i], hdr[i+1])
	}
	return r
}

func wantDenied(t *testing.T, err error, code string) {
	t.Helper()
	d, ok := policy.AsDenial(err)
	if !ok || d.Status != 401 || d.Code != code {
		t.Fatalf("got %v, want 401 %s", err, code)
	}
}

// TestProofURL: the URL a proof must name is the request's own; behind a
// trusted proxy the one its forwarded headers give (never a client's); or
// the configured public origin.
func TestProofURL(t *testing.T) {
	key := dpoptest.NewKey(t)
	jkt := key.JKT(t)
	now := time.Now()
	tok := authn.Token{Scheme: "DPoP", Value: "tok"}
	proxies := []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")}
	direct := bound.New(bound.Options{})
	behind := bound.New(bound.Options{TrustedProxies: proxies})
	origin := bound.New(bound.Options{PublicOrigin: "https://api.example/"})
	ctx := context.Background()
	for _, tc := range []struct {
		name string
		c    *bound.Checker
		htu  string
		r    func(proof string) *http.Request
		ok   bool
	}{
		{"direct", direct, "http://gw.internal/x", func(p string) *http.Request { return request("http://gw.internal/x", "tok", p, "") }, true},
		{"direct, proof for the forwarded URL", direct, "https://api.example/x", func(p string) *http.Request {
			return request("http://gw.internal/x", "tok", p, "10.1.2.3:5", "X-Forwarded-Proto", "https", "X-Forwarded-Host", "api.example")
		}, false},
		{"trusted proxy", behind, "https://api.example/x", func(p string) *http.Request {
			return request("http://gw.internal/x", "tok", p, "10.1.2.3:5", "X-Forwarded-Proto", "https", "X-Forwarded-Host", "api.example")
		}, true},
		{"untrusted peer sending forwarded headers", behind, "https://api.example/x", func(p string) *http.Request {
			return request("http://gw.internal/x", "tok", p, "192.0.2.9:5", "X-Forwarded-Proto", "https", "X-Forwarded-Host", "api.example")
		}, false},
		{"public origin", origin, "https://api.example/x", func(p string) *http.Request { return request("http://gw.internal/x", "tok", p, "") }, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.c.Check(ctx, tc.r(key.Proof(t, "GET", tc.htu, "tok", now)), tok, jkt, "")
			if tc.ok && err != nil {
				t.Fatalf("got %v, want accepted", err)
			}
			if !tc.ok {
				wantDenied(t, err, "invalid_dpop_proof")
			}
		})
	}
	if err := origin.Check(ctx, request("http://gw.internal/x", "tok", "", ""), authn.Token{Scheme: "Bearer", Value: "tok"}, jkt, ""); !errors.Is(err, bound.ErrBearerUse) {
		t.Fatalf("bearer use: %v", err)
	}
	if err := bound.CheckOrigin("https://api.example/path"); err == nil {
		t.Error("an origin with a path was accepted")
	}
}

// TestReplayAcrossInstances: with the shared store as the replay cache, a
// proof accepted by one instance is refused by another (each with its own
// connection to one real Redis), and by the same one.
func TestReplayAcrossInstances(t *testing.T) {
	srv := redistest.Start(t)
	prefix := t.Name() + ":" + time.Now().Format("150405.000000") + ":"
	open := func() store.Store {
		st, err := store.NewRedis(store.RedisOptions{Addrs: []string{srv.Addr()}, KeyPrefix: prefix})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { st.Close() })
		return st
	}
	a, b := bound.New(bound.Options{Store: open()}), bound.New(bound.Options{Store: open()})
	key := dpoptest.NewKey(t)
	tok := authn.Token{Scheme: "DPoP", Value: "tok"}
	ctx := context.Background()
	proof := key.Proof(t, "GET", "http://gw.example/x", "tok", time.Now())
	if err := a.Check(ctx, request("http://gw.example/x", "tok", proof, ""), tok, key.JKT(t), ""); err != nil {
		t.Fatal(err)
	}
	for name, c := range map[string]*bound.Checker{"other instance": b, "same instance": a} {
		err := c.Check(ctx, request("http://gw.example/x", "tok", proof, ""), tok, key.JKT(t), "")
		d, ok := policy.AsDenial(err)
		if !ok || !errors.Is(d.Err, dpop.ErrReplay) {
			t.Errorf("%s: got %v, want a replay", name, err)
		}
	}
	// A fresh proof passes on the other instance.
	if err := b.Check(ctx, request("http://gw.example/x", "tok", key.Proof(t, "GET", "http://gw.example/x", "tok", time.Now()), ""), tok, key.JKT(t), ""); err != nil {
		t.Fatal(err)
	}
}
