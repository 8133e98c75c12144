package xmlsig_test

import (
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509/pkix"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/beevik/etree"

	"github.com/gatehouse/gatehouse/internal/xmlsig"
	"github.com/gatehouse/gatehouse/internal/xmlsig/xmlsigtest"
)

func parse(t testing.TB, s string) *etree.Document {
	t.Helper()
	doc := etree.NewDocument()
	doc.ReadSettings.PreserveDuplicateAttrs = true
	if err := doc.ReadFromString(s); err != nil {
		t.Fatal(err)
	}
	return doc
}

func readFile(t testing.TB, name string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// TestCanonicalizeW3CExample is the example of Exclusive XML
// Canonicalization section 2.2: the same subtree, placed in two documents
// with different namespace contexts, has one exclusive canonical form.
// InclusiveNamespaces then pulls in exactly the listed prefixes in scope.
func TestCanonicalizeW3CExample(t *testing.T) {
	want := readFile(t, "exc-c14n-elem2.out")
	tests := []struct {
		doc, prefixList, want string
	}{
		{"exc-c14n-doc1.xml", "", want},
		{"exc-c14n-doc2.xml", "", want},
		{"exc-c14n-doc1.xml", "n0", strings.Replace(want, `<n1:elem2 `, `<n1:elem2 xmlns:n0="foo:bar" `, 1)},
		{"exc-c14n-doc2.xml", "n2 n3", strings.Replace(want, `xml:lang="en">`, `xmlns:n2="http://foo.example" xml:lang="en">`, 1)},
		// n3 is declared in doc1's root: listed, it moves up to the apex
		// and is no longer declared again on stuff.
		{"exc-c14n-doc1.xml", "n3", strings.NewReplacer(
			`<n1:elem2 xmlns:n1="http://example.net"`, `<n1:elem2 xmlns:n1="http://example.net" xmlns:n3="ftp://example.org"`,
			`<n3:stuff xmlns:n3="ftp://example.org">`, `<n3:stuff>`).Replace(want)},
	}
	for _, tt := range tests {
		t.Run(tt.doc+"/"+tt.prefixList, func(t *testing.T) {
			doc := parse(t, readFile(t, tt.doc))
			el := doc.Root().SelectElement("elem2")
			got, err := xmlsig.Canonicalize(el, tt.prefixList)
			if err != nil {
				t.Fatal(err)
			}
			if string(got) != tt.want {
				t.Errorf("got\n%s\nwant\n%s", got, tt.want)
			}
			// The tree is left as it was.
			if n := len(el.Attr); n != 2 {
				t.Errorf("elem2 has %d attributes after canonicalization, want 2", n)
			}
		})
	}
}

func template(t testing.TB, method string) string {
	return strings.Replace(readFile(t, "soap-template.xml"), "SIGNATURE_METHOD", method, 1)
}

// TestXmlsec1Signature verifies what xmlsec1 (libxml2 + OpenSSL) signs
// from a WS-Security template, RSA-SHA256 and ECDSA-SHA256, with
// InclusiveNamespaces on SignedInfo and a reference, and refuses the same
// message once its body, timestamp or signature value is changed.
func TestXmlsec1Signature(t *testing.T) {
	xmlsec := xmlsigtest.Xmlsec1(t)
	ca := xmlsigtest.NewCA(t, "xmlsig test CA")
	rsaCert := ca.Issue(t, pkix.Name{CommonName: "rsa signer"}, xmlsigtest.RSAKey(t, 1), nil)
	ecCert := ca.Issue(t, pkix.Name{CommonName: "ec signer"}, xmlsigtest.ECKey(t), nil)
	for _, tt := range []struct {
		name   string
		method string
		signer *xmlsigtest.Cert
		algs   xmlsig.Algorithms
	}{
		{"rsa-sha256", xmlsig.AlgRSASHA256, rsaCert, xmlsig.DefaultAlgorithms},
		{"ecdsa-sha256", xmlsig.AlgECDSASHA256, ecCert, xmlsig.DefaultAlgorithms},
	} {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			keyFile := filepath.Join(dir, "key.pem")
			tmplFile := filepath.Join(dir, "tmpl.xml")
			os.WriteFile(keyFile, tt.signer.KeyPEM(t), 0o600)
			os.WriteFile(tmplFile, []byte(template(t, tt.method)), 0o600)
			signed := xmlsigtest.Run(t, xmlsec, "--sign", "--privkey-pem", keyFile,
				"--id-attr:Id", "Body", "--id-attr:Id", "Timestamp", tmplFile)

			covered, err := verify(t, string(signed), tt.signer.Key.Public(), tt.algs)
			if err != nil {
				t.Fatalf("verifying xmlsec1's signature: %v\n%s", err, signed)
			}
			if len(covered) != 2 || covered[0].Tag != "Timestamp" || covered[1].Tag != "Body" {
				t.Errorf("covered %v, want [Timestamp Body]", tags(covered))
			}

			for _, mod := range []struct {
				name, old, new string
				want           error
			}{
				{"body", "<id>p-1001</id>", "<id>p-1002</id>", xmlsig.ErrDigestMismatch},
				{"body namespace", `xmlns="urn:gatehouse:demo:products"`, `xmlns="urn:evil"`, xmlsig.ErrDigestMismatch},
				{"timestamp", "03:09:00Z", "23:09:00Z", xmlsig.ErrDigestMismatch},
				{"signed info", `URI="#Body-1"`, `URI="#Body-1" Id="x"`, xmlsig.ErrBadSignature},
			} {
				t.Run(mod.name, func(t *testing.T) {
					if !strings.Contains(string(signed), mod.old) {
						t.Fatalf("signed message lacks %q", mod.old)
					}
					_, err := verify(t, strings.Replace(string(signed), mod.old, mod.new, 1), tt.signer.Key.Public(), tt.algs)
					if !errors.Is(err, mod.want) {
						t.Errorf("got %v, want %v", err, mod.want)
					}
				})
			}
			// Another key does not verify it.
			if _, err := verify(t, string(signed), xmlsigtest.RSAKey(t, 2).Public(), tt.algs); !errors.Is(err, xmlsig.ErrBadSignature) && !errors.Is(err, xmlsig.ErrKey) {
				t.Errorf("another key: got %v, want ErrBadSignature or ErrKey", err)
			}
		})
	}
}

