package wssecurity

import (
	"crypto/x509/pkix"
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/beevik/etree"

	"github.com/gatehouse/gatehouse/internal/xmlenc"
	"github.com/gatehouse/gatehouse/internal/xmlsig/xmlsigtest"
)

// encTemplate is an xmlsec1 EncryptedData template with the key inline:
// content algorithm, Type, and key transport (with its DigestMethod).
func encTemplate(method, typ, transport string) string {
	digest := ""
	if transport == xmlenc.RSAOAEPMGF1P {
		digest = `<ds:DigestMethod Algorithm="` + xmlenc.DigestSHA1 + `"/>`
	}
	return `<xenc:EncryptedData xmlns:xenc="` + xmlenc.NamespaceXENC + `" Id="ED-X" Type="` + typ + `">` +
		`<xenc:EncryptionMethod Algorithm="` + method + `"/>` +
		`<ds:KeyInfo xmlns:ds="` + xmlenc.NamespaceDSig + `"><xenc:EncryptedKey><xenc:EncryptionMethod Algorithm="` + transport + `">` + digest + `</xenc:EncryptionMethod>` +
		`<xenc:CipherData><xenc:CipherValue/></xenc:CipherData></xenc:EncryptedKey></ds:KeyInfo>` +
		`<xenc:CipherData><xenc:CipherValue/></xenc:CipherData></xenc:EncryptedData>`
}

// xmlsec1Peer drives xmlsec1 --encrypt and --sign on messages.
type xmlsec1Peer struct {
	bin, dir string
	f        *encFixture
}

// encrypt has xmlsec1 encrypt the element local (Body: its content) of
// msg to the certificate in certFile, and prepends to the Security header
// a ReferenceList naming the EncryptedData, as WSS 1.1 §9 wants.
func (x *xmlsec1Peer) encrypt(t *testing.T, msg, local, method, transport, certFile string) string {
	t.Helper()
	typ := xmlenc.TypeElement
	if local == "Body" {
		typ = xmlenc.TypeContent
	}
	id := "ED-" + local
	tmpl := writeFile(t, x.dir, "enc-tmpl.xml", []byte(strings.Replace(encTemplate(method, typ, transport), "ED-X", id, 1)))
	data := writeFile(t, x.dir, "data.xml", []byte(msg))
	session := map[string]string{xmlenc.AES128GCM: "aes-128", xmlenc.AES256GCM: "aes-256", xmlenc.AES256CBC: "aes-256", xmlenc.AES128CBC: "aes-128"}[method]
	out := string(xmlsigtest.Run(t, x.bin, "--encrypt", "--pubkey-cert-pem", certFile, "--session-key", session,
		"--xml-data", data, "--node-xpath", "//*[local-name()='"+local+"']", tmpl))
	if !strings.Contains(out, `Id="`+id+`"`) {
		t.Fatalf("xmlsec1 did not encrypt:\n%s", out)
	}
	doc := parseDoc(t, out)
	rl := etree.NewElement("xenc:ReferenceList")
	rl.CreateAttr("xmlns:xenc", xmlenc.NamespaceXENC)
	rl.CreateElement("xenc:DataReference").CreateAttr("URI", "#"+id)
	doc.FindElement("//Security").InsertChildAt(0, rl)
	return write(t, doc)
}

// sign has xmlsec1 sign the Timestamp and the Body of msg (the Signature
// first in the Security header when first).
func (x *xmlsec1Peer) sign(t *testing.T, msg string, first bool) string {
	t.Helper()
	doc := parseDoc(t, msg)
	signEnc(t, doc, x.f.leaf, first)
	for _, d := range doc.FindElements("//DigestValue") {
		d.SetText("")
	}
	doc.FindElement("//SignatureValue").SetText("")
	tmpl := writeFile(t, x.dir, "sig-tmpl.xml", []byte(write(t, doc)))
	key := writeFile(t, x.dir, "key.pem", x.f.leaf.KeyPEM(t))
	out := string(xmlsigtest.Run(t, x.bin, "--sign", "--privkey-pem", key, "--id-attr:Id", "Body", "--id-attr:Id", "Timestamp", tmpl))
	if strings.Contains(out, "<ds:SignatureValue></ds:SignatureValue>") {
		t.Fatalf("xmlsec1 did not sign:\n%s", out)
	}
	return out
}

