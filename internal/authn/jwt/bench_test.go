package jwt

import (
	"crypto/elliptic"
	"encoding/json"
	"os"
	"path/filepath"
	"testing"

	"github.com/go-jose/go-jose/v4"

	"github.com/gatehouse/gatehouse/internal/config"
)

// benchAuth builds an authenticator over the local key s (cache off when
// noCache) and returns it with a token signed by s.
func benchAuth(b *testing.B, s signer, noCache bool) (*Authenticator, string) {
	b.Helper()
	dir := b.TempDir()
	set, _ := json.Marshal(jose.JSONWebKeySet{Keys: []jose.JSONWebKey{s.jwk()}})
	if err := os.WriteFile(filepath.Join(dir, "keys.json"), set, 0o600); err != nil {
		b.Fatal(err)
	}
	yaml := "issuer: https://idp.example\naudiences: [" + testAud + "]\nalgorithms: [" + string(s.alg) + "]\nkeys: [{file: keys.json}]\n"
	if noCache {
		yaml += "cache: {disabled: true}\n"
	}
	n, err := config.ParseNode(filepath.Join(dir, "gatehouse.yaml"), []byte(yaml), nil)
	if err != nil {
		b.Fatal(err)
	}
	w := newWorld()
	a, err := New(n, w.env())
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { a.Close() })
	return a, s.sign(b, claims("https://idp.example"))
}

func benchmarkAuth(b *testing.B, s signer, noCache bool) {
	a, tok := benchAuth(b, s, noCache)
	ex := bearer(tok)
	ctx := b.Context()
	if _, err := a.Authenticate(ctx, ex); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := a.Authenticate(ctx, ex); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkVerifyRS256(b *testing.B) {
	benchmarkAuth(b, signer{"k", jose.RS256, rsaKey(0)}, true)
}

func BenchmarkVerifyES256(b *testing.B) {
	benchmarkAuth(b, signer{"k", jose.ES256, ecKey(b, elliptic.P256())}, true)
}

func BenchmarkVerifyEdDSA(b *testing.B) {
	benchmarkAuth(b, signer{"k", jose.EdDSA, edKey(b)}, true)
}

func BenchmarkCacheHit(b *testing.B) {
	benchmarkAuth(b, signer{"k", jose.RS256, rsaKey(0)}, false)
}

func BenchmarkCacheHitES256(b *testing.B) {
	benchmarkAuth(b, signer{"k", jose.ES256, ecKey(b, elliptic.P256())}, false)
}

func BenchmarkCacheHitParallel(b *testing.B) {
	a, tok := benchAuth(b, signer{"k", jose.ES256, ecKey(b, elliptic.P256())}, false)
	ex := bearer(tok)
	if _, err := a.Authenticate(b.Context(), ex); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		ctx := b.Context()
		for pb.Next() {
			if _, err := a.Authenticate(ctx, ex); err != nil {
				b.Error(err)
				return
			}
		}
	})
}
