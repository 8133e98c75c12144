package keys

import (
	"crypto"
	"crypto/ecdh"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"io/fs"
	"math/big"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"
)

// rsaKey is one 2048-bit key shared by the tests: generating RSA keys is
// slow on a shared machine.
var rsaKey = sync.OnceValue(func() *rsa.PrivateKey {
	k, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		panic(err)
	}
	return k
})

func ecKey(t testing.TB, c elliptic.Curve) *ecdsa.PrivateKey {
	t.Helper()
	k, err := ecdsa.GenerateKey(c, rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func edKey(t testing.TB) ed25519.PrivateKey {
	t.Helper()
	_, k, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func pemOf(t testing.TB, typ string, der []byte) []byte {
	t.Helper()
	return pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der})
}

func pkcs8(t testing.TB, k any) []byte {
	t.Helper()
	der, err := x509.MarshalPKCS8PrivateKey(k)
	if err != nil {
		t.Fatal(err)
	}
	return pemOf(t, "PRIVATE KEY", der)
}

func sec1(t testing.TB, k *ecdsa.PrivateKey) []byte {
	t.Helper()
	der, err := x509.MarshalECPrivateKey(k)
	if err != nil {
		t.Fatal(err)
	}
	return pemOf(t, "EC PRIVATE KEY", der)
}

// privateJWK is k as a private JWK in JSON, written by go-jose so that the
// parsing side (jwx) is checked against an independent encoder.
func privateJWK(t testing.TB, k any, alg, kid string) []byte {
	t.Helper()
	out, err := json.Marshal(jose.JSONWebKey{Key: k, Algorithm: alg, KeyID: kid})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// joseThumbprint is the RFC 7638 thumbprint as go-jose computes it.
func joseThumbprint(t testing.TB, pub crypto.PublicKey) string {
	t.Helper()
	tp, err := (&jose.JSONWebKey{Key: pub}).Thumbprint(crypto.SHA256)
	if err != nil {
		t.Fatal(err)
	}
	return base64.RawURLEncoding.EncodeToString(tp)
}

// verifyWithJWKS checks a compact JWS against the key's published JWK Set
// with go-jose and returns the payload.
func verifyWithJWKS(t testing.TB, k *Key, token []byte) []byte {
	t.Helper()
	set, err := JWKS(k)
	if err != nil {
		t.Fatal(err)
	}
	var jwks jose.JSONWebKeySet
	if err := json.Unmarshal(set, &jwks); err != nil {
		t.Fatalf("go-jose cannot read the JWKS %s: %v", set, err)
	}
	sig, err := jose.ParseSignedCompact(string(token), []jose.SignatureAlgorithm{jose.SignatureAlgorithm(k.Algorithm())})
	if err != nil {
		t.Fatalf("go-jose parse: %v", err)
	}
	kid := sig.Signatures[0].Header.KeyID
	found := jwks.Key(kid)
	if len(found) != 1 {
		t.Fatalf("kid %q: %d keys in the JWKS %s", kid, len(found), set)
	}
	if found[0].Use != "sig" || found[0].Algorithm != k.Algorithm() {
		t.Errorf("JWK use %q alg %q, want sig %s", found[0].Use, found[0].Algorithm, k.Algorithm())
	}
	if !found[0].IsPublic() {
		t.Errorf("the JWKS holds private key material: %s", set)
	}
	payload, err := sig.Verify(found[0])
	if err != nil {
		t.Fatalf("go-jose verify: %v", err)
	}
	return payload
}

func TestParseKinds(t *testing.T) {
	p256, p384, p521 := ecKey(t, elliptic.P256()), ecKey(t, elliptic.P384()), ecKey(t, elliptic.P521())
	ed := edKey(t)
	rk := rsaKey()
	ecParams := append(pemOf(t, "EC PARAMETERS", []byte{0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07}), sec1(t, p256)...)
	tests := []struct {
		name    string
		data    []byte
		alg     string // configured; "" inferred
		kid     string
		wantAlg string
		wantKid string // "" means the thumbprint of pub
		pub     crypto.PublicKey
	}{
		{"pkcs8 P-256", pkcs8(t, p256), "ES256", "", "ES256", "", &p256.PublicKey},
		{"pkcs8 P-384", pkcs8(t, p384), "ES384", "", "ES384", "", &p384.PublicKey},
		{"pkcs8 P-521", pkcs8(t, p521), "ES512", "", "ES512", "", &p521.PublicKey},
		{"pkcs8 Ed25519", pkcs8(t, ed), "EdDSA", "", "EdDSA", "", ed.Public()},
		{"pkcs8 RSA RS256", pkcs8(t, rk), "RS256", "", "RS256", "", &rk.PublicKey},
		{"pkcs8 RSA PS384", pkcs8(t, rk), "PS384", "", "PS384", "", &rk.PublicKey},
		{"sec1 P-256", sec1(t, p256), "ES256", "", "ES256", "", &p256.PublicKey},
		{"sec1 after EC PARAMETERS", ecParams, "", "", "ES256", "", &p256.PublicKey},
		{"pkcs1 RSA", pemOf(t, "RSA PRIVATE KEY", x509.MarshalPKCS1PrivateKey(rk)), "RS512", "", "RS512", "", &rk.PublicKey},
		{"inferred P-384", sec1(t, p384), "", "", "ES384", "", &p384.PublicKey},
		{"inferred P-521", pkcs8(t, p521), "", "", "ES512", "", &p521.PublicKey},
		{"inferred Ed25519", pkcs8(t, ed), "", "", "EdDSA", "", ed.Public()},
		{"inferred RSA", pkcs8(t, rk), "", "", "RS256", "", &rk.PublicKey},
		{"given kid", pkcs8(t, p256), "ES256", "key-2025", "ES256", "key-2025", &p256.PublicKey},
		{"jwk EC", privateJWK(t, p256, "", ""), "ES256", "", "ES256", "", &p256.PublicKey},
		{"jwk EC P-521", privateJWK(t, p521, "", ""), "", "", "ES512", "", &p521.PublicKey},
		{"jwk OKP", privateJWK(t, ed, "", ""), "EdDSA", "", "EdDSA", "", ed.Public()},
		{"jwk RSA", privateJWK(t, rk, "", ""), "PS256", "", "PS256", "", &rk.PublicKey},
		{"jwk with alg and kid", privateJWK(t, rk, "PS512", "rsa-1"), "", "", "PS512", "rsa-1", &rk.PublicKey},
		{"jwk kid overridden", privateJWK(t, p256, "ES256", "in-file"), "ES256", "configured", "ES256", "configured", &p256.PublicKey},
		{"jwk set of one", []byte(`{"keys":[` + string(privateJWK(t, ed, "", "")) + `]}`), "", "", "EdDSA", "", ed.Public()},
		{"jwk with whitespace", append([]byte("\n  "), privateJWK(t, p384, "", "")...), "ES384", "", "ES384", "", &p384.PublicKey},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			k, err := Parse(tt.data, tt.alg, tt.kid)
			if err != nil {
				t.Fatalf("Parse: %v", err)
			}
			if got := k.Algorithm(); got != tt.wantAlg {
				t.Errorf("Algorithm() = %q, want %q", got, tt.wantAlg)
			}
			wantKid := tt.wantKid
			if wantKid == "" {
				wantKid = joseThumbprint(t, tt.pub)
			}
			if got := k.KeyID(); got != wantKid {
				t.Errorf("KeyID() = %q, want %q", got, wantKid)
			}
			if got := k.Signer().Public(); !got.(interface{ Equal(crypto.PublicKey) bool }).Equal(tt.pub) {
				t.Errorf("the parsed key is not the key written")
			}
			tok, err := k.Sign([]byte(`{"sub":"alice"}`), "JWT")
			if err != nil {
				t.Fatal(err)
			}
			if got := string(verifyWithJWKS(t, k, tok)); got != `{"sub":"alice"}` {
				t.Errorf("payload %q", got)
			}
		})
	}
}