// TestXmlsec1Encrypted: messages encrypted (and signed) by xmlsec1 in
// SOAP 1.1 and 1.2 pass the policy and reach the service decrypted;
// tampered, to the wrong key, with RSA-1.5, with unsigned CBC and with an
// XML bomb inside they are refused with the one decryption fault.
func TestXmlsec1Encrypted(t *testing.T) {
	x := &xmlsec1Peer{bin: xmlsigtest.Xmlsec1(t), dir: t.TempDir(), f: newEncFixture(t)}
	f := x.f
	stranger := f.ca.Issue(t, pkix.Name{CommonName: "someone else"}, f.stranger, nil)
	strangerFile := writeFile(t, x.dir, "stranger.pem", stranger.CertPEM())
	now := time.Now()
	c := &clock{now.Add(time.Second)}
	gw := f.certFile
	tests := []struct {
		name, extra string
		msg         func(t *testing.T, base string) string
		code        string
	}{
		{"body gcm256", "  required_parts: [Body]\n", func(t *testing.T, m string) string {
			return x.encrypt(t, m, "Body", xmlenc.AES256GCM, xmlenc.RSAOAEPMGF1P, gw)
		}, ""},
		{"body gcm128", "", func(t *testing.T, m string) string {
			return x.encrypt(t, m, "Body", xmlenc.AES128GCM, xmlenc.RSAOAEPMGF1P, gw)
		}, ""},
		{"username token and body", "  required_parts: [Body, UsernameToken]\n", func(t *testing.T, m string) string {
			m = x.encrypt(t, m, "UsernameToken", xmlenc.AES256GCM, xmlenc.RSAOAEPMGF1P, gw)
			return x.encrypt(t, m, "Body", xmlenc.AES256GCM, xmlenc.RSAOAEPMGF1P, gw)
		}, ""},
		{"signed then encrypted", "  required_parts: [Body]\n", func(t *testing.T, m string) string {
			return x.encrypt(t, x.sign(t, m, false), "Body", xmlenc.AES256GCM, xmlenc.RSAOAEPMGF1P, gw)
		}, ""},
		{"signed then encrypted, signature encrypted too", "  required_parts: [Body, Signature]\n", func(t *testing.T, m string) string {
			m = x.encrypt(t, x.sign(t, m, false), "Body", xmlenc.AES256GCM, xmlenc.RSAOAEPMGF1P, gw)
			return x.encrypt(t, m, "Signature", xmlenc.AES256GCM, xmlenc.RSAOAEPMGF1P, gw)
		}, ""},
		{"encrypted then signed", "  required_parts: [Body]\n", func(t *testing.T, m string) string {
			return x.sign(t, x.encrypt(t, m, "Body", xmlenc.AES256GCM, xmlenc.RSAOAEPMGF1P, gw), true)
		}, ""},
		{"encrypted then signed, cbc opted in", "  allow_cbc: true\n", func(t *testing.T, m string) string {
			return x.sign(t, x.encrypt(t, m, "Body", xmlenc.AES256CBC, xmlenc.RSAOAEPMGF1P, gw), true)
		}, ""},

		{"tampered ciphertext", "", func(t *testing.T, m string) string {
			doc := parseDoc(t, x.encrypt(t, m, "Body", xmlenc.AES256GCM, xmlenc.RSAOAEPMGF1P, gw))
			flipCipher(t, doc.FindElement("//Body/EncryptedData"), 20)
			return write(t, doc)
		}, CodeFailedCheck},
		{"wrong key", "", func(t *testing.T, m string) string {
			return x.encrypt(t, m, "Body", xmlenc.AES256GCM, xmlenc.RSAOAEPMGF1P, strangerFile)
		}, CodeFailedCheck},
		{"rsa 1.5", "", func(t *testing.T, m string) string {
			return x.encrypt(t, m, "Body", xmlenc.AES256GCM, xmlenc.RSA15, gw)
		}, CodeFailedCheck},
		{"unsigned cbc", "  allow_cbc: true\n", func(t *testing.T, m string) string {
			return x.encrypt(t, m, "Body", xmlenc.AES256CBC, xmlenc.RSAOAEPMGF1P, gw)
		}, CodeFailedCheck},
		{"xml bomb inside", "", func(t *testing.T, m string) string {
			bomb := writeFile(t, x.dir, "bomb.txt", []byte(`<!DOCTYPE z [<!ENTITY a "aaaaaaaa"><!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;"><!ENTITY c "&b;&b;&b;&b;&b;&b;&b;&b;">]><z>&c;</z>`))
			tmpl := writeFile(t, x.dir, "bin-tmpl.xml", []byte(strings.Replace(encTemplate(xmlenc.AES256GCM, xmlenc.TypeContent, xmlenc.RSAOAEPMGF1P), "ED-X", "ED-Body", 1)))
			ed := parseDoc(t, string(xmlsigtest.Run(t, x.bin, "--encrypt", "--pubkey-cert-pem", gw, "--session-key", "aes-256", "--binary-data", bomb, tmpl)))
			doc := parseDoc(t, m)
			body := doc.FindElement("//Body")
			body.RemoveChildAt(0)
			body.AddChild(ed.Root())
			return write(t, doc)
		}, CodeFailedCheck},
	}
	for _, tc := range tests {
		for _, s12 := range []bool{false, true} {
			name := tc.name + " soap11"
			if s12 {
				name = tc.name + " soap12"
			}
			t.Run(name, func(t *testing.T) {
				base := docString(t, utEnc(t, now, s12))
				msg := tc.msg(t, base)
				p := build(t, f.config(tc.extra), c)
				out, err := forwarded(t, p, msg)
				wantCode(t, err, tc.code)
				if tc.code == "" && (!strings.Contains(out, "<m:id>p-1001</m:id>") || strings.Contains(out, "EncryptedData")) {
					t.Fatalf("forwarded:\n%s", out)
				}
			})
		}
	}
}