// TestXmlsec1VerifiesSigner checks the test signer against xmlsec1, so
// that the messages the wssecurity tests sign with it are real ones.
func TestXmlsec1VerifiesSigner(t *testing.T) {
	xmlsec := xmlsigtest.Xmlsec1(t)
	ca := xmlsigtest.NewCA(t, "xmlsig test CA")
	for _, tt := range []struct {
		name string
		s    xmlsigtest.Signer
		cert *xmlsigtest.Cert
	}{
		{"rsa-sha256", xmlsigtest.Signer{Key: xmlsigtest.RSAKey(t, 1)}, nil},
		{"rsa-sha1", xmlsigtest.Signer{Key: xmlsigtest.RSAKey(t, 1), SHA1: true}, nil},
		{"ecdsa-sha256", xmlsigtest.Signer{Key: xmlsigtest.ECKey(t)}, nil},
	} {
		t.Run(tt.name, func(t *testing.T) {
			cert := ca.Issue(t, pkix.Name{CommonName: tt.name}, tt.s.Key, nil)
			doc := parse(t, unsignedMessage)
			sec := doc.FindElement("//Security")
			tt.s.Sign(t, sec, []string{"TS-1", "Body-1"}, nil)
			out, err := doc.WriteToString()
			if err != nil {
				t.Fatal(err)
			}
			dir := t.TempDir()
			certFile, msgFile := filepath.Join(dir, "cert.pem"), filepath.Join(dir, "msg.xml")
			os.WriteFile(certFile, cert.CertPEM(), 0o600)
			os.WriteFile(msgFile, []byte(out), 0o600)
			xmlsigtest.Run(t, xmlsec, "--verify", "--pubkey-cert-pem", certFile,
				"--id-attr:Id", "Body", "--id-attr:Id", "Timestamp", msgFile)
			algs := xmlsig.DefaultAlgorithms
			if tt.s.SHA1 {
				algs = xmlsig.DigestSHA1 | xmlsig.SignatureRSASHA1
			}
			if _, err := verify(t, out, tt.s.Key.Public(), algs); err != nil {
				t.Errorf("verify: %v", err)
			}
		})
	}
}

