package rsaverify

import (
	"crypto"
	"crypto/rsa"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/sha512"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"math/big"
	"os"
	"sync"
	"testing"
)

// The test keys: three sizes with e = 65537 and one with e = 3, made by
// openssl genpkey.
var keyFiles = []string{"rsa1024.pem", "rsa2048.pem", "rsa3072.pem", "rsa2048e3.pem"}

var (
	keysOnce sync.Once
	keys     []*rsa.PrivateKey
)

func testKeys(t testing.TB) []*rsa.PrivateKey {
	t.Helper()
	keysOnce.Do(func() {
		for _, f := range keyFiles {
			b, err := os.ReadFile("testdata/" + f)
			if err != nil {
				panic(err)
			}
			blk, _ := pem.Decode(b)
			k, err := x509.ParsePKCS8PrivateKey(blk.Bytes)
			if err != nil {
				panic(err)
			}
			keys = append(keys, k.(*rsa.PrivateKey))
		}
	})
	return keys
}

var hashes = []crypto.Hash{crypto.SHA1, crypto.SHA256, crypto.SHA384, crypto.SHA512}

func digest(h crypto.Hash, msg []byte) []byte {
	switch h {
	case crypto.SHA1:
		s := sha1.Sum(msg)
		return s[:]
	case crypto.SHA256:
		s := sha256.Sum256(msg)
		return s[:]
	case crypto.SHA384:
		s := sha512.Sum384(msg)
		return s[:]
	default:
		s := sha512.Sum512(msg)
		return s[:]
	}
}

// rawSign returns em^d mod N: the signature whose verification yields the
// encoded block em, whatever em holds, so that malformed encodings can be
// put to both verifiers.
func rawSign(k *rsa.PrivateKey, em []byte) []byte {
	m := new(big.Int).SetBytes(em)
	m.Mod(m, k.N)
	s := new(big.Int).Exp(m, k.D, k.N)
	return s.FillBytes(make([]byte, k.Size()))
}

// encode is the PKCS #1 v1.5 block of hashed, built independently of
// Verify from the ASN.1 of the DigestInfo.
func encode(t testing.TB, k *rsa.PrivateKey, h crypto.Hash, hashed []byte) []byte {
	t.Helper()
	// A valid signature of crypto/rsa, raised to e, is the encoding.
	sig, err := rsa.SignPKCS1v15(nil, k, h, hashed)
	if err != nil {
		t.Fatal(err)
	}
	s := new(big.Int).SetBytes(sig)
	return s.Exp(s, big.NewInt(int64(k.E)), k.N).FillBytes(make([]byte, k.Size()))
}

// same fails unless v and crypto/rsa agree on sig.
func same(t testing.TB, pub *rsa.PublicKey, h crypto.Hash, hashed, sig []byte) {
	t.Helper()
	want := rsa.VerifyPKCS1v15(pub, h, hashed, sig)
	v, err := New(pub)
	if err != nil {
		if want == nil {
			t.Fatalf("New refused a key crypto/rsa verifies with: %v", err)
		}
		return
	}
	got := v.Verify(h, hashed, sig)
	if (got == nil) != (want == nil) {
		t.Fatalf("hash %v, digest %x, sig %x:\nrsaverify: %v\ncrypto/rsa: %v", h, hashed, sig, got, want)
	}
}

func TestVerifyValid(t *testing.T) {
	for _, k := range testKeys(t) {
		for _, h := range hashes {
			hashed := digest(h, []byte("message"))
			sig, err := rsa.SignPKCS1v15(nil, k, h, hashed)
			if err != nil {
				t.Fatal(err)
			}
			v, err := New(&k.PublicKey)
			if err != nil {
				t.Fatal(err)
			}
			if err := v.Verify(h, hashed, sig); err != nil {
				t.Errorf("%d bits, e=%d, %v: a valid signature: %v", k.N.BitLen(), k.E, h, err)
			}
			hashed[0] ^= 1
			if err := v.Verify(h, hashed, sig); !errors.Is(err, ErrVerification) {
				t.Errorf("%d bits, %v: another digest: %v", k.N.BitLen(), h, err)
			}
		}
	}
}

