package xmlenc

import (
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"

	"github.com/beevik/etree"

	"github.com/gatehouse/gatehouse/internal/pemfile"
)

// DecryptWrapped decrypts an element of SAML's EncryptedElementType
// (saml2:EncryptedAssertion, EncryptedID, EncryptedAttribute): one
// xenc:EncryptedData of Type Element and any number of xenc:EncryptedKey
// siblings. The EncryptedData's key is in its own KeyInfo, or referenced
// from it (RetrievalMethod, a wsse Reference) by Id, or, when its KeyInfo
// names none, the wrapper's one EncryptedKey (SAML 2.0 core §6.2 lets a
// wrapper carry its keys beside the data). When wrapper has a parent the
// plaintext element replaces it in the tree. It returns the plaintext
// element; errors are ErrMalformed before any cryptography and ErrDecrypt
// for everything after (see Session.Decrypt). CBC content is refused:
// nothing here authenticates its ciphertext.
func (d *Decrypter) DecryptWrapped(wrapper *etree.Element) (*etree.Element, error) {
	var ed *etree.Element
	var eks []*etree.Element
	for _, k := range wrapper.ChildElements() {
		switch {
		case k.NamespaceURI() == NamespaceXENC && k.Tag == "EncryptedData" && ed == nil:
			ed = k
		case k.NamespaceURI() == NamespaceXENC && k.Tag == "EncryptedKey":
			eks = append(eks, k)
		default:
			return nil, fmt.Errorf("%w: unexpected {%s}%s in %s", ErrMalformed, k.NamespaceURI(), k.Tag, wrapper.Tag)
		}
	}
	if ed == nil {
		return nil, fmt.Errorf("%w: %s without EncryptedData", ErrMalformed, wrapper.Tag)
	}
	data, err := ParseData(ed)
	if err != nil {
		return nil, err
	}
	if data.Type != TypeElement {
		return nil, fmt.Errorf("%w: %s must encrypt an Element", ErrMalformed, wrapper.Tag)
	}
	ids := map[string]*etree.Element{}
	for _, ek := range eks {
		if id := ek.SelectAttrValue("Id", ""); id != "" {
			ids[id] = ek
		}
	}
	s := d.NewSession(func(id string) *etree.Element { return ids[id] })
	if data.keyInfo == nil || s.encryptedKey(data.keyInfo) == nil {
		if len(eks) != 1 {
			return nil, fmt.Errorf("%w: %s names no EncryptedKey and carries %d", ErrMalformed, wrapper.Tag, len(eks))
		}
		// The one key beside the data is its key: resolve it through a
		// KeyInfo of our own rather than the message's.
		only := eks[0]
		s.resolve = func(string) *etree.Element { return only }
		ki := etree.NewElement("ds:KeyInfo")
		ki.CreateAttr("xmlns:ds", NamespaceDSig)
		ki.CreateElement("ds:RetrievalMethod").CreateAttr("Type", NamespaceXENC+"EncryptedKey")
		ki.FindElement("RetrievalMethod").CreateAttr("URI", "#sibling")
		data.keyInfo = ki
	}
	nodes, err := s.Decrypt(data, false)
	if err != nil {
		return nil, err
	}
	var el *etree.Element
	for _, n := range nodes {
		if e, ok := n.(*etree.Element); ok {
			el = e
		}
	}
	if p := wrapper.Parent(); p != nil {
		i := wrapper.Index()
		p.RemoveChildAt(i)
		p.InsertChildAt(i, el)
	}
	return el, nil
}

// LoadRSAKey reads a key transport key: the certificate (first of the PEM
// file certFile) and its PEM private key (PKCS#1 or PKCS#8, RSA).
func LoadRSAKey(certFile string, keyPEM []byte) (RSAKey, error) {
	certs, err := pemfile.Certificates(certFile)
	if err != nil {
		return RSAKey{}, err
	}
	if len(certs) == 0 {
		return RSAKey{}, fmt.Errorf("no certificate in %s", certFile)
	}
	k, err := parseRSAPrivate(keyPEM)
	if err != nil {
		return RSAKey{}, err
	}
	return RSAKey{Key: k, Cert: certs[0]}, nil
}

// ParseRSAKey reads a key transport key from PEM: the first CERTIFICATE
// block of certPEM and the private key (PKCS#1 or PKCS#8, RSA) of keyPEM.
// certPEM and keyPEM may be one bundle holding both.
func ParseRSAKey(certPEM, keyPEM []byte) (RSAKey, error) {
	var cert *x509.Certificate
	for rest := certPEM; cert == nil; {
		var blk *pem.Block
		if blk, rest = pem.Decode(rest); blk == nil {
			return RSAKey{}, errors.New("no CERTIFICATE PEM block beside the key")
		}
		if blk.Type == "CERTIFICATE" {
			c, err := x509.ParseCertificate(blk.Bytes)
			if err != nil {
				return RSAKey{}, err
			}
			cert = c
		}
	}
	k, err := parseRSAPrivate(keyPEM)
	if err != nil {
		return RSAKey{}, err
	}
	return RSAKey{Key: k, Cert: cert}, nil
}

// parseRSAPrivate returns the first private key of b, skipping
// certificates.
func parseRSAPrivate(b []byte) (*rsa.PrivateKey, error) {
	var blk *pem.Block
	for {
		blk, b = pem.Decode(b)
		if blk == nil {
			return nil, errors.New("the key is not PEM")
		}
		if blk.Type != "CERTIFICATE" {
			break
		}
	}
	var k any
	var err error
	switch blk.Type {
	case "RSA PRIVATE KEY":
		k, err = x509.ParsePKCS1PrivateKey(blk.Bytes)
	case "PRIVATE KEY":
		k, err = x509.ParsePKCS8PrivateKey(blk.Bytes)
	default:
		return nil, fmt.Errorf("PEM block %q is not a private key", blk.Type)
	}
	if err != nil {
		return nil, err
	}
	rk, ok := k.(*rsa.PrivateKey)
	if !ok {
		return nil, fmt.Errorf("a %T key cannot transport keys: RSA only", k)
	}
	return rk, nil
}

// EncryptWrapped encrypts el (Type Element, AES-256-GCM, a fresh key
// transported to pub as o says, inside the EncryptedData's KeyInfo) into a
// new wrapper element named wrapperTag ("saml2:EncryptedAssertion") in
// namespace ns, and puts the wrapper in el's place when el has a parent.
// It is how the STS encrypts an assertion for a relying party.
func EncryptWrapped(el *etree.Element, wrapperTag, ns string, pub *rsa.PublicKey, o KeyOptions) (*etree.Element, error) {
	w := etree.NewElement(wrapperTag)
	prefix := ""
	if i := indexByte(wrapperTag, ':'); i >= 0 {
		prefix = wrapperTag[:i]
	}
	if prefix != "" {
		w.CreateAttr("xmlns:"+prefix, ns)
	} else {
		w.CreateAttr("xmlns", ns)
	}
	parent := el.Parent()
	at := 0
	if parent != nil {
		at = el.Index()
		parent.RemoveChildAt(at)
	}
	w.AddChild(el)
	if _, err := EncryptInPlace(el, TypeElement, AES256GCM, pub, o); err != nil {
		return nil, err
	}
	if parent != nil {
		parent.InsertChildAt(at, w)
	}
	return w, nil
}

func indexByte(s string, c byte) int {
	for i := 0; i < len(s); i++ {
		if s[i] == c {
			return i
		}
	}
	return -1
}
