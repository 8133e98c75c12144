// Package dpoptest makes real DPoP proofs (RFC 9449) for tests of the
// places that verify them: a P-256 key, its JWK thumbprint, and proofs
// signed with go-jose, an implementation independent of our verifier.
package dpoptest

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
)

// Key is a client's DPoP key.
type Key struct {
	Private *ecdsa.PrivateKey
}

// NewKey makes a fresh P-256 key.
func NewKey(t testing.TB) *Key {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return &Key{Private: k}
}

// JKT is the key's RFC 7638 SHA-256 thumbprint, as cnf.jkt holds it.
func (k *Key) JKT(t testing.TB) string {
	t.Helper()
	tp, err := (&jose.JSONWebKey{Key: k.Private.Public()}).Thumbprint(crypto.SHA256)
	if err != nil {
		t.Fatal(err)
	}
	return base64.RawURLEncoding.EncodeToString(tp)
}

// Proof is a fresh proof (new jti, iat now) for method and url, with ath
// over accessToken when it is not empty.
func (k *Key) Proof(t testing.TB, method, url, accessToken string, now time.Time) string {
	t.Helper()
	var jti [12]byte
	rand.Read(jti[:])
	cl := map[string]any{"jti": base64.RawURLEncoding.EncodeToString(jti[:]), "htm": method, "htu": url, "iat": now.Unix()}
	if accessToken != "" {
		sum := sha256.Sum256([]byte(accessToken))
		cl["ath"] = base64.RawURLEncoding.EncodeToString(sum[:])
	}
	opts := &jose.SignerOptions{EmbedJWK: true}
	opts.WithType("dpop+jwt")
	s, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.ES256, Key: k.Private}, opts)
	if err != nil {
		t.Fatal(err)
	}
	payload, err := json.Marshal(cl)
	if err != nil {
		t.Fatal(err)
	}
	obj, err := s.Sign(payload)
	if err != nil {
		t.Fatal(err)
	}
	out, err := obj.CompactSerialize()
	if err != nil {
		t.Fatal(err)
	}
	return out
}