// TestVerifyRefuses holds each way a signature or its block can be wrong
// to crypto/rsa's verdict, which refuses all of them.
func TestVerifyRefuses(t *testing.T) {
	k := testKeys(t)[1]
	pub := &k.PublicKey
	h := crypto.SHA256
	hashed := digest(h, []byte("message"))
	em := encode(t, k, h, hashed)
	good := rawSign(k, em)
	if err := rsa.VerifyPKCS1v15(pub, h, hashed, good); err != nil {
		t.Fatalf("rawSign of the encoding does not verify: %v", err)
	}
	tLen := 19 + 32
	edit := func(f func(b []byte) []byte) []byte {
		b := f(append([]byte(nil), em...))
		return rawSign(k, b)
	}
	cases := map[string][]byte{
		"block type 2":          edit(func(b []byte) []byte { b[1] = 2; return b }),
		"leading byte not zero": edit(func(b []byte) []byte { b[0] = 1; return b }),
		"padding byte not ff":   edit(func(b []byte) []byte { b[5] = 0xfe; return b }),
		"no zero separator":     edit(func(b []byte) []byte { b[len(b)-tLen-1] = 0xff; return b }),
		"shorter padding, garbage after the digest": edit(func(b []byte) []byte {
			// The DigestInfo moved left by 8 bytes: what a lenient
			// parser that skips 0xff bytes would accept (Bleichenbacher
			// 2006).
			n := len(b)
			copy(b[n-tLen-9:], b[n-tLen-1:])
			for i := n - 8; i < n; i++ {
				b[i] = 0x42
			}
			return b
		}),
		"SHA-1 prefix":         edit(func(b []byte) []byte { copy(b[len(b)-tLen:], digestInfo[crypto.SHA1]); return b }),
		"digest changed":       edit(func(b []byte) []byte { b[len(b)-1] ^= 1; return b }),
		"NULL parameters gone": edit(func(b []byte) []byte { b[len(b)-tLen+14] = 0x04; return b }),
		"signature = N":        k.N.Bytes(),
		"signature = N+good": func() []byte {
			s := new(big.Int).Add(new(big.Int).SetBytes(good), k.N)
			return s.FillBytes(make([]byte, k.Size()+1))[1:]
		}(),
		"signature one byte short": good[1:],
		"signature one byte long":  append([]byte{0}, good...),
		"signature empty":          nil,
		"signature zero":           make([]byte, k.Size()),
		"signature one":            append(make([]byte, k.Size()-1), 1),
	}
	for name, sig := range cases {
		t.Run(name, func(t *testing.T) {
			if rsa.VerifyPKCS1v15(pub, h, hashed, sig) == nil {
				t.Fatal("crypto/rsa accepts it: the case is no refusal")
			}
			same(t, pub, h, hashed, sig)
		})
	}
}

func TestNewRefusesKeys(t *testing.T) {
	k := testKeys(t)[1]
	n := k.N
	for name, pub := range map[string]*rsa.PublicKey{
		"nil modulus":      {E: 65537},
		"even modulus":     {N: new(big.Int).Add(n, big.NewInt(1)), E: 65537},
		"512 bits":         {N: new(big.Int).Rsh(n, 1536), E: 65537},
		"e = 1":            {N: n, E: 1},
		"e even":           {N: n, E: 65536},
		"e negative":       {N: n, E: -65537},
		"e beyond 2^31-1":  {N: n, E: 1<<31 + 1},
		"zero modulus":     {N: new(big.Int), E: 65537},
		"negative modulus": {N: new(big.Int).Neg(n), E: 65537},
	} {
		if _, err := New(pub); !errors.Is(err, ErrKey) {
			t.Errorf("%s: New = %v, want ErrKey", name, err)
		}
	}
}

