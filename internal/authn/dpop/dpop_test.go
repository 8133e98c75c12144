package dpop_test

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"

	"github.com/gatehouse/gatehouse/internal/authn/dpop"
	"github.com/gatehouse/gatehouse/internal/policy"
)

// Proofs are made with go-jose, not with jwx that the Verifier uses, so a
// shared misreading of the JOSE specs cannot make both sides agree.

var now = time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC)

const (
	target = "https://api.example.com/orders/7?expand=items"
	htu    = "https://api.example.com/orders/7"
	token  = "eyJhbGciOiJFUzI1NiJ9.eyJzdWIiOiJhbGljZSJ9.c2lnbmF0dXJl"
)

// client is a DPoP client key.
type client struct {
	key crypto.Signer
	alg jose.SignatureAlgorithm
}

var (
	keysOnce sync.Once
	ecKey    *ecdsa.PrivateKey
	ecKey2   *ecdsa.PrivateKey
	edKey    ed25519.PrivateKey
	rsaKey   *rsa.PrivateKey
)

func keys(t testing.TB) {
	t.Helper()
	keysOnce.Do(func() {
		var err error
		ecKey, _ = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		ecKey2, _ = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		_, edKey, _ = ed25519.GenerateKey(rand.Reader)
		if rsaKey, err = rsa.GenerateKey(rand.Reader, 2048); err != nil {
			panic(err)
		}
	})
}

func ath(tok string) string {
	s := sha256.Sum256([]byte(tok))
	return base64.RawURLEncoding.EncodeToString(s[:])
}

// jkt is the RFC 7638 thumbprint of pub, computed by go-jose.
func jkt(t testing.TB, pub crypto.PublicKey) string {
	t.Helper()
	tp, err := (&jose.JSONWebKey{Key: pub}).Thumbprint(crypto.SHA256)
	if err != nil {
		t.Fatal(err)
	}
	return base64.RawURLEncoding.EncodeToString(tp)
}

var jtiSeq atomic.Int64

func claims() map[string]any {
	return map[string]any{
		"jti": "jti-" + strconv.FormatInt(jtiSeq.Add(1), 10),
		"htm": "POST",
		"htu": htu,
		"iat": now.Unix(),
		"ath": ath(token),
	}
}

// sign makes a compact JWS with go-jose: typ dpop+jwt and the public JWK
// embedded, unless extra overrides headers (a nil value in extra drops typ).
func (c client) sign(t testing.TB, cl map[string]any, embed bool, extra map[jose.HeaderKey]any) string {
	t.Helper()
	opts := &jose.SignerOptions{EmbedJWK: embed}
	opts.WithType("dpop+jwt")
	for k, v := range extra {
		if v == nil {
			delete(opts.ExtraHeaders, k)
			continue
		}
		opts.WithHeader(k, v)
	}
	var key any = c.key
	if c.alg == jose.HS256 {
		key = []byte("0123456789abcdef0123456789abcdef")
	}
	s, err := jose.NewSigner(jose.SigningKey{Algorithm: c.alg, Key: key}, opts)
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

func (c client) proof(t testing.TB, edit func(map[string]any)) string {
	cl := claims()
	if edit != nil {
		edit(cl)
	}
	return c.sign(t, cl, true, nil)
}

func request(method, url string, proofs ...string) *http.Request {
	r := httptest.NewRequest(method, url, nil)
	for _, p := range proofs {
		r.Header.Add("DPoP", p)
	}
	return r
}

func verifier(opts dpop.Options) *dpop.Verifier {
	if opts.Now == nil {
		opts.Now = func() time.Time { return now }
	}
	opts.Realm = "test"
	return dpop.NewVerifier(opts)
}

// wantDenied fails t unless err is a 401 invalid_dpop_proof Denial with a
// DPoP challenge, caused by cause.
func wantDenied(t *testing.T, err error, cause error) {
	t.Helper()
	d, ok := policy.AsDenial(err)
	if !ok {
		t.Fatalf("got %v, want a Denial caused by %v", err, cause)
	}
	if d.StatusCode() != http.StatusUnauthorized || d.Code != dpop.Code {
		t.Errorf("got %d %s, want 401 %s", d.StatusCode(), d.Code, dpop.Code)
	}
	ch := d.Header.Get("Www-Authenticate")
	if !strings.HasPrefix(ch, `DPoP realm="test", error="invalid_dpop_proof"`) || !strings.Contains(ch, `, algs="`) {
		t.Errorf("challenge %q", ch)
	}
	if !errors.Is(err, cause) {
		t.Errorf("got cause %v, want %v", d.Err, cause)
	}
}

func TestVerifyValid(t *testing.T) {
	keys(t)
	tests := []struct {
		name string
		c    client
		pub  crypto.PublicKey
	}{
		{"ES256", client{ecKey, jose.ES256}, ecKey.Public()},
		{"EdDSA", client{edKey, jose.EdDSA}, edKey.Public()},
		{"RS256", client{rsaKey, jose.RS256}, rsaKey.Public()},
		{"PS256", client{rsaKey, jose.PS256}, rsaKey.Public()},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v := verifier(dpop.Options{})
			want := jkt(t, tt.pub)
			got, err := v.Verify(context.Background(), request("POST", target, tt.c.proof(t, nil)), token, want)
			if err != nil {
				t.Fatal(err)
			}
			if got != want {
				t.Errorf("jkt = %s, want %s", got, want)
			}
		})
	}
}

