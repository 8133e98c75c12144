package jwt

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/go-jose/go-jose/v4"

	"github.com/gatehouse/gatehouse/internal/authn"
	"github.com/gatehouse/gatehouse/internal/policy/policytest"
)

// jweFixture is an issuer (its JWKS on 127.0.0.1) and the gateway's
// decryption keys, RSA and EC, in PEM files.
type jweFixture struct {
	w        *world
	p        *idp
	issuer   signer
	rsaEnc   *rsa.PrivateKey
	ecEnc    *ecdsa.PrivateKey
	rsaFile  string
	ecFile   string
	stranger *rsa.PrivateKey
}

func newJWEFixture(t *testing.T) *jweFixture {
	f := &jweFixture{w: newWorld(), issuer: signer{kid: "sig-1", alg: jose.RS256, key: rsaKey(0)}, rsaEnc: rsaKey(1), stranger: rsaKey(2)}
	f.p = newIDP(t, f.issuer.jwk())
	ec := ecKey(t, elliptic.P256())
	f.ecEnc = ec
	dir := t.TempDir()
	write := func(name string, key any) string {
		der, err := x509.MarshalPKCS8PrivateKey(key)
		if err != nil {
			t.Fatal(err)
		}
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	f.rsaFile, f.ecFile = write("rsa.pem", f.rsaEnc), write("ec.pem", ec)
	return f
}

func (f *jweFixture) config(extra string) string {
	return jwksConfig(f.p, "RS256", "jwe:\n  keys:\n    - {key: {file: "+f.rsaFile+"}, kid: enc-rsa}\n    - {key: {file: "+f.ecFile+"}, kid: enc-ec}\n"+extra)
}

// encrypt makes a nested JWT of inner with go-jose, independently of the
// code under test.
func encrypt(t testing.TB, inner string, alg jose.KeyAlgorithm, enc jose.ContentEncryption, key any, kid string, edit func(*jose.EncrypterOptions)) string {
	t.Helper()
	o := (&jose.EncrypterOptions{}).WithContentType("JWT").WithType("JWT")
	if edit != nil {
		edit(o)
	}
	e, err := jose.NewEncrypter(enc, jose.Recipient{Algorithm: alg, Key: key, KeyID: kid}, o)
	if err != nil {
		t.Fatal(err)
	}
	obj, err := e.Encrypt([]byte(inner))
	if err != nil {
		t.Fatal(err)
	}
	s, err := obj.CompactSerialize()
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestNestedJWT(t *testing.T) {
	f := newJWEFixture(t)
	iss := f.p.srv.URL
	good := f.issuer.sign(t, claims(iss))
	rsaPub, ecPub := &f.rsaEnc.PublicKey, &f.ecEnc.PublicKey
	attacker := signer{kid: "sig-1", alg: jose.RS256, key: f.stranger}
	a := f.w.build(t, f.config(""))

	accepted := []struct {
		name string
		tok  string
	}{
		{"RSA-OAEP-256", encrypt(t, good, jose.RSA_OAEP_256, jose.A256GCM, rsaPub, "enc-rsa", nil)},
		{"ECDH-ES", encrypt(t, good, jose.ECDH_ES, jose.A256GCM, ecPub, "enc-ec", nil)},
		{"ECDH-ES+A256KW", encrypt(t, good, jose.ECDH_ES_A256KW, jose.A256GCM, ecPub, "enc-ec", nil)},
		{"no kid", encrypt(t, good, jose.RSA_OAEP_256, jose.A256GCM, rsaPub, "", nil)},
		{"cty application/jwt", encrypt(t, good, jose.RSA_OAEP_256, jose.A256GCM, rsaPub, "enc-rsa", func(o *jose.EncrypterOptions) { o.WithContentType("application/JWT") })},
	}
	for _, tc := range accepted {
		t.Run(tc.name, func(t *testing.T) {
			pr, err := auth(t, a, bearer(tc.tok))
			if err != nil {
				t.Fatalf("refused: %v", err)
			}
			if pr.Subject != "alice" {
				t.Fatalf("principal %+v", pr)
			}
		})
	}

	tamper := func(tok string, part int) string {
		parts := strings.Split(tok, ".")
		b, _ := base64.RawURLEncoding.DecodeString(parts[part])
		b[len(b)/2] ^= 1
		parts[part] = base64.RawURLEncoding.EncodeToString(b)
		return strings.Join(parts, ".")
	}
	symKey := make([]byte, 32)
	rand.Read(symKey)
	refused := []struct {
		name, tok, desc string
	}{
		{"dir", encrypt(t, good, jose.DIRECT, jose.A256GCM, symKey, "enc-rsa", nil), descDecrypt},
		{"RSA1_5", encrypt(t, good, jose.RSA1_5, jose.A256GCM, rsaPub, "enc-rsa", nil), descDecrypt},
		{"RSA-OAEP (SHA-1)", encrypt(t, good, jose.RSA_OAEP, jose.A256GCM, rsaPub, "enc-rsa", nil), descDecrypt},
		{"A128GCM", encrypt(t, good, jose.RSA_OAEP_256, jose.A128GCM, rsaPub, "enc-rsa", nil), descDecrypt},
		{"A256CBC-HS512", encrypt(t, good, jose.RSA_OAEP_256, jose.A256CBC_HS512, rsaPub, "enc-rsa", nil), descDecrypt},
		{"zip", encrypt(t, good, jose.RSA_OAEP_256, jose.A256GCM, rsaPub, "enc-rsa", func(o *jose.EncrypterOptions) { o.Compression = jose.DEFLATE }), descDecrypt},
		{"no cty", encrypt(t, good, jose.RSA_OAEP_256, jose.A256GCM, rsaPub, "enc-rsa", func(o *jose.EncrypterOptions) { delete(o.ExtraHeaders, jose.HeaderContentType) }), descDecrypt},
		{"encrypted to another key", encrypt(t, good, jose.RSA_OAEP_256, jose.A256GCM, &f.stranger.PublicKey, "enc-rsa", nil), descDecrypt},
		{"tampered ciphertext", tamper(encrypt(t, good, jose.RSA_OAEP_256, jose.A256GCM, rsaPub, "enc-rsa", nil), 3), descDecrypt},
		{"tampered tag", tamper(encrypt(t, good, jose.RSA_OAEP_256, jose.A256GCM, rsaPub, "enc-rsa", nil), 4), descDecrypt},
		{"tampered key", tamper(encrypt(t, good, jose.RSA_OAEP_256, jose.A256GCM, rsaPub, "enc-rsa", nil), 1), descDecrypt},
		{"rsa alg for the ec kid", encrypt(t, good, jose.RSA_OAEP_256, jose.A256GCM, rsaPub, "enc-ec", nil), descDecrypt},
		{"inner signed by an attacker", encrypt(t, attacker.sign(t, claims(iss)), jose.RSA_OAEP_256, jose.A256GCM, rsaPub, "enc-rsa", nil), descSignature},
		{"inner expired", encrypt(t, f.issuer.sign(t, claims(iss, "exp", 1)), jose.RSA_OAEP_256, jose.A256GCM, rsaPub, "enc-rsa", nil), descExpired},
		{"inner unsigned", encrypt(t, "eyJhbGciOiJub25lIn0."+base64.RawURLEncoding.EncodeToString([]byte(`{"iss":"`+iss+`","sub":"x"}`))+".", jose.RSA_OAEP_256, jose.A256GCM, rsaPub, "enc-rsa", nil), descAlg},
		{"inner not a JWS", encrypt(t, `{"iss":"`+iss+`"}`, jose.RSA_OAEP_256, jose.A256GCM, rsaPub, "enc-rsa", nil), descMalformed},
		{"doubly encrypted", encrypt(t, encrypt(t, good, jose.RSA_OAEP_256, jose.A256GCM, rsaPub, "enc-rsa", nil), jose.RSA_OAEP_256, jose.A256GCM, rsaPub, "enc-rsa", nil), descMalformed},
	}
	for _, tc := range refused {
		t.Run(tc.name, func(t *testing.T) {
			_, err := auth(t, a, bearer(tc.tok))
			wantDenial(t, err, http.StatusUnauthorized, "invalid_token", tc.desc)
		})
	}

	t.Run("kid of another recipient is declined", func(t *testing.T) {
		_, err := auth(t, a, bearer(encrypt(t, good, jose.RSA_OAEP_256, jose.A256GCM, &f.stranger.PublicKey, "someone-else", nil)))
		var dec *authn.Declined
		if !errors.As(err, &dec) {
			t.Fatalf("got %v, want Declined", err)
		}
	})
	t.Run("without jwe a JWE is declined", func(t *testing.T) {
		plain := f.w.build(t, jwksConfig(f.p, "RS256"))
		_, err := auth(t, plain, bearer(encrypt(t, good, jose.RSA_OAEP_256, jose.A256GCM, rsaPub, "enc-rsa", nil)))
		var dec *authn.Declined
		if !errors.As(err, &dec) {
			t.Fatalf("got %v, want Declined", err)
		}
	})
	t.Run("required refuses a plain JWS", func(t *testing.T) {
		req := f.w.build(t, f.config("  required: true\n"))
		_, err := auth(t, req, bearer(good))
		wantDenial(t, err, http.StatusUnauthorized, "invalid_token", descNotEncrypted)
		if _, err := auth(t, req, bearer(encrypt(t, good, jose.RSA_OAEP_256, jose.A256GCM, rsaPub, "enc-rsa", nil))); err != nil {
			t.Fatalf("nested JWT refused: %v", err)
		}
	})
}

func TestJWEConfig(t *testing.T) {
	f := newJWEFixture(t)
	small, err := rsa.GenerateKey(rand.Reader, 1024)
	if err != nil {
		t.Fatal(err)
	}
	der, _ := x509.MarshalPKCS8PrivateKey(small)
	smallFile := filepath.Join(t.TempDir(), "small.pem")
	os.WriteFile(smallFile, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), 0o600)
	for _, tc := range []struct{ name, yaml, want string }{
		{"dir", f.config("  algorithms: [dir]\n"), "jwe.algorithms[0]"},
		{"RSA1_5", f.config("  algorithms: [RSA1_5]\n"), "jwe.algorithms[0]"},
		{"no keys", jwksConfig(f.p, "RS256", "jwe: {keys: []}"), "jwe.keys"},
		{"small key", jwksConfig(f.p, "RS256", "jwe: {keys: [{key: {file: "+smallFile+"}}]}"), "jwe.keys[0].key"},
		{"rsa key, ec algs only", jwksConfig(f.p, "RS256", "jwe: {algorithms: [ECDH-ES], keys: [{key: {file: "+f.rsaFile+"}}]}"), "jwe.keys[0].key"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := New(policytest.Node(t, tc.yaml), f.w.env())
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("got %v, want an error naming %s", err, tc.want)
			}
		})
	}
}