func TestVerifyHash(t *testing.T) {
	k := testKeys(t)[1]
	v, err := New(&k.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	sig, _ := rsa.SignPKCS1v15(nil, k, crypto.SHA256, digest(crypto.SHA256, nil))
	if err := v.Verify(crypto.MD5, make([]byte, 16), sig); !errors.Is(err, ErrHash) {
		t.Errorf("MD5: %v, want ErrHash", err)
	}
	if err := v.Verify(crypto.SHA256, make([]byte, 20), sig); !errors.Is(err, ErrHash) {
		t.Errorf("a 20-byte SHA-256 digest: %v, want ErrHash", err)
	}
}

// TestCache: a key changed in place is verified with its new modulus, and
// the bound holds.
func TestCache(t *testing.T) {
	ks := testKeys(t)
	c := NewCache(2)
	pub := ks[1].PublicKey // a copy of ours to change
	h := crypto.SHA256
	hashed := digest(h, []byte("m"))
	sig1, _ := rsa.SignPKCS1v15(nil, ks[1], h, hashed)
	sig2, _ := rsa.SignPKCS1v15(nil, ks[2], h, hashed)
	if err := c.Verify(&pub, h, hashed, sig1); err != nil {
		t.Fatal(err)
	}
	pub.N = ks[2].N
	if err := c.Verify(&pub, h, hashed, sig1); err == nil {
		t.Fatal("the changed key verified the old key's signature")
	}
	if err := c.Verify(&pub, h, hashed, sig2); err != nil {
		t.Fatalf("the changed key: %v", err)
	}
	for i := range 10 {
		p := ks[i%len(ks)].PublicKey
		c.Verify(&p, h, hashed, sig1)
		if len(c.m) > 2 {
			t.Fatalf("%d keys kept, bound 2", len(c.m))
		}
	}
}

// FuzzVerifyMatchesCryptoRSA puts keys, digests, signatures and encoded
// blocks to Verify and to crypto/rsa.VerifyPKCS1v15, which must agree on
// every one: valid signatures, signatures with bytes changed, and
// signatures of blocks changed before signing (what only a holder of the
// private key could make, to reach the comparison with any block).
func FuzzVerifyMatchesCryptoRSA(f *testing.F) {
	f.Add(uint8(1), uint8(1), []byte("message"), uint8(0), uint16(0), byte(0))
	f.Add(uint8(0), uint8(0), []byte("m"), uint8(1), uint16(3), byte(1))
	f.Add(uint8(2), uint8(3), []byte(""), uint8(2), uint16(300), byte(0x80))
	f.Add(uint8(3), uint8(1), []byte("e=3"), uint8(2), uint16(1), byte(2))
	f.Add(uint8(1), uint8(1), []byte("x"), uint8(3), uint16(0), byte(0))
	f.Add(uint8(1), uint8(2), []byte("y"), uint8(4), uint16(5), byte(0))
	f.Fuzz(func(t *testing.T, ki, hi uint8, msg []byte, mode uint8, pos uint16, x byte) {
		ks := testKeys(t)
		k := ks[int(ki)%len(ks)]
		h := hashes[int(hi)%len(hashes)]
		hashed := digest(h, msg)
		var sig []byte
		switch mode % 5 {
		case 0: // valid
			sig, _ = rsa.SignPKCS1v15(nil, k, h, hashed)
		case 1: // a signature byte changed
			sig, _ = rsa.SignPKCS1v15(nil, k, h, hashed)
			sig[int(pos)%len(sig)] ^= x | 1
		case 2: // a block byte changed, then signed
			em := encode(t, k, h, hashed)
			em[int(pos)%len(em)] ^= x | 1
			sig = rawSign(k, em)
		case 3: // the block of another hash's digest of the same length
			em := encode(t, k, h, hashed)
			sig = rawSign(k, em)
			h2 := hashes[(int(hi)+int(pos))%len(hashes)]
			if h2.Size() == h.Size() {
				h = h2
			}
		case 4: // a signature of arbitrary bytes
			sig = make([]byte, k.Size()+int(pos%3)-1)
			for i := 0; i < len(sig); i += sha512.Size {
				s := sha512.Sum512(append(msg, byte(i/sha512.Size)))
				copy(sig[i:], s[:])
			}
			if len(sig) > 0 {
				sig[0] = x
			}
		}
		same(t, &k.PublicKey, h, hashed, sig)
	})
}
