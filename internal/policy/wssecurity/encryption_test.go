package wssecurity

import (
	"bytes"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/beevik/etree"

	"github.com/gatehouse/gatehouse/internal/policy"
	"github.com/gatehouse/gatehouse/internal/xmlenc"
	"github.com/gatehouse/gatehouse/internal/xmlsig/xmlsigtest"
)

// encFixture is an x509Fixture plus the gateway's encryption certificate
// and key, and a stranger's key.
type encFixture struct {
	*x509Fixture
	gw       *xmlsigtest.Cert
	stranger *rsa.PrivateKey
	certFile string
	keyFile  string
}

func newEncFixture(t testing.TB) *encFixture {
	f := &encFixture{x509Fixture: newX509Fixture(t)}
	f.gw = f.ca.Issue(t, pkix.Name{CommonName: "gateway encryption"}, xmlsigtest.RSAKey(t, 4), func(c *x509.Certificate) {
		c.KeyUsage = x509.KeyUsageKeyEncipherment
		c.SubjectKeyId = []byte{9, 9, 9}
	})
	f.stranger = xmlsigtest.RSAKey(t, 2)
	dir := t.TempDir()
	f.certFile = writeFile(t, dir, "gw.pem", f.gw.CertPEM())
	f.keyFile = writeFile(t, dir, "gw.key", f.gw.KeyPEM(t))
	return f
}

func (f *encFixture) config(extra string) string {
	return f.x509Fixture.config("") +
		"username_token: {text: allowed, users: [{username: alice, password: s3cret}]}\n" +
		"encryption:\n  keys: [{certificate: " + f.certFile + ", key: {file: " + f.keyFile + "}}]\n" + extra
}

func (f *encFixture) pub() *rsa.PublicKey { return f.gw.Cert.PublicKey.(*rsa.PublicKey) }

// encOpts say how wssEncrypt encrypts.
type encOpts struct {
	method string // content algorithm; default AES-256-GCM
	to     *rsa.PublicKey
	key    xmlenc.KeyOptions
	// edit changes the EncryptedKey and EncryptedData before they are
	// placed (attacks).
	edit func(ek *etree.Element, eds []*etree.Element)
	// kek, when set, wraps the key with kw-aes256 under the wrap key
	// named "kek-1" instead of RSA.
	kek []byte
}

// wssEncrypt encrypts the elements with the given IDs (Body: its content;
// others: the element) of doc with one fresh key, WSS4J style: an
// EncryptedKey with a ReferenceList prepended to the Security header, and
// EncryptedData whose KeyInfo references it.
func wssEncrypt(t testing.TB, doc *etree.Document, o encOpts, ids ...string) {
	t.Helper()
	if o.method == "" {
		o.method = xmlenc.AES256GCM
	}
	key := xmlenc.NewKey(o.method)
	o.key.ID = "EK-1"
	var ek *etree.Element
	if o.kek != nil {
		w, err := xmlenc.Wrap(o.kek, key)
		if err != nil {
			t.Fatal(err)
		}
		ek = etree.NewElement("xenc:EncryptedKey")
		ek.CreateAttr("xmlns:xenc", xmlenc.NamespaceXENC)
		ek.CreateAttr("Id", "EK-1")
		ek.CreateElement("xenc:EncryptionMethod").CreateAttr("Algorithm", xmlenc.KWAES256)
		ki := ek.CreateElement("ds:KeyInfo")
		ki.CreateAttr("xmlns:ds", xmlenc.NamespaceDSig)
		ki.CreateElement("ds:KeyName").SetText("kek-1")
		ek.CreateElement("xenc:CipherData").CreateElement("xenc:CipherValue").SetText(base64.StdEncoding.EncodeToString(w))
	} else {
		var err error
		if ek, err = xmlenc.EncryptKey(o.to, key, o.key); err != nil {
			t.Fatal(err)
		}
	}
	rl := etree.NewElement("xenc:ReferenceList")
	var eds []*etree.Element
	for i, id := range ids {
		el := findID(doc.Root(), id)
		if el == nil {
			t.Fatalf("no element %q", id)
		}
		typ := xmlenc.TypeElement
		if el.Tag == "Body" {
			typ = xmlenc.TypeContent
		}
		ki := etree.NewElement("ds:KeyInfo")
		ki.CreateAttr("xmlns:ds", xmlenc.NamespaceDSig)
		str := ki.CreateElement("wsse:SecurityTokenReference")
		str.CreateAttr("xmlns:wsse", NamespaceWSSE)
		str.CreateElement("wsse:Reference").CreateAttr("URI", "#EK-1")
		edID := "ED-" + itoa(i+1)
		ed, err := xmlenc.Seal(el, typ, o.method, key, edID, ki)
		if err != nil {
			t.Fatal(err)
		}
		eds = append(eds, ed)
		rl.CreateElement("xenc:DataReference").CreateAttr("URI", "#"+edID)
	}
	// The ReferenceList goes before the CipherData... after it, as the
	// schema orders EncryptedKey's children.
	ek.AddChild(rl)
	if o.edit != nil {
		o.edit(ek, eds)
	}
	sec := doc.FindElement("//Security")
	sec.InsertChildAt(0, ek)
}

