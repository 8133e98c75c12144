package authserver

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/internal/tlstest"
	jose "github.com/go-jose/go-jose/v4"
)

// dpopProof signs an RFC 9449 proof for a POST to htu with go-jose.
func dpopProof(t testing.TB, key *ecdsa.PrivateKey, htu string, iat time.Time) string {
	t.Helper()
	sig, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.ES256, Key: key},
		(&jose.SignerOptions{EmbedJWK: true}).WithType("dpop+jwt"))
	if err != nil {
		t.Fatal(err)
	}
	payload, _ := json.Marshal(map[string]any{"jti": newJTI(), "htm": "POST", "htu": htu, "iat": iat.Unix()})
	obj, err := sig.Sign(payload)
	if err != nil {
		t.Fatal(err)
	}
	out, err := obj.CompactSerialize()
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func jkt(t testing.TB, pub crypto.PublicKey) string {
	t.Helper()
	tp, err := (&jose.JSONWebKey{Key: pub}).Thumbprint(crypto.SHA256)
	if err != nil {
		t.Fatal(err)
	}
	return base64.RawURLEncoding.EncodeToString(tp)
}

// TestDPoPBoundToken: a token request with a DPoP proof gets a DPoP token
// bound to the proof key (cnf.jkt); a replayed or misdirected proof is
// invalid_dpop_proof.
func TestDPoPBoundToken(t *testing.T) {
	e := newEnv(t, defaultSection(""))
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	cc := url.Values{"grant_type": {"client_credentials"}}
	proof := dpopProof(t, key, e.issuer+PathToken, e.clock.now())
	resp, m := e.post(PathToken, "reader", readerSecret, cc, "DPoP", proof)
	if resp.StatusCode != 200 || m["token_type"] != "DPoP" {
		t.Fatalf("got %d %v, want a DPoP token", resp.StatusCode, m)
	}
	_, c := e.verify(m["access_token"].(string))
	if got, want := c["cnf"], map[string]any{"jkt": jkt(t, &key.PublicKey)}; fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("cnf %v, want %v", got, want)
	}
	_, in := e.post(PathIntrospect, "writer", writerSecret, url.Values{"token": {m["access_token"].(string)}})
	if in["token_type"] != "DPoP" {
		t.Errorf("introspection token_type %v, want DPoP", in["token_type"])
	}
	for _, tc := range []struct {
		name  string
		proof string
	}{
		{"replayed", proof},
		{"other endpoint", dpopProof(t, key, e.issuer+PathIntrospect, e.clock.now())},
		{"stale", dpopProof(t, key, e.issuer+PathToken, e.clock.now().Add(-10*time.Minute))},
	} {
		t.Run(tc.name, func(t *testing.T) {
			resp, m := e.post(PathToken, "reader", readerSecret, cc, "DPoP", tc.proof)
			if resp.StatusCode != 400 || m["error"] != "invalid_dpop_proof" {
				t.Fatalf("got %d %v, want 400 invalid_dpop_proof", resp.StatusCode, m)
			}
		})
	}
}

