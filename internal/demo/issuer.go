package demo

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"time"

	"github.com/lestrrat-go/jwx/v3/jwa"
	"github.com/lestrrat-go/jwx/v3/jwk"
	"github.com/lestrrat-go/jwx/v3/jws"
	"github.com/lestrrat-go/jwx/v3/jwt"
)

// Issuer is the demo's stand-in token issuer: an ES256 key made at start,
// an OpenID Provider discovery document and its JWK Set, and access tokens
// in the RFC 9068 shape for the demo's clients. It exists so that
// `gatehouse demo` shows token checks with nothing else installed; real
// deployments use the embedded authorization server or their own IdP.
type Issuer struct {
	url   string
	key   jwk.Key
	jwks  []byte // the public JWK Set
	discv []byte // the discovery document
	now   func() time.Time
}

// Paths the issuer serves.
const (
	DiscoveryPath = "/.well-known/openid-configuration"
	JWKSPath      = "/jwks.json"
)

// NewIssuer makes an issuer whose identifier (the iss claim, and the base
// of its discovery URL) is url, with a fresh signing key. now is its clock;
// nil means time.Now.
func NewIssuer(url string, now func() time.Time) (*Issuer, error) {
	if now == nil {
		now = time.Now
	}
	raw, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	key, err := jwk.Import(raw)
	if err != nil {
		return nil, fmt.Errorf("demo: importing key: %w", err)
	}
	if err := jwk.AssignKeyID(key); err != nil {
		return nil, fmt.Errorf("demo: key id: %w", err)
	}
	if err := key.Set(jwk.AlgorithmKey, jwa.ES256()); err != nil {
		return nil, err
	}
	if err := key.Set(jwk.KeyUsageKey, jwk.ForSignature); err != nil {
		return nil, err
	}
	pub, err := key.PublicKey()
	if err != nil {
		return nil, err
	}
	set := jwk.NewSet()
	if err := set.AddKey(pub); err != nil {
		return nil, err
	}
	jwks, err := json.Marshal(set)
	if err != nil {
		return nil, err
	}
	discv, err := json.Marshal(map[string]any{
		"issuer":                                url,
		"jwks_uri":                              url + JWKSPath,
		"response_types_supported":              []string{"token"},
		"subject_types_supported":               []string{"public"},
		"id_token_signing_alg_values_supported": []string{"ES256"},
	})
	if err != nil {
		return nil, err
	}
	return &Issuer{url: url, key: key, jwks: jwks, discv: discv, now: now}, nil
}

// URL is the issuer identifier.
func (is *Issuer) URL() string { return is.url }

// Handler serves the discovery document at DiscoveryPath and the public
// keys at JWKSPath; everything else is 404.
func (is *Issuer) Handler() http.Handler {
	mux := http.NewServeMux()
	serve := func(body []byte, ctype string) http.HandlerFunc {
		return func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", ctype)
			w.Header().Set("Cache-Control", "max-age=300")
			_, _ = w.Write(body)
		}
	}
	mux.HandleFunc("GET "+DiscoveryPath, serve(is.discv, "application/json"))
	mux.HandleFunc("GET "+JWKSPath, serve(is.jwks, "application/jwk-set+json"))
	return mux
}

// Token is what Mint puts into an access token.
type Token struct {
	Subject  string
	ClientID string
	Audience string
	Scope    string
	// Claims are further claims (department, region...).
	Claims map[string]any
	TTL    time.Duration
}

// Mint signs an RFC 9068 access token (typ at+jwt) for t.
func (is *Issuer) Mint(t Token) (string, error) {
	now := is.now()
	var id [12]byte
	if _, err := rand.Read(id[:]); err != nil {
		return "", err
	}
	b := jwt.NewBuilder().
		Issuer(is.url).
		Subject(t.Subject).
		Audience([]string{t.Audience}).
		IssuedAt(now).
		NotBefore(now).
		Expiration(now.Add(t.TTL)).
		JwtID(hex.EncodeToString(id[:])).
		Claim("client_id", t.ClientID).
		Claim("scope", t.Scope)
	for k, v := range t.Claims {
		b = b.Claim(k, v)
	}
	tok, err := b.Build()
	if err != nil {
		return "", fmt.Errorf("demo: building token: %w", err)
	}
	hdr := jws.NewHeaders()
	if err := hdr.Set(jws.TypeKey, "at+jwt"); err != nil {
		return "", err
	}
	signed, err := jwt.Sign(tok, jwt.WithKey(jwa.ES256(), is.key, jws.WithProtectedHeaders(hdr)))
	if err != nil {
		return "", fmt.Errorf("demo: signing: %w", err)
	}
	return string(signed), nil
}