func TestVerifyNoTokenNoJKT(t *testing.T) {
	keys(t)
	c := client{ecKey, jose.ES256}
	// As at a token endpoint: no ath needed, the thumbprint is returned.
	p := c.proof(t, func(m map[string]any) { delete(m, "ath") })
	got, err := verifier(dpop.Options{}).Verify(context.Background(), request("POST", target, p), "", "")
	if err != nil {
		t.Fatal(err)
	}
	if want := jkt(t, ecKey.Public()); got != want {
		t.Errorf("jkt = %s, want %s", got, want)
	}
}

func TestVerifyRefused(t *testing.T) {
	keys(t)
	es := client{ecKey, jose.ES256}
	ecJWK := jose.JSONWebKey{Key: ecKey.Public()}
	privJWK := jose.JSONWebKey{Key: ecKey}
	otherJWK := jose.JSONWebKey{Key: ecKey2.Public()}
	set := func(k string, v any) func(map[string]any) { return func(m map[string]any) { m[k] = v } }
	del := func(k string) func(map[string]any) { return func(m map[string]any) { delete(m, k) } }

	tests := []struct {
		name    string
		method  string
		url     string
		proofs  func(t *testing.T) []string
		token   string
		jkt     string
		opts    dpop.Options
		wantErr error
	}{
		{name: "no header", proofs: func(t *testing.T) []string { return nil }, wantErr: dpop.ErrHeader},
		{name: "two headers", proofs: func(t *testing.T) []string {
			return []string{es.proof(t, nil), es.proof(t, nil)}
		}, wantErr: dpop.ErrHeader},
		{name: "two proofs folded in one header", proofs: func(t *testing.T) []string {
			return []string{es.proof(t, nil) + ", " + es.proof(t, nil)}
		}, wantErr: dpop.ErrMalformed},
		{name: "too large", opts: dpop.Options{MaxProofSize: 100}, wantErr: dpop.ErrHeader},
		{name: "JSON serialisation", proofs: func(t *testing.T) []string {
			return []string{`{"payload":"e30","signatures":[]}`}
		}, wantErr: dpop.ErrMalformed},
		{name: "wrong htm", method: "GET", wantErr: dpop.ErrMethod},
		{name: "htm lowercase", proofs: one(es, set("htm", "post")), wantErr: dpop.ErrMethod},
		{name: "other path", url: "https://api.example.com/orders/8", wantErr: dpop.ErrURL},
		{name: "path prefix only", proofs: one(es, set("htu", "https://api.example.com/orders")), wantErr: dpop.ErrURL},
		{name: "other host", url: "https://evil.example.com/orders/7", wantErr: dpop.ErrURL},
		{name: "http instead of https", url: "http://api.example.com/orders/7", wantErr: dpop.ErrURL},
		{name: "other port", proofs: one(es, set("htu", "https://api.example.com:8443/orders/7")), wantErr: dpop.ErrURL},
		{name: "htu relative", proofs: one(es, set("htu", "/orders/7")), wantErr: dpop.ErrURL},
		{name: "htu not a string", proofs: one(es, set("htu", 7)), wantErr: dpop.ErrClaims},
		{name: "iat too old", proofs: one(es, set("iat", now.Add(-61*time.Second).Unix())), wantErr: dpop.ErrIssuedAt},
		{name: "iat too far in the future", proofs: one(es, set("iat", now.Add(6*time.Second).Unix())), wantErr: dpop.ErrIssuedAt},
		{name: "iat missing", proofs: one(es, del("iat")), wantErr: dpop.ErrIssuedAt},
		{name: "iat a string", proofs: one(es, set("iat", "1735787045")), wantErr: dpop.ErrClaims},
		{name: "custom max age", opts: dpop.Options{MaxAge: 10 * time.Second}, proofs: one(es, set("iat", now.Add(-11*time.Second).Unix())), wantErr: dpop.ErrIssuedAt},
		{name: "jti missing", proofs: one(es, del("jti")), wantErr: dpop.ErrJTI},
		{name: "jti too long", proofs: one(es, set("jti", strings.Repeat("j", 257))), wantErr: dpop.ErrJTI},
		{name: "ath mismatch", proofs: one(es, set("ath", ath("another token"))), wantErr: dpop.ErrATH},
		{name: "ath missing", proofs: one(es, del("ath")), wantErr: dpop.ErrATH},
		{name: "jkt mismatch", jkt: "dGhpcyBpcyBub3QgdGhlIHRodW1icHJpbnQgb2YgaXQ", wantErr: dpop.ErrKeyBind},
		{name: "typ wrong", proofs: func(t *testing.T) []string {
			return []string{es.sign(t, claims(), true, map[jose.HeaderKey]any{"typ": "JWT"})}
		}, wantErr: dpop.ErrType},
		{name: "typ missing", proofs: func(t *testing.T) []string {
			return []string{es.sign(t, claims(), true, map[jose.HeaderKey]any{"typ": nil})}
		}, wantErr: dpop.ErrType},
		{name: "alg none", proofs: func(t *testing.T) []string {
			return []string{unsigned(t, map[string]any{"typ": "dpop+jwt", "alg": "none", "jwk": ecJWK}, "")}
		}, wantErr: dpop.ErrMalformed},
		{name: "alg none with a signature part", proofs: func(t *testing.T) []string {
			return []string{unsigned(t, map[string]any{"typ": "dpop+jwt", "alg": "none", "jwk": ecJWK}, "c2ln")}
		}, wantErr: dpop.ErrAlgorithm},
		{name: "HS256", proofs: func(t *testing.T) []string {
			return []string{client{nil, jose.HS256}.sign(t, claims(), false, map[jose.HeaderKey]any{"jwk": ecJWK})}
		}, wantErr: dpop.ErrAlgorithm},
		{name: "algorithm not configured", opts: dpop.Options{Algorithms: []string{"EdDSA"}}, wantErr: dpop.ErrAlgorithm},
		{name: "private key in jwk", proofs: func(t *testing.T) []string {
			return []string{es.sign(t, claims(), false, map[jose.HeaderKey]any{"jwk": privJWK})}
		}, wantErr: dpop.ErrKey},
		{name: "no jwk", proofs: func(t *testing.T) []string {
			return []string{es.sign(t, claims(), false, nil)}
		}, wantErr: dpop.ErrKey},
		{name: "symmetric jwk", proofs: func(t *testing.T) []string {
			return []string{es.sign(t, claims(), false, map[jose.HeaderKey]any{"jwk": jose.JSONWebKey{Key: []byte("0123456789abcdef")}})}
		}, wantErr: dpop.ErrKey},
		{name: "jwk of a different key", proofs: func(t *testing.T) []string {
			return []string{es.sign(t, claims(), false, map[jose.HeaderKey]any{"jwk": otherJWK})}
		}, wantErr: dpop.ErrSignature},
		{name: "jwk of the bound key, signed by another", jkt: "other", proofs: func(t *testing.T) []string {
			return []string{es.sign(t, claims(), false, map[jose.HeaderKey]any{"jwk": otherJWK})}
		}, wantErr: dpop.ErrSignature},
		{name: "crit header", proofs: func(t *testing.T) []string {
			return []string{es.sign(t, claims(), true, map[jose.HeaderKey]any{"crit": []string{"exp"}, "exp": 1})}
		}, wantErr: dpop.ErrCritical},
		{name: "tampered payload", proofs: func(t *testing.T) []string {
			p := es.proof(t, nil)
			parts := strings.Split(p, ".")
			cl := claims()
			cl["htm"] = "POST"
			b, _ := json.Marshal(cl)
			parts[1] = base64.RawURLEncoding.EncodeToString(b)
			return []string{strings.Join(parts, ".")}
		}, wantErr: dpop.ErrSignature},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.method == "" {
				tt.method = "POST"
			}
			if tt.url == "" {
				tt.url = target
			}
			if tt.token == "" {
				tt.token = token
			}
			if tt.jkt == "other" {
				tt.jkt = jkt(t, ecKey2.Public())
			}
			var proofs []string
			if tt.proofs != nil {
				proofs = tt.proofs(t)
			} else {
				proofs = []string{es.proof(t, nil)}
			}
			v := verifier(tt.opts)
			got, err := v.Verify(context.Background(), request(tt.method, tt.url, proofs...), tt.token, tt.jkt)
			if got != "" {
				t.Errorf("jkt %q returned with an error", got)
			}
			wantDenied(t, err, tt.wantErr)
		})
	}
}