// TestTLSClientAuth authenticates a client by its certificate over a real
// TLS listener; the token is bound to it (cnf x5t#S256, RFC 8705 §3).
func TestTLSClientAuth(t *testing.T) {
	ca := tlstest.NewCA(t, "test clients")
	serverCert := ca.Server(t)
	good, bad := ca.Client(t, "billing"), ca.Client(t, "intruder")
	e := newEnv(t, defaultSection(`    - client_id: billing
      tls_client_auth_subject_dn: CN=billing
      scopes: [invoices:read]
`), func(e *env) {
		pool := x509.NewCertPool()
		pool.AddCert(ca.Cert)
		e.ts.TLS = &tls.Config{Certificates: []tls.Certificate{serverCert.TLS}, ClientCAs: pool, ClientAuth: tls.VerifyClientCertIfGiven}
	})
	client := func(leaf *tlstest.Leaf) *http.Client {
		roots := x509.NewCertPool()
		roots.AddCert(ca.Cert)
		cfg := &tls.Config{RootCAs: roots}
		if leaf != nil {
			cfg.Certificates = []tls.Certificate{leaf.TLS}
		}
		return &http.Client{Transport: &http.Transport{TLSClientConfig: cfg}, Timeout: 5 * time.Second}
	}
	form := url.Values{"grant_type": {"client_credentials"}, "client_id": {"billing"}}
	for _, tc := range []struct {
		name   string
		leaf   *tlstest.Leaf
		status int
	}{{"right certificate", good, 200}, {"other certificate", bad, 401}, {"no certificate", nil, 401}} {
		t.Run(tc.name, func(t *testing.T) {
			e.ts.Client().Transport = client(tc.leaf).Transport
			resp, m := e.post(PathToken, "", "", form)
			if resp.StatusCode != tc.status {
				t.Fatalf("got %d %v, want %d", resp.StatusCode, m, tc.status)
			}
			if tc.status != 200 {
				return
			}
			_, c := e.verify(m["access_token"].(string))
			sum := sha256.Sum256(good.TLS.Certificate[0])
			want := base64.RawURLEncoding.EncodeToString(sum[:])
			if cnf, _ := c["cnf"].(map[string]any); cnf["x5t#S256"] != want {
				t.Errorf("cnf %v, want x5t#S256 %s", c["cnf"], want)
			}
		})
	}
}

// TestPrivateKeyJWT authenticates with a client assertion signed by a key
// whose public half is registered; a replayed or wrongly addressed
// assertion is invalid_client.
func TestPrivateKeyJWT(t *testing.T) {
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	pub := jose.JSONWebKey{Key: &key.PublicKey, KeyID: "k1", Algorithm: "ES256", Use: "sig"}
	set, _ := json.Marshal(jose.JSONWebKeySet{Keys: []jose.JSONWebKey{pub}})
	e := newEnv(t, defaultSection(`    - client_id: signer
      jwks_file: signer.jwks
      scopes: [products:read]
`), func(e *env) { e.writeFile("signer.jwks", set) })
	sign := func(claims map[string]any) string {
		s, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.ES256, Key: key}, (&jose.SignerOptions{}).WithHeader("kid", "k1"))
		if err != nil {
			t.Fatal(err)
		}
		b, _ := json.Marshal(claims)
		obj, err := s.Sign(b)
		if err != nil {
			t.Fatal(err)
		}
		out, _ := obj.CompactSerialize()
		return out
	}
	claims := func(aud string) map[string]any {
		return map[string]any{"iss": "signer", "sub": "signer", "aud": aud, "jti": newJTI(), "exp": e.clock.now().Add(time.Minute).Unix()}
	}
	form := func(assertion string) url.Values {
		return url.Values{"grant_type": {"client_credentials"}, "client_assertion_type": {clientAssertionType}, "client_assertion": {assertion}}
	}
	good := sign(claims(e.issuer + PathToken))
	if resp, m := e.post(PathToken, "", "", form(good)); resp.StatusCode != 200 {
		t.Fatalf("private_key_jwt: %d %v", resp.StatusCode, m)
	}
	other, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	otherSigner, _ := jose.NewSigner(jose.SigningKey{Algorithm: jose.ES256, Key: other}, (&jose.SignerOptions{}).WithHeader("kid", "k1"))
	b, _ := json.Marshal(claims(e.issuer))
	forged, _ := otherSigner.Sign(b)
	forgedTok, _ := forged.CompactSerialize()
	expired := claims(e.issuer)
	expired["exp"] = e.clock.now().Add(-time.Hour).Unix()
	for _, tc := range []struct{ name, assertion string }{
		{"replayed", good},
		{"other audience", sign(claims("https://elsewhere"))},
		{"wrong key", forgedTok},
		{"expired", sign(expired)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			resp, m := e.post(PathToken, "", "", form(tc.assertion))
			if resp.StatusCode != 401 || m["error"] != "invalid_client" {
				t.Fatalf("got %d %v, want 401 invalid_client", resp.StatusCode, m)
			}
		})
	}
}
