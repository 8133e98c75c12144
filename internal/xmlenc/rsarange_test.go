package xmlenc

import (
	"bytes"
	"crypto/rsa"
	"encoding/base64"
	"math/big"
	"testing"

	"github.com/beevik/etree"
)

// TestUnwrapRSAOperationAlways: whatever an EncryptedKey's CipherValue
// holds, unwrapping it runs the RSA private-key operation once, on a
// ciphertext the operation takes (so that no refusal is quicker than the
// operation): one of the wrong length or not below the modulus is
// refused, having run it on a stand-in.
func TestUnwrapRSAOperationAlways(t *testing.T) {
	f := newFixture(t)
	k := f.k1.Key.(*rsa.PrivateKey)
	size := k.Size()
	var calls [][]byte
	defer func(d func(*rsa.PrivateKey, []byte, *rsa.OAEPOptions) ([]byte, error)) { rsaDecrypt = d }(rsaDecrypt)
	rsaDecrypt = func(k *rsa.PrivateKey, ct []byte, opts *rsa.OAEPOptions) ([]byte, error) {
		calls = append(calls, bytes.Clone(ct))
		return k.Decrypt(nil, ct, opts)
	}
	modulus := k.N.FillBytes(make([]byte, size))
	above := new(big.Int).Add(k.N, big.NewInt(1)).FillBytes(make([]byte, size))
	tests := []struct {
		name   string
		ct     []byte // nil: the EncryptedKey's own
		wantOK bool
	}{
		{"a good key", nil, true},
		{"all ones: above the modulus", bytes.Repeat([]byte{0xff}, size), false},
		{"the modulus itself", modulus, false},
		{"the modulus plus one", above, false},
		{"a byte short", bytes.Repeat([]byte{0x01}, size-1), false},
		{"a byte long", append([]byte{0}, bytes.Repeat([]byte{0x01}, size)...), false},
		{"empty", []byte{}, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ek, err := EncryptKey(pub(f.k1), NewKey(AES256GCM), KeyOptions{})
			if err != nil {
				t.Fatal(err)
			}
			if tc.ct != nil {
				setCipherValue(t, ek, tc.ct)
			}
			calls = nil
			_, err = f.d.UnwrapKey(ek, 32)
			if (err == nil) != tc.wantOK {
				t.Fatalf("UnwrapKey: %v, want ok %v", err, tc.wantOK)
			}
			if len(calls) != 1 {
				t.Fatalf("%d RSA operations, want 1", len(calls))
			}
			if c := calls[0]; len(c) != size || new(big.Int).SetBytes(c).Cmp(k.N) >= 0 {
				t.Errorf("the RSA operation ran on %d bytes not below the modulus: Go refuses those before the operation", len(c))
			}
		})
	}
}

func setCipherValue(t *testing.T, ek *etree.Element, ct []byte) {
	t.Helper()
	cv := ek.FindElement("CipherData/CipherValue")
	if cv == nil {
		t.Fatal("no CipherValue")
	}
	cv.SetText(base64.StdEncoding.EncodeToString(ct))
}