func findID(root *etree.Element, id string) *etree.Element {
	for _, a := range root.Attr {
		if (a.Key == "Id" || a.Key == "ID") && a.Value == id {
			return root
		}
	}
	for _, c := range root.ChildElements() {
		if e := findID(c, id); e != nil {
			return e
		}
	}
	return nil
}

func docString(t testing.TB, doc *etree.Document) string {
	t.Helper()
	s, err := doc.WriteToString()
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// utEnc is a message with a Timestamp and a UsernameToken (Id UT-1) and
// the payload in Body-1, in SOAP 1.1 or 1.2.
func utEnc(t testing.TB, now time.Time, soap12 bool) *etree.Document {
	s := utMessage(t, "alice", "s3cret", true, now)
	if soap12 {
		s = strings.ReplaceAll(s, NamespaceSOAP11, NamespaceSOAP12)
	}
	return parseDoc(t, s)
}

// signEnc signs Body-1 and TS-1 of doc with signer, a BinarySecurityToken
// referenced; first puts the Signature (and its token) first in the
// Security header, as a signature made last is.
func signEnc(t testing.TB, doc *etree.Document, signer *xmlsigtest.Cert, first bool, ids ...string) {
	t.Helper()
	if ids == nil {
		ids = []string{"TS-1", "Body-1"}
	}
	sec := doc.FindElement("//Security")
	bst := etree.NewElement("wsse:BinarySecurityToken")
	bst.CreateAttr("EncodingType", encBase64)
	bst.CreateAttr("ValueType", valueX509v3)
	bst.CreateAttr("wsu:Id", "X509-1")
	bst.SetText(base64.StdEncoding.EncodeToString(signer.Cert.Raw))
	str := etree.NewElement("wsse:SecurityTokenReference")
	r := str.CreateElement("wsse:Reference")
	r.CreateAttr("URI", "#X509-1")
	r.CreateAttr("ValueType", valueX509v3)
	if first {
		sec.InsertChildAt(0, bst)
	} else {
		sec.AddChild(bst)
	}
	sig := xmlsigtest.Signer{Key: signer.Key}.Sign(t, sec, ids, str)
	if first {
		sec.RemoveChild(sig)
		sec.InsertChildAt(0, sig)
	}
}

// forwarded runs the policy and returns what goes upstream.
func forwarded(t *testing.T, p *Policy, msg string) (string, error) {
	t.Helper()
	ex, err := apply(t, p, msg, true)
	if err != nil {
		return "", err
	}
	b, err := ex.Body(1 << 20)
	if err != nil {
		t.Fatal(err)
	}
	return string(b), nil
}

func TestEncryptedMessages(t *testing.T) {
	f := newEncFixture(t)
	now := time.Now()
	c := &clock{now}
	type tc struct {
		name  string
		extra string
		msg   func(t *testing.T, soap12 bool) string
		code  string
	}
	tests := []tc{
		{"body encrypted, gcm", "", func(t *testing.T, s12 bool) string {
			doc := utEnc(t, now, s12)
			wssEncrypt(t, doc, encOpts{to: f.pub()}, "Body-1")
			return docString(t, doc)
		}, ""},
		{"body and username token encrypted", "  required_parts: [Body, UsernameToken]\n", func(t *testing.T, s12 bool) string {
			doc := utEnc(t, now, s12)
			wssEncrypt(t, doc, encOpts{to: f.pub(), method: xmlenc.AES128GCM, key: xmlenc.KeyOptions{Method: xmlenc.RSAOAEPMGF1P, Digest: xmlenc.DigestSHA1}}, "Body-1", "UT-1")
			return docString(t, doc)
		}, ""},
		{"sign then encrypt", "  required_parts: [Body]\n", func(t *testing.T, s12 bool) string {
			doc := utEnc(t, now, s12)
			signEnc(t, doc, f.leaf, false)
			wssEncrypt(t, doc, encOpts{to: f.pub(), key: xmlenc.KeyOptions{MGF: xmlenc.MGF1SHA256}}, "Body-1")
			return docString(t, doc)
		}, ""},
		{"sign then encrypt the signature too", "  required_parts: [Body, Signature]\n", func(t *testing.T, s12 bool) string {
			doc := utEnc(t, now, s12)
			signEnc(t, doc, f.leaf, false)
			doc.FindElement("//Signature").CreateAttr("Id", "SIG-1")
			wssEncrypt(t, doc, encOpts{to: f.pub()}, "Body-1", "SIG-1")
			return docString(t, doc)
		}, ""},
		{"encrypt then sign", "  required_parts: [Body]\n", func(t *testing.T, s12 bool) string {
			doc := utEnc(t, now, s12)
			wssEncrypt(t, doc, encOpts{to: f.pub()}, "Body-1")
			signEnc(t, doc, f.leaf, true)
			return docString(t, doc)
		}, ""},
		{"encrypt then sign, cbc allowed", "  allow_cbc: true\n", func(t *testing.T, s12 bool) string {
			doc := utEnc(t, now, s12)
			wssEncrypt(t, doc, encOpts{to: f.pub(), method: xmlenc.AES256CBC}, "Body-1")
			signEnc(t, doc, f.leaf, true)
			return docString(t, doc)
		}, ""},
		{"encrypt then sign, signature over the encrypted token", "  required_parts: [UsernameToken]\n", func(t *testing.T, s12 bool) string {
			doc := utEnc(t, now, s12)
			wssEncrypt(t, doc, encOpts{to: f.pub()}, "UT-1")
			signEnc(t, doc, f.leaf, true, "TS-1", "Body-1", "ED-1")
			return docString(t, doc)
		}, ""},

		// Refusals by policy.
		{"body required but clear", "  required_parts: [Body]\n", func(t *testing.T, s12 bool) string {
			return docString(t, utEnc(t, now, s12))
		}, CodeInvalidSecurity},
		{"username token required but clear", "  required_parts: [UsernameToken]\n", func(t *testing.T, s12 bool) string {
			doc := utEnc(t, now, s12)
			wssEncrypt(t, doc, encOpts{to: f.pub()}, "Body-1")
			return docString(t, doc)
		}, CodeInvalidSecurity},
		{"clear element beside the encrypted body", "  required_parts: [Body]\n", func(t *testing.T, s12 bool) string {
			doc := utEnc(t, now, s12)
			wssEncrypt(t, doc, encOpts{to: f.pub()}, "Body-1")
			doc.FindElement("//Body").CreateElement("m:Delete").CreateAttr("xmlns:m", "urn:x")
			return docString(t, doc)
		}, CodeInvalidSecurity},
		{"signature required encrypted but clear", "  required_parts: [Signature]\n", func(t *testing.T, s12 bool) string {
			doc := utEnc(t, now, s12)
			signEnc(t, doc, f.leaf, false)
			wssEncrypt(t, doc, encOpts{to: f.pub()}, "Body-1")
			return docString(t, doc)
		}, CodeInvalidSecurity},

		// The uniform fault.
		{"tampered ciphertext", "", func(t *testing.T, s12 bool) string {
			doc := utEnc(t, now, s12)
			wssEncrypt(t, doc, encOpts{to: f.pub(), edit: func(_ *etree.Element, eds []*etree.Element) { flipCipher(t, eds[0], 30) }}, "Body-1")
			return docString(t, doc)
		}, CodeFailedCheck},
		{"wrong key", "", func(t *testing.T, s12 bool) string {
			doc := utEnc(t, now, s12)
			wssEncrypt(t, doc, encOpts{to: &f.stranger.PublicKey}, "Body-1")
			return docString(t, doc)
		}, CodeFailedCheck},
		{"rsa 1.5", "", func(t *testing.T, s12 bool) string {
			doc := utEnc(t, now, s12)
			wssEncrypt(t, doc, encOpts{to: f.pub(), edit: rsa15(t, f.pub())}, "Body-1")
			return docString(t, doc)
		}, CodeFailedCheck},
		{"cbc unsigned", "  allow_cbc: true\n", func(t *testing.T, s12 bool) string {
			doc := utEnc(t, now, s12)
			wssEncrypt(t, doc, encOpts{to: f.pub(), method: xmlenc.AES256CBC}, "Body-1")
			return docString(t, doc)
		}, CodeFailedCheck},
		{"cbc signed over the plaintext only", "  allow_cbc: true\n", func(t *testing.T, s12 bool) string {
			doc := utEnc(t, now, s12)
			signEnc(t, doc, f.leaf, false)
			wssEncrypt(t, doc, encOpts{to: f.pub(), method: xmlenc.AES256CBC}, "Body-1")
			return docString(t, doc)
		}, CodeFailedCheck},
		{"cbc signed but not allowed", "", func(t *testing.T, s12 bool) string {
			doc := utEnc(t, now, s12)
			wssEncrypt(t, doc, encOpts{to: f.pub(), method: xmlenc.AES256CBC}, "Body-1")
			signEnc(t, doc, f.leaf, true)
			return docString(t, doc)
		}, CodeFailedCheck},
		{"xml bomb inside", "", func(t *testing.T, s12 bool) string {
			return plainBody(t, f, utEnc(t, now, s12), `<!DOCTYPE z [<!ENTITY a "aaaa"><!ENTITY b "&a;&a;&a;&a;">]><z>&b;</z>`)
		}, CodeFailedCheck},
		{"duplicate id revealed by decryption", "", func(t *testing.T, s12 bool) string {
			return plainBody(t, f, utEnc(t, now, s12), `<m:x xmlns:m="urn:x" wsu:Id="TS-1"/>`)
		}, CodeFailedCheck},
		{"dangling data reference", "", func(t *testing.T, s12 bool) string {
			doc := utEnc(t, now, s12)
			wssEncrypt(t, doc, encOpts{to: f.pub(), edit: func(ek *etree.Element, _ []*etree.Element) {
				ek.FindElement("ReferenceList").CreateElement("xenc:DataReference").CreateAttr("URI", "#nowhere")
			}}, "Body-1")
			return docString(t, doc)
		}, CodeFailedCheck},
		{"encrypt then sign, ciphertext swapped", "", func(t *testing.T, s12 bool) string {
			doc := utEnc(t, now, s12)
			wssEncrypt(t, doc, encOpts{to: f.pub()}, "Body-1")
			signEnc(t, doc, f.leaf, true)
			// The attacker encrypts a payload of its own to the
			// gateway's public key, in place of the signed ciphertext.
			body := doc.FindElement("//Body")
			body.RemoveChildAt(0)
			body.CreateElement("m:Delete").CreateAttr("xmlns:m", "urn:x")
			xmlenc.Seal(body, xmlenc.TypeContent, xmlenc.AES256GCM, xmlenc.NewKey(xmlenc.AES256GCM), "ED-1", nil)
			return docString(t, doc)
		}, CodeFailedCheck},
	}
	for _, tc := range tests {
		for _, s12 := range []bool{false, true} {
			name := tc.name + " soap11"
			if s12 {
				name = tc.name + " soap12"
			}
			t.Run(name, func(t *testing.T) {
				p := build(t, f.config(tc.extra), c)
				msg := tc.msg(t, s12)
				out, err := forwarded(t, p, msg)
				wantCode(t, err, tc.code)
				if tc.code != "" {
					return
				}
				if !strings.Contains(out, payload) || strings.Contains(out, "EncryptedData") || strings.Contains(out, "Security") {
					t.Fatalf("forwarded %s", out)
				}
			})
		}
	}
}

// TestUniformFault: every decryption failure is one fault, byte for
// byte what the client sees.
func TestUniformFault(t *testing.T) {
	f := newEncFixture(t)
	now := time.Now()
	p := build(t, f.config("  allow_cbc: true\n"), &clock{now})
	var seen *policy.Denial
	for _, msg := range refusalClasses(t, f, now) {
		_, err := apply(t, p, msg.msg, true)
		d, ok := policy.AsDenial(err)
		if !ok {
			t.Fatalf("%s: %v", msg.name, err)
		}
		if seen != nil && (d.Code != seen.Code || d.Detail != seen.Detail || d.StatusCode() != seen.StatusCode()) {
			t.Fatalf("%s: %s %q %d differs from %s %q %d", msg.name, d.Code, d.Detail, d.StatusCode(), seen.Code, seen.Detail, seen.StatusCode())
		}
		if d.Code != CodeFailedCheck {
			t.Fatalf("%s: %s (%v)", msg.name, d.Code, d.Err)
		}
		seen = d
	}
}

type classMsg struct{ name, msg string }

// refusalClasses returns one message of each refusal class, all of the
// same size and shape: a UsernameToken message with an encrypted Body
// whose plaintext is as long in each.
func refusalClasses(t testing.TB, f *encFixture, now time.Time) []classMsg {
	pad := strings.Repeat(`<m:item xmlns:m="urn:x">0123456789</m:item>`, 80)
	good := `<m:ok xmlns:m="urn:x">` + pad + `</m:ok>`
	bomb := `<!DOCTYPE z [<!ENTITY a "aaaa">]><z>&a;</z>` + pad[:len(good)-len(`<!DOCTYPE z [<!ENTITY a "aaaa">]><z>&a;</z>`)]
	mk := func(o encOpts, plain string) string {
		doc := utEnc(t, now, false)
		body := doc.FindElement("//Body")
		if o.method == "" {
			o.method = xmlenc.AES256GCM
		}
		key := xmlenc.NewKey(o.method)
		o.key.ID = "EK-1"
		ek, err := xmlenc.EncryptKey(o.to, key, o.key)
		if err != nil {
			t.Fatal(err)
		}
		ki := etree.NewElement("ds:KeyInfo")
		ki.CreateAttr("xmlns:ds", xmlenc.NamespaceDSig)
		str := ki.CreateElement("wsse:SecurityTokenReference")
		str.CreateAttr("xmlns:wsse", NamespaceWSSE)
		str.CreateElement("wsse:Reference").CreateAttr("URI", "#EK-1")
		ed, err := xmlenc.EncryptData([]byte(plain), key, o.method, xmlenc.TypeContent, "ED-1", ki)
		if err != nil {
			t.Fatal(err)
		}
		body.RemoveChildAt(0)
		body.AddChild(ed)
		ek.CreateElement("xenc:ReferenceList").CreateElement("xenc:DataReference").CreateAttr("URI", "#ED-1")
		if o.edit != nil {
			o.edit(ek, []*etree.Element{ed})
		}
		doc.FindElement("//Security").InsertChildAt(0, ek)
		return docString(t, doc)
	}
	return []classMsg{
		{"tampered", mk(encOpts{to: f.pub(), edit: func(_ *etree.Element, eds []*etree.Element) { flipCipher(t, eds[0], 40) }}, good)},
		{"wrong key", mk(encOpts{to: &f.stranger.PublicKey}, good)},
		{"rsa15", mk(encOpts{to: f.pub(), edit: rsa15(t, f.pub())}, good)},
		{"unsigned cbc", mk(encOpts{to: f.pub(), method: xmlenc.AES256CBC}, good+"       ")},
		{"bomb", mk(encOpts{to: f.pub()}, bomb)},
		// A key encrypted to a larger modulus than the gateway's is not
		// below its modulus with a fair chance; Go refuses that before
		// its private-key operation.
		{"key above modulus", mk(encOpts{to: f.pub(), edit: func(ek *etree.Element, _ []*etree.Element) {
			ek.FindElement("CipherData/CipherValue").SetText(base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{0xff}, f.pub().Size())))
		}}, good)},
	}
}

