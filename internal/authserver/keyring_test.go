package authserver

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/internal/authn"
	"github.com/gatehouse/gatehouse/internal/authn/jwt"
	"github.com/gatehouse/gatehouse/internal/config"
	"github.com/gatehouse/gatehouse/internal/policy"
	"github.com/gatehouse/gatehouse/internal/policy/policytest"
)

func jwksKids(t testing.TB, e *env) []string {
	t.Helper()
	var set struct {
		Keys []struct {
			Kid string `json:"kid"`
		} `json:"keys"`
	}
	resp, err := e.ts.Client().Get(e.issuer + PathJWKS)
	if err != nil {
		t.Fatal(err)
	}
	decodeBody(t, resp, &set)
	var out []string
	for _, k := range set.Keys {
		out = append(out, k.Kid)
	}
	return out
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// TestKeyRotation: the next key is published before it signs; after a
// rotation the old key stays published until its tokens have expired, and
// is dropped after.
func TestKeyRotation(t *testing.T) {
	e := newEnv(t, defaultSection(""))
	first := e.srv.ActiveKeyID()
	kids := jwksKids(t, e)
	if len(kids) != 2 || !contains(kids, first) {
		t.Fatalf("JWKS kids %v, want the active %s and the next key", kids, first)
	}
	old := e.token("reader", readerSecret, "")
	if err := e.srv.Rotate(t.Context()); err != nil {
		t.Fatal(err)
	}
	second := e.srv.ActiveKeyID()
	if second == first || !contains(kids, second) {
		t.Fatalf("after rotation the active key is %s (was %s); want the pre-published next key of %v", second, first, kids)
	}
	if got := decodePart(t, e.token("reader", readerSecret, ""), 0)["kid"]; got != second {
		t.Errorf("new tokens signed by %v, want %s", got, second)
	}
	if _, m := e.post(PathIntrospect, "writer", writerSecret, formOf("token", old)); m["active"] != true {
		t.Errorf("a token of the previous key: %v, want active", m)
	}
	if kids := jwksKids(t, e); !contains(kids, first) || len(kids) != 3 {
		t.Errorf("JWKS after rotation %v, want the old, the active and the next key", kids)
	}
	// Past the longest token lifetime (1h) plus a minute of skew.
	e.clock.add(time.Hour + 2*time.Minute)
	if err := e.srv.ring.refresh(t.Context()); err != nil {
		t.Fatal(err)
	}
	e.srv.ring.mu.Lock()
	e.srv.ring.raw = nil // reload, as a restart would
	e.srv.ring.mu.Unlock()
	if err := e.srv.ring.refresh(t.Context()); err != nil {
		t.Fatal(err)
	}
	if kids := jwksKids(t, e); contains(kids, first) {
		t.Errorf("JWKS %v still holds %s after its tokens expired", kids, first)
	}

	// A scheduled rotation happens on refresh once key_rotation has passed.
	e.clock.add(DefaultKeyRotation)
	if err := e.srv.ring.refresh(t.Context()); err != nil {
		t.Fatal(err)
	}
	if got := e.srv.ActiveKeyID(); got == second {
		t.Errorf("no scheduled rotation after %v", DefaultKeyRotation)
	}
}

// TestKeysEncryptedAtRest: the stored ring holds no private key in clear,
// and another key-encryption key cannot open it.
func TestKeysEncryptedAtRest(t *testing.T) {
	e := newEnv(t, defaultSection(""))
	raw, err := e.store.Get(t.Context(), keyringKey)
	if err != nil {
		t.Fatal(err)
	}
	var ring storedRing
	if err := json.Unmarshal(raw, &ring); err != nil {
		t.Fatal(err)
	}
	pem, err := e.srv.ring.signing().MarshalPEM()
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range ring.Keys {
		if k.Plain != nil || k.Sealed == nil {
			t.Errorf("key %s is not sealed", k.KID)
		}
	}
	if bytes.Contains(raw, pem) || strings.Contains(string(raw), "PRIVATE KEY") {
		t.Error("the stored ring holds the private key in clear")
	}
	other := strings.Replace(defaultSection(""), testKEK, "ZmVkY2JhOTg3NjU0MzIxMGZlZGNiYTk4NzY1NDMyMTA=", 1)
	cfg, err := config.LoadBytes("g.yaml", []byte("listeners: [{address: \"127.0.0.1:0\"}]\nauthorization_server:\n"+strings.ReplaceAll(other, "ISSUER", e.issuer)), nil)
	if err != nil {
		t.Fatal(err)
	}
	_, err = New(*cfg.AuthorizationServer, Deps{Store: e.store, Now: e.clock.now, Logger: slog.New(slog.DiscardHandler)})
	if !errors.Is(err, ErrKeyDecrypt) {
		t.Fatalf("New with another KEK: %v, want ErrKeyDecrypt", err)
	}
}

// TestRevocationCutsCachedToken: the jwt authenticator, trusting this
// issuer through OIDC discovery, verifies and caches a token; once the
// token is revoked here, the next request with it is refused.
func TestRevocationCutsCachedToken(t *testing.T) {
	e := newEnv(t, defaultSection(""))
	a, err := jwt.New(policytest.Node(t, "issuer: "+e.issuer+"\noidc_discovery: true\naudiences: [api://products]\nalgorithms: [ES256]\ntyp: at+jwt\n"),
		&authn.Env{Realm: "api", Env: &policy.Env{
			Route: policy.Route{Name: "products"}, Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
			Now: e.clock.now, Revocations: e.revs,
		}})
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	tok := e.token("reader", readerSecret, "")
	call := func() error {
		r := httptest.NewRequest(http.MethodGet, "http://gw.test/product", nil)
		r.Header.Set("Authorization", "Bearer "+tok)
		ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
		defer cancel()
		_, err := a.Authenticate(ctx, policytest.Exchange(r))
		return err
	}
	// The key set is fetched in the background from load on.
	deadline := time.Now().Add(60 * time.Second)
	for err := call(); err != nil; err = call() {
		if time.Now().After(deadline) {
			t.Fatalf("the token is not accepted: %v", err)
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err := call(); err != nil { // from the verified-token cache
		t.Fatalf("cached: %v", err)
	}
	if resp, _ := e.post(PathRevoke, "reader", readerSecret, formOf("token", tok)); resp.StatusCode != 200 {
		t.Fatalf("revoke: %d", resp.StatusCode)
	}
	d, ok := policy.AsDenial(call())
	if !ok || d.Code != "invalid_token" {
		t.Fatalf("after revocation: %v, want an invalid_token denial", d)
	}
}
