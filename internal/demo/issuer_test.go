package demo

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	josejwt "github.com/go-jose/go-jose/v4/jwt"
)

// TestIssuer checks the issuer's documents and tokens with an independent
// JOSE library, the way a relying party would: discovery, then the JWK Set
// at jwks_uri, then the token's signature and claims.
func TestIssuer(t *testing.T) {
	at := time.Date(2026, 3, 4, 5, 6, 7, 0, time.UTC)
	srv := httptest.NewUnstartedServer(nil)
	srv.Start()
	defer srv.Close()
	is, err := NewIssuer(srv.URL, func() time.Time { return at })
	if err != nil {
		t.Fatal(err)
	}
	srv.Config.Handler = is.Handler()

	var disc struct {
		Issuer  string `json:"issuer"`
		JWKSURI string `json:"jwks_uri"`
	}
	getJSON(t, srv.URL+DiscoveryPath, &disc)
	if disc.Issuer != srv.URL || disc.JWKSURI != srv.URL+JWKSPath {
		t.Fatalf("discovery = %+v, want issuer %s and jwks_uri %s", disc, srv.URL, srv.URL+JWKSPath)
	}
	var set jose.JSONWebKeySet
	getJSON(t, disc.JWKSURI, &set)
	if len(set.Keys) != 1 || !set.Keys[0].IsPublic() || set.Keys[0].Algorithm != "ES256" || set.Keys[0].KeyID == "" {
		t.Fatalf("JWK Set = %+v, want one public ES256 key with a kid", set.Keys)
	}

	raw, err := is.Mint(Token{Subject: "alice", ClientID: "reader-app", Audience: "demo-api",
		Scope: "products:read", Claims: map[string]any{"dept": "catalog"}, TTL: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	tok, err := josejwt.ParseSigned(raw, []jose.SignatureAlgorithm{jose.ES256})
	if err != nil {
		t.Fatal(err)
	}
	if got := tok.Headers[0].ExtraHeaders["typ"]; got != "at+jwt" {
		t.Errorf("typ = %v, want at+jwt", got)
	}
	if got := tok.Headers[0].KeyID; got != set.Keys[0].KeyID {
		t.Errorf("kid = %q, want the published %q", got, set.Keys[0].KeyID)
	}
	var std josejwt.Claims
	var extra struct {
		ClientID string `json:"client_id"`
		Scope    string `json:"scope"`
		Dept     string `json:"dept"`
	}
	if err := tok.Claims(set.Keys[0].Key, &std, &extra); err != nil {
		t.Fatalf("signature: %v", err)
	}
	if err := std.ValidateWithLeeway(josejwt.Expected{Issuer: srv.URL, AnyAudience: []string{"demo-api"}, Time: at.Add(59 * time.Minute)}, 0); err != nil {
		t.Errorf("claims: %v", err)
	}
	if err := std.ValidateWithLeeway(josejwt.Expected{Time: at.Add(61 * time.Minute)}, 0); err == nil {
		t.Error("token still valid after its ttl")
	}
	if std.Subject != "alice" || std.ID == "" || extra.ClientID != "reader-app" || extra.Scope != "products:read" || extra.Dept != "catalog" {
		t.Errorf("claims = %+v %+v", std, extra)
	}
}

func getJSON(t *testing.T, url string, v any) {
	t.Helper()
	res, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	body, _ := io.ReadAll(res.Body)
	if res.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %s", url, res.Status)
	}
	if err := json.Unmarshal(body, v); err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
}
