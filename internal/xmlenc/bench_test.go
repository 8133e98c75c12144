package xmlenc

import (
	"testing"

	"github.com/gatehouse/gatehouse/internal/benchcpu"
)

// BenchmarkUnwrapRSA2048 is the RSA-2048 OAEP private-key operation of
// one EncryptedKey: the floor of a message with a fresh key.
func BenchmarkUnwrapRSA2048(b *testing.B) {
	f := newFixture(b)
	ek, err := EncryptKey(pub(f.k1), NewKey(AES256GCM), KeyOptions{})
	if err != nil {
		b.Fatal(err)
	}
	clk := benchcpu.Start(b)
	for b.Loop() {
		if _, err := f.d.UnwrapKey(ek, 32); err != nil {
			b.Fatal(err)
		}
	}
	clk.Report()
}

// BenchmarkDecryptContent4K is the rest for a 4 KB Body with its key
// known: AES-256-GCM, the xmlscan pass and the parse of the plaintext.
func BenchmarkDecryptContent4K(b *testing.B) {
	f := newFixture(b)
	var payload string
	for len(payload) < 4096 {
		payload += `<m:line xmlns:m="urn:x"><m:sku>SKU-0001</m:sku><m:name>Pour-over kettle &amp; filter</m:name><m:qty>2</m:qty></m:line>`
	}
	_, body := envelope(b, payload)
	key := NewKey(AES256GCM)
	ed, err := Seal(body, TypeContent, AES256GCM, key, "", nil)
	if err != nil {
		b.Fatal(err)
	}
	d, err := ParseData(ed)
	if err != nil {
		b.Fatal(err)
	}
	clk := benchcpu.Start(b)
	for b.Loop() {
		s := f.d.NewSession(nil)
		plain, err := openGCM(key, d.cipherValue)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := s.parse(ed, plain, len(d.cipherValue), false); err != nil {
			b.Fatal(err)
		}
	}
	clk.Report()
}
