package authserver

import (
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/pem"
	"math/big"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/beevik/etree"
	"github.com/gatehouse/gatehouse/internal/config"
	dsig "github.com/russellhaering/goxmldsig"
)

func exchangeForm(subject, typ string, kv ...string) url.Values {
	f := url.Values{"grant_type": {config.GrantTokenExchange}, "subject_token": {subject}, "subject_token_type": {typ}}
	for i := 0; i+1 < len(kv); i += 2 {
		f.Set(kv[i], kv[i+1])
	}
	return f
}

// TestExchangeJWT exchanges a reader token for a down-scoped token naming
// the exchanging client in act; more scope than the subject token had is
// invalid_scope; a revoked subject token is invalid_grant.
func TestExchangeJWT(t *testing.T) {
	e := newEnv(t, defaultSection(""))
	subject := e.token("writer", writerSecret, "products:read")
	resp, m := e.post(PathToken, "writer", writerSecret, exchangeForm(subject, TokenTypeAccessToken, "scope", "products:read"))
	if resp.StatusCode != 200 {
		t.Fatalf("exchange: %d %v", resp.StatusCode, m)
	}
	if got, want := m["issued_token_type"], TokenTypeAccessToken; got != want {
		t.Errorf("issued_token_type %v, want %v", got, want)
	}
	_, c := e.verify(m["access_token"].(string))
	act, _ := c["act"].(map[string]any)
	if c["sub"] != "writer" || c["scope"] != "products:read" || act["sub"] != "writer" {
		t.Errorf("exchanged claims: %v", c)
	}
	subjExp := decodePart(t, subject, 1)["exp"].(float64)
	if c["exp"].(float64) > subjExp {
		t.Errorf("the exchanged token outlives its subject token: exp %v > %v", c["exp"], subjExp)
	}

	// Exchanging the exchanged token nests the first act.
	resp, m2 := e.post(PathToken, "writer", writerSecret, exchangeForm(m["access_token"].(string), TokenTypeJWT))
	if resp.StatusCode != 200 {
		t.Fatalf("second exchange: %d %v", resp.StatusCode, m2)
	}
	_, c2 := e.verify(m2["access_token"].(string))
	if inner, _ := c2["act"].(map[string]any)["act"].(map[string]any); inner["sub"] != "writer" {
		t.Errorf("nested act: %v", c2["act"])
	}

	for _, tc := range []struct {
		name string
		form url.Values
		code string
	}{
		{"scope beyond the subject token", exchangeForm(subject, TokenTypeAccessToken, "scope", "products:write"), "invalid_scope"},
		{"forged subject token", exchangeForm(subject[:len(subject)-4]+"AAAA", TokenTypeAccessToken), "invalid_grant"},
		{"unsupported type", exchangeForm(subject, "urn:ietf:params:oauth:token-type:id_token"), "invalid_request"},
		{"missing subject", url.Values{"grant_type": {config.GrantTokenExchange}}, "invalid_request"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			resp, m := e.post(PathToken, "writer", writerSecret, tc.form)
			if resp.StatusCode != 400 || m["error"] != tc.code {
				t.Fatalf("got %d %v, want 400 %s", resp.StatusCode, m, tc.code)
			}
		})
	}
	t.Run("revoked subject token", func(t *testing.T) {
		if resp, _ := e.post(PathRevoke, "writer", writerSecret, url.Values{"token": {subject}}); resp.StatusCode != 200 {
			t.Fatal("revoke failed")
		}
		resp, m := e.post(PathToken, "writer", writerSecret, exchangeForm(subject, TokenTypeAccessToken))
		if resp.StatusCode != 400 || m["error"] != "invalid_grant" {
			t.Fatalf("got %d %v, want invalid_grant", resp.StatusCode, m)
		}
	})
}

// samlSigner is a test STS: a self-signed certificate and its key.
type samlSigner struct {
	key     *rsa.PrivateKey
	cert    *x509.Certificate
	certPEM []byte
}

func newSAMLSigner(t testing.TB) *samlSigner {
	t.Helper()
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "test sts"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	return &samlSigner{key: key, cert: cert, certPEM: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})}
}

type assertionOpts struct {
	id, issuer, subject, audience string
	notBefore, notOnOrAfter       time.Time
}

