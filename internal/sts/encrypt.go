package sts

import (
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"fmt"

	"github.com/beevik/etree"

	"github.com/gatehouse/gatehouse/internal/pemfile"
	"github.com/gatehouse/gatehouse/internal/saml2"
	"github.com/gatehouse/gatehouse/internal/xmlenc"
)

// encryptionCertificate reads a relying party's encryption certificate:
// the first of a PEM file, with an RSA key of at least 2048 bits (RSA-OAEP
// key transport is what every SAML stack decrypts).
func encryptionCertificate(path string) (*x509.Certificate, error) {
	certs, err := pemfile.Certificates(path)
	if err != nil {
		return nil, err
	}
	if len(certs) == 0 {
		return nil, fmt.Errorf("no certificate in %s", path)
	}
	pub, ok := certs[0].PublicKey.(*rsa.PublicKey)
	if !ok {
		return nil, fmt.Errorf("%s: a %T key: encryption needs RSA", path, certs[0].PublicKey)
	}
	if pub.N.BitLen() < 2048 {
		return nil, fmt.Errorf("%s: RSA key of %d bits, fewer than 2048", path, pub.N.BitLen())
	}
	return certs[0], nil
}

// encryptFor wraps a signed assertion in a saml2:EncryptedAssertion for
// the relying party's certificate: AES-256-GCM content, RSA-OAEP (SHA-256,
// MGF1 SHA-1) key transport, the key named by the certificate's SHA-1
// thumbprint so that a party with several keys finds the right one.
func encryptFor(el *etree.Element, cert *x509.Certificate) (*etree.Element, error) {
	ki := etree.NewElement("ds:KeyInfo")
	ki.CreateAttr("xmlns:ds", xmlenc.NamespaceDSig)
	str := ki.CreateElement("wsse:SecurityTokenReference")
	str.CreateAttr("xmlns:wsse", nsWSSE)
	kid := str.CreateElement("wsse:KeyIdentifier")
	kid.CreateAttr("ValueType", "http://docs.oasis-open.org/wss/oasis-wss-soap-message-security-1.1#ThumbprintSHA1")
	kid.CreateAttr("EncodingType", "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-soap-message-security-1.0#Base64Binary")
	kid.SetText(base64.StdEncoding.EncodeToString(xmlenc.Thumbprint(cert)))
	w, err := xmlenc.EncryptWrapped(el, "saml2:EncryptedAssertion", saml2.NamespaceAssertion, cert.PublicKey.(*rsa.PublicKey), xmlenc.KeyOptions{KeyInfo: ki})
	if err != nil {
		return nil, fmt.Errorf("sts: encrypting the assertion: %w", err)
	}
	return w, nil
}
