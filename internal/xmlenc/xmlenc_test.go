package xmlenc

import (
	"bytes"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"errors"
	"strings"
	"testing"

	"github.com/beevik/etree"

	"github.com/gatehouse/gatehouse/internal/xmlsig/xmlsigtest"
)

const (
	nsS11 = "http://schemas.xmlsoap.org/soap/envelope/"
	body  = `<m:GetProduct xmlns:m="urn:gatehouse:demo:products"><m:id>p-1001</m:id></m:GetProduct>`
)

// fixture is the recipient's keys: two RSA keys with certificates and a
// wrap key, and a stranger's RSA key.
type fixture struct {
	d        *Decrypter
	k1, k2   *xmlsigtest.Cert
	stranger *rsa.PrivateKey
	kek      []byte
}

func newFixture(t testing.TB) *fixture {
	t.Helper()
	ca := xmlsigtest.NewCA(t, "enc CA")
	k1 := ca.Issue(t, pkix.Name{CommonName: "gateway 1"}, xmlsigtest.RSAKey(t, 1), func(c *x509.Certificate) { c.SubjectKeyId = []byte{1, 2, 3, 4} })
	k2 := ca.Issue(t, pkix.Name{CommonName: "gateway 2"}, xmlsigtest.RSAKey(t, 2), func(c *x509.Certificate) { c.SubjectKeyId = []byte{5, 6, 7, 8} })
	kek := bytes.Repeat([]byte{7}, 32)
	d, err := New(Keys{
		RSA:       []RSAKey{{Key: k1.Key.(*rsa.PrivateKey), Cert: k1.Cert}, {Key: k2.Key.(*rsa.PrivateKey), Cert: k2.Cert}},
		Symmetric: map[string][]byte{"kek-1": kek},
	}, Options{})
	if err != nil {
		t.Fatal(err)
	}
	return &fixture{d: d, k1: k1, k2: k2, stranger: xmlsigtest.RSAKey(t, 3), kek: kek}
}

// envelope returns a parsed SOAP 1.1 envelope with the payload in the Body.
func envelope(t testing.TB, payload string) (*etree.Document, *etree.Element) {
	t.Helper()
	doc := etree.NewDocument()
	if err := doc.ReadFromString(`<soap:Envelope xmlns:soap="` + nsS11 + `"><soap:Header/><soap:Body>` + payload + `</soap:Body></soap:Envelope>`); err != nil {
		t.Fatal(err)
	}
	return doc, doc.Root().ChildElements()[1]
}

func pub(c *xmlsigtest.Cert) *rsa.PublicKey { return c.Cert.PublicKey.(*rsa.PublicKey) }

// x509KeyInfo names cert by its ThumbprintSHA1 in a SecurityTokenReference.
func thumbKeyInfo(c *x509.Certificate) *etree.Element {
	ki := etree.NewElement("ds:KeyInfo")
	ki.CreateAttr("xmlns:ds", NamespaceDSig)
	str := ki.CreateElement("wsse:SecurityTokenReference")
	str.CreateAttr("xmlns:wsse", NamespaceWSSE)
	kid := str.CreateElement("wsse:KeyIdentifier")
	kid.CreateAttr("ValueType", valueThumbSHA1)
	kid.SetText(base64.StdEncoding.EncodeToString(Thumbprint(c)))
	return ki
}

func keyNameInfo(name string) *etree.Element {
	ki := etree.NewElement("ds:KeyInfo")
	ki.CreateAttr("xmlns:ds", NamespaceDSig)
	ki.CreateElement("ds:KeyName").SetText(name)
	return ki
}

// inlineKey wraps an EncryptedKey in a KeyInfo.
func inlineKey(ek *etree.Element) *etree.Element {
	ki := etree.NewElement("ds:KeyInfo")
	ki.CreateAttr("xmlns:ds", NamespaceDSig)
	ki.AddChild(ek)
	return ki
}

