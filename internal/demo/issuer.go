package demo

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
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
// its JWKS, and access tokens (RFC 9068 shape) for the demo's clients. It
// exists so that `gatehouse demo` shows token checks with nothing else
// installed; real deployments use the embedded authorization server or
// their own IdP.
type Issuer struct {
	// URL is the issuer identifier (the iss claim).
	URL string
	key jwk.Key
	pub []byte // the JWKS document
}

// NewIssuer makes an issuer named url with a fresh signing key.
func NewIssuer(url string) (*Issuer, error) {
	raw, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	key, err := jwk.Import(raw)
	if err != nil {
		return nil, fmt.Errorf("demo: importing key: %w", err)
	}
	if err := key.Set(jwk.KeyIDKey, "demo-"+time.Now().UTC().Format("20060102T150405")); err != nil {
		return nil, err
	}
	if err := key.Set(jwk.AlgorithmKey, jwa.ES256()); err != nil {
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
	doc, err := json.Marshal(set)
	if err != nil {
		return nil, err
	}
	return &Issuer{URL: url, key: key, pub: doc}, nil
}

// JWKSHandler serves the public keys.
func (is *Issuer) JWKSHandler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/jwk-set+json")
		w.Header().Set("Cache-Control", "max-age=300")
		_, _ = w.Write(is.pub)
	})
}

// Mint signs an access token for subject with the given audience, scopes
// and lifetime.
func (is *Issuer) Mint(subject, audience, scope string, ttl time.Duration) (string, error) {
	now := time.Now()
	var id [12]byte
	if _, err := rand.Read(id[:]); err != nil {
		return "", err
	}
	tok, err := jwt.NewBuilder().
		Issuer(is.URL).
		Subject(subject).
		Audience([]string{audience}).
		IssuedAt(now).
		NotBefore(now).
		Expiration(now.Add(ttl)).
		JwtID(fmt.Sprintf("%x", id)).
		Claim("client_id", subject).
		Claim("scope", scope).
		Build()
	if err != nil {
		return "", err
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