// TestThumbprintRFC7638 computes the thumbprint by the RFC's recipe: SHA-256
// of the required members in lexicographic order, no whitespace.
func TestThumbprintRFC7638(t *testing.T) {
	p := ecKey(t, elliptic.P256())
	k, err := New(p, "ES256", "")
	if err != nil {
		t.Fatal(err)
	}
	b64 := func(n *big.Int) string { return base64.RawURLEncoding.EncodeToString(n.FillBytes(make([]byte, 32))) }
	canon := `{"crv":"P-256","kty":"EC","x":"` + b64(p.X) + `","y":"` + b64(p.Y) + `"}`
	sum := sha256.Sum256([]byte(canon))
	if got, want := k.KeyID(), base64.RawURLEncoding.EncodeToString(sum[:]); got != want {
		t.Errorf("KeyID() = %q, want %q", got, want)
	}

	e := edKey(t)
	k, err = New(e, "EdDSA", "")
	if err != nil {
		t.Fatal(err)
	}
	canon = `{"crv":"Ed25519","kty":"OKP","x":"` + base64.RawURLEncoding.EncodeToString(e.Public().(ed25519.PublicKey)) + `"}`
	sum = sha256.Sum256([]byte(canon))
	if got, want := k.KeyID(), base64.RawURLEncoding.EncodeToString(sum[:]); got != want {
		t.Errorf("Ed25519 KeyID() = %q, want %q", got, want)
	}
}