// assertion builds and signs (enveloped, over the whole Assertion) a SAML
// 2.0 assertion and returns it base64url-encoded, the RFC 8693 saml2 form.
func (s *samlSigner) assertion(t testing.TB, o assertionOpts, tamper func(*etree.Element)) string {
	t.Helper()
	a := etree.NewElement("saml:Assertion")
	a.CreateAttr("xmlns:saml", samlNS)
	a.CreateAttr("ID", o.id)
	a.CreateAttr("Version", "2.0")
	a.CreateAttr("IssueInstant", o.notBefore.UTC().Format(time.RFC3339))
	a.CreateElement("saml:Issuer").SetText(o.issuer)
	a.CreateElement("saml:Subject").CreateElement("saml:NameID").SetText(o.subject)
	cond := a.CreateElement("saml:Conditions")
	cond.CreateAttr("NotBefore", o.notBefore.UTC().Format(time.RFC3339))
	cond.CreateAttr("NotOnOrAfter", o.notOnOrAfter.UTC().Format(time.RFC3339))
	cond.CreateElement("saml:AudienceRestriction").CreateElement("saml:Audience").SetText(o.audience)
	ctx, err := dsig.NewSigningContext(s.key, [][]byte{s.cert.Raw})
	if err != nil {
		t.Fatal(err)
	}
	signed, err := ctx.SignEnveloped(a)
	if err != nil {
		t.Fatal(err)
	}
	if tamper != nil {
		tamper(signed)
	}
	doc := etree.NewDocument()
	doc.SetRoot(signed)
	out, err := doc.WriteToBytes()
	if err != nil {
		t.Fatal(err)
	}
	return base64.RawURLEncoding.EncodeToString(out)
}

// TestExchangeSAML exchanges an assertion signed by a trusted STS key for
// a JWT access token; replays, foreign audiences, expired, untrusted and
// tampered assertions are invalid_grant.
func TestExchangeSAML(t *testing.T) {
	sts := newSAMLSigner(t)
	other := newSAMLSigner(t)
	e := newEnv(t, "  issuer: ISSUER\n  key_encryption_key: "+testKEK+"\n  saml_issuers:\n    - issuer: https://sts.test\n      certificate_file: sts.pem\n  clients:"+baseClients(""),
		func(e *env) { e.writeFile("sts.pem", sts.certPEM) })
	now := e.clock.now()
	base := assertionOpts{id: "_a1", issuer: "https://sts.test", subject: "alice@example.com", audience: e.issuer,
		notBefore: now.Add(-time.Minute), notOnOrAfter: now.Add(5 * time.Minute)}

	resp, m := e.post(PathToken, "writer", writerSecret, exchangeForm(sts.assertion(t, base, nil), TokenTypeSAML2, "scope", "products:read"))
	if resp.StatusCode != 200 {
		t.Fatalf("exchange: %d %v", resp.StatusCode, m)
	}
	_, c := e.verify(m["access_token"].(string))
	if c["sub"] != "alice@example.com" || c["scope"] != "products:read" || c["client_id"] != "writer" || c["act"].(map[string]any)["sub"] != "writer" {
		t.Errorf("claims: %v", c)
	}
	if resp, m := e.post(PathToken, "writer", writerSecret, exchangeForm(sts.assertion(t, base, nil), TokenTypeSAML2)); resp.StatusCode != 400 || m["error"] != "invalid_grant" {
		t.Errorf("replayed assertion: %d %v, want invalid_grant", resp.StatusCode, m)
	}
	with := func(f func(*assertionOpts)) assertionOpts {
		o := base
		o.id = "_" + newJTI()
		f(&o)
		return o
	}
	for _, tc := range []struct {
		name string
		tok  string
	}{
		{"other audience", sts.assertion(t, with(func(o *assertionOpts) { o.audience = "https://elsewhere" }), nil)},
		{"expired", sts.assertion(t, with(func(o *assertionOpts) { o.notOnOrAfter = now.Add(-time.Minute) }), nil)},
		{"untrusted issuer", sts.assertion(t, with(func(o *assertionOpts) { o.issuer = "https://evil.test" }), nil)},
		{"untrusted key", other.assertion(t, with(func(*assertionOpts) {}), nil)},
		{"tampered subject", sts.assertion(t, with(func(*assertionOpts) {}), func(el *etree.Element) {
			el.FindElement("./Subject/NameID").SetText("admin@example.com")
		})},
		{"not base64", "%%%"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			resp, m := e.post(PathToken, "writer", writerSecret, exchangeForm(tc.tok, TokenTypeSAML2))
			if resp.StatusCode != 400 || m["error"] != "invalid_grant" {
				t.Fatalf("got %d %v, want 400 invalid_grant", resp.StatusCode, m)
			}
			if strings.Contains(m["error_description"].(string), "alice") {
				t.Error("the description leaks assertion content")
			}
		})
	}
}
