package authserver

import (
	"cmp"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/pem"
	"math/big"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/beevik/etree"
	"github.com/gatehouse/gatehouse/internal/config"
	"github.com/gatehouse/gatehouse/internal/saml2"
	"github.com/gatehouse/gatehouse/internal/xmlsig"
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

// samlSigner is a test STS: a self-signed certificate and its key. It
// signs with goxmldsig, an implementation independent of the verifier's.
type samlSigner struct {
	key     *rsa.PrivateKey
	cert    *x509.Certificate
	certPEM []byte
	// canon is the canonicalization; nil: exclusive c14n, what SAML
	// (core §5.4.3) and the verifier ask for.
	canon dsig.Canonicalizer
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
	// The subject confirmation: bearer unless method says otherwise
	// ("none": no SubjectConfirmation); its data when set.
	method                           string
	recipient, address, inResponseTo string
	confNotOnOrAfter                 time.Time
	hokCert                          *x509.Certificate
	oneTimeUse                       bool
}

// assertion builds and signs (enveloped, over the whole Assertion) a SAML
// 2.0 assertion and returns it base64url-encoded, the RFC 8693 saml2 form.
func (s *samlSigner) assertion(t testing.TB, o assertionOpts, tamper func(*etree.Element)) string {
	t.Helper()
	a := etree.NewElement("saml:Assertion")
	a.CreateAttr("xmlns:saml", saml2.NamespaceAssertion)
	a.CreateAttr("ID", o.id)
	a.CreateAttr("Version", "2.0")
	a.CreateAttr("IssueInstant", o.notBefore.UTC().Format(time.RFC3339))
	a.CreateElement("saml:Issuer").SetText(o.issuer)
	subj := a.CreateElement("saml:Subject")
	subj.CreateElement("saml:NameID").SetText(o.subject)
	if o.method != "none" {
		sc := subj.CreateElement("saml:SubjectConfirmation")
		sc.CreateAttr("Method", cmp.Or(o.method, saml2.MethodBearer))
		scd := sc.CreateElement("saml:SubjectConfirmationData")
		for _, kv := range [][2]string{{"Recipient", o.recipient}, {"Address", o.address}, {"InResponseTo", o.inResponseTo}} {
			if kv[1] != "" {
				scd.CreateAttr(kv[0], kv[1])
			}
		}
		if !o.confNotOnOrAfter.IsZero() {
			scd.CreateAttr("NotOnOrAfter", o.confNotOnOrAfter.UTC().Format(time.RFC3339))
		}
		if o.hokCert != nil {
			scd.CreateAttr("xmlns:xsi", "http://www.w3.org/2001/XMLSchema-instance")
			scd.CreateAttr("xsi:type", "saml:KeyInfoConfirmationDataType")
			ki := scd.CreateElement("ds:KeyInfo")
			ki.CreateAttr("xmlns:ds", xmlsig.NamespaceDSig)
			ki.CreateElement("ds:X509Data").CreateElement("ds:X509Certificate").SetText(base64.StdEncoding.EncodeToString(o.hokCert.Raw))
		}
	}
	cond := a.CreateElement("saml:Conditions")
	cond.CreateAttr("NotBefore", o.notBefore.UTC().Format(time.RFC3339))
	cond.CreateAttr("NotOnOrAfter", o.notOnOrAfter.UTC().Format(time.RFC3339))
	if o.audience != "" { // "": none, to test that one is required
		cond.CreateElement("saml:AudienceRestriction").CreateElement("saml:Audience").SetText(o.audience)
	}
	if o.oneTimeUse {
		cond.CreateElement("saml:OneTimeUse")
	}
	ctx, err := dsig.NewSigningContext(s.key, [][]byte{s.cert.Raw})
	if err != nil {
		t.Fatal(err)
	}
	ctx.Canonicalizer = dsig.MakeC14N10ExclusiveCanonicalizerWithPrefixList("")
	if s.canon != nil {
		ctx.Canonicalizer = s.canon
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
// tampered assertions, and ones canonicalized otherwise than with
// exclusive c14n, are invalid_grant.
func TestExchangeSAML(t *testing.T) {
	sts := newSAMLSigner(t)
	other := newSAMLSigner(t)
	inclusive := *sts
	inclusive.canon = dsig.MakeC14N11Canonicalizer()
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
		name, tok string
		why       string // in the internal cause
	}{
		{"other audience", sts.assertion(t, with(func(o *assertionOpts) { o.audience = "https://elsewhere" }), nil), "not for this audience"},
		{"no audience restriction", sts.assertion(t, with(func(o *assertionOpts) { o.audience = "" }), nil), "not for this audience"},
		{"expired", sts.assertion(t, with(func(o *assertionOpts) { o.notOnOrAfter = now.Add(-time.Minute) }), nil), saml2.ErrExpired.Error()},
		{"not yet valid", sts.assertion(t, with(func(o *assertionOpts) { o.notBefore = now.Add(time.Minute) }), nil), saml2.ErrNotYetValid.Error()},
		{"valid for more than an hour", sts.assertion(t, with(func(o *assertionOpts) { o.notOnOrAfter = now.Add(2 * time.Hour) }), nil), "more than 1h"},
		{"untrusted issuer", sts.assertion(t, with(func(o *assertionOpts) { o.issuer = "https://evil.test" }), nil), "not trusted"},
		{"untrusted key", other.assertion(t, with(func(*assertionOpts) {}), nil), saml2.ErrUntrusted.Error()},
		{"tampered subject", sts.assertion(t, with(func(*assertionOpts) {}), func(el *etree.Element) {
			el.FindElement("./Subject/NameID").SetText("admin@example.com")
		}), saml2.ErrSignature.Error()},
		{"inclusive c14n 1.1", inclusive.assertion(t, with(func(*assertionOpts) {}), nil), "exclusive c14n"},
		{"no NameID", sts.assertion(t, with(func(o *assertionOpts) { o.subject = "" }), nil), "NameID"},
		{"not base64", "%%%", "not base64"},
		// The firewall's parser, as at the SOAP doors: what encoding/xml
		// alone would read is refused before anything else.
		{"dtd", base64.StdEncoding.EncodeToString([]byte(`<!DOCTYPE a [<!ENTITY x "y">]><a>&x;</a>`)), "assertion XML"},
		{"attributes run together", base64.StdEncoding.EncodeToString([]byte(`<a x="1"y="2"/>`)), "assertion XML"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			resp, m := e.post(PathToken, "writer", writerSecret, exchangeForm(tc.tok, TokenTypeSAML2))
			if resp.StatusCode != 400 || m["error"] != "invalid_grant" {
				t.Fatalf("got %d %v, want 400 invalid_grant", resp.StatusCode, m)
			}
			if strings.Contains(m["error_description"].(string), "alice") {
				t.Error("the description leaks assertion content")
			}
			// Refused for the reason the case is about.
			if _, err := e.srv.verifySAML(httptest.NewRequest(http.MethodPost, PathToken, nil), tc.tok, &proof{}); err == nil || !strings.Contains(err.Error(), tc.why) {
				t.Errorf("got cause %v, want one with %q", err, tc.why)
			}
		})
	}
}

// TestExchangeSAMLECDSA exchanges an assertion that internal/saml2's signer
// (the one internal/sts uses) signed with ECDSA-SHA256, whose signature
// value is XML-DSig 1.1's r||s rather than ASN.1 DER; the same assertion
// with one bit of the signature flipped is refused.
func TestExchangeSAMLECDSA(t *testing.T) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "test ecdsa sts"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	signer, err := saml2.NewSigner(key, cert)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := signer.Method(), xmlsig.AlgECDSASHA256; got != want {
		t.Fatalf("signer method %q, want %q", got, want)
	}
	e := newEnv(t, "  issuer: ISSUER\n  key_encryption_key: "+testKEK+"\n  saml_issuers:\n    - issuer: https://sts.test\n      certificate_file: sts.pem\n  clients:"+baseClients(""),
		func(e *env) { e.writeFile("sts.pem", pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})) })
	now := e.clock.now()
	sign := func(id string) *etree.Element {
		el := saml2.Build(&saml2.Assertion{ID: id, Issuer: "https://sts.test", IssueInstant: now, NameID: "alice@example.com",
			NotBefore: now, NotOnOrAfter: now.Add(10 * time.Minute), Audiences: [][]string{{e.issuer}},
			Confirmations: []saml2.Confirmation{{Method: saml2.MethodBearer}}})
		if err := signer.Sign(el); err != nil {
			t.Fatal(err)
		}
		return el
	}
	encode := func(el *etree.Element) string {
		doc := etree.NewDocument()
		doc.SetRoot(el)
		b, err := doc.WriteToBytes()
		if err != nil {
			t.Fatal(err)
		}
		return base64.RawURLEncoding.EncodeToString(b)
	}

	resp, m := e.post(PathToken, "writer", writerSecret, exchangeForm(encode(sign(saml2.NewID())), TokenTypeSAML2, "scope", "products:read"))
	if resp.StatusCode != 200 {
		t.Fatalf("exchange of an ECDSA-signed assertion: %d %v", resp.StatusCode, m)
	}
	if _, c := e.verify(m["access_token"].(string)); c["sub"] != "alice@example.com" {
		t.Errorf("got sub %v, want alice@example.com", c["sub"])
	}

	flipped := sign(saml2.NewID())
	sv := flipped.FindElement(".//SignatureValue")
	raw, err := base64.StdEncoding.DecodeString(strings.TrimSpace(sv.Text()))
	if err != nil || len(raw) != 64 {
		t.Fatalf("signature value %q: %v, want 64 bytes of r||s", sv.Text(), err)
	}
	raw[40] ^= 1
	sv.SetText(base64.StdEncoding.EncodeToString(raw))
	resp, m = e.post(PathToken, "writer", writerSecret, exchangeForm(encode(flipped), TokenTypeSAML2))
	if resp.StatusCode != 400 || m["error"] != "invalid_grant" {
		t.Fatalf("a flipped ECDSA signature: %d %v, want 400 invalid_grant", resp.StatusCode, m)
	}
}