func TestParseErrors(t *testing.T) {
	p256, p384, p521 := ecKey(t, elliptic.P256()), ecKey(t, elliptic.P384()), ecKey(t, elliptic.P521())
	ed := edKey(t)
	rk := rsaKey()
	small, err := rsa.GenerateKey(rand.Reader, 1024)
	if err != nil {
		t.Fatal(err)
	}
	x25519, err := ecdh.X25519().GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	pubDER, err := x509.MarshalPKIXPublicKey(&p256.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "x"}, NotBefore: time.Now(), NotAfter: time.Now().Add(time.Hour)}
	certDER, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &p256.PublicKey, p256)
	if err != nil {
		t.Fatal(err)
	}
	var pubJWK []byte
	if pubJWK, err = json.Marshal(jose.JSONWebKey{Key: &p256.PublicKey}); err != nil {
		t.Fatal(err)
	}
	octJWK := []byte(`{"kty":"oct","k":"c2VjcmV0LXNlY3JldC1zZWNyZXQtc2VjcmV0LXNlY3JldA"}`)
	twoKeys := []byte(`{"keys":[` + string(privateJWK(t, p256, "", "a")) + `,` + string(privateJWK(t, ed, "", "b")) + `]}`)
	encrypted := []byte("-----BEGIN RSA PRIVATE KEY-----\nProc-Type: 4,ENCRYPTED\nDEK-Info: AES-128-CBC,00112233445566778899AABBCCDDEEFF\n\nAAAA\n-----END RSA PRIVATE KEY-----\n")

	tests := []struct {
		name string
		data []byte
		alg  string
		want error
		msg  string
	}{
		{"HS256", pkcs8(t, p256), "HS256", ErrAlgorithm, `"HS256"`},
		{"none", pkcs8(t, p256), "none", ErrAlgorithm, `"none"`},
		{"unknown alg", pkcs8(t, p256), "ES257", ErrAlgorithm, "want one of ES256"},
		{"lower-case alg", pkcs8(t, p256), "es256", ErrAlgorithm, `"es256"`},
		{"ES256K", pkcs8(t, p256), "ES256K", ErrAlgorithm, `"ES256K"`},
		{"P-384 key for ES256", pkcs8(t, p384), "ES256", ErrUnfit, "ES256 needs an ECDSA P-256 key, got an ECDSA P-384 key"},
		{"P-256 key for ES512", sec1(t, p256), "ES512", ErrUnfit, "needs an ECDSA P-521 key"},
		{"P-521 key for ES384", pkcs8(t, p521), "ES384", ErrUnfit, "needs an ECDSA P-384 key"},
		{"RSA key for ES256", pkcs8(t, rk), "ES256", ErrUnfit, "got a 2048-bit RSA key"},
		{"EC key for RS256", pkcs8(t, p256), "RS256", ErrUnfit, "RS256 needs an RSA key"},
		{"Ed25519 key for PS256", pkcs8(t, ed), "PS256", ErrUnfit, "PS256 needs an RSA key, got an Ed25519 key"},
		{"RSA key for EdDSA", pkcs8(t, rk), "EdDSA", ErrUnfit, "EdDSA needs an Ed25519 key"},
		{"EC key for EdDSA", pkcs8(t, p256), "EdDSA", ErrUnfit, "EdDSA needs an Ed25519 key"},
		{"RSA 1024", pkcs8(t, small), "RS256", ErrUnfit, "at least 2048 bits, got 1024"},
		{"RSA 1024 inferred", pemOf(t, "RSA PRIVATE KEY", x509.MarshalPKCS1PrivateKey(small)), "", ErrUnfit, "got 1024"},
		{"X25519", pkcs8(t, x25519), "", ErrNotPrivate, "not a signing key"},
		{"public key PEM", pemOf(t, "PUBLIC KEY", pubDER), "ES256", ErrNotPrivate, `"PUBLIC KEY" is not a private key`},
		{"certificate", pemOf(t, "CERTIFICATE", certDER), "ES256", ErrNotPrivate, `"CERTIFICATE"`},
		{"encrypted pkcs8", pemOf(t, "ENCRYPTED PRIVATE KEY", []byte{1, 2, 3}), "ES256", ErrNotPrivate, "encrypted"},
		{"encrypted legacy PEM", encrypted, "RS256", ErrNotPrivate, "encrypted"},
		{"two keys", append(pkcs8(t, p256), sec1(t, p256)...), "ES256", ErrNotPrivate, "more than one private key"},
		{"garbage", []byte("hello"), "ES256", ErrNotPrivate, "no PEM private key or JWK"},
		{"empty", nil, "", ErrNotPrivate, "no PEM private key"},
		{"public JWK", pubJWK, "ES256", ErrNotPrivate, "public key"},
		{"symmetric JWK", octJWK, "", ErrNotPrivate, "symmetric"},
		{"JWK set of two", twoKeys, "", ErrNotPrivate, "holds 2 keys"},
		{"JWK alg differs", privateJWK(t, rk, "RS256", ""), "PS256", ErrUnfit, "the JWK is for RS256, not PS256"},
		{"JWK alg HS256", privateJWK(t, p256, "HS256", ""), "", ErrAlgorithm, `"HS256"`},
		{"JWK wrong curve", privateJWK(t, p384, "", ""), "ES256", ErrUnfit, "needs an ECDSA P-256"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			k, err := Parse(tt.data, tt.alg, "")
			if err == nil {
				t.Fatalf("got key %s/%s, want an error", k.Algorithm(), k.KeyID())
			}
			if tt.want != nil && !errors.Is(err, tt.want) {
				t.Errorf("got %v, want it to wrap %v", err, tt.want)
			}
			if !strings.Contains(err.Error(), tt.msg) {
				t.Errorf("got %q, want it to contain %q", err, tt.msg)
			}
			if !strings.HasPrefix(err.Error(), "keys: ") {
				t.Errorf("got %q, want the keys: prefix", err)
			}
		})
	}
	// Bytes that look like PEM but do not parse.
	if _, err := Parse(pemOf(t, "EC PRIVATE KEY", []byte{0x30, 0x01}), "ES256", ""); err == nil || !strings.Contains(err.Error(), "parsing EC PRIVATE KEY") {
		t.Errorf("corrupt SEC1: got %v", err)
	}
	if _, err := Parse([]byte(`{"kty":`), "ES256", ""); err == nil || !strings.Contains(err.Error(), "parsing JWK") {
		t.Errorf("corrupt JWK: got %v", err)
	}
}

