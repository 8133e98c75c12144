package wssecurity

import (
	"bytes"
	"context"
	"crypto/rsa"
	"crypto/x509/pkix"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/beevik/etree"

	"github.com/gatehouse/gatehouse/internal/policy/policytest"
	"github.com/gatehouse/gatehouse/internal/xmlenc"
	"github.com/gatehouse/gatehouse/internal/xmlsig/xmlsigtest"
)

// upstreamFixture is the upstream's encryption certificate and key.
type upstreamFixture struct {
	cert              *xmlsigtest.Cert
	certFile, keyFile string
}

func newUpstream(t testing.TB, f *encFixture) *upstreamFixture {
	u := &upstreamFixture{cert: f.ca.Issue(t, pkix.Name{CommonName: "upstream encryption"}, xmlsigtest.RSAKey(t, 3), nil)}
	dir := t.TempDir()
	u.certFile = writeFile(t, dir, "up.pem", u.cert.CertPEM())
	u.keyFile = writeFile(t, dir, "up.key", u.cert.KeyPEM(t))
	return u
}

// sendUpstream runs the policy's Apply and FinishRequest on msg, as the
// gateway does with a one-policy chain, and returns what goes upstream.
func sendUpstream(t *testing.T, p *Policy, msg string) string {
	t.Helper()
	ex, err := apply(t, p, msg, true)
	if err != nil {
		t.Fatal(err)
	}
	if err := p.FinishRequest(context.Background(), ex); err != nil {
		t.Fatal(err)
	}
	b, err := ex.Body(1 << 20)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// xmlsec1Decrypt has xmlsec1 decrypt what the upstream received, with the
// upstream's private key only. xmlsec1 is an XML Encryption peer, not a
// WS-Security stack: it does not follow a wsse:SecurityTokenReference,
// so each EncryptedData's reference to the EncryptedKey in the Security
// header is spelled as XML Encryption's own, a ds:RetrievalMethod to the
// same EncryptedKey. xmlsec1 then unwraps the key (RSA-OAEP) and
// decrypts the content (AES-256-GCM) itself.
func xmlsec1Decrypt(t *testing.T, bin, dir string, msg string, u *upstreamFixture) string {
	t.Helper()
	doc := parseDoc(t, msg)
	eds := doc.FindElements("//EncryptedData")
	for _, ed := range eds {
		ki := ed.FindElement("KeyInfo")
		ref := ki.FindElement("SecurityTokenReference/Reference")
		if ref == nil {
			t.Fatalf("EncryptedData without a SecurityTokenReference:\n%s", msg)
		}
		rm := etree.NewElement("ds:RetrievalMethod")
		rm.CreateAttr("Type", xmlenc.NamespaceXENC+"EncryptedKey")
		rm.CreateAttr("URI", ref.SelectAttrValue("URI", ""))
		ki.RemoveChildAt(0)
		ki.AddChild(rm)
	}
	in := writeFile(t, dir, "upstream.xml", []byte(docString(t, doc)))
	for range eds {
		// The first EncryptedData of the document, xmlsec1's default.
		out := xmlsigtest.Run(t, bin, "--decrypt", "--privkey-pem", u.keyFile, "--id-attr:Id", "EncryptedKey", in)
		if err := os.WriteFile(in, out, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	b, err := os.ReadFile(in)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// TestReencryptForUpstream: with forward reencrypt, the upstream receives
// the parts that arrived encrypted encrypted again to its certificate
// (RSA-OAEP, AES-256-GCM, a fresh key a message), and xmlsec1 decrypts
// them with the upstream's key to the plaintext the client sent, in SOAP
// 1.1 and 1.2, with the Security header removed or kept.
func TestReencryptForUpstream(t *testing.T) {
	bin := xmlsigtest.Xmlsec1(t)
	f := newEncFixture(t)
	u := newUpstream(t, f)
	now := time.Now()
	c := &clock{now.Add(time.Second)}
	for _, tc := range []struct {
		name, extra string
		ids         []string
		wantUT      bool
	}{
		{"body", "", []string{"Body-1"}, false},
		{"body and username token", "", []string{"UT-1", "Body-1"}, false},
		{"body and username token, header kept", "keep_security_header: true\n", []string{"UT-1", "Body-1"}, true},
	} {
		for _, s12 := range []bool{false, true} {
			name := tc.name + map[bool]string{false: " soap11", true: " soap12"}[s12]
			t.Run(name, func(t *testing.T) {
				dir := t.TempDir()
				doc := utEnc(t, now, s12)
				wssEncrypt(t, doc, encOpts{to: f.pub()}, tc.ids...)
				msg := docString(t, doc)
				p := build(t, f.config("  forward: reencrypt\n  upstream_certificate: "+u.certFile+"\n")+tc.extra, c)
				up := sendUpstream(t, p, msg)
				if strings.Contains(up, "p-1001") || strings.Contains(up, "alice") {
					t.Fatalf("plaintext went upstream:\n%s", up)
				}
				inKey := doc.FindElement("//EncryptedKey/CipherData/CipherValue").Text()
				if strings.Contains(up, inKey) {
					t.Fatal("the client's EncryptedKey went upstream; want a fresh one to the upstream")
				}
				plain := xmlsec1Decrypt(t, bin, dir, up, u)
				if !strings.Contains(plain, "<m:id>p-1001</m:id>") {
					t.Fatalf("xmlsec1 decrypted:\n%s", plain)
				}
				if got := strings.Contains(plain, "<wsse:Username>alice</wsse:Username>"); got != tc.wantUT {
					t.Fatalf("UsernameToken upstream %v, want %v:\n%s", got, tc.wantUT, plain)
				}
				if strings.Contains(plain, "EncryptedData") {
					t.Fatalf("left encrypted:\n%s", plain)
				}
				// Two messages, two keys.
				up2 := sendUpstream(t, build(t, f.config("  forward: reencrypt\n  upstream_certificate: "+u.certFile+"\n")+tc.extra, c), msg)
				if cipherValues(t, up)[0] == cipherValues(t, up2)[0] {
					t.Fatal("the same EncryptedKey for two messages")
				}
			})
		}
	}
}

func cipherValues(t *testing.T, msg string) []string {
	t.Helper()
	var out []string
	for _, cv := range parseDoc(t, msg).FindElements("//CipherValue") {
		out = append(out, cv.Text())
	}
	return out
}

// TestReencryptAfterChain: the policies after wssecurity see the
// plaintext (Apply forwards it decrypted), and FinishRequest encrypts the
// body as they left it, so a change a later policy made (dlp masking)
// reaches the upstream encrypted. The XML Encryption 1.1 RSA-OAEP
// transport (SHA-256) is decrypted with the upstream's key by
// internal/xmlenc. A header block that arrived in an EncryptedHeader goes
// upstream in one.
func TestReencryptAfterChain(t *testing.T) {
	f := newEncFixture(t)
	u := newUpstream(t, f)
	now := time.Now()
	p := build(t, f.config("  forward: reencrypt\n  upstream_certificate: "+u.certFile+"\n  upstream_key_transport: rsa-oaep\n"), &clock{now.Add(time.Second)})
	doc := utEnc(t, now, false)
	wssEncrypt(t, doc, encOpts{to: f.pub()}, "Body-1")
	ex, err := apply(t, p, docString(t, doc), true)
	if err != nil {
		t.Fatal(err)
	}
	seen, _ := ex.Body(1 << 20)
	if !bytes.Contains(seen, []byte("<m:id>p-1001</m:id>")) {
		t.Fatalf("a later policy sees:\n%s", seen)
	}
	ex.SetBody(bytes.Replace(seen, []byte("p-1001"), []byte("p-XXXX"), 1))
	if err := p.FinishRequest(context.Background(), ex); err != nil {
		t.Fatal(err)
	}
	up, _ := ex.Body(1 << 20)
	if bytes.Contains(up, []byte("p-XXXX")) || !bytes.Contains(up, []byte(xmlenc.RSAOAEP)) {
		t.Fatalf("upstream:\n%s", up)
	}
	if err := p.FinishRequest(context.Background(), ex); err != nil {
		t.Fatal(err)
	}
	if again, _ := ex.Body(1 << 20); !bytes.Equal(again, up) {
		t.Fatal("FinishRequest encrypted twice")
	}
	plain := decryptAsUpstream(t, u, up)
	if !strings.Contains(plain, "<m:id>p-XXXX</m:id>") {
		t.Fatalf("the upstream decrypts:\n%s", plain)
	}
}

// decryptAsUpstream decrypts msg with the upstream's key by
// internal/xmlenc.
func decryptAsUpstream(t *testing.T, u *upstreamFixture, msg []byte) string {
	t.Helper()
	rk, err := xmlenc.LoadRSAKey(u.certFile, u.cert.KeyPEM(t))
	if err != nil {
		t.Fatal(err)
	}
	d, err := xmlenc.New(xmlenc.Keys{RSA: []xmlenc.RSAKey{rk}}, xmlenc.Options{})
	if err != nil {
		t.Fatal(err)
	}
	doc := parseDoc(t, string(msg))
	byID := func(id string) *etree.Element { return findID(doc.Root(), id) }
	s := d.NewSession(byID)
	for _, ed := range doc.FindElements("//EncryptedData") {
		data, err := xmlenc.ParseData(ed)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := s.Replace(data, false); err != nil {
			t.Fatal(err)
		}
	}
	return docString(t, doc)
}

// TestReencryptedHeaderBlock: a header block that arrived in a WSS 1.1
// EncryptedHeader goes upstream in one, with its mustUnderstand.
func TestReencryptedHeaderBlock(t *testing.T) {
	f := newEncFixture(t)
	u := newUpstream(t, f)
	now := time.Now()
	p := build(t, f.config("  forward: reencrypt\n  upstream_certificate: "+u.certFile+"\n"), &clock{now.Add(time.Second)})
	doc := utEnc(t, now, false)
	hdr := doc.FindElement("//Header")
	acct := hdr.CreateElement("a:Account")
	acct.CreateAttr("xmlns:a", "urn:example:acct")
	acct.CreateAttr("wsu:Id", "ACCT-1")
	acct.CreateAttr("soap:mustUnderstand", "1")
	acct.SetText("acct-secret-42")
	wssEncrypt(t, doc, encOpts{to: f.pub()}, "ACCT-1", "Body-1")
	// WSS 1.1 §9.3: the header block's EncryptedData in an EncryptedHeader.
	ed := doc.FindElement("//Header/EncryptedData")
	eh := etree.NewElement("wsse11:EncryptedHeader")
	eh.CreateAttr("xmlns:wsse11", NamespaceWSSE11)
	at := ed.Index()
	hdr.RemoveChildAt(at)
	eh.AddChild(ed)
	hdr.InsertChildAt(at, eh)
	up := sendUpstream(t, p, docString(t, doc))
	if strings.Contains(up, "acct-secret-42") {
		t.Fatalf("plaintext header upstream:\n%s", up)
	}
	updoc := parseDoc(t, up)
	eh2 := updoc.FindElement("//Header/EncryptedHeader")
	if eh2 == nil || eh2.SelectAttrValue("soap:mustUnderstand", "") != "1" {
		t.Fatalf("no EncryptedHeader with mustUnderstand upstream:\n%s", up)
	}
	// internal/xmlenc decrypts the EncryptedData inside; the header block
	// is back.
	plain := decryptAsUpstream(t, u, []byte(up))
	if !strings.Contains(plain, "acct-secret-42") || !strings.Contains(plain, "p-1001") {
		t.Fatalf("the upstream decrypts:\n%s", plain)
	}
}

func TestReencryptConfigErrors(t *testing.T) {
	f := newEncFixture(t)
	u := newUpstream(t, f)
	small := writeFile(t, t.TempDir(), "small.pem", f.ca.Issue(t, pkix.Name{CommonName: "small"}, xmlsigtest.ECKey(t), nil).CertPEM())
	for _, tc := range []struct{ extra, want string }{
		{"  forward: reencrypt\n", "encryption.forward: wssecurity: forward reencrypt needs upstream_certificate"},
		{"  upstream_certificate: " + u.certFile + "\n", "needs forward: reencrypt"},
		{"  forward: sideways\n", "forward must be decrypted or reencrypt"},
		{"  forward: reencrypt\n  upstream_certificate: " + u.certFile + "\n  upstream_key_transport: rsa-1_5\n", "upstream_key_transport must be"},
		{"  forward: reencrypt\n  upstream_certificate: " + filepath.Join(t.TempDir(), "none.pem") + "\n", "encryption.upstream_certificate"},
		{"  forward: reencrypt\n  upstream_certificate: " + small + "\n", "RSA key of 2048 bits"},
	} {
		_, err := New(policytest.Node(t, f.config(tc.extra)), policytest.Env())
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%q: got %v, want %q", tc.extra, err, tc.want)
		}
	}
}

// TestReencryptDefaultNamespaceEnvelope: an envelope in the default
// namespace and without a Header gets a Header in the SOAP namespace and
// a Security header whose mustUnderstand is SOAP's.
func TestReencryptDefaultNamespaceEnvelope(t *testing.T) {
	f := newEncFixture(t)
	u := newUpstream(t, f)
	for _, ns := range []string{NamespaceSOAP11, NamespaceSOAP12} {
		r := &reencSettings{pub: u.cert.Cert.PublicKey.(*rsa.PublicKey), thumb: xmlenc.Thumbprint(u.cert.Cert), transport: upstreamTransports["rsa-oaep-mgf1p"], maxBody: 1 << 20}
		msg := `<Envelope xmlns="` + ns + `"><Body><m:GetProduct xmlns:m="urn:gatehouse:demo:products"><m:id>p-1001</m:id></m:GetProduct></Body></Envelope>`
		out, err := r.seal([]byte(msg), &sealedParts{body: true}, false, nil)
		if err != nil {
			t.Fatal(err)
		}
		doc := parseDoc(t, string(out))
		h := doc.Root().SelectElement("Header")
		if h == nil || h.NamespaceURI() != ns || doc.Root().ChildElements()[0] != h {
			t.Fatalf("no Header first in %s:\n%s", ns, out)
		}
		sec := h.SelectElement("Security")
		var mu *etree.Attr
		for i := range sec.Attr {
			if sec.Attr[i].Key == "mustUnderstand" {
				mu = &sec.Attr[i]
			}
		}
		if mu == nil || mu.NamespaceURI() != ns || mu.Value != "1" {
			t.Fatalf("Security without SOAP mustUnderstand:\n%s", out)
		}
		if plain := decryptAsUpstream(t, u, out); !strings.Contains(plain, "<m:id>p-1001</m:id>") {
			t.Fatalf("decrypted:\n%s", plain)
		}
	}
}
