package authserver

import (
	"context"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"golang.org/x/oauth2"
	"golang.org/x/oauth2/clientcredentials"
)

// TestClientCredentialsWithOAuth2 gets tokens with golang.org/x/oauth2,
// both client authentication styles, and checks them as RFC 9068 tokens
// against the published keys.
func TestClientCredentialsWithOAuth2(t *testing.T) {
	e := newEnv(t, defaultSection(""))
	for _, tc := range []struct {
		name  string
		style oauth2.AuthStyle
	}{{"client_secret_basic", oauth2.AuthStyleInHeader}, {"client_secret_post", oauth2.AuthStyleInParams}} {
		t.Run(tc.name, func(t *testing.T) {
			cc := clientcredentials.Config{
				ClientID: "writer", ClientSecret: writerSecret, TokenURL: e.issuer + PathToken,
				Scopes: []string{"products:write"}, AuthStyle: tc.style,
			}
			ctx := context.WithValue(t.Context(), oauth2.HTTPClient, e.ts.Client())
			tok, err := cc.Token(ctx)
			if err != nil {
				t.Fatalf("Token: %v", err)
			}
			if got, want := tok.TokenType, "Bearer"; got != want {
				t.Errorf("token_type %q, want %q", got, want)
			}
			if got := time.Until(tok.Expiry); got < 50*time.Minute || got > 61*time.Minute {
				t.Errorf("expires in %v, want about 1h", got)
			}
			hdr, c := e.verify(tok.AccessToken)
			if got, want := hdr["typ"], "at+jwt"; got != want {
				t.Errorf("typ %v, want %v", got, want)
			}
			if got, want := hdr["alg"], "ES256"; got != want {
				t.Errorf("alg %v, want %v", got, want)
			}
			want := map[string]any{"iss": e.issuer, "sub": "writer", "aud": "api://products", "client_id": "writer", "scope": "products:write"}
			for k, v := range want {
				if c[k] != v {
					t.Errorf("claim %s = %v, want %v", k, c[k], v)
				}
			}
			for _, k := range []string{"jti", "exp", "iat"} {
				if c[k] == nil {
					t.Errorf("claim %s missing", k)
				}
			}
			if got, want := int64(c["exp"].(float64)-c["iat"].(float64)), int64(3600); got != want {
				t.Errorf("exp-iat %d, want %d", got, want)
			}
		})
	}
}

// TestClientClaims checks that a client's fixed claims are in its tokens,
// beside the registered ones, and absent from other clients' tokens.
func TestClientClaims(t *testing.T) {
	e := newEnv(t, defaultSection(`    - client_id: catalog
      secret_hash: `+sha256Hex(writerSecret)+`
      scopes: [products:write]
      claims: {dept: catalog, tenant: "acme"}
`))
	for _, tc := range []struct {
		client string
		want   map[string]any
	}{
		{"catalog", map[string]any{"dept": "catalog", "tenant": "acme", "client_id": "catalog", "scope": "products:write"}},
		{"writer", map[string]any{"dept": nil, "tenant": nil, "client_id": "writer", "scope": "products:write"}},
	} {
		resp, body := e.post(PathToken, tc.client, writerSecret, url.Values{"grant_type": {"client_credentials"}, "scope": {"products:write"}})
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("%s: token endpoint answered %d %v", tc.client, resp.StatusCode, body)
		}
		_, c := e.verify(body["access_token"].(string))
		for k, v := range tc.want {
			if c[k] != v {
				t.Errorf("%s: claim %s = %v, want %v", tc.client, k, c[k], v)
			}
		}
	}
}