func one(c client, edit func(map[string]any)) func(t *testing.T) []string {
	return func(t *testing.T) []string { return []string{c.proof(t, edit)} }
}

// unsigned builds a compact JWS by hand, for what no library will sign.
func unsigned(t *testing.T, hdr map[string]any, sig string) string {
	t.Helper()
	h, err := json.Marshal(hdr)
	if err != nil {
		t.Fatal(err)
	}
	p, _ := json.Marshal(claims())
	return base64.RawURLEncoding.EncodeToString(h) + "." + base64.RawURLEncoding.EncodeToString(p) + "." + sig
}

func TestVerifyIssuedAtWindow(t *testing.T) {
	keys(t)
	es := client{ecKey, jose.ES256}
	tests := []struct {
		iat  time.Time
		opts dpop.Options
		ok   bool
	}{
		{now, dpop.Options{}, true},
		{now.Add(-60 * time.Second), dpop.Options{}, true},
		{now.Add(-61 * time.Second), dpop.Options{}, false},
		{now.Add(5 * time.Second), dpop.Options{}, true},
		{now.Add(6 * time.Second), dpop.Options{}, false},
		{now.Add(time.Second), dpop.Options{FutureSkew: -1}, false},
		{now.Add(-5 * time.Minute), dpop.Options{MaxAge: 10 * time.Minute}, true},
	}
	for _, tt := range tests {
		t.Run(tt.iat.Sub(now).String(), func(t *testing.T) {
			p := es.proof(t, func(m map[string]any) { m["iat"] = tt.iat.Unix() })
			_, err := verifier(tt.opts).Verify(context.Background(), request("POST", target, p), token, "")
			if tt.ok && err != nil {
				t.Fatalf("refused: %v", err)
			}
			if !tt.ok {
				wantDenied(t, err, dpop.ErrIssuedAt)
			}
		})
	}
}