func flipCipher(t testing.TB, ed *etree.Element, at int) {
	cv := ed.FindElement("CipherData/CipherValue")
	v, err := base64.StdEncoding.DecodeString(cv.Text())
	if err != nil {
		t.Fatal(err)
	}
	v[at%len(v)] ^= 0x40
	cv.SetText(base64.StdEncoding.EncodeToString(v))
}

// rsa15 turns the EncryptedKey into an RSA PKCS#1 v1.5 one of a key the
// gateway's key would decrypt.
func rsa15(t testing.TB, pub *rsa.PublicKey) func(ek *etree.Element, _ []*etree.Element) {
	return func(ek *etree.Element, _ []*etree.Element) {
		m := ek.FindElement("EncryptionMethod")
		m.CreateAttr("Algorithm", xmlenc.RSA15)
		for len(m.Child) > 0 {
			m.RemoveChildAt(0)
		}
		k := make([]byte, 32)
		io.ReadFull(rand.Reader, k)
		//lint:ignore SA1019 an RSA-1.5 key transport the gateway must refuse
		ct, err := rsa.EncryptPKCS1v15(rand.Reader, pub, k)
		if err != nil {
			t.Fatal(err)
		}
		ek.FindElement("CipherData/CipherValue").SetText(base64.StdEncoding.EncodeToString(ct))
	}
}