func TestNewBrokenRSA(t *testing.T) {
	k := *rsaKey()
	k.Primes = []*big.Int{new(big.Int).Add(k.Primes[0], big.NewInt(2)), k.Primes[1]}
	k.Precomputed = rsa.PrecomputedValues{}
	if _, err := New(&k, "RS256", ""); !errors.Is(err, ErrUnfit) {
		t.Errorf("got %v, want ErrUnfit", err)
	}
	if _, err := New(nil, "RS256", ""); !errors.Is(err, ErrNotPrivate) {
		t.Errorf("nil signer: got %v, want ErrNotPrivate", err)
	}
}

func TestLoad(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "k.pem")
	p := ecKey(t, elliptic.P256())
	if err := os.WriteFile(path, pkcs8(t, p), 0o600); err != nil {
		t.Fatal(err)
	}
	k, err := Load(path, "ES256", "")
	if err != nil {
		t.Fatal(err)
	}
	if got, want := k.KeyID(), joseThumbprint(t, &p.PublicKey); got != want {
		t.Errorf("KeyID() = %q, want %q", got, want)
	}
	_, err = Load(filepath.Join(dir, "missing.pem"), "ES256", "")
	if !errors.Is(err, fs.ErrNotExist) || !strings.HasPrefix(err.Error(), "keys: ") {
		t.Errorf("missing file: got %v", err)
	}
	_, err = Load(path, "RS256", "")
	if !errors.Is(err, ErrUnfit) || !strings.Contains(err.Error(), path) {
		t.Errorf("unfit: got %v, want ErrUnfit naming %s", err, path)
	}
}