func TestVerifyURLNormalisation(t *testing.T) {
	keys(t)
	es := client{ecKey, jose.ES256}
	tests := []struct {
		name, url, htu string
	}{
		{"query of the request ignored", "https://api.example.com/orders/7?a=1", "https://api.example.com/orders/7"},
		{"query and fragment of htu ignored", "https://api.example.com/orders/7", "https://api.example.com/orders/7?b=2#frag"},
		{"scheme and host case", "https://api.example.com/orders/7", "HTTPS://API.Example.COM/orders/7"},
		{"default port in htu", "https://api.example.com/orders/7", "https://api.example.com:443/orders/7"},
		{"default port in request", "https://api.example.com:443/orders/7", "https://api.example.com/orders/7"},
		{"explicit port both", "https://api.example.com:8443/orders/7", "https://api.example.com:8443/orders/7"},
		{"empty path", "https://api.example.com/", "https://api.example.com"},
		{"percent-encoded unreserved", "https://api.example.com/orders/7", "https://api.example.com/%6Frders/7"},
		{"percent-encoding case", "https://api.example.com/a%2fb", "https://api.example.com/a%2Fb"},
		{"dot segments", "https://api.example.com/orders/7", "https://api.example.com/x/../orders/./7"},
		{"IPv6 host", "https://[::1]:8443/orders/7", "https://[::1]:8443/orders/7"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := es.proof(t, func(m map[string]any) { m["htu"] = tt.htu })
			if _, err := verifier(dpop.Options{}).Verify(context.Background(), request("POST", tt.url, p), token, ""); err != nil {
				t.Fatalf("refused: %v", err)
			}
		})
	}
	t.Run("encoded slash is not a slash", func(t *testing.T) {
		p := es.proof(t, func(m map[string]any) { m["htu"] = "https://api.example.com/a/b" })
		_, err := verifier(dpop.Options{}).Verify(context.Background(), request("POST", "https://api.example.com/a%2Fb", p), token, "")
		wantDenied(t, err, dpop.ErrURL)
	})
}