// plainBody encrypts raw plaintext as the Body's content.
func plainBody(t testing.TB, f *encFixture, doc *etree.Document, plain string) string {
	body := doc.FindElement("//Body")
	body.RemoveChildAt(0)
	body.CreateElement("x")
	wssEncrypt(t, doc, encOpts{to: f.pub()}, "Body-1")
	out := docString(t, doc)
	// Re-encrypt the exact plaintext: Seal serializes a tree, which
	// cannot hold a DTD.
	d2 := parseDoc(t, out)
	ed := d2.FindElement("//Body/EncryptedData")
	key := unwrapForTest(t, f, d2)
	ed2, err := xmlenc.EncryptData([]byte(plain), key, xmlenc.AES256GCM, xmlenc.TypeContent, "ED-1", ed.FindElement("KeyInfo").Copy())
	if err != nil {
		t.Fatal(err)
	}
	p := ed.Parent()
	p.RemoveChild(ed)
	p.AddChild(ed2)
	return docString(t, d2)
}

func unwrapForTest(t testing.TB, f *encFixture, doc *etree.Document) []byte {
	d, err := xmlenc.New(xmlenc.Keys{RSA: []xmlenc.RSAKey{{Key: f.gw.Key.(*rsa.PrivateKey), Cert: f.gw.Cert}}}, xmlenc.Options{})
	if err != nil {
		t.Fatal(err)
	}
	k, err := d.UnwrapKey(doc.FindElement("//Security/EncryptedKey"), 32)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

var _ = bytes.Equal

// TestEncryptedHeader: a WSS 1.1 EncryptedHeader is decrypted into the
// header block it hides, which then counts as encrypted (required_parts)
// and, when a signature made last covered the EncryptedHeader, as signed.
func TestEncryptedHeader(t *testing.T) {
	f := newEncFixture(t)
	now := time.Now()
	c := &clock{now}
	const account = `<m:Account xmlns:m="urn:x:acct" wsu:Id="H-1">4111-secret</m:Account>`
	msg := func(t *testing.T, encrypt, sign bool) string {
		doc := utEnc(t, now, false)
		hdr := doc.FindElement("//Header")
		frag := parseDoc(t, `<w xmlns:wsu="`+NamespaceWSU+`">`+account+`</w>`)
		hdr.AddChild(frag.Root().ChildElements()[0])
		if encrypt {
			el := hdr.FindElement("Account")
			eh := etree.NewElement("wsse11:EncryptedHeader")
			eh.CreateAttr("xmlns:wsse11", NamespaceWSSE11)
			eh.CreateAttr("wsu:Id", "EH-1")
			hdr.InsertChildAt(el.Index(), eh)
			hdr.RemoveChild(el)
			eh.AddChild(el)
			key := xmlenc.NewKey(xmlenc.AES256GCM)
			ek, err := xmlenc.EncryptKey(f.pub(), key, xmlenc.KeyOptions{ID: "EK-1"})
			if err != nil {
				t.Fatal(err)
			}
			ki := etree.NewElement("ds:KeyInfo")
			ki.CreateAttr("xmlns:ds", xmlenc.NamespaceDSig)
			str := ki.CreateElement("wsse:SecurityTokenReference")
			str.CreateAttr("xmlns:wsse", NamespaceWSSE)
			str.CreateElement("wsse:Reference").CreateAttr("URI", "#EK-1")
			if _, err := xmlenc.Seal(el, xmlenc.TypeElement, xmlenc.AES256GCM, key, "ED-H", ki); err != nil {
				t.Fatal(err)
			}
			ek.CreateElement("xenc:ReferenceList").CreateElement("xenc:DataReference").CreateAttr("URI", "#ED-H")
			doc.FindElement("//Security").InsertChildAt(0, ek)
		}
		if sign {
			id := "H-1"
			if encrypt {
				id = "EH-1"
			}
			signEnc(t, doc, f.leaf, true, "TS-1", "Body-1", id)
		}
		return docString(t, doc)
	}
	t.Run("a Security header hidden in an EncryptedHeader", func(t *testing.T) {
		doc := utEnc(t, now, false)
		hdr := doc.FindElement("//Header")
		hidden := parseDoc(t, `<wsse:Security xmlns:wsse="`+NamespaceWSSE+`"><wsse:UsernameToken><wsse:Username>admin</wsse:Username></wsse:UsernameToken></wsse:Security>`).Root()
		eh := hdr.CreateElement("wsse11:EncryptedHeader")
		eh.CreateAttr("xmlns:wsse11", NamespaceWSSE11)
		eh.AddChild(hidden)
		if _, err := xmlenc.EncryptInPlace(hidden, xmlenc.TypeElement, xmlenc.AES256GCM, f.pub(), xmlenc.KeyOptions{}); err != nil {
			t.Fatal(err)
		}
		_, err := forwarded(t, build(t, f.config(""), c), docString(t, doc))
		wantCode(t, err, CodeFailedCheck)
	})
	for _, tc := range []struct {
		name, extra   string
		encrypt, sign bool
		code          string
	}{
		{"encrypted header", "  required_parts: [\"{urn:x:acct}Account\"]\n", true, false, ""},
		{"clear header, required encrypted", "  required_parts: [\"{urn:x:acct}Account\"]\n", false, false, CodeInvalidSecurity},
		{"encrypt then sign the EncryptedHeader", "signature: {required_parts: [Body, Timestamp, \"{urn:x:acct}Account\"]}\n", true, true, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := f.config("")
			if strings.HasPrefix(tc.extra, "  ") {
				cfg = f.config(tc.extra)
			} else {
				cfg += tc.extra
			}
			p := build(t, cfg, c)
			out, err := forwarded(t, p, msg(t, tc.encrypt, tc.sign))
			wantCode(t, err, tc.code)
			if tc.code == "" && (!strings.Contains(out, "4111-secret") || strings.Contains(out, "EncryptedHeader")) {
				t.Fatalf("forwarded:\n%s", out)
			}
		})
	}
}
