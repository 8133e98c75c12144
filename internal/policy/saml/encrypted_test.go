package saml

import (
	"crypto/rsa"
	"crypto/x509/pkix"
	"encoding/base64"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/beevik/etree"

	"github.com/gatehouse/gatehouse/internal/saml2"
	"github.com/gatehouse/gatehouse/internal/xmlenc"
	"github.com/gatehouse/gatehouse/internal/xmlsig/xmlsigtest"
)

// encFiles writes the gateway's encryption certificate and key and
// returns the policy lines of decryption.
func (f *fixture) encFiles(t *testing.T) (*xmlsigtest.Cert, string) {
	gw := f.ca.Issue(t, pkix.Name{CommonName: "gateway encryption"}, xmlsigtest.RSAKey(t, 4), nil)
	cert := filepath.Join(f.dir, "gw-enc.pem")
	key := filepath.Join(f.dir, "gw-enc.key")
	os.WriteFile(cert, gw.CertPEM(), 0o600)
	os.WriteFile(key, gw.KeyPEM(t), 0o600)
	return gw, "decryption:\n  keys: [{certificate: " + cert + ", key: {file: " + key + "}}]\n"
}

// encryptAssertion wraps the assertion (XML text) in an
// EncryptedAssertion for pub.
func encryptAssertion(t *testing.T, tok string, pub *rsa.PublicKey) string {
	doc := etree.NewDocument()
	if err := doc.ReadFromString(tok); err != nil {
		t.Fatal(err)
	}
	w, err := xmlenc.EncryptWrapped(doc.Root(), "saml2:EncryptedAssertion", saml2.NamespaceAssertion, pub, xmlenc.KeyOptions{})
	if err != nil {
		t.Fatal(err)
	}
	d := etree.NewDocument()
	d.SetRoot(w)
	s, _ := d.WriteToString()
	return s
}

func TestEncryptedAssertion(t *testing.T) {
	f := newFixture(t)
	gw, dec := f.encFiles(t)
	p := f.policy(t, basicPolicy+dec)
	tok := f.issue(t, "alice", "alicepw", "urn:gatehouse:products")
	gwPub := gw.Cert.PublicKey.(*rsa.PublicKey)

	t.Run("accepted", func(t *testing.T) {
		ex, err := apply(t, p, f.message(encryptAssertion(t, tok, gwPub), "GetProduct"), true)
		wantCode(t, err, "", 0)
		if ex.Principal == nil || ex.Principal.Subject != "alice" {
			t.Fatalf("principal %+v", ex.Principal)
		}
		b, _ := ex.Body(1 << 20)
		if strings.Contains(string(b), "EncryptedAssertion") {
			t.Fatalf("forwarded the Security header:\n%s", b)
		}
	})
	t.Run("xmlsec1 encrypted", func(t *testing.T) {
		xmlsec := xmlsigtest.Xmlsec1(t)
		tmpl := filepath.Join(f.dir, "tmpl.xml")
		os.WriteFile(tmpl, []byte(`<xenc:EncryptedData xmlns:xenc="`+xmlenc.NamespaceXENC+`" Type="`+xmlenc.TypeElement+`"><xenc:EncryptionMethod Algorithm="`+xmlenc.AES256GCM+`"/><ds:KeyInfo xmlns:ds="`+xmlenc.NamespaceDSig+`"><xenc:EncryptedKey><xenc:EncryptionMethod Algorithm="`+xmlenc.RSAOAEPMGF1P+`"/><xenc:CipherData><xenc:CipherValue/></xenc:CipherData></xenc:EncryptedKey></ds:KeyInfo><xenc:CipherData><xenc:CipherValue/></xenc:CipherData></xenc:EncryptedData>`), 0o600)
		data := filepath.Join(f.dir, "assertion.xml")
		os.WriteFile(data, []byte(`<saml2:EncryptedAssertion xmlns:saml2="`+saml2.NamespaceAssertion+`">`+tok+`</saml2:EncryptedAssertion>`), 0o600)
		out := string(xmlsigtest.Run(t, xmlsec, "--encrypt", "--pubkey-cert-pem", filepath.Join(f.dir, "gw-enc.pem"), "--session-key", "aes-256",
			"--xml-data", data, "--node-xpath", "/*/*[local-name()='Assertion']", tmpl))
		if strings.Contains(out, "alice") || !strings.Contains(out, "EncryptedData") {
			t.Fatalf("xmlsec1 did not encrypt:\n%s", out)
		}
		out = strings.TrimSpace(strings.TrimPrefix(out, `<?xml version="1.0"?>`))
		_, err := apply(t, p, f.message(out, "GetProduct"), true)
		wantCode(t, err, "", 0)
	})
	refused := []struct {
		name, token, code string
		status            int
	}{
		{"wrong key", encryptAssertion(t, tok, &xmlsigtest.RSAKey(t, 2).PublicKey), "wsse:FailedCheck", 401},
		{"tampered", func() string {
			s := encryptAssertion(t, tok, gwPub)
			d := etree.NewDocument()
			d.ReadFromString(s)
			cv := d.FindElement("//EncryptedData/CipherData/CipherValue")
			v, _ := base64.StdEncoding.DecodeString(cv.Text())
			v[40] ^= 1
			cv.SetText(base64.StdEncoding.EncodeToString(v))
			s, _ = d.WriteToString()
			return s
		}(), "wsse:FailedCheck", 401},
		{"not an assertion inside", func() string {
			d := etree.NewDocument()
			d.ReadFromString(`<saml2:Foo xmlns:saml2="` + saml2.NamespaceAssertion + `"/>`)
			w, _ := xmlenc.EncryptWrapped(d.Root(), "saml2:EncryptedAssertion", saml2.NamespaceAssertion, gwPub, xmlenc.KeyOptions{})
			d2 := etree.NewDocument()
			d2.SetRoot(w)
			s, _ := d2.WriteToString()
			return s
		}(), "wsse:FailedCheck", 401},
		{"encrypted and plain", encryptAssertion(t, tok, gwPub) + tok, "wsse:InvalidSecurity", 400},
		// The plaintext is verified as any assertion: one signed by
		// nobody trusted is refused after decryption.
		{"untrusted inside", encryptAssertion(t, strings.Replace(tok, "alice", "mallory", 1), gwPub), "wsse:InvalidSecurityToken", 401},
	}
	for _, tc := range refused {
		t.Run(tc.name, func(t *testing.T) {
			_, err := apply(t, p, f.message(tc.token, "GetProduct"), true)
			wantCode(t, err, tc.code, tc.status)
		})
	}
	t.Run("not configured", func(t *testing.T) {
		_, err := apply(t, f.policy(t, basicPolicy), f.message(encryptAssertion(t, tok, gwPub), "GetProduct"), true)
		wantCode(t, err, "wsse:UnsupportedSecurityToken", 400)
	})
	t.Run("required", func(t *testing.T) {
		req := f.policy(t, basicPolicy+strings.Replace(dec, "decryption:\n", "decryption:\n  required: true\n", 1))
		_, err := apply(t, req, f.message(f.issue(t, "alice", "alicepw", "urn:gatehouse:products"), "GetProduct"), true)
		wantCode(t, err, "wsse:FailedAuthentication", 401)
	})
}