// TestPythonXmlsecEncrypted: messages encrypted (and signed) by
// python3-xmlsec (libxmlsec1's Python binding) in SOAP 1.1 and 1.2: the
// good ones pass and reach the service decrypted, the bad ones get the
// one decryption fault.
func TestPythonXmlsecEncrypted(t *testing.T) {
	py := xmlsigtest.PythonPeers(t)
	f := newEncFixture(t)
	dir := t.TempDir()
	stranger := f.ca.Issue(t, pkix.Name{CommonName: "someone else"}, f.stranger, nil)
	now := time.Now()
	msgs := map[string]string{
		"soap11": docString(t, utEnc(t, now, false)),
		"soap12": docString(t, utEnc(t, now, true)),
	}
	spec, err := json.Marshal(map[string]any{
		"messages": msgs,
		"cert":     f.certFile,
		"stranger": writeFile(t, dir, "stranger.pem", stranger.CertPEM()),
		"key":      writeFile(t, dir, "key.pem", f.leaf.KeyPEM(t)),
		"signcert": writeFile(t, dir, "signcert.pem", f.leaf.CertPEM()),
	})
	if err != nil {
		t.Fatal(err)
	}
	specFile, _ := filepath.Abs(writeFile(t, dir, "spec.json", spec))
	script, _ := filepath.Abs("testdata/pypeers/encpeer.py")
	var out map[string]string
	if err := json.Unmarshal(xmlsigtest.Run(t, py, script, specFile), &out); err != nil {
		t.Fatal(err)
	}
	want := map[string]string{
		"body": "", "body-gcm128": "", "username-token": "", "signed-then-encrypted": "", "encrypted-then-signed": "",
		"tampered": CodeFailedCheck, "wrong-key": CodeFailedCheck, "rsa15": CodeFailedCheck, "unsigned-cbc": CodeFailedCheck,
	}
	if len(out) != 2*len(want) {
		t.Fatalf("python3-xmlsec made %d messages, want %d", len(out), 2*len(want))
	}
	for name, msg := range out {
		_, kind, _ := strings.Cut(name, " ")
		code, ok := want[kind]
		if !ok {
			t.Fatalf("unexpected case %q", name)
		}
		t.Run(name, func(t *testing.T) {
			p := build(t, f.config("  allow_cbc: true\n"), &clock{now.Add(time.Second)})
			fwd, err := forwarded(t, p, msg)
			wantCode(t, err, code)
			if code == "" && (!strings.Contains(fwd, "<m:id>p-1001</m:id>") || strings.Contains(fwd, "EncryptedData")) {
				t.Fatalf("forwarded:\n%s", fwd)
			}
		})
	}
}