const unsignedMessage = `<soap:Envelope xmlns:soap="http://schemas.xmlsoap.org/soap/envelope/" xmlns:wsu="http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-utility-1.0.xsd"><soap:Header><wsse:Security xmlns:wsse="http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-secext-1.0.xsd"><wsu:Timestamp wsu:Id="TS-1"><wsu:Created>2025-01-02T03:04:00Z</wsu:Created></wsu:Timestamp></wsse:Security></soap:Header><soap:Body wsu:Id="Body-1"><m:GetProduct xmlns:m="urn:m"><m:id>p-1</m:id></m:GetProduct></soap:Body></soap:Envelope>`

// verify parses msg, finds its one Signature and verifies it with key.
func verify(t testing.TB, msg string, key crypto.PublicKey, algs xmlsig.Algorithms) ([]*etree.Element, error) {
	t.Helper()
	doc := etree.NewDocument()
	doc.ReadSettings.PreserveDuplicateAttrs = true
	if err := doc.ReadFromString(msg); err != nil {
		return nil, err
	}
	idx, err := xmlsig.NewIDIndex(doc.Root())
	if err != nil {
		return nil, err
	}
	sigEl := doc.FindElement("//Signature")
	if sigEl == nil {
		t.Fatal("no Signature")
	}
	sig, err := xmlsig.Parse(sigEl, xmlsig.Options{Algorithms: algs})
	if err != nil {
		return nil, err
	}
	return sig.Verify(idx, key)
}

func tags(els []*etree.Element) []string {
	var out []string
	for _, e := range els {
		out = append(out, e.Tag)
	}
	return out
}

