package xmlenc

import (
	"errors"
	"testing"

	"github.com/beevik/etree"
)

// FuzzDecrypt feeds arbitrary plaintext (under a valid key) and arbitrary
// EncryptedData markup through the decryptor: it must never panic, and it
// must answer only ErrDecrypt or ErrMalformed, and whatever it accepts
// must have passed the scan (no DTD, no PI, no nested encryption).
func FuzzDecrypt(f *testing.F) {
	fx := newFixture(f)
	f.Add([]byte(body), []byte(""))
	f.Add([]byte(`<!DOCTYPE a [<!ENTITY x "y">]><a>&x;</a>`), []byte(""))
	f.Add([]byte(`<?pi?><a/>`), []byte(""))
	f.Add([]byte(""), []byte(`<xenc:EncryptedData xmlns:xenc="`+NamespaceXENC+`" Type="`+TypeContent+`"><xenc:EncryptionMethod Algorithm="`+AES256GCM+`"/><xenc:CipherData><xenc:CipherValue>AAAA</xenc:CipherValue></xenc:CipherData></xenc:EncryptedData>`))
	f.Fuzz(func(t *testing.T, plain, markup []byte) {
		doc, b := envelope(t, body)
		if len(markup) > 0 {
			frag := etree.NewDocument()
			if err := frag.ReadFromBytes(markup); err != nil || frag.Root() == nil {
				return
			}
			b.RemoveChildAt(0)
			b.AddChild(frag.Root())
		} else {
			key := NewKey(AES256GCM)
			ek, err := EncryptKey(pub(fx.k1), key, KeyOptions{})
			if err != nil {
				t.Fatal(err)
			}
			ed, err := EncryptData(plain, key, AES256GCM, TypeContent, "", inlineKey(ek))
			if err != nil {
				t.Fatal(err)
			}
			b.RemoveChildAt(0)
			b.AddChild(ed)
		}
		_, err := decryptBody(t, fx, doc, false)
		if err != nil {
			if !errors.Is(err, ErrDecrypt) && !errors.Is(err, ErrMalformed) {
				t.Fatalf("error %v is neither ErrDecrypt nor ErrMalformed", err)
			}
			return
		}
		for _, el := range descendants(b) {
			if hasEncrypted(el) && el.Tag != "" {
				t.Fatalf("nested encryption accepted")
			}
		}
	})
}
