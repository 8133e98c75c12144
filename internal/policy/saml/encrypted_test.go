package saml

import (
	"context"
	"crypto/rsa"
	"crypto/x509/pkix"
	"encoding/base64"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/beevik/etree"

	"github.com/gatehouse/gatehouse/internal/config"
	"github.com/gatehouse/gatehouse/internal/saml2"
	"github.com/gatehouse/gatehouse/internal/sts"
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

// TestSTSIssuesEncrypted: an STS that knows the relying party's
// encryption certificate issues EncryptedAssertions, which the requester
// cannot read and the relying party's saml policy decrypts and accepts.
func TestSTSIssuesEncrypted(t *testing.T) {
	f := newFixture(t)
	_, dec := f.encFiles(t)
	caFile := filepath.Join(f.dir, "ca.pem")
	yaml := strings.Replace(strings.Replace(stsConfig, "CAFILE", caFile, 1),
		`- {audience: "urn:gatehouse:products"}`,
		`- {audience: "urn:gatehouse:products", encryption_certificate: `+filepath.Join(f.dir, "gw-enc.pem")+`}`, 1)
	cfg, err := config.LoadBytes(filepath.Join(f.dir, "gh2.yaml"), []byte(yaml), nil)
	if err != nil {
		t.Fatal(err)
	}
	f.sts, err = sts.New(*cfg.STS, sts.Deps{Store: f.store, Now: f.clock.now, Config: cfg, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	created := f.clock.t.Format(time.RFC3339)
	msg := `<s:Envelope xmlns:s="http://www.w3.org/2003/05/soap-envelope" xmlns:wsse="` + nsWSSE + `" xmlns:wsu="` + nsWSU + `"><s:Header><wsse:Security>` +
		`<wsu:Timestamp><wsu:Created>` + created + `</wsu:Created></wsu:Timestamp><wsse:UsernameToken><wsse:Username>alice</wsse:Username><wsse:Password>alicepw</wsse:Password></wsse:UsernameToken>` +
		`</wsse:Security></s:Header><s:Body><wst:RequestSecurityToken xmlns:wst="` + sts.NamespaceWST + `"><wst:RequestType>` + sts.RequestIssue + `</wst:RequestType>` +
		`<wsp:AppliesTo xmlns:wsp="http://schemas.xmlsoap.org/ws/2004/09/policy"><wsa:EndpointReference xmlns:wsa="http://www.w3.org/2005/08/addressing"><wsa:Address>urn:gatehouse:products</wsa:Address></wsa:EndpointReference></wsp:AppliesTo>` +
		`</wst:RequestSecurityToken></s:Body></s:Envelope>`
	out, err := f.sts.Handle(context.Background(), []byte(msg), false)
	if err != nil {
		t.Fatalf("STS: %v", err)
	}
	ea := out.Body.FindElement("//RequestedSecurityToken/EncryptedAssertion")
	if ea == nil || out.Body.FindElement("//RequestedSecurityToken/Assertion") != nil {
		t.Fatal("the STS did not issue an EncryptedAssertion")
	}
	d := etree.NewDocument()
	d.SetRoot(ea.Copy())
	tok, _ := d.WriteToString()
	if strings.Contains(tok, "alice") {
		t.Fatalf("the subject shows through the encryption:\n%s", tok)
	}
	p := f.policy(t, basicPolicy+dec)
	ex, err := apply(t, p, f.message(tok, "GetProduct"), true)
	wantCode(t, err, "", 0)
	if ex.Principal.Subject != "alice" {
		t.Fatalf("principal %+v", ex.Principal)
	}
	// Another relying party's assertions stay in the clear.
	if tok := f.issue(t, "bob", "bobpw", "urn:gatehouse:other"); !strings.Contains(tok, ">bob<") {
		t.Fatalf("urn:gatehouse:other got %s", tok)
	}
}