// BenchmarkVerifySAML is the SAML subject token check of the exchange
// (decode, round-trip validation, parse, signature, conditions, the replay
// entry), with assertions signed by internal/saml2 as our STS signs them.
func BenchmarkVerifySAML(b *testing.B) {
	rsaSTS := newSAMLSigner(b)
	ecKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		b.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(3), Subject: pkix.Name{CommonName: "bench"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &ecKey.PublicKey, ecKey)
	if err != nil {
		b.Fatal(err)
	}
	ecCert, _ := x509.ParseCertificate(der)
	for _, bc := range []struct {
		name string
		key  crypto.Signer
		cert *x509.Certificate
	}{
		{"rsa-sha256", rsaSTS.key, rsaSTS.cert},
		{"ecdsa-sha256", ecKey, ecCert},
	} {
		b.Run(bc.name, func(b *testing.B) {
			certPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: bc.cert.Raw})
			e := newEnv(b, "  issuer: ISSUER\n  key_encryption_key: "+testKEK+"\n  saml_issuers:\n    - issuer: https://sts.test\n      certificate_file: sts.pem\n  clients:"+baseClients(""),
				func(e *env) { e.writeFile("sts.pem", certPEM) })
			signer, err := saml2.NewSigner(bc.key, bc.cert)
			if err != nil {
				b.Fatal(err)
			}
			now := e.clock.now()
			// Each assertion is single-use: one per iteration, signed
			// before the timer starts.
			toks := make([]string, b.N)
			for i := range toks {
				el := saml2.Build(&saml2.Assertion{Issuer: "https://sts.test", IssueInstant: now, NameID: "alice@example.com",
					NotBefore: now, NotOnOrAfter: now.Add(10 * time.Minute), Audiences: [][]string{{e.issuer}},
					Confirmations: []saml2.Confirmation{{Method: saml2.MethodBearer}}, Attributes: map[string][]string{"roles": {"reader"}}})
				if err := signer.Sign(el); err != nil {
					b.Fatal(err)
				}
				doc := etree.NewDocument()
				doc.SetRoot(el)
				raw, _ := doc.WriteToBytes()
				toks[i] = base64.RawURLEncoding.EncodeToString(raw)
			}
			r := httptest.NewRequest(http.MethodPost, PathToken, nil)
			b.ReportAllocs()
			b.ResetTimer()
			for i := range b.N {
				if _, err := e.srv.verifySAML(r, toks[i], &proof{}); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