// TestTokenErrors covers the RFC 6749 §5.2 answers.
func TestTokenErrors(t *testing.T) {
	e := newEnv(t, defaultSection(""))
	cc := url.Values{"grant_type": {"client_credentials"}}
	for _, tc := range []struct {
		name       string
		id, secret string
		form       url.Values
		status     int
		code       string
	}{
		{"wrong secret", "reader", "wrong-secret-0123456789", cc, 401, "invalid_client"},
		{"unknown client", "nobody", readerSecret, cc, 401, "invalid_client"},
		{"no credentials", "", "", cc, 401, "invalid_client"},
		{"scope beyond registration", "reader", readerSecret, url.Values{"grant_type": {"client_credentials"}, "scope": {"products:read products:write"}}, 400, "invalid_scope"},
		{"unknown grant", "reader", readerSecret, url.Values{"grant_type": {"password"}}, 400, "unsupported_grant_type"},
		{"grant not registered", "reader", readerSecret, url.Values{"grant_type": {"urn:ietf:params:oauth:grant-type:token-exchange"}}, 400, "unauthorized_client"},
		{"no grant", "reader", readerSecret, url.Values{}, 400, "invalid_request"},
		{"audience not registered", "reader", readerSecret, url.Values{"grant_type": {"client_credentials"}, "audience": {"api://billing"}}, 400, "invalid_target"},
		{"two methods", "reader", readerSecret, url.Values{"grant_type": {"client_credentials"}, "client_secret": {readerSecret}}, 400, "invalid_request"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			resp, m := e.post(PathToken, tc.id, tc.secret, tc.form)
			if resp.StatusCode != tc.status || m["error"] != tc.code {
				t.Fatalf("got %d %v, want %d %s", resp.StatusCode, m, tc.status, tc.code)
			}
			if tc.status == 401 && !strings.HasPrefix(resp.Header.Get("WWW-Authenticate"), "Basic ") {
				t.Errorf("401 without a Basic challenge: %q", resp.Header.Get("WWW-Authenticate"))
			}
			if got := resp.Header.Get("Cache-Control"); got != "no-store" {
				t.Errorf("Cache-Control %q, want no-store", got)
			}
			if strings.Contains(m["error_description"].(string), tc.secret) && tc.secret != "" {
				t.Errorf("the description shows the secret")
			}
		})
	}
	t.Run("GET", func(t *testing.T) {
		resp, err := e.ts.Client().Get(e.issuer + PathToken)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusMethodNotAllowed {
			t.Errorf("GET: %d, want 405", resp.StatusCode)
		}
	})
	t.Run("default scopes are the registered ones", func(t *testing.T) {
		_, c := e.verify(e.token("writer", writerSecret, ""))
		if got, want := c["scope"], "products:read products:write"; got != want {
			t.Errorf("scope %v, want %v", got, want)
		}
	})
}

// TestBruteForce spends a client's failure budget: then even the right
// secret is refused with 429 until the budget refills, and another client
// from the same address is still served until the address budget is spent.
func TestBruteForce(t *testing.T) {
	e := newEnv(t, "  issuer: ISSUER\n  key_encryption_key: "+testKEK+"\n  limits: {failures_per_client: 3, failures_per_ip: 5}\n  clients:"+baseClients(""))
	cc := url.Values{"grant_type": {"client_credentials"}}
	for i := range 3 {
		if resp, m := e.post(PathToken, "reader", "wrong-secret-0123456789", cc); resp.StatusCode != 401 {
			t.Fatalf("failure %d: %d %v, want 401", i, resp.StatusCode, m)
		}
	}
	resp, m := e.post(PathToken, "reader", readerSecret, cc)
	if resp.StatusCode != http.StatusTooManyRequests || resp.Header.Get("Retry-After") == "" {
		t.Fatalf("right secret after 3 failures: %d %v (Retry-After %q), want 429 with Retry-After", resp.StatusCode, m, resp.Header.Get("Retry-After"))
	}
	if resp, m := e.post(PathToken, "writer", writerSecret, cc); resp.StatusCode != 200 {
		t.Fatalf("another client: %d %v, want 200", resp.StatusCode, m)
	}
	for range 2 {
		e.post(PathToken, "writer", "wrong-secret-0123456789", cc)
	}
	if resp, m := e.post(PathToken, "writer", writerSecret, cc); resp.StatusCode != http.StatusTooManyRequests {
		t.Fatalf("after 5 failures from one address: %d %v, want 429", resp.StatusCode, m)
	}
	e.clock.add(time.Minute)
	if resp, m := e.post(PathToken, "reader", readerSecret, cc); resp.StatusCode != 200 {
		t.Fatalf("a minute later: %d %v, want 200", resp.StatusCode, m)
	}
}

