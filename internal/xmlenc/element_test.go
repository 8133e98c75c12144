package xmlenc

import (
	"errors"
	"strings"
	"testing"

	"github.com/beevik/etree"
)

const nsSAML = "urn:oasis:names:tc:SAML:2.0:assertion"

// TestDecryptWrapped: SAML EncryptedAssertion with the key inside the
// EncryptedData, beside it, beside it and referenced; refused when the key
// is ambiguous, wrong, or the content CBC.
func TestDecryptWrapped(t *testing.T) {
	f := newFixture(t)
	assertion := func() (*etree.Document, *etree.Element) {
		doc := etree.NewDocument()
		if err := doc.ReadFromString(`<wsse:Security xmlns:wsse="` + NamespaceWSSE + `"><saml2:Assertion xmlns:saml2="` + nsSAML + `" ID="A-1"><saml2:Issuer>https://idp</saml2:Issuer></saml2:Assertion></wsse:Security>`); err != nil {
			t.Fatal(err)
		}
		return doc, doc.Root().ChildElements()[0]
	}
	// sibling moves the EncryptedKey out of the KeyInfo to beside the
	// EncryptedData; ref adds a RetrievalMethod to it.
	sibling := func(ref bool, extra int) func(w *etree.Element) {
		return func(w *etree.Element) {
			ed := w.ChildElements()[0]
			ki := ed.FindElement("KeyInfo")
			ek := ki.ChildElements()[0]
			ki.RemoveChild(ek)
			ek.CreateAttr("Id", "EK-1")
			w.AddChild(ek)
			for range extra {
				w.AddChild(ek.Copy())
			}
			if ref {
				rm := ki.CreateElement("ds:RetrievalMethod")
				rm.CreateAttr("Type", NamespaceXENC+"EncryptedKey")
				rm.CreateAttr("URI", "#EK-1")
			} else {
				ed.RemoveChild(ki)
			}
		}
	}
	for _, tc := range []struct {
		name string
		to   *fixture
		edit func(w *etree.Element)
		want error
	}{
		{"key inside", f, nil, nil},
		{"key beside", f, sibling(false, 0), nil},
		{"key beside, referenced", f, sibling(true, 0), nil},
		{"two keys beside, none named", f, sibling(false, 1), ErrMalformed},
		{"cbc", f, func(w *etree.Element) {
			w.FindElement(".//EncryptedData/EncryptionMethod").CreateAttr("Algorithm", AES256CBC)
		}, ErrDecrypt},
		{"something else inside", f, func(w *etree.Element) { w.CreateElement("saml2:Assertion") }, ErrMalformed},
	} {
		t.Run(tc.name, func(t *testing.T) {
			doc, a := assertion()
			w, err := EncryptWrapped(a, "saml2:EncryptedAssertion", nsSAML, pub(f.k1), KeyOptions{})
			if err != nil {
				t.Fatal(err)
			}
			if tc.edit != nil {
				tc.edit(w)
			}
			s, _ := doc.WriteToString()
			if strings.Contains(s, "https://idp") {
				t.Fatalf("not encrypted: %s", s)
			}
			got, err := f.d.DecryptWrapped(w)
			if tc.want != nil {
				if !errors.Is(err, tc.want) {
					t.Fatalf("got %v, want %v", err, tc.want)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got.Tag != "Assertion" || got.NamespaceURI() != nsSAML || got.SelectAttrValue("ID", "") != "A-1" || got.Parent() != doc.Root() {
				t.Fatalf("decrypted %s in %v", got.FullTag(), got.Parent())
			}
		})
	}
	t.Run("wrong key", func(t *testing.T) {
		_, a := assertion()
		w, _ := EncryptWrapped(a, "saml2:EncryptedAssertion", nsSAML, &f.stranger.PublicKey, KeyOptions{})
		if _, err := f.d.DecryptWrapped(w); err != ErrDecrypt {
			t.Fatalf("got %v", err)
		}
	})
}
