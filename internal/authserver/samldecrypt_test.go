package authserver

import (
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/pem"
	"math/big"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/beevik/etree"

	"github.com/gatehouse/gatehouse/internal/saml2"
	"github.com/gatehouse/gatehouse/internal/xmlenc"
)

// encryptB64 wraps a base64url assertion (the RFC 8693 saml2 form) in an
// EncryptedAssertion for pub and returns it in the same form.
func encryptB64(t *testing.T, tok string, pub *rsa.PublicKey) string {
	t.Helper()
	raw, err := base64.RawURLEncoding.DecodeString(tok)
	if err != nil {
		t.Fatal(err)
	}
	doc := etree.NewDocument()
	if err := doc.ReadFromBytes(raw); err != nil {
		t.Fatal(err)
	}
	w, err := xmlenc.EncryptWrapped(doc.Root(), "saml2:EncryptedAssertion", saml2.NamespaceAssertion, pub, xmlenc.KeyOptions{})
	if err != nil {
		t.Fatal(err)
	}
	d := etree.NewDocument()
	d.SetRoot(w)
	out, _ := d.WriteToBytes()
	return base64.RawURLEncoding.EncodeToString(out)
}

// TestExchangeEncryptedSAML: token exchange takes an EncryptedAssertion
// addressed to the gateway, decrypts it and verifies the assertion as a
// plain one; one encrypted to another key, tampered, or arriving where no
// key is configured is invalid_grant with the usual description.
func TestExchangeEncryptedSAML(t *testing.T) {
	sts := newSAMLSigner(t)
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(7), Subject: pkix.Name{CommonName: "gateway enc"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour)}
	der, _ := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	keyDER, _ := x509.MarshalPKCS8PrivateKey(key)
	section := "  issuer: ISSUER\n  key_encryption_key: " + testKEK + "\n  saml_issuers:\n    - issuer: https://sts.test\n      certificate_file: sts.pem\n" +
		"  saml_decryption_keys:\n    - {certificate_file: enc.pem, key: {file: enc.key}}\n  clients:" + baseClients("")
	e := newEnv(t, section, func(e *env) {
		e.writeFile("sts.pem", sts.certPEM)
		e.writeFile("enc.pem", pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}))
		e.writeFile("enc.key", pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER}))
	})
	now := e.clock.now()
	n := 0
	opts := func() assertionOpts {
		n++
		return assertionOpts{id: "_enc" + strconv.Itoa(n), issuer: "https://sts.test", subject: "alice@example.com", audience: e.issuer,
			notBefore: now.Add(-time.Minute), notOnOrAfter: now.Add(5 * time.Minute)}
	}
	resp, m := e.post(PathToken, "writer", writerSecret, exchangeForm(encryptB64(t, sts.assertion(t, opts(), nil), &key.PublicKey), TokenTypeSAML2, "scope", "products:read"))
	if resp.StatusCode != 200 {
		t.Fatalf("exchange: %d %v", resp.StatusCode, m)
	}
	if _, c := e.verify(m["access_token"].(string)); c["sub"] != "alice@example.com" {
		t.Fatalf("claims %v", c)
	}
	other, _ := rsa.GenerateKey(rand.Reader, 2048)
	tampered := func() string {
		tok := encryptB64(t, sts.assertion(t, opts(), nil), &key.PublicKey)
		raw, _ := base64.RawURLEncoding.DecodeString(tok)
		d := etree.NewDocument()
		d.ReadFromBytes(raw)
		cv := d.FindElement("//EncryptedData/CipherData/CipherValue")
		v, _ := base64.StdEncoding.DecodeString(cv.Text())
		v[30] ^= 1
		cv.SetText(base64.StdEncoding.EncodeToString(v))
		out, _ := d.WriteToBytes()
		return base64.RawURLEncoding.EncodeToString(out)
	}()
	for _, tc := range []struct{ name, tok, why string }{
		{"another key", encryptB64(t, sts.assertion(t, opts(), nil), &other.PublicKey), "does not decrypt"},
		{"tampered", tampered, "does not decrypt"},
		{"tampered assertion inside", encryptB64(t, sts.assertion(t, opts(), func(el *etree.Element) {
			el.FindElement("./Subject/NameID").SetText("admin@example.com")
		}), &key.PublicKey), saml2.ErrSignature.Error()},
	} {
		t.Run(tc.name, func(t *testing.T) {
			resp, m := e.post(PathToken, "writer", writerSecret, exchangeForm(tc.tok, TokenTypeSAML2))
			if resp.StatusCode != 400 || m["error"] != "invalid_grant" {
				t.Fatalf("got %d %v", resp.StatusCode, m)
			}
			if _, err := e.srv.verifySAML(httptest.NewRequest(http.MethodPost, PathToken, nil), tc.tok, &proof{}); err == nil || !strings.Contains(err.Error(), tc.why) {
				t.Errorf("got cause %v, want %q", err, tc.why)
			}
		})
	}
	t.Run("no keys configured", func(t *testing.T) {
		plain := newEnv(t, "  issuer: ISSUER\n  key_encryption_key: "+testKEK+"\n  saml_issuers:\n    - issuer: https://sts.test\n      certificate_file: sts.pem\n  clients:"+baseClients(""),
			func(e *env) { e.writeFile("sts.pem", sts.certPEM) })
		tok := encryptB64(t, sts.assertion(t, opts(), nil), &key.PublicKey)
		if _, err := plain.srv.verifySAML(httptest.NewRequest(http.MethodPost, PathToken, nil), tok, &proof{}); err == nil || !strings.Contains(err.Error(), "not configured") {
			t.Errorf("got %v", err)
		}
	})
}
