package tlstest

import (
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"testing"
	"time"
)

// Issue issues a certificate from tmpl, which the caller fills with what
// the test is about (subject, SANs, extended key usages). The serial
// number, the validity (an hour around now, when NotBefore and NotAfter
// are zero) and the key usage (digital signature, when zero) are filled
// in; a fresh P-256 key is made. The leaf's TLS.Leaf holds the parsed
// certificate.
func (ca *CA) Issue(t testing.TB, tmpl *x509.Certificate) *Leaf {
	t.Helper()
	c := *tmpl
	c.SerialNumber = serial(t)
	if c.NotBefore.IsZero() && c.NotAfter.IsZero() {
		c.NotBefore, c.NotAfter = time.Now().Add(-time.Hour), time.Now().Add(time.Hour)
	}
	if c.KeyUsage == 0 {
		c.KeyUsage = x509.KeyUsageDigitalSignature
	}
	key := newKey(t)
	der, err := x509.CreateCertificate(rand.Reader, &c, ca.Cert, &key.PublicKey, ca.Key)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	l := &Leaf{
		CertPEM: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		KeyPEM:  pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER}),
	}
	if l.TLS, err = tls.X509KeyPair(l.CertPEM, l.KeyPEM); err != nil {
		t.Fatal(err)
	}
	if l.TLS.Leaf == nil {
		if l.TLS.Leaf, err = x509.ParseCertificate(der); err != nil {
			t.Fatal(err)
		}
	}
	return l
}