// decryptBody decrypts every EncryptedData in the Body of doc and returns
// the Body serialized, or the error.
func decryptBody(t testing.TB, f *fixture, doc *etree.Document, authenticated bool) (string, error) {
	t.Helper()
	ids := map[string]*etree.Element{}
	for _, el := range descendants(doc.Root()) {
		if id := el.SelectAttrValue("Id", ""); id != "" {
			ids[id] = el
		}
	}
	s := f.d.NewSession(func(id string) *etree.Element { return ids[id] })
	kids := doc.Root().ChildElements()
	b := kids[len(kids)-1]
	for _, el := range descendants(b) {
		if el.Tag != "EncryptedData" {
			continue
		}
		d, err := ParseData(el)
		if err != nil {
			return "", err
		}
		if _, err := s.Replace(d, authenticated); err != nil {
			return "", err
		}
	}
	var buf bytes.Buffer
	for _, c := range b.Child {
		c.WriteTo(&buf, &etree.WriteSettings{})
	}
	return buf.String(), nil
}

// TestDecrypt runs the accepted variants and every attack class through
// the same path; every refusal must be ErrDecrypt (or ErrMalformed for a
// structure refused before any cryptography), never anything that tells
// the classes apart.
func TestDecrypt(t *testing.T) {
	f := newFixture(t)
	seal := func(method, typ string, o KeyOptions, key *rsa.PublicKey) func(t *testing.T, b *etree.Element) {
		return func(t *testing.T, b *etree.Element) {
			target := b
			if typ == TypeElement {
				target = b.ChildElements()[0]
			}
			if _, err := EncryptInPlace(target, typ, method, key, o); err != nil {
				t.Fatal(err)
			}
		}
	}
	cipherValueOf := func(b *etree.Element, ek bool) *etree.Element {
		for _, el := range descendants(b) {
			if el.Tag == "CipherValue" && (el.Parent().Parent().Tag == "EncryptedKey") == ek {
				return el
			}
		}
		return nil
	}
	flip := func(ek bool, at int) func(t *testing.T, b *etree.Element) {
		return func(t *testing.T, b *etree.Element) {
			cv := cipherValueOf(b, ek)
			v, _ := base64.StdEncoding.DecodeString(cv.Text())
			if at < 0 {
				at += len(v)
			}
			v[at] ^= 1
			cv.SetText(base64.StdEncoding.EncodeToString(v))
		}
	}
	// sealPlain encrypts raw plaintext bytes as the Body's content.
	sealPlain := func(plain, method string) func(t *testing.T, b *etree.Element) {
		return func(t *testing.T, b *etree.Element) {
			key := NewKey(method)
			ek, err := EncryptKey(pub(f.k1), key, KeyOptions{})
			if err != nil {
				t.Fatal(err)
			}
			ed, err := EncryptData([]byte(plain), key, method, TypeContent, "", inlineKey(ek))
			if err != nil {
				t.Fatal(err)
			}
			for len(b.Child) > 0 {
				b.RemoveChildAt(0)
			}
			b.AddChild(ed)
		}
	}
	deep := strings.Repeat("<a>", 70) + strings.Repeat("</a>", 70)
	bomb := `<!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">]><lolz>&lol2;</lolz>`

	tests := []struct {
		name          string
		edit          func(t *testing.T, b *etree.Element)
		authenticated bool
		want          error // nil: decrypts to body
	}{
		{"gcm256 content oaep sha256", seal(AES256GCM, TypeContent, KeyOptions{}, pub(f.k1)), false, nil},
		{"gcm128 element oaep", seal(AES128GCM, TypeElement, KeyOptions{}, pub(f.k1)), false, nil},
		{"gcm192 element", seal(AES192GCM, TypeElement, KeyOptions{}, pub(f.k1)), false, nil},
		{"mgf1p sha1", seal(AES256GCM, TypeContent, KeyOptions{Method: RSAOAEPMGF1P, Digest: DigestSHA1}, pub(f.k1)), false, nil},
		{"mgf1p sha256 digest", seal(AES256GCM, TypeContent, KeyOptions{Method: RSAOAEPMGF1P}, pub(f.k1)), false, nil},
		{"oaep11 mgf1sha256", seal(AES256GCM, TypeContent, KeyOptions{MGF: MGF1SHA256}, pub(f.k1)), false, nil},
		{"oaep11 sha1 mgf1sha1", seal(AES256GCM, TypeContent, KeyOptions{Digest: DigestSHA1, MGF: MGF1SHA1}, pub(f.k1)), false, nil},
		{"second key by thumbprint", seal(AES256GCM, TypeContent, KeyOptions{KeyInfo: thumbKeyInfo(f.k2.Cert)}, pub(f.k2)), false, nil},
		{"cbc signed", seal(AES256CBC, TypeContent, KeyOptions{}, pub(f.k1)), true, nil},
		{"cbc128 signed element", seal(AES128CBC, TypeElement, KeyOptions{}, pub(f.k1)), true, nil},
		{"key wrap kw-aes256", func(t *testing.T, b *etree.Element) {
			key := NewKey(AES256GCM)
			w, _ := Wrap(f.kek, key)
			ek := etree.NewElement("xenc:EncryptedKey")
			ek.CreateAttr("xmlns:xenc", NamespaceXENC)
			ek.CreateElement("xenc:EncryptionMethod").CreateAttr("Algorithm", KWAES256)
			ek.AddChild(keyNameInfo("kek-1"))
			ek.CreateElement("xenc:CipherData").CreateElement("xenc:CipherValue").SetText(base64.StdEncoding.EncodeToString(w))
			if _, err := Seal(b, TypeContent, AES256GCM, key, "", inlineKey(ek)); err != nil {
				t.Fatal(err)
			}
		}, false, nil},

		// Attack classes: one error for all.
		{"tampered ciphertext", func(t *testing.T, b *etree.Element) {
			seal(AES256GCM, TypeContent, KeyOptions{}, pub(f.k1))(t, b)
			flip(false, 20)(t, b)
		}, false, ErrDecrypt},
		{"tampered tag", func(t *testing.T, b *etree.Element) {
			seal(AES256GCM, TypeContent, KeyOptions{}, pub(f.k1))(t, b)
			flip(false, -1)(t, b)
		}, false, ErrDecrypt},
		{"tampered key", func(t *testing.T, b *etree.Element) {
			seal(AES256GCM, TypeContent, KeyOptions{}, pub(f.k1))(t, b)
			flip(true, 100)(t, b)
		}, false, ErrDecrypt},
		{"wrong key (a stranger's)", seal(AES256GCM, TypeContent, KeyOptions{}, &f.stranger.PublicKey), false, ErrDecrypt},
		{"unknown certificate named", seal(AES256GCM, TypeContent, KeyOptions{KeyInfo: thumbKeyInfo(xmlsigtest.NewCA(t, "other").Cert)}, pub(f.k1)), false, ErrDecrypt},
		{"mislabelled digest", func(t *testing.T, b *etree.Element) {
			seal(AES256GCM, TypeContent, KeyOptions{}, pub(f.k1))(t, b)
			for _, el := range descendants(b) {
				if el.Tag == "DigestMethod" {
					el.CreateAttr("Algorithm", DigestSHA1)
				}
			}
		}, false, ErrDecrypt},
		{"rsa 1.5 key transport", func(t *testing.T, b *etree.Element) {
			seal(AES256GCM, TypeContent, KeyOptions{}, pub(f.k1))(t, b)
			//lint:ignore SA1019 an RSA-1.5 key transport the gateway must refuse
			ct, err := rsa.EncryptPKCS1v15(rand.Reader, pub(f.k1), make([]byte, 32))
			if err != nil {
				t.Fatal(err)
			}
			cipherValueOf(b, true).SetText(base64.StdEncoding.EncodeToString(ct))
			for _, el := range descendants(b) {
				if el.Tag == "EncryptionMethod" && el.Parent().Tag == "EncryptedKey" {
					el.CreateAttr("Algorithm", RSA15)
					el.RemoveChildAt(0)
				}
			}
		}, false, ErrDecrypt},
		{"cbc unsigned", seal(AES256CBC, TypeContent, KeyOptions{}, pub(f.k1)), false, ErrDecrypt},
		{"cbc bad padding", func(t *testing.T, b *etree.Element) {
			seal(AES256CBC, TypeContent, KeyOptions{}, pub(f.k1))(t, b)
			flip(false, -17)(t, b) // last byte of the next-to-last block: the pad length
		}, true, ErrDecrypt},
		{"3des", func(t *testing.T, b *etree.Element) {
			seal(AES256CBC, TypeContent, KeyOptions{}, pub(f.k1))(t, b)
			for _, el := range descendants(b) {
				if el.Tag == "EncryptionMethod" && el.Parent().Tag == "EncryptedData" {
					el.CreateAttr("Algorithm", TripleDESCBC)
				}
			}
		}, true, ErrDecrypt},
		{"key too short for the content", func(t *testing.T, b *etree.Element) {
			ek, _ := EncryptKey(pub(f.k1), NewKey(AES128GCM), KeyOptions{})
			key := NewKey(AES256GCM)
			if _, err := Seal(b, TypeContent, AES256GCM, key, "", inlineKey(ek)); err != nil {
				t.Fatal(err)
			}
		}, false, ErrDecrypt},
		{"wrong wrap key name", func(t *testing.T, b *etree.Element) {
			key := NewKey(AES256GCM)
			w, _ := Wrap(bytes.Repeat([]byte{8}, 32), key)
			ek := etree.NewElement("xenc:EncryptedKey")
			ek.CreateAttr("xmlns:xenc", NamespaceXENC)
			ek.CreateElement("xenc:EncryptionMethod").CreateAttr("Algorithm", KWAES256)
			ek.AddChild(keyNameInfo("kek-1"))
			ek.CreateElement("xenc:CipherData").CreateElement("xenc:CipherValue").SetText(base64.StdEncoding.EncodeToString(w))
			Seal(b, TypeContent, AES256GCM, key, "", inlineKey(ek))
		}, false, ErrDecrypt},
		{"no key at all", func(t *testing.T, b *etree.Element) {
			Seal(b, TypeContent, AES256GCM, NewKey(AES256GCM), "", nil)
		}, false, ErrDecrypt},
		{"key named in the message only", func(t *testing.T, b *etree.Element) {
			Seal(b, TypeContent, AES256GCM, NewKey(AES256GCM), "", keyNameInfo("not-configured"))
		}, false, ErrDecrypt},
		{"xml bomb inside", sealPlain(bomb, AES256GCM), false, ErrDecrypt},
		{"xxe inside", sealPlain(`<!DOCTYPE a [<!ENTITY x SYSTEM "file:///etc/passwd">]><a>&x;</a>`, AES256GCM), false, ErrDecrypt},
		{"processing instruction inside", sealPlain(`<?evil x?><a/>`, AES256GCM), false, ErrDecrypt},
		{"xml declaration inside", sealPlain(`<?xml version="1.0"?><a/>`, AES256GCM), false, ErrDecrypt},
		{"not well-formed inside", sealPlain(`<a><b></a>`, AES256GCM), false, ErrDecrypt},
		{"closing the wrapper", sealPlain(`</xmlenc-plaintext><x>`, AES256GCM), false, ErrDecrypt},
		{"too deep inside", sealPlain(deep, AES256GCM), false, ErrDecrypt},
		{"nested encryption", sealPlain(`<xenc:EncryptedData xmlns:xenc="`+NamespaceXENC+`"/>`, AES256GCM), false, ErrDecrypt},
		{"undeclared prefix inside", sealPlain(`<q:a/>`, AES256GCM), false, ErrDecrypt},
		{"duplicate attribute inside", sealPlain(`<a x="1" x="2"/>`, AES256GCM), false, ErrDecrypt},
		{"element type with two elements", func(t *testing.T, b *etree.Element) {
			key := NewKey(AES256GCM)
			ek, _ := EncryptKey(pub(f.k1), key, KeyOptions{})
			ed, _ := EncryptData([]byte(`<a/><b/>`), key, AES256GCM, TypeElement, "", inlineKey(ek))
			b.RemoveChildAt(0)
			b.AddChild(ed)
		}, false, ErrDecrypt},

		// Structure refused before any cryptography.
		{"cipher reference", func(t *testing.T, b *etree.Element) {
			seal(AES256GCM, TypeContent, KeyOptions{}, pub(f.k1))(t, b)
			cd := cipherValueOf(b, false).Parent()
			cd.RemoveChildAt(0)
			cd.CreateElement("xenc:CipherReference").CreateAttr("URI", "http://127.0.0.1:1/x")
		}, false, ErrMalformed},
		{"unknown content algorithm", func(t *testing.T, b *etree.Element) {
			seal(AES256GCM, TypeContent, KeyOptions{}, pub(f.k1))(t, b)
			b.ChildElements()[0].ChildElements()[0].CreateAttr("Algorithm", "urn:x")
		}, false, ErrMalformed},
		{"no type", func(t *testing.T, b *etree.Element) {
			seal(AES256GCM, TypeContent, KeyOptions{}, pub(f.k1))(t, b)
			b.ChildElements()[0].RemoveAttr("Type")
		}, false, ErrMalformed},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			doc, b := envelope(t, body)
			tc.edit(t, b)
			got, err := decryptBody(t, f, doc, tc.authenticated)
			if tc.want == nil {
				if err != nil {
					t.Fatalf("got %v, want success", err)
				}
				if got != body {
					t.Fatalf("decrypted to %q, want %q", got, body)
				}
				return
			}
			if !errors.Is(err, tc.want) {
				t.Fatalf("got %v, want %v", err, tc.want)
			}
			if tc.want == ErrDecrypt && err != ErrDecrypt {
				t.Fatalf("got %v, want exactly ErrDecrypt (no detail)", err)
			}
		})
	}
}

