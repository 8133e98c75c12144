package authenticate

import (
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/internal/authn"
	"github.com/gatehouse/gatehouse/internal/authn/introspect"
	"github.com/gatehouse/gatehouse/internal/authn/jwt"
	"github.com/gatehouse/gatehouse/internal/authn/oidcpeer"
	"github.com/gatehouse/gatehouse/internal/policy"
	"github.com/gatehouse/gatehouse/internal/policy/policytest"
	"github.com/gatehouse/gatehouse/internal/usagepool"
)

// realRegistry has the two authenticators the IdP's tokens are for.
func realRegistry() *authn.Registry { return authn.NewRegistry(jwt.Unit, introspect.Unit) }

// indent indents YAML lines under a list item's key.
func indent(s, by string) string {
	return by + strings.ReplaceAll(strings.TrimRight(s, "\n"), "\n", "\n"+by)
}

// peerEnv is one gateway's environment: a real clock (the provider's
// tokens are issued now) and a pool shared by every policy built in it.
func peerEnv(pool *usagepool.Pool) *policy.Env {
	env := policytest.Env()
	env.Now, env.Pool = time.Now, pool
	return env
}

func buildPeer(t *testing.T, env *policy.Env, yaml string) *Policy {
	t.Helper()
	p, err := New(policytest.Node(t, yaml), env, realRegistry())
	if err != nil {
		t.Fatalf("New: %v\n%s", err, yaml)
	}
	t.Cleanup(func() { p.Close() })
	return p
}

func apply(p *Policy, authorization string) (*policy.Exchange, error) {
	r := httptest.NewRequest("GET", "http://gw.example/products", nil)
	if authorization != "" {
		r.Header.Set("Authorization", authorization)
	}
	ex := policytest.Exchange(r)
	return ex, p.Apply(r.Context(), ex)
}

// wantRefused fails t unless err is a 401 invalid_token naming the
// route's realm.
func wantRefused(t *testing.T, err error) {
	t.Helper()
	d, ok := policy.AsDenial(err)
	if !ok || d.Status != 401 || d.Code != "invalid_token" {
		t.Fatalf("got %v, want 401 invalid_token", err)
	}
	if ch := d.Header.Get("Www-Authenticate"); !strings.HasPrefix(ch, `Bearer realm="api", error="invalid_token"`) {
		t.Errorf("challenge %q", ch)
	}
}

// One route serves node-oidc-provider's JWT and opaque access tokens with
// jwt and introspect, in either order: the JWT is verified locally (the
// provider refuses to introspect it, 400 unsupported_token_type), the
// opaque token introspected.
func TestOIDCProviderMixedTokens(t *testing.T) {
	idp := oidcpeer.Start(t)
	jwtTok := idp.Token(t, oidcpeer.JWTResource)
	opaque := idp.Token(t, oidcpeer.OpaqueResource)
	if strings.Count(jwtTok, ".") != 2 || strings.Contains(opaque, ".") {
		t.Fatalf("the provider's tokens are not a JWT and an opaque token: %q %q", jwtTok, opaque)
	}
	jwtCfg := "jwt:\n" + indent(idp.JWTConfig(), "      ")
	inCfg := "introspect:\n" + indent(idp.IntrospectConfig(), "      ")
	env := peerEnv(usagepool.New())
	orders := map[string]*Policy{
		"jwt first":        buildPeer(t, env, "realm: api\nwith:\n  - "+jwtCfg+"\n  - "+inCfg+"\n"),
		"introspect first": buildPeer(t, env, "realm: api\nwith:\n  - "+inCfg+"\n  - "+jwtCfg+"\n"),
	}
	// The JWT's signature, broken: refused by jwt (it is a JWT of its
	// issuer), never passed on.
	forged := jwtTok[:len(jwtTok)-4] + "AAAA"
	if forged == jwtTok {
		forged = jwtTok[:len(jwtTok)-4] + "BBBB"
	}
	for name, p := range orders {
		t.Run(name, func(t *testing.T) {
			ex, err := apply(p, "Bearer "+jwtTok)
			if err != nil || ex.Principal.Method != "jwt" || ex.Principal.ClientID != "app" {
				t.Fatalf("JWT: %v, %+v", err, ex.Principal)
			}
			ex, err = apply(p, "Bearer "+opaque)
			if err != nil || ex.Principal.Method != "introspection" || ex.Principal.ClientID != "app" {
				t.Fatalf("opaque: %v, %+v", err, ex.Principal)
			}
			for _, bad := range []struct{ name, tok string }{
				{"unknown opaque token", "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"},
				{"opaque token with dots", "v1.abc.def.ghi"},
				{"opaque token with one dot", opaque[:10] + "." + opaque[10:]},
				{"three parts that are not a JWS", "abc.def.ghi"},
				{"five parts (JWE)", "eyJhbGciOiJkaXIiLCJlbmMiOiJBMjU2R0NNIn0..AAAAAAAAAAAAAAAA.AAAA.AAAAAAAAAAAAAAAAAAAAAA"},
				{"a forged JWT", forged},
			} {
				_, err := apply(p, "Bearer "+bad.tok)
				t.Run(bad.name, func(t *testing.T) { wantRefused(t, err) })
			}
		})
	}

	t.Run("jwt alone refuses an opaque token as invalid, not missing", func(t *testing.T) {
		p := buildPeer(t, env, "realm: api\nwith:\n  - "+jwtCfg+"\n")
		_, err := apply(p, "Bearer "+opaque)
		wantRefused(t, err)
	})
	t.Run("optional does not make an unrecognised token anonymous", func(t *testing.T) {
		p := buildPeer(t, env, "realm: api\noptional: true\nwith:\n  - "+jwtCfg+"\n")
		ex, err := apply(p, "Bearer "+opaque)
		wantRefused(t, err)
		if ex.Principal != nil {
			t.Errorf("principal %+v", ex.Principal)
		}
		if _, err := apply(p, ""); err != nil {
			t.Errorf("no credentials on an optional route: %v", err)
		}
	})
	t.Run("introspect alone refuses a JWT as invalid, not as an outage", func(t *testing.T) {
		p := buildPeer(t, env, "realm: api\nwith:\n  - "+inCfg+"\n")
		_, err := apply(p, "Bearer "+jwtTok)
		wantRefused(t, err)
	})
	t.Run("a JWT of another issuer is passed on", func(t *testing.T) {
		other := "jwt:\n" + indent(strings.Replace(idp.JWTConfig(), "issuer: "+idp.Issuer, "issuer: https://other.example", 1), "      ")
		p := buildPeer(t, env, "realm: api\nwith:\n  - "+other+"\n  - "+jwtCfg+"\n")
		ex, err := apply(p, "Bearer "+jwtTok)
		if err != nil || ex.Principal.Method != "jwt" {
			t.Fatalf("got %v, %+v; want the second jwt authenticator to take it", err, ex.Principal)
		}
	})
}