// signed returns unsignedMessage signed over the timestamp and body.
func signed(t testing.TB, s xmlsigtest.Signer) string {
	t.Helper()
	doc := parse(t, unsignedMessage)
	s.Sign(t, doc.FindElement("//Security"), []string{"TS-1", "Body-1"}, nil)
	out, err := doc.WriteToString()
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func TestVerifyCoversTheVeryNodes(t *testing.T) {
	key := xmlsigtest.RSAKey(t, 1)
	msg := signed(t, xmlsigtest.Signer{Key: key})
	doc := parse(t, msg)
	idx, err := xmlsig.NewIDIndex(doc.Root())
	if err != nil {
		t.Fatal(err)
	}
	sig, err := xmlsig.Parse(doc.FindElement("//Signature"), xmlsig.Options{})
	if err != nil {
		t.Fatal(err)
	}
	covered, err := sig.Verify(idx, key.Public())
	if err != nil {
		t.Fatal(err)
	}
	if got, want := covered, []*etree.Element{doc.FindElement("//Timestamp"), doc.FindElement("/Envelope/Body")}; len(got) != 2 || got[0] != want[0] || got[1] != want[1] {
		t.Errorf("covered %p, want %p", got, want)
	}
}

func TestVerifyRefuses(t *testing.T) {
	key := xmlsigtest.RSAKey(t, 1)
	msg := signed(t, xmlsigtest.Signer{Key: key})
	sha1Msg := signed(t, xmlsigtest.Signer{Key: key, SHA1: true})
	small, err := rsa.GenerateKey(rand.Reader, 1024)
	if err != nil {
		t.Fatal(err)
	}
	smallMsg := signed(t, xmlsigtest.Signer{Key: small})
	ec := xmlsigtest.ECKey(t)
	ecMsg := signed(t, xmlsigtest.Signer{Key: ec})

	tests := []struct {
		name     string
		msg      string
		old, new string
		key      crypto.PublicKey
		algs     xmlsig.Algorithms
		want     error
	}{
		{"tampered body", msg, "<m:id>p-1</m:id>", "<m:id>p-2</m:id>", nil, 0, xmlsig.ErrDigestMismatch},
		{"comment in body is no change", msg, "<m:id>p-1</m:id>", "<m:id>p-1</m:id><!-- x -->", nil, 0, nil},
		{"duplicate id", msg, "<m:id>p-1</m:id>", `<m:id>p-1</m:id><x wsu:Id="Body-1"/>`, nil, 0, xmlsig.ErrDuplicateID},
		{"duplicate plain Id", msg, "<m:id>p-1</m:id>", `<x Id="Body-1"/>`, nil, 0, xmlsig.ErrDuplicateID},
		{"duplicate attribute", msg, `<m:id>`, `<m:id a="1" a="2">`, nil, 0, xmlsig.ErrMalformed},
		{"lower-case id is not an ID", msg, "<m:id>p-1</m:id>", `<m:id>p-1</m:id><x id="Body-1"/>`, nil, 0, xmlsig.ErrDigestMismatch},
		{"unresolved", msg, `wsu:Id="Body-1"`, `wsu:Id="Body-2"`, nil, 0, xmlsig.ErrUnresolved},
		{"whole-document reference", msg, `URI="#Body-1"`, `URI=""`, nil, 0, xmlsig.ErrUnsupportedAlgorithm},
		{"xpointer reference", msg, `URI="#Body-1"`, `URI="#xpointer(/)"`, nil, 0, xmlsig.ErrUnsupportedAlgorithm},
		{"second SignedInfo", msg, `<ds:SignatureValue>`, `<ds:KeyInfo><ds:SignedInfo/></ds:KeyInfo><ds:SignatureValue>`, nil, 0, xmlsig.ErrMalformed},
		{"Object", msg, `</ds:Signature>`, `<ds:Object><ds:Manifest/></ds:Object></ds:Signature>`, nil, 0, xmlsig.ErrMalformed},
		{"xpath transform", msg, `<ds:Transform Algorithm="http://www.w3.org/2001/10/xml-exc-c14n#"/>`, `<ds:Transform Algorithm="http://www.w3.org/TR/1999/REC-xpath-19991116"/><ds:Transform Algorithm="http://www.w3.org/2001/10/xml-exc-c14n#"/>`, nil, 0, xmlsig.ErrUnsupportedAlgorithm},
		{"no transforms", msg, `<ds:Transforms><ds:Transform Algorithm="http://www.w3.org/2001/10/xml-exc-c14n#"/></ds:Transforms>`, ``, nil, 0, xmlsig.ErrUnsupportedAlgorithm},
		{"inclusive c14n", msg, `<ds:CanonicalizationMethod Algorithm="http://www.w3.org/2001/10/xml-exc-c14n#"/>`, `<ds:CanonicalizationMethod Algorithm="http://www.w3.org/TR/2001/REC-xml-c14n-20010315"/>`, nil, 0, xmlsig.ErrUnsupportedAlgorithm},
		{"with comments", msg, `<ds:CanonicalizationMethod Algorithm="http://www.w3.org/2001/10/xml-exc-c14n#"/>`, `<ds:CanonicalizationMethod Algorithm="http://www.w3.org/2001/10/xml-exc-c14n#WithComments"/>`, nil, 0, xmlsig.ErrUnsupportedAlgorithm},
		{"hmac", msg, xmlsig.AlgRSASHA256, "http://www.w3.org/2000/09/xmldsig#hmac-sha1", nil, 0, xmlsig.ErrUnsupportedAlgorithm},
		{"hmac output length", msg, `<ds:SignatureMethod Algorithm="` + xmlsig.AlgRSASHA256 + `"/>`, `<ds:SignatureMethod Algorithm="` + xmlsig.AlgRSASHA256 + `"><ds:HMACOutputLength>0</ds:HMACOutputLength></ds:SignatureMethod>`, nil, 0, xmlsig.ErrMalformed},
		{"sha1 not permitted", sha1Msg, "", "", nil, 0, xmlsig.ErrUnsupportedAlgorithm},
		{"sha1 permitted", sha1Msg, "", "", nil, xmlsig.DigestSHA1 | xmlsig.SignatureRSASHA1, nil},
		{"rsa-sha256 not permitted", msg, "", "", nil, xmlsig.SignatureECDSASHA256 | xmlsig.DigestSHA256, xmlsig.ErrUnsupportedAlgorithm},
		{"wrong key", msg, "", "", xmlsigtest.RSAKey(t, 2).Public(), 0, xmlsig.ErrBadSignature},
		{"ec key for rsa", msg, "", "", ec.Public(), 0, xmlsig.ErrKey},
		{"small rsa key", smallMsg, "", "", small.Public(), 0, xmlsig.ErrKey},
		{"ecdsa", ecMsg, "", "", ec.Public(), 0, nil},
		{"ecdsa tampered", ecMsg, "<m:id>p-1</m:id>", "<m:id>p-2</m:id>", ec.Public(), 0, xmlsig.ErrDigestMismatch},
		{"bad digest length", msg, `<ds:DigestValue>`, `<ds:DigestValue>AAAA`, nil, 0, xmlsig.ErrMalformed},
		{"#default prefix list", msg, `<ds:CanonicalizationMethod Algorithm="http://www.w3.org/2001/10/xml-exc-c14n#"/>`, `<ds:CanonicalizationMethod Algorithm="http://www.w3.org/2001/10/xml-exc-c14n#"><ec:InclusiveNamespaces xmlns:ec="http://www.w3.org/2001/10/xml-exc-c14n#" PrefixList="#default"/></ds:CanonicalizationMethod>`, nil, 0, xmlsig.ErrUnsupportedAlgorithm},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := tt.msg
			if tt.old != "" {
				if !strings.Contains(m, tt.old) {
					t.Fatalf("message lacks %q:\n%s", tt.old, m)
				}
				m = strings.Replace(m, tt.old, tt.new, 1)
			}
			k := tt.key
			if k == nil {
				k = key.Public()
			}
			_, err := verify(t, m, k, tt.algs)
			if tt.want == nil && err != nil || tt.want != nil && !errors.Is(err, tt.want) {
				t.Errorf("got %v, want %v", err, tt.want)
			}
		})
	}
}

// TestEnvelopedTransform signs an element that holds its own signature,
// the way node-soap signs its Timestamp: with the transform it verifies,
// without it the signature would have to digest itself.
func TestEnvelopedTransform(t *testing.T) {
	key := xmlsigtest.RSAKey(t, 1)
	for _, enveloped := range []bool{true, false} {
		doc := parse(t, `<r xmlns:wsu="`+xmlsig.NamespaceWSU+`"><a wsu:Id="A"><b>text</b></a></r>`)
		xmlsigtest.Signer{Key: key, Enveloped: enveloped}.Sign(t, doc.FindElement("//a"), []string{"A"}, nil)
		out, _ := doc.WriteToString()
		_, err := verify(t, out, key.Public(), 0)
		if enveloped && err != nil {
			t.Errorf("enveloped: %v", err)
		}
		if !enveloped && !errors.Is(err, xmlsig.ErrMalformed) {
			t.Errorf("not enveloped: got %v, want ErrMalformed", err)
		}
	}
}