func TestVerifyPublicURL(t *testing.T) {
	keys(t)
	es := client{ecKey, jose.ES256}
	// Behind a TLS-terminating proxy the gateway sees http://internal:8080.
	opts := dpop.Options{PublicURL: func(r *http.Request) string { return "https://api.example.com" + r.URL.EscapedPath() }}
	p := es.proof(t, nil)
	if _, err := verifier(opts).Verify(context.Background(), request("POST", "http://internal:8080/orders/7", p), token, ""); err != nil {
		t.Fatalf("refused: %v", err)
	}
	p = es.proof(t, nil)
	_, err := verifier(dpop.Options{}).Verify(context.Background(), request("POST", "http://internal:8080/orders/7", p), token, "")
	wantDenied(t, err, dpop.ErrURL)
}

func TestVerifyReplay(t *testing.T) {
	keys(t)
	es := client{ecKey, jose.ES256}
	clock := now
	v := verifier(dpop.Options{Now: func() time.Time { return clock }})
	p := es.proof(t, nil)
	if _, err := v.Verify(context.Background(), request("POST", target, p), token, ""); err != nil {
		t.Fatal(err)
	}
	_, err := v.Verify(context.Background(), request("POST", target, p), token, "")
	wantDenied(t, err, dpop.ErrReplay)

	// The same jti under another key is another proof.
	cl := claims()
	cl["jti"] = "shared"
	if _, err := v.Verify(context.Background(), request("POST", target, es.sign(t, cl, true, nil)), token, ""); err != nil {
		t.Fatal(err)
	}
	if _, err := v.Verify(context.Background(), request("POST", target, client{ecKey2, jose.ES256}.sign(t, cl, true, nil)), token, ""); err != nil {
		t.Fatalf("same jti, other key: %v", err)
	}

	// A refused proof does not use up its jti: the genuine one still
	// passes after a forgery with the same jti.
	cl = claims()
	cl["htm"] = "GET"
	forged := es.sign(t, cl, true, nil)
	_, err = v.Verify(context.Background(), request("POST", target, forged), token, "")
	wantDenied(t, err, dpop.ErrMethod)
	cl["htm"] = "POST"
	if _, err := v.Verify(context.Background(), request("POST", target, es.sign(t, cl, true, nil)), token, ""); err != nil {
		t.Fatalf("genuine proof after a refused one with its jti: %v", err)
	}
}

