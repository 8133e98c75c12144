package wssecurity

import (
	"crypto/x509/pkix"
	"encoding/base64"
	"testing"
	"time"

	"github.com/beevik/etree"

	"github.com/gatehouse/gatehouse/internal/xmlsig/xmlsigtest"
)

// TestX509DataInTokenReference: the X509Data of a SecurityTokenReference
// may carry the issuer and serial, the certificate, or both (zeep writes
// an empty X509IssuerSerial and the certificate); either only names a
// candidate (a configured certificate or a token of the header), never
// brings a key of its own.
func TestX509DataInTokenReference(t *testing.T) {
	f := newX509Fixture(t)
	now := time.Now()
	// Chains to the trust store, but is neither configured nor a token.
	stranger := f.ca.Issue(t, pkix.Name{CommonName: "stranger"}, xmlsigtest.RSAKey(t, 2), nil)
	b64 := func(c *xmlsigtest.Cert) string { return base64.StdEncoding.EncodeToString(c.Cert.Raw) }
	tests := []struct {
		name   string
		signer *xmlsigtest.Cert
		edit   func(xd *etree.Element)
		code   string
	}{
		{"issuer serial", f.leaf, func(*etree.Element) {}, ""},
		{"issuer serial and its certificate", f.leaf, func(xd *etree.Element) {
			xd.CreateElement("ds:X509Certificate").SetText(wrap76(b64(f.leaf)))
		}, ""},
		{"zeep: empty issuer serial and the certificate", f.leaf, func(xd *etree.Element) {
			is := xd.SelectElement("X509IssuerSerial")
			for _, c := range is.ChildElements() {
				is.RemoveChild(c)
			}
			xd.CreateElement("ds:X509Certificate").SetText(wrap76(b64(f.leaf)))
		}, ""},
		{"the certificate alone", f.leaf, func(xd *etree.Element) {
			xd.RemoveChild(xd.SelectElement("X509IssuerSerial"))
			xd.CreateElement("ds:X509Certificate").SetText(b64(f.leaf))
		}, ""},
		{"an unconfigured certificate alone", stranger, func(xd *etree.Element) {
			xd.RemoveChild(xd.SelectElement("X509IssuerSerial"))
			xd.CreateElement("ds:X509Certificate").SetText(b64(stranger))
		}, CodeSecurityTokenUnavailable},
		{"issuer serial of one, certificate of another", f.leaf, func(xd *etree.Element) {
			xd.CreateElement("ds:X509Certificate").SetText(b64(stranger))
		}, CodeInvalidSecurityToken},
		{"empty issuer serial alone", f.leaf, func(xd *etree.Element) {
			is := xd.SelectElement("X509IssuerSerial")
			for _, c := range is.ChildElements() {
				is.RemoveChild(c)
			}
		}, CodeInvalidSecurityToken},
		{"certificate before issuer serial", f.leaf, func(xd *etree.Element) {
			is := xd.SelectElement("X509IssuerSerial")
			xd.RemoveChild(is)
			xd.CreateElement("ds:X509Certificate").SetText(b64(f.leaf))
			xd.AddChild(is)
		}, CodeUnsupportedSecurityToken},
		{"two certificates", f.leaf, func(xd *etree.Element) {
			xd.RemoveChild(xd.SelectElement("X509IssuerSerial"))
			xd.CreateElement("ds:X509Certificate").SetText(b64(f.leaf))
			xd.CreateElement("ds:X509Certificate").SetText(b64(f.leaf))
		}, CodeUnsupportedSecurityToken},
		{"certificate with dirty padding", f.leaf, func(xd *etree.Element) {
			xd.RemoveChild(xd.SelectElement("X509IssuerSerial"))
			s := b64(f.leaf)
			if d := dirtyPadding(s); d != "" {
				s = d
			} else {
				s = s[:len(s)-1] + "="
			}
			xd.CreateElement("ds:X509Certificate").SetText(s)
		}, CodeInvalidSecurityToken},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			doc := etree.NewDocument()
			if err := doc.ReadFromString(signedMessage(t, tt.signer, nil, now, refIssuerSerial, "")); err != nil {
				t.Fatal(err)
			}
			tt.edit(doc.FindElement("//SecurityTokenReference/X509Data"))
			msg, _ := doc.WriteToString()
			_, err := apply(t, build(t, f.config(""), &clock{now}), msg, false)
			wantCode(t, err, tt.code)
		})
	}
}

func wrap76(s string) string { return wrapLines(s, 76, "\n") }