// FuzzNestedJWT: Authenticate with jwe never panics, and never accepts a
// five-part token that go-jose (independently) does not decrypt with the
// gateway's key into a JWS the issuer's key verifies. Run briefly: go
// test -run XXX -fuzz FuzzNestedJWT -fuzztime 20s ./internal/authn/jwt/.
func FuzzNestedJWT(f *testing.F) {
	good := signer{"k1", jose.ES256, ecKey(f, elliptic.P256())}
	enc := ecKey(f, elliptic.P256())
	dir := f.TempDir()
	pubDER, _ := x509.MarshalPKIXPublicKey(good.key.Public())
	keyFile := filepath.Join(dir, "k1.pem")
	os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pubDER}), 0o600)
	encDER, _ := x509.MarshalPKCS8PrivateKey(enc)
	encFile := filepath.Join(dir, "enc.pem")
	os.WriteFile(encFile, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: encDER}), 0o600)
	const iss = "https://issuer.test"
	w := newWorld()
	a := w.build(f, "issuer: "+iss+"\naudiences: ["+testAud+"]\nalgorithms: [ES256]\nkeys: [{file: "+keyFile+", kid: k1}]\n"+
		"cache: {disabled: true}\njwe: {keys: [{key: {file: "+encFile+"}, kid: e1}]}\n")
	inner := good.sign(f, claims(iss))
	f.Add(encrypt(f, inner, jose.ECDH_ES_A256KW, jose.A256GCM, &enc.PublicKey, "e1", nil))
	f.Add(encrypt(f, inner, jose.ECDH_ES, jose.A256GCM, &enc.PublicKey, "", nil))
	f.Add(encrypt(f, "x.y.z", jose.ECDH_ES, jose.A256GCM, &enc.PublicKey, "e1", nil))
	f.Fuzz(func(t *testing.T, tok string) {
		r := httptest.NewRequest(http.MethodGet, "http://gw.example/products", nil)
		r.Header["Authorization"] = []string{"Bearer " + tok}
		pr, err := a.Authenticate(t.Context(), policytest.Exchange(r))
		if err != nil || strings.Count(tok, ".") != 4 {
			return
		}
		if pr == nil {
			t.Fatal("no principal and no error")
		}
		obj, err := jose.ParseEncryptedCompact(tok, []jose.KeyAlgorithm{jose.ECDH_ES, jose.ECDH_ES_A256KW}, []jose.ContentEncryption{jose.A256GCM})
		if err != nil {
			t.Fatalf("accepted a JWE go-jose does not parse: %v", err)
		}
		plain, err := obj.Decrypt(enc)
		if err != nil {
			t.Fatalf("accepted a JWE go-jose does not decrypt: %v", err)
		}
		jws, err := jose.ParseSignedCompact(string(plain), []jose.SignatureAlgorithm{jose.ES256})
		if err != nil {
			t.Fatalf("accepted a nested token that is no JWS: %v", err)
		}
		if _, err := jws.Verify(good.key.Public()); err != nil {
			t.Fatalf("accepted a nested token the issuer did not sign: %v", err)
		}
	})
}