// A key withdrawn from node-oidc-provider's JWKS (a key rotation that
// removes the old key) stops verifying tokens within jwks_refresh, cached
// verdicts included, and at once on an operator's refresh.
func TestOIDCProviderKeyWithdrawal(t *testing.T) {
	idp := oidcpeer.Start(t)
	pool := usagepool.New()
	env := peerEnv(pool)

	t.Run("within jwks_refresh", func(t *testing.T) {
		p := buildPeer(t, env, "realm: api\nwith:\n  - jwt:\n"+indent(idp.JWTConfig("jwks_refresh: 2s", "fetch_timeout: 2s"), "      ")+"\n")
		old := idp.Token(t, oidcpeer.JWTResource)
		for range 2 { // the second from the verified-token cache
			if _, err := apply(p, "Bearer "+old); err != nil {
				t.Fatalf("before the rotation: %v", err)
			}
		}
		idp.Rotate(t)
		fresh := idp.Token(t, oidcpeer.JWTResource)
		deadline := time.Now().Add(60 * time.Second)
		for {
			_, err := apply(p, "Bearer "+old)
			if err != nil {
				wantRefused(t, err)
				break
			}
			if time.Now().After(deadline) {
				t.Fatal("the withdrawn key's token is still accepted")
			}
			time.Sleep(50 * time.Millisecond)
		}
		if _, err := apply(p, "Bearer "+fresh); err != nil {
			t.Fatalf("a token of the new key: %v", err)
		}
	})

	t.Run("at once on keys refresh", func(t *testing.T) {
		// jwks_refresh 1h: only the operator's refresh can withdraw it
		// during the test.
		p := buildPeer(t, env, "realm: api\nwith:\n  - jwt:\n"+indent(idp.JWTConfig("jwks_refresh: 1h"), "      ")+"\n")
		old := idp.Token(t, oidcpeer.JWTResource)
		for range 2 {
			if _, err := apply(p, "Bearer "+old); err != nil {
				t.Fatalf("before the rotation: %v", err)
			}
		}
		idp.Rotate(t)
		if _, err := apply(p, "Bearer "+old); err != nil {
			t.Fatalf("the cached token before the refresh: %v (the test would prove nothing)", err)
		}
		for _, r := range jwt.RefreshKeySets(t.Context(), pool) {
			if r.Error != "" {
				t.Fatalf("refresh of %s: %s", r.Source, r.Error)
			}
		}
		_, err := apply(p, "Bearer "+old)
		wantRefused(t, err)
		if _, err := apply(p, "Bearer "+idp.Token(t, oidcpeer.JWTResource)); err != nil {
			t.Fatalf("a token of the new key: %v", err)
		}
	})
}
