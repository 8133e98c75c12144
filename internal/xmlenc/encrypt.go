package xmlenc

import (
	"bytes"
	"crypto"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"crypto/rsa"
	"encoding/base64"
	"errors"
	"fmt"

	"github.com/beevik/etree"
)

// KeyOptions say how EncryptKey transports a key.
type KeyOptions struct {
	// Method is RSAOAEP (the default) or RSAOAEPMGF1P.
	Method string
	// Digest is DigestSHA256 (the default) or DigestSHA1.
	Digest string
	// MGF is MGF1SHA1 (the default) or MGF1SHA256; RSAOAEP only.
	MGF string
	// KeyInfo, when set, is put in the EncryptedKey to name the
	// recipient's key (an X509Data, a SecurityTokenReference).
	KeyInfo *etree.Element
	// ID is the EncryptedKey's Id; none when empty.
	ID string
}

// EncryptKey returns an xenc:EncryptedKey transporting key to pub with
// RSA-OAEP: how the STS encrypts an assertion's key for a relying party,
// and how tests make messages.
func EncryptKey(pub *rsa.PublicKey, key []byte, o KeyOptions) (*etree.Element, error) {
	if o.Method == "" {
		o.Method = RSAOAEP
	}
	if o.Digest == "" {
		o.Digest = DigestSHA256
	}
	opts := &rsa.OAEPOptions{Hash: crypto.SHA256, MGFHash: crypto.SHA1}
	if o.Digest == DigestSHA1 {
		opts.Hash = crypto.SHA1
	} else if o.Digest != DigestSHA256 {
		return nil, fmt.Errorf("xmlenc: digest %q", o.Digest)
	}
	switch o.Method {
	case RSAOAEP:
		switch o.MGF {
		case "", MGF1SHA1:
		case MGF1SHA256:
			opts.MGFHash = crypto.SHA256
		default:
			return nil, fmt.Errorf("xmlenc: MGF %q", o.MGF)
		}
	case RSAOAEPMGF1P:
		if o.MGF != "" {
			return nil, errors.New("xmlenc: rsa-oaep-mgf1p has no MGF choice")
		}
	default:
		return nil, fmt.Errorf("xmlenc: key transport %q", o.Method)
	}
	ct, err := rsa.EncryptOAEPWithOptions(rand.Reader, pub, key, opts)
	if err != nil {
		return nil, err
	}
	ek := etree.NewElement("xenc:EncryptedKey")
	ek.CreateAttr("xmlns:xenc", NamespaceXENC)
	if o.ID != "" {
		ek.CreateAttr("Id", o.ID)
	}
	m := ek.CreateElement("xenc:EncryptionMethod")
	m.CreateAttr("Algorithm", o.Method)
	dm := m.CreateElement("ds:DigestMethod")
	dm.CreateAttr("xmlns:ds", NamespaceDSig)
	dm.CreateAttr("Algorithm", o.Digest)
	if o.MGF != "" {
		mgf := m.CreateElement("xenc11:MGF")
		mgf.CreateAttr("xmlns:xenc11", NamespaceXENC11)
		mgf.CreateAttr("Algorithm", o.MGF)
	}
	if o.KeyInfo != nil {
		ek.AddChild(o.KeyInfo)
	}
	ek.CreateElement("xenc:CipherData").CreateElement("xenc:CipherValue").SetText(base64.StdEncoding.EncodeToString(ct))
	return ek, nil
}

// EncryptData returns an xenc:EncryptedData of plaintext (Type typ,
// TypeElement or TypeContent) encrypted with key by method (AES-GCM or
// AES-CBC), with keyInfo (may be nil) and Id id (none when empty).
func EncryptData(plaintext, key []byte, method, typ, id string, keyInfo *etree.Element) (*etree.Element, error) {
	if contentKeyLen(method) != len(key) {
		return nil, fmt.Errorf("xmlenc: %d byte key for %q", len(key), method)
	}
	b, err := aes.NewCipher(key)
	if err != nil {
		return nil, err
	}
	var v []byte
	switch method {
	case AES128GCM, AES192GCM, AES256GCM:
		g, err := cipher.NewGCM(b)
		if err != nil {
			return nil, err
		}
		iv := randomKey(g.NonceSize())
		v = g.Seal(iv, iv, plaintext, nil)
	default:
		pad := aes.BlockSize - len(plaintext)%aes.BlockSize
		p := append(bytes.Clone(plaintext), bytes.Repeat([]byte{byte(pad)}, pad)...)
		iv := randomKey(aes.BlockSize)
		v = make([]byte, aes.BlockSize+len(p))
		copy(v, iv)
		cipher.NewCBCEncrypter(b, iv).CryptBlocks(v[aes.BlockSize:], p)
	}
	ed := etree.NewElement("xenc:EncryptedData")
	ed.CreateAttr("xmlns:xenc", NamespaceXENC)
	if id != "" {
		ed.CreateAttr("Id", id)
	}
	ed.CreateAttr("Type", typ)
	ed.CreateElement("xenc:EncryptionMethod").CreateAttr("Algorithm", method)
	if keyInfo != nil {
		ed.AddChild(keyInfo)
	}
	ed.CreateElement("xenc:CipherData").CreateElement("xenc:CipherValue").SetText(base64.StdEncoding.EncodeToString(v))
	return ed, nil
}

// NewKey returns a random content key for method.
func NewKey(method string) []byte { return randomKey(contentKeyLen(method)) }

// EncryptInPlace encrypts el (typ TypeElement) or its content (TypeContent)
// with a fresh key for method, transported to pub inside the
// EncryptedData's KeyInfo, and puts the EncryptedData in its place. It
// returns the EncryptedData.
func EncryptInPlace(el *etree.Element, typ, method string, pub *rsa.PublicKey, o KeyOptions) (*etree.Element, error) {
	key := NewKey(method)
	if key == nil {
		return nil, fmt.Errorf("xmlenc: content algorithm %q", method)
	}
	ek, err := EncryptKey(pub, key, o)
	if err != nil {
		return nil, err
	}
	ki := etree.NewElement("ds:KeyInfo")
	ki.CreateAttr("xmlns:ds", NamespaceDSig)
	ki.AddChild(ek)
	return Seal(el, typ, method, key, "", ki)
}

// Seal encrypts el or its content with key and puts the EncryptedData,
// with Id id and keyInfo, in its place.
func Seal(el *etree.Element, typ, method string, key []byte, id string, keyInfo *etree.Element) (*etree.Element, error) {
	var buf bytes.Buffer
	ws := &etree.WriteSettings{}
	switch typ {
	case TypeElement:
		el.WriteTo(&buf, ws)
	case TypeContent:
		for _, t := range el.Child {
			t.WriteTo(&buf, ws)
		}
	default:
		return nil, fmt.Errorf("xmlenc: type %q", typ)
	}
	ed, err := EncryptData(buf.Bytes(), key, method, typ, id, keyInfo)
	if err != nil {
		return nil, err
	}
	switch typ {
	case TypeElement:
		p := el.Parent()
		i := el.Index()
		p.RemoveChildAt(i)
		p.InsertChildAt(i, ed)
	case TypeContent:
		for len(el.Child) > 0 {
			el.RemoveChildAt(0)
		}
		el.AddChild(ed)
	}
	return ed, nil
}
