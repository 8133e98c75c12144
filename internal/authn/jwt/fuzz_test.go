package jwt

import (
	"crypto/elliptic"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"

	"github.com/gatehouse/gatehouse/internal/policy"
	"github.com/gatehouse/gatehouse/internal/policy/policytest"
)

// FuzzVerify: Authenticate never panics on any token, and never accepts
// one that is not signed by the test key (checked independently with
// go-jose) or whose claims are not good at the test clock.
func FuzzVerify(f *testing.F) {
	good := signer{"k1", jose.ES256, ecKey(f, elliptic.P256())}
	other := signer{"k1", jose.ES256, ecKey(f, elliptic.P256())}
	der, err := x509.MarshalPKIXPublicKey(good.key.Public())
	if err != nil {
		f.Fatal(err)
	}
	keyFile := filepath.Join(f.TempDir(), "k1.pem")
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}), 0o600); err != nil {
		f.Fatal(err)
	}
	const iss = "https://issuer.test"
	w := newWorld()
	a := w.build(f, "issuer: "+iss+"\naudiences: ["+testAud+"]\nalgorithms: [ES256]\nleeway: 30s\n"+
		"keys: [{file: "+keyFile+", kid: k1}]\ncache: {disabled: true}\n")

	f.Add(good.sign(f, claims(iss)))
	f.Add(good.sign(f, claims(iss, "exp", policytest.Start.Add(-time.Hour).Unix())))
	f.Add(good.sign(f, claims(iss, "aud", []string{"x", testAud}, "nbf", policytest.Start.Unix())))
	f.Add(good.sign(f, claims(iss), func(o *jose.SignerOptions) { o.WithType("at+jwt").WithHeader("crit", []string{"x"}) }))
	f.Add(other.sign(f, claims(iss)))
	f.Add("eyJhbGciOiJub25lIn0.eyJzdWIiOiJ4In0.")
	f.Add("a.b.c")
	f.Add("")

	verify := func(tok string) error {
		jws, err := jose.ParseSignedCompact(tok, []jose.SignatureAlgorithm{jose.ES256})
		if err != nil {
			return err
		}
		_, err = jws.Verify(good.key.Public())
		return err
	}
	f.Fuzz(func(t *testing.T, tok string) {
		r := httptest.NewRequest(http.MethodGet, "http://gw.example/products", nil)
		r.Header["Authorization"] = []string{"Bearer " + tok}
		pr, err := a.Authenticate(t.Context(), policytest.Exchange(r))
		if err != nil {
			if _, ok := policy.AsDenial(err); !ok && pr != nil {
				t.Fatalf("a principal with an error: %v", err)
			}
			return
		}
		if pr == nil {
			t.Fatal("no principal and no error")
		}
		if err := verify(tok); err != nil {
			t.Fatalf("accepted %q, which the test key did not sign: %v", tok, err)
		}
		var c struct {
			Iss string          `json:"iss"`
			Aud json.RawMessage `json:"aud"`
			Exp float64         `json:"exp"`
		}
		jws, _ := jose.ParseSignedCompact(tok, []jose.SignatureAlgorithm{jose.ES256})
		payload, _ := jws.Verify(good.key.Public())
		if err := json.Unmarshal(payload, &c); err != nil {
			t.Fatalf("accepted a payload that is not a claims object: %q", payload)
		}
		if c.Iss != iss || float64(policytest.Start.Add(-30*time.Second).Unix()) >= c.Exp {
			t.Fatalf("accepted claims %s: wrong issuer or expired at the test clock", payload)
		}
		var auds []string
		var one string
		if json.Unmarshal(c.Aud, &one) == nil {
			auds = []string{one}
		} else if json.Unmarshal(c.Aud, &auds) != nil {
			t.Fatalf("accepted an aud that is neither a string nor a list: %s", c.Aud)
		}
		found := false
		for _, x := range auds {
			found = found || x == testAud
		}
		if !found {
			t.Fatalf("accepted aud %s without %q", c.Aud, testAud)
		}
	})
}