func TestGenerate(t *testing.T) {
	for _, alg := range []string{"ES256", "ES384", "ES512", "EdDSA", "PS256"} {
		t.Run(alg, func(t *testing.T) {
			k, err := Generate(alg)
			if err != nil {
				t.Fatal(err)
			}
			if k.Algorithm() != alg {
				t.Errorf("Algorithm() = %s", k.Algorithm())
			}
			if got, want := k.KeyID(), joseThumbprint(t, k.Signer().Public()); got != want {
				t.Errorf("KeyID() = %q, want the thumbprint %q", got, want)
			}
			if r, ok := k.Signer().(*rsa.PrivateKey); ok && r.N.BitLen() != GenerateRSABits {
				t.Errorf("RSA key of %d bits", r.N.BitLen())
			}
			// The PEM reads back as the same key, with the same kid.
			pemData, err := k.MarshalPEM()
			if err != nil {
				t.Fatal(err)
			}
			if b, _ := pem.Decode(pemData); b == nil || b.Type != "PRIVATE KEY" {
				t.Fatalf("MarshalPEM wrote %q", pemData)
			}
			back, err := Parse(pemData, alg, "")
			if err != nil {
				t.Fatal(err)
			}
			if back.KeyID() != k.KeyID() {
				t.Errorf("read back kid %q, want %q", back.KeyID(), k.KeyID())
			}
			tok, err := k.Sign([]byte("x"), "")
			if err != nil {
				t.Fatal(err)
			}
			if got := string(verifyWithJWKS(t, back, tok)); got != "x" {
				t.Errorf("payload %q", got)
			}
		})
	}
	for _, alg := range []string{"HS256", "none", ""} {
		if _, err := Generate(alg); !errors.Is(err, ErrAlgorithm) {
			t.Errorf("Generate(%q): got %v, want ErrAlgorithm", alg, err)
		}
	}
}

func TestSignHeader(t *testing.T) {
	k, err := New(edKey(t), "EdDSA", "kid-1")
	if err != nil {
		t.Fatal(err)
	}
	tok, err := k.Sign([]byte(`{}`), "JWT")
	if err != nil {
		t.Fatal(err)
	}
	head, _, _ := strings.Cut(string(tok), ".")
	raw, err := base64.RawURLEncoding.DecodeString(head)
	if err != nil {
		t.Fatal(err)
	}
	var h map[string]any
	if err := json.Unmarshal(raw, &h); err != nil {
		t.Fatal(err)
	}
	want := map[string]any{"alg": "EdDSA", "kid": "kid-1", "typ": "JWT"}
	if len(h) != len(want) {
		t.Errorf("header %v, want %v", h, want)
	}
	for name, v := range want {
		if h[name] != v {
			t.Errorf("header %s = %v, want %v", name, h[name], v)
		}
	}
}

func TestJWKS(t *testing.T) {
	a, err := New(ecKey(t, elliptic.P256()), "ES256", "")
	if err != nil {
		t.Fatal(err)
	}
	b, err := New(rsaKey(), "PS256", "rsa")
	if err != nil {
		t.Fatal(err)
	}
	set, err := JWKS(a, b)
	if err != nil {
		t.Fatal(err)
	}
	var got struct {
		Keys []map[string]any `json:"keys"`
	}
	if err := json.Unmarshal(set, &got); err != nil {
		t.Fatal(err)
	}
	if len(got.Keys) != 2 {
		t.Fatalf("got %d keys: %s", len(got.Keys), set)
	}
	for i, want := range []map[string]any{
		{"kty": "EC", "crv": "P-256", "alg": "ES256", "use": "sig", "kid": a.KeyID()},
		{"kty": "RSA", "alg": "PS256", "use": "sig", "kid": "rsa", "e": "AQAB"},
	} {
		for name, v := range want {
			if got.Keys[i][name] != v {
				t.Errorf("key %d: %s = %v, want %v", i, name, got.Keys[i][name], v)
			}
		}
		for _, private := range []string{"d", "p", "q", "dp", "dq", "qi"} {
			if _, ok := got.Keys[i][private]; ok {
				t.Errorf("key %d publishes private member %q", i, private)
			}
		}
	}
	one, err := a.PublicJWK()
	if err != nil {
		t.Fatal(err)
	}
	var jk jose.JSONWebKey
	if err := json.Unmarshal(one, &jk); err != nil {
		t.Fatal(err)
	}
	if !jk.IsPublic() || jk.KeyID != a.KeyID() {
		t.Errorf("PublicJWK %s", one)
	}
	dup, err := New(ecKey(t, elliptic.P256()), "ES256", a.KeyID())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := JWKS(a, dup); err == nil || !strings.Contains(err.Error(), "two keys have kid") {
		t.Errorf("duplicate kid: got %v", err)
	}
}

func TestParseAlgorithm(t *testing.T) {
	for _, name := range Algorithms() {
		a, err := ParseAlgorithm(name)
		if err != nil || a.String() != name {
			t.Errorf("ParseAlgorithm(%q) = %v, %v", name, a, err)
		}
	}
	if got := len(Algorithms()); got != 10 {
		t.Errorf("%d algorithms, want 10", got)
	}
}
