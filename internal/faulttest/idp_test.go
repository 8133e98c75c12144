package faulttest

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
)

// idp is an identity provider on 127.0.0.1 serving a JWKS and an RFC 7662
// introspection endpoint, which can be switched to answer 503 ("down"),
// to hold every answer for 3 s ("slow"), or to behave ("ok").
type idp struct {
	srv  *httptest.Server
	key  *ecdsa.PrivateKey
	mu   sync.Mutex
	mode string
	quit chan struct{}
}

func newIDP(t *testing.T, mode string) *idp {
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	p := &idp{key: k, mode: mode, quit: make(chan struct{})}
	p.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p.mu.Lock()
		mode := p.mode
		p.mu.Unlock()
		switch mode {
		case "down":
			http.Error(w, "down", http.StatusServiceUnavailable)
			return
		case "slow":
			select {
			case <-p.quit:
			case <-r.Context().Done():
			case <-time.After(3 * time.Second):
			}
			return
		}
		switch r.URL.Path {
		case "/keys":
			json.NewEncoder(w).Encode(jose.JSONWebKeySet{Keys: []jose.JSONWebKey{{Key: &k.PublicKey, KeyID: "k1", Algorithm: "ES256", Use: "sig"}}})
		case "/introspect":
			r.ParseForm()
			active := r.PostForm.Get("token") != "inactive"
			json.NewEncoder(w).Encode(map[string]any{"active": active, "sub": "alice", "client_id": "app", "exp": time.Now().Add(time.Hour).Unix()})
		default:
			http.NotFound(w, r)
		}
	}))
	t.Cleanup(func() { close(p.quit); p.srv.Close() })
	return p
}

func (p *idp) set(mode string) {
	p.mu.Lock()
	p.mode = mode
	p.mu.Unlock()
}

// token signs claims (over iss, aud, exp defaults) with the IdP's key.
func (p *idp) token(t testing.TB, now time.Time, extra map[string]any) string {
	t.Helper()
	c := map[string]any{"iss": p.srv.URL, "aud": "api", "sub": "alice", "exp": now.Add(time.Hour).Unix(), "iat": now.Unix()}
	for k, v := range extra {
		if v == nil {
			delete(c, k)
			continue
		}
		c[k] = v
	}
	payload, _ := json.Marshal(c)
	sg, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.ES256, Key: p.key}, (&jose.SignerOptions{}).WithHeader("kid", "k1"))
	if err != nil {
		t.Fatal(err)
	}
	jws, err := sg.Sign(payload)
	if err != nil {
		t.Fatal(err)
	}
	s, err := jws.CompactSerialize()
	if err != nil {
		t.Fatal(err)
	}
	return s
}

const idpConfig = `
listeners: [{name: main, address: "127.0.0.1:0"}]
admin: {address: "off"}
routes:
  - name: jwt
    match: {path: /jwt}
    upstream: {url: "${UP}"}
    policies:
      - authenticate:
          with:
            - jwt:
                issuer: ${IDP}
                jwks_url: ${IDP}/keys
                audiences: [api]
                algorithms: [ES256]
                fetch_timeout: 300ms
                jwks_refresh: 1h
                unknown_kid_refetch: 1s
  - name: introspect
    match: {path: /introspect}
    upstream: {url: "${UP}"}
    policies:
      - authenticate:
          with:
            - introspect:
                endpoint: ${IDP}/introspect
                client_id: gatehouse
                client_secret: test-secret
                timeout: 300ms
`

func idpVars(up, p *httptest.Server) map[string]string {
	return map[string]string{"UP": up.URL, "IDP": p.URL}
}

// TestKeySetOutage: a JWKS that is down or too slow when the gateway starts
// fails requests closed with 503 jwks_unavailable and Retry-After, within
// fetch_timeout; once the JWKS answers, the route works without a restart.
func TestKeySetOutage(t *testing.T) {
	up := httptest.NewServer(&recorder{})
	defer up.Close()
	for _, mode := range []string{"down", "slow"} {
		t.Run(mode, func(t *testing.T) {
			p := newIDP(t, mode)
			g := startGateway(t, idpConfig, idpVars(up, p.srv), options{})
			tok := p.token(t, time.Now(), nil)
			t0 := time.Now()
			r := get(t, g.base+"/jwt", "Authorization", "Bearer "+tok)
			r.want(t, "JWKS "+mode, 503, "jwks_unavailable")
			if r.header.Get("Retry-After") == "" {
				t.Error("503 jwks_unavailable without Retry-After")
			}
			if d := time.Since(t0); d > 2*time.Second {
				t.Errorf("the refusal took %v; fetch_timeout is 300ms", d)
			}
			// The request gives up at fetch_timeout; the fetch itself ends
			// (and is counted) at its own timeout, a moment later.
			eventually(t, 2*time.Second, "the failed fetch counted in gatehouse_jwks_fetches_total", func() string {
				if metricValue(t, g.metrics, "gatehouse_jwks_fetches_total", "result", "failure") == 0 {
					return "not counted"
				}
				return ""
			})
			p.set("ok")
			// After a failure the background retries every
			// unknown_kid_refetch (1s here).
			eventually(t, 5*time.Second, "recovery after the JWKS came back", func() string {
				if r := get(t, g.base+"/jwt", "Authorization", "Bearer "+tok); r.status != 200 {
					return r.body
				}
				return ""
			})
			// Down again: the last good keys keep serving.
			p.set("down")
			get(t, g.base+"/jwt", "Authorization", "Bearer "+p.token(t, time.Now(), map[string]any{"jti": "fresh"})).want(t, "JWKS down after a good fetch", 200, "")
		})
	}
}

// TestIntrospectionOutage: an introspection endpoint that fails or hangs
// fails requests closed with 503 introspection_unavailable within its
// timeout; failures are not cached, so the first request after the
// endpoint is back succeeds.
func TestIntrospectionOutage(t *testing.T) {
	up := httptest.NewServer(&recorder{})
	defer up.Close()
	p := newIDP(t, "ok")
	g := startGateway(t, idpConfig, idpVars(up, p.srv), options{})
	get(t, g.base+"/introspect", "Authorization", "Bearer tok-0").want(t, "healthy", 200, "")
	get(t, g.base+"/introspect", "Authorization", "Bearer inactive").want(t, "inactive token", 401, "invalid_token")
	// (A refused connection is covered by internal/authn/introspect
	// TestOutage.)
	for _, mode := range []string{"down", "slow"} {
		t.Run(mode, func(t *testing.T) {
			tok := "tok-" + mode // not cached yet
			p.set(mode)
			t0 := time.Now()
			for range 2 { // the failure is not cached
				r := get(t, g.base+"/introspect", "Authorization", "Bearer "+tok)
				r.want(t, "introspection "+mode, 503, "introspection_unavailable")
				if r.header.Get("Retry-After") == "" {
					t.Error("503 without Retry-After")
				}
			}
			if d := time.Since(t0); d > 3*time.Second {
				t.Errorf("two refusals took %v; timeout is 300ms", d)
			}
			p.set("ok")
			get(t, g.base+"/introspect", "Authorization", "Bearer "+tok).want(t, "after "+mode, 200, "")
		})
	}
}