// TestNamespaceContext: the plaintext's prefixes mean what they mean at
// the EncryptedData's place, including the default namespace.
func TestNamespaceContext(t *testing.T) {
	f := newFixture(t)
	doc := etree.NewDocument()
	if err := doc.ReadFromString(`<soap:Envelope xmlns:soap="` + nsS11 + `" xmlns:m="urn:m" xmlns="urn:default"><soap:Body><m:a><b/></m:a></soap:Body></soap:Envelope>`); err != nil {
		t.Fatal(err)
	}
	b := doc.Root().ChildElements()[0]
	if _, err := EncryptInPlace(b, TypeContent, AES256GCM, pub(f.k1), KeyOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := decryptBody(t, f, doc, false); err != nil {
		t.Fatal(err)
	}
	a := b.ChildElements()[0]
	if a.NamespaceURI() != "urn:m" || a.ChildElements()[0].NamespaceURI() != "urn:default" {
		t.Fatalf("namespaces %q %q", a.NamespaceURI(), a.ChildElements()[0].NamespaceURI())
	}
}

// TestKeyWrapVector is RFC 3394 §4.6 (256-bit key with a 256-bit KEK).
func TestKeyWrapVector(t *testing.T) {
	kek := unhex(t, "000102030405060708090A0B0C0D0E0F101112131415161718191A1B1C1D1E1F")
	key := unhex(t, "00112233445566778899AABBCCDDEEFF000102030405060708090A0B0C0D0E0F")
	want := unhex(t, "28C9F404C4B810F4CBCCB35CFB87F8263F5786E2D80ED326CBC7F0E71A99F43BFB988B9B7A02DD21")
	got, err := Wrap(kek, key)
	if err != nil || !bytes.Equal(got, want) {
		t.Fatalf("Wrap = %X, %v", got, err)
	}
	back, err := Unwrap(kek, got)
	if err != nil || !bytes.Equal(back, key) {
		t.Fatalf("Unwrap = %X, %v", back, err)
	}
	got[3] ^= 1
	if _, err := Unwrap(kek, got); err == nil {
		t.Fatal("tampered wrap accepted")
	}
}

func unhex(t *testing.T, s string) []byte {
	b := make([]byte, len(s)/2)
	for i := range b {
		var v byte
		for _, c := range s[2*i : 2*i+2] {
			v <<= 4
			switch {
			case c >= '0' && c <= '9':
				v |= byte(c - '0')
			default:
				v |= byte(c-'A') + 10
			}
		}
		b[i] = v
	}
	return b
}

// TestNewRefusesWeakKeys: keys are checked at load.
func TestNewRefusesWeakKeys(t *testing.T) {
	small, err := rsa.GenerateKey(rand.Reader, 1024)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := New(Keys{RSA: []RSAKey{{Key: small}}}, Options{}); err == nil {
		t.Error("1024-bit key accepted")
	}
	if _, err := New(Keys{Symmetric: map[string][]byte{"x": make([]byte, 10)}}, Options{}); err == nil {
		t.Error("10-byte wrap key accepted")
	}
	if _, err := New(Keys{}, Options{}); err == nil {
		t.Error("no keys accepted")
	}
	ca := xmlsigtest.NewCA(t, "x")
	if _, err := New(Keys{RSA: []RSAKey{{Key: xmlsigtest.RSAKey(t, 1), Cert: ca.Cert}}}, Options{}); err == nil {
		t.Error("key not matching its certificate accepted")
	}
}

// TestKeyCacheOnlyAfterContent: an EncryptedKey is remembered only once
// content decrypted under it. Remembering every key that unwrapped would
// be an OAEP validity oracle: an attacker sends a changed EncryptedKey
// twice and times the second.
func TestKeyCacheOnlyAfterContent(t *testing.T) {
	f := newFixture(t)
	d, err := New(Keys{RSA: []RSAKey{{Key: f.k1.Key.(*rsa.PrivateKey), Cert: f.k1.Cert}}}, Options{KeyCache: 8})
	if err != nil {
		t.Fatal(err)
	}
	f.d = d
	cached := func() int {
		d.cache.mu.Lock()
		defer d.cache.mu.Unlock()
		return len(d.cache.m)
	}
	// Valid key, tampered content: unwraps, but is not remembered.
	doc, b := envelope(t, body)
	if _, err := EncryptInPlace(b, TypeContent, AES256GCM, pub(f.k1), KeyOptions{}); err != nil {
		t.Fatal(err)
	}
	cv := b.FindElement(".//EncryptedData/CipherData/CipherValue")
	v, _ := base64.StdEncoding.DecodeString(cv.Text())
	v[len(v)-1] ^= 1
	good := cv.Text()
	cv.SetText(base64.StdEncoding.EncodeToString(v))
	bad := doc.Copy()
	if _, err := decryptBody(t, f, bad, false); err != ErrDecrypt {
		t.Fatalf("tampered content: %v", err)
	}
	if n := cached(); n != 0 {
		t.Fatalf("%d keys cached after a failed decryption", n)
	}
	// The same key with its real content: remembered, and used again.
	cv.SetText(good)
	for range 2 {
		if _, err := decryptBody(t, f, doc.Copy(), false); err != nil {
			t.Fatal(err)
		}
		if n := cached(); n != 1 {
			t.Fatalf("%d keys cached after a good decryption, want 1", n)
		}
	}
	// A cached key does not make a tampered message pass.
	if _, err := decryptBody(t, f, bad.Copy(), false); err != ErrDecrypt {
		t.Fatalf("tampered content with a cached key: %v", err)
	}
}

// TestMaxKeysPerSession: a document with many EncryptedKeys gets at most
// MaxKeys RSA operations; the ones beyond fail like a wrong key.
func TestMaxKeysPerSession(t *testing.T) {
	f := newFixture(t)
	doc, b := envelope(t, strings.Repeat(`<m:x xmlns:m="urn:x">1</m:x>`, 6))
	for _, el := range b.ChildElements() {
		if _, err := EncryptInPlace(el, TypeElement, AES256GCM, pub(f.k1), KeyOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	s := f.d.NewSession(nil)
	var errs []error
	for _, el := range b.ChildElements() {
		d, err := ParseData(el)
		if err != nil {
			t.Fatal(err)
		}
		_, err = s.Decrypt(d, false)
		errs = append(errs, err)
	}
	for i, err := range errs {
		if (i < 4) != (err == nil) {
			t.Errorf("EncryptedData %d: %v", i, err)
		}
	}
	_ = doc
}

// TestNamespaceWithWhitespace: a namespace name holding a tab (written
// &#9;) is no URI reference, which libxml2 reports as an error, so
// xmlscan refuses it, also in the scope a decrypted plaintext is parsed
// in: the decryption fails, where the same document with a namespace name
// without the tab decrypts.
func TestNamespaceWithWhitespace(t *testing.T) {
	f := newFixture(t)
	for _, tt := range []struct {
		written, ns string
		ok          bool
	}{
		{"urn:a-b", "urn:a-b", true},
		{"urn:a&#9;b", "urn:a\tb", false},
	} {
		doc := etree.NewDocument()
		if err := doc.ReadFromString(`<soap:Envelope xmlns:soap="` + nsS11 + `" xmlns:m="` + tt.written + `"><soap:Body><m:x/></soap:Body></soap:Envelope>`); err != nil {
			t.Fatal(err)
		}
		b := doc.Root().ChildElements()[0]
		if _, err := EncryptInPlace(b, TypeContent, AES256GCM, pub(f.k1), KeyOptions{}); err != nil {
			t.Fatal(err)
		}
		_, err := decryptBody(t, f, doc, false)
		if !tt.ok {
			if err == nil {
				t.Errorf("namespace %q: decryption succeeded, want a refusal", tt.ns)
			}
			continue
		}
		if err != nil {
			t.Fatalf("namespace %q: %v", tt.ns, err)
		}
		if ns := b.ChildElements()[0].NamespaceURI(); ns != tt.ns {
			t.Fatalf("namespace %q, want %q", ns, tt.ns)
		}
	}
}
