package main

import (
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha1"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"os"
	"testing"
	"time"

	"github.com/beevik/etree"

	"github.com/gatehouse/gatehouse/internal/xmlenc"
	"github.com/gatehouse/gatehouse/internal/xmlsig/xmlsigtest"
)

// WS-Security namespaces and URIs the demo's SOAP test messages use.
const (
	nsWSSE        = "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-secext-1.0.xsd"
	nsWSU         = "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-utility-1.0.xsd"
	uriTokenProf  = "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-username-token-profile-1.0"
	uriX509Prof   = "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-x509-token-profile-1.0"
	uriSOAPMsgSec = "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-soap-message-security-1.0"
)

// soapMessage wraps body in a SOAP 1.1 envelope with security (the inside
// of a wsse:Security header) when it is not empty.
func soapMessage(security, body string) string {
	hdr := ""
	if security != "" {
		hdr = `<soap:Header><wsse:Security xmlns:wsse="` + nsWSSE + `" xmlns:wsu="` + nsWSU + `">` + security + `</wsse:Security></soap:Header>`
	}
	return `<soap:Envelope xmlns:soap="http://schemas.xmlsoap.org/soap/envelope/">` + hdr +
		`<soap:Body>` + body + `</soap:Body></soap:Envelope>`
}

// usernameToken is a Timestamp and a UsernameToken of user, with a
// PasswordDigest (a fresh nonce) or the password as text.
func usernameToken(user, password string, digest bool, now time.Time) string {
	created := now.Format(time.RFC3339)
	ts := `<wsu:Timestamp><wsu:Created>` + created + `</wsu:Created></wsu:Timestamp>`
	if !digest {
		return ts + `<wsse:UsernameToken><wsse:Username>` + user + `</wsse:Username><wsse:Password Type="` +
			uriTokenProf + `#PasswordText">` + password + `</wsse:Password></wsse:UsernameToken>`
	}
	nonce := make([]byte, 16)
	rand.Read(nonce)
	h := sha1.New()
	h.Write(nonce)
	h.Write([]byte(created))
	h.Write([]byte(password))
	return ts + `<wsse:UsernameToken><wsse:Username>` + user + `</wsse:Username><wsse:Password Type="` +
		uriTokenProf + `#PasswordDigest">` + base64.StdEncoding.EncodeToString(h.Sum(nil)) +
		`</wsse:Password><wsse:Nonce EncodingType="` + uriSOAPMsgSec + `#Base64Binary">` +
		base64.StdEncoding.EncodeToString(nonce) + `</wsse:Nonce><wsu:Created>` + created +
		`</wsu:Created></wsse:UsernameToken>`
}

// demoSigner signs messages with the demo's client certificate.
type demoSigner struct {
	cert []byte // DER
	key  crypto.Signer
}

func loadSigner(t *testing.T, certFile, keyFile string) *demoSigner {
	t.Helper()
	pair, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		t.Fatalf("the demo's client certificate: %v", err)
	}
	return &demoSigner{cert: pair.Certificate[0], key: pair.PrivateKey.(crypto.Signer)}
}

// sign returns a SOAP 1.1 message around body with a BinarySecurityToken
// of the certificate, a Timestamp, and an RSA-SHA256 signature over Body
// and Timestamp referencing the token: the X.509 token profile as WSS4J
// and node-soap's WSSecurityCert send it.
func (s *demoSigner) sign(t *testing.T, body string, now time.Time) string {
	t.Helper()
	msg := `<soap:Envelope xmlns:soap="http://schemas.xmlsoap.org/soap/envelope/" xmlns:wsu="` + nsWSU + `"><soap:Header>` +
		`<wsse:Security xmlns:wsse="` + nsWSSE + `"><wsse:BinarySecurityToken EncodingType="` + uriSOAPMsgSec +
		`#Base64Binary" ValueType="` + uriX509Prof + `#X509v3" wsu:Id="X509-1">` + base64.StdEncoding.EncodeToString(s.cert) +
		`</wsse:BinarySecurityToken><wsu:Timestamp wsu:Id="TS-1"><wsu:Created>` + now.Format(time.RFC3339) +
		`</wsu:Created><wsu:Expires>` + now.Add(5*time.Minute).Format(time.RFC3339) + `</wsu:Expires></wsu:Timestamp>` +
		`</wsse:Security></soap:Header><soap:Body wsu:Id="Body-1">` + body + `</soap:Body></soap:Envelope>`
	doc := etree.NewDocument()
	if err := doc.ReadFromString(msg); err != nil {
		t.Fatal(err)
	}
	str := etree.NewElement("wsse:SecurityTokenReference")
	ref := str.CreateElement("wsse:Reference")
	ref.CreateAttr("URI", "#X509-1")
	ref.CreateAttr("ValueType", uriX509Prof+"#X509v3")
	xmlsigtest.Signer{Key: s.key}.Sign(t, doc.FindElement("//Security"), []string{"TS-1", "Body-1"}, str)
	out, err := doc.WriteToString()
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// stsRequest is a SOAP 1.2 WS-Trust request to the demo's STS, authenticated
// by alice's UsernameToken (text), with body inside its RST.
func stsRequest(action, body string, now time.Time) string {
	return `<s:Envelope xmlns:s="http://www.w3.org/2003/05/soap-envelope" xmlns:wsa="http://www.w3.org/2005/08/addressing"` +
		` xmlns:wsse="` + nsWSSE + `" xmlns:wsu="` + nsWSU + `"><s:Header>` +
		`<wsa:Action>http://docs.oasis-open.org/ws-sx/ws-trust/200512/RST/` + action + `</wsa:Action><wsse:Security>` +
		usernameToken("alice", "alice-demo-password", false, now) + `</wsse:Security></s:Header>` +
		`<s:Body><wst:RequestSecurityToken xmlns:wst="http://docs.oasis-open.org/ws-sx/ws-trust/200512">` +
		`<wst:RequestType>http://docs.oasis-open.org/ws-sx/ws-trust/200512/` + action + `</wst:RequestType>` + body +
		`</wst:RequestSecurityToken></s:Body></s:Envelope>`
}

// encryptDemoBody encrypts the Body content of msg (RSA-OAEP + AES-256-GCM,
// the key inline, a ReferenceList first in the Security header) to the
// certificate in encFile, or in otherFile when set (a key the gateway does
// not hold).
func encryptDemoBody(t *testing.T, msg, encFile, otherFile string) string {
	t.Helper()
	if otherFile != "" {
		encFile = otherFile
	}
	b, err := os.ReadFile(encFile)
	if err != nil {
		t.Fatal(err)
	}
	blk, _ := pem.Decode(b)
	cert, err := x509.ParseCertificate(blk.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	doc := etree.NewDocument()
	if err := doc.ReadFromString(msg); err != nil {
		t.Fatal(err)
	}
	body := doc.FindElement("//Body")
	ed, err := xmlenc.EncryptInPlace(body, xmlenc.TypeContent, xmlenc.AES256GCM, cert.PublicKey.(*rsa.PublicKey), xmlenc.KeyOptions{})
	if err != nil {
		t.Fatal(err)
	}
	ed.CreateAttr("Id", "ED-1")
	rl := etree.NewElement("xenc:ReferenceList")
	rl.CreateAttr("xmlns:xenc", xmlenc.NamespaceXENC)
	rl.CreateElement("xenc:DataReference").CreateAttr("URI", "#ED-1")
	doc.FindElement("//Security").InsertChildAt(0, rl)
	out, err := doc.WriteToString()
	if err != nil {
		t.Fatal(err)
	}
	return out
}