// TestIntrospectAndRevoke introspects a token, revokes it, and finds it
// inactive; the revocation survives a restart on the same store and only
// the owning client can revoke.
func TestIntrospectAndRevoke(t *testing.T) {
	e := newEnv(t, defaultSection(""))
	tok := e.token("reader", readerSecret, "")
	_, m := e.post(PathIntrospect, "writer", writerSecret, url.Values{"token": {tok}})
	if m["active"] != true || m["client_id"] != "reader" || m["scope"] != "products:read" || m["token_type"] != "Bearer" {
		t.Fatalf("introspection: %v", m)
	}
	if _, m := e.post(PathIntrospect, "writer", writerSecret, url.Values{"token": {tok + "x"}}); m["active"] != false || len(m) != 1 {
		t.Fatalf("tampered token: %v, want only active false", m)
	}
	if resp, m := e.post(PathIntrospect, "", "", url.Values{"token": {tok}}); resp.StatusCode != 401 {
		t.Fatalf("unauthenticated introspection: %d %v", resp.StatusCode, m)
	}
	// Another client's revocation is answered 200 and does nothing.
	if resp, _ := e.post(PathRevoke, "writer", writerSecret, url.Values{"token": {tok}}); resp.StatusCode != 200 {
		t.Fatalf("foreign revoke: %d", resp.StatusCode)
	}
	if _, m := e.post(PathIntrospect, "writer", writerSecret, url.Values{"token": {tok}}); m["active"] != true {
		t.Fatalf("after another client's revocation: %v, want active", m)
	}
	if resp, _ := e.post(PathRevoke, "reader", readerSecret, url.Values{"token": {tok}, "token_type_hint": {"access_token"}}); resp.StatusCode != 200 {
		t.Fatalf("revoke: %d", resp.StatusCode)
	}
	if _, m := e.post(PathIntrospect, "writer", writerSecret, url.Values{"token": {tok}}); m["active"] != false {
		t.Fatalf("after revocation: %v, want inactive", m)
	}
	jti := decodePart(t, tok, 1)["jti"].(string)
	if !e.revs.Revoked(jti) {
		t.Fatal("the gateway's revocation list does not hold the jti")
	}

	// A restart: a fresh list, the same store.
	e.revs = revocationList(e)
	e.start(defaultSection(""))
	if !e.revs.Revoked(jti) {
		t.Fatal("the revocation did not survive a restart")
	}
	if _, m := e.post(PathIntrospect, "writer", writerSecret, url.Values{"token": {tok}}); m["active"] != false {
		t.Fatalf("after restart: %v, want inactive", m)
	}
}

// TestRevocationReachesOtherInstances runs two servers on one store: a
// revocation on one is in the other's list at once, through the channel.
func TestRevocationReachesOtherInstances(t *testing.T) {
	a := newEnv(t, defaultSection(""))
	b := &env{t: t, clock: a.clock, store: a.store, revs: revocationList(a), dir: a.dir, issuer: a.issuer}
	b.start(defaultSection(""))
	tok := a.token("reader", readerSecret, "")
	jti := decodePart(t, tok, 1)["jti"].(string)
	if resp, _ := a.post(PathRevoke, "reader", readerSecret, url.Values{"token": {tok}}); resp.StatusCode != 200 {
		t.Fatalf("revoke: %d", resp.StatusCode)
	}
	deadline := time.Now().Add(time.Second)
	for !b.revs.Revoked(jti) {
		if time.Now().After(deadline) {
			t.Fatal("the other instance did not see the revocation within a second")
		}
		time.Sleep(5 * time.Millisecond)
	}
	if got, want := b.srv.ActiveKeyID(), a.srv.ActiveKeyID(); got != want {
		t.Errorf("the instances sign with %s and %s, want one shared key", got, want)
	}
}

// TestDiscovery reads both metadata documents.
func TestDiscovery(t *testing.T) {
	e := newEnv(t, defaultSection(""))
	for _, p := range []string{PathOIDC, PathRFC8414} {
		resp, err := e.ts.Client().Get(e.issuer + p)
		if err != nil {
			t.Fatal(err)
		}
		var m map[string]any
		decodeBody(t, resp, &m)
		if m["issuer"] != e.issuer || m["token_endpoint"] != e.issuer+PathToken || m["jwks_uri"] != e.issuer+PathJWKS ||
			m["introspection_endpoint"] != e.issuer+PathIntrospect || m["revocation_endpoint"] != e.issuer+PathRevoke {
			t.Errorf("%s: %v", p, m)
		}
		methods, _ := m["token_endpoint_auth_methods_supported"].([]any)
		if !slices.Contains(methods, any("private_key_jwt")) || !slices.Contains(methods, any("tls_client_auth")) {
			t.Errorf("%s: auth methods %v", p, methods)
		}
	}
	if !e.srv.Owns("/oauth2/token") || e.srv.Owns("/product") {
		t.Error("Owns is wrong")
	}
}