// TestVerifyCachedHeader checks that a header seen before, whose checks
// are cached, still gets its proof's signature and binding checked.
func TestVerifyCachedHeader(t *testing.T) {
	keys(t)
	es := client{ecKey, jose.ES256}
	v := verifier(dpop.Options{})
	want := jkt(t, ecKey.Public())
	if _, err := v.Verify(context.Background(), request("POST", target, es.proof(t, nil)), token, want); err != nil {
		t.Fatal(err)
	}
	p := es.proof(t, nil)
	parts := strings.Split(p, ".")
	sig, _ := base64.RawURLEncoding.DecodeString(parts[2])
	sig[5] ^= 1
	parts[2] = base64.RawURLEncoding.EncodeToString(sig)
	_, err := v.Verify(context.Background(), request("POST", target, strings.Join(parts, ".")), token, want)
	wantDenied(t, err, dpop.ErrSignature)
	_, err = v.Verify(context.Background(), request("POST", target, p), token, jkt(t, ecKey2.Public()))
	wantDenied(t, err, dpop.ErrKeyBind)
	if _, err := v.Verify(context.Background(), request("POST", target, p), token, want); err != nil {
		t.Fatal(err)
	}
}

func TestVerifyConcurrentReplay(t *testing.T) {
	keys(t)
	v := verifier(dpop.Options{})
	p := client{ecKey, jose.ES256}.proof(t, nil)
	var ok atomic.Int32
	var wg sync.WaitGroup
	for range 16 {
		wg.Go(func() {
			if _, err := v.Verify(context.Background(), request("POST", target, p), token, ""); err == nil {
				ok.Add(1)
			}
		})
	}
	wg.Wait()
	if got := ok.Load(); got != 1 {
		t.Errorf("%d of 16 concurrent uses of one proof accepted, want 1", got)
	}
}

type failingCache struct{}

func (failingCache) Seen(context.Context, string, time.Time) (bool, error) {
	return false, errors.New("store down")
}

func TestVerifyReplayCacheErrorFailsClosed(t *testing.T) {
	keys(t)
	v := verifier(dpop.Options{ReplayCache: failingCache{}})
	_, err := v.Verify(context.Background(), request("POST", target, client{ecKey, jose.ES256}.proof(t, nil)), token, "")
	if err == nil {
		t.Fatal("accepted with the replay cache down")
	}
	if _, ok := policy.AsDenial(err); ok {
		t.Errorf("got a Denial %v, want an internal error", err)
	}
}

func TestNewVerifierPanicsOnBadAlgorithm(t *testing.T) {
	for _, alg := range []string{"HS256", "none", "ES256K", "es256"} {
		t.Run(alg, func(t *testing.T) {
			if err := dpop.CheckAlgorithm(alg); err == nil {
				t.Errorf("CheckAlgorithm(%q) = nil", alg)
			}
			defer func() {
				if recover() == nil {
					t.Errorf("NewVerifier with %q did not panic", alg)
				}
			}()
			dpop.NewVerifier(dpop.Options{Algorithms: []string{alg}})
		})
	}
}

func TestChallenge(t *testing.T) {
	v := verifier(dpop.Options{Algorithms: []string{"ES256", "EdDSA"}})
	got := v.Challenge("error", "invalid_token")
	want := `DPoP realm="test", error="invalid_token", algs="ES256 EdDSA"`
	if got != want {
		t.Errorf("got %s, want %s", got, want)
	}
}

// nopCache never remembers, so that a benchmark can verify one proof again
// and again; the cache has its own benchmark.
type nopCache struct{}

func (nopCache) Seen(context.Context, string, time.Time) (bool, error) { return false, nil }

func BenchmarkVerify(b *testing.B) {
	keys(b)
	for _, c := range []struct {
		name string
		c    client
	}{
		{"ES256", client{ecKey, jose.ES256}},
		{"EdDSA", client{edKey, jose.EdDSA}},
		{"RS256", client{rsaKey, jose.RS256}},
	} {
		b.Run(c.name, func(b *testing.B) {
			v := verifier(dpop.Options{ReplayCache: nopCache{}})
			r := request("POST", target, c.c.proof(b, nil))
			want := jkt(b, c.c.key.Public())
			b.ReportAllocs()
			for b.Loop() {
				if _, err := v.Verify(context.Background(), r, token, want); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
