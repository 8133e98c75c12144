// Package rsaverify verifies RSA PKCS #1 v1.5 signatures (RFC 8017 §8.2.2)
// with the public key's modulus prepared once and kept.
//
// It exists for speed: crypto/rsa rebuilds the Montgomery form of the
// modulus (R² mod N, about a quarter of a 2048-bit verification) at every
// call and offers no way to keep it. A Verifier does that once per key;
// Cache keeps Verifiers of the keys a gateway meets again and again (a
// SOAP client's certificate, an IdP's signing key).
//
// The verification is crypto/rsa's: the signature, of exactly the
// modulus's length and below it, is raised to the public exponent and the
// result compared, whole and in constant time, with the one encoding the
// digest may have. Nothing is parsed out of the decrypted block, so no
// padding or DigestInfo leniency can let a forgery through. The arithmetic
// is filippo.io/bigmod, the standalone copy of crypto/rsa's own. Its
// differential fuzz test holds it to crypto/rsa.VerifyPKCS1v15 on keys,
// digests and signatures, valid and mutated.
package rsaverify

import (
	"crypto"
	"crypto/rsa"
	"crypto/subtle"
	"errors"
	"math/big"
	"sync"

	"filippo.io/bigmod"
)

// ErrVerification is a signature that does not verify.
var ErrVerification = errors.New("rsaverify: verification error")

// ErrKey is a public key that no signature can be verified with: an even
// or too small modulus, or an exponent outside 3 to 2³¹-1 or even.
var ErrKey = errors.New("rsaverify: unusable public key")

// ErrHash is a hash that has no DigestInfo here, or a digest of the wrong
// length for it.
var ErrHash = errors.New("rsaverify: unsupported hash or wrong digest length")

// digestInfo is the DER DigestInfo prefix of each hash (RFC 8017 §9.2,
// note 1), which the digest completes.
var digestInfo = map[crypto.Hash][]byte{
	crypto.SHA1:   {0x30, 0x21, 0x30, 0x09, 0x06, 0x05, 0x2b, 0x0e, 0x03, 0x02, 0x1a, 0x05, 0x00, 0x04, 0x14},
	crypto.SHA256: {0x30, 0x31, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x01, 0x05, 0x00, 0x04, 0x20},
	crypto.SHA384: {0x30, 0x41, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x02, 0x05, 0x00, 0x04, 0x30},
	crypto.SHA512: {0x30, 0x51, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x03, 0x05, 0x00, 0x04, 0x40},
}

// minBits is the smallest modulus accepted, crypto/rsa's own floor.
const minBits = 1024

// Verifier verifies signatures of one public key. It is safe for
// concurrent use.
type Verifier struct {
	n *bigmod.Modulus
	e uint
	k int // the modulus's length in bytes

	// What the Verifier was made from, to tell that a key is the same.
	pubN *big.Int
	pubE int
}

// New prepares pub's modulus.
func New(pub *rsa.PublicKey) (*Verifier, error) {
	if pub == nil || pub.N == nil || pub.N.Sign() <= 0 || pub.N.Bit(0) == 0 || pub.N.BitLen() < minBits {
		return nil, ErrKey
	}
	if pub.E < 3 || pub.E > 1<<31-1 || pub.E&1 == 0 {
		return nil, ErrKey
	}
	n, err := bigmod.NewModulus(pub.N.Bytes())
	if err != nil {
		return nil, ErrKey
	}
	return &Verifier{n: n, e: uint(pub.E), k: (pub.N.BitLen() + 7) / 8, pubN: new(big.Int).Set(pub.N), pubE: pub.E}, nil
}

// Of reports whether v verifies pub's signatures.
func (v *Verifier) Of(pub *rsa.PublicKey) bool {
	return pub != nil && pub.N != nil && pub.E == v.pubE && pub.N.Cmp(v.pubN) == 0
}

// Verify checks sig, a PKCS #1 v1.5 signature of the digest hashed made
// with hash, as rsa.VerifyPKCS1v15 does.
func (v *Verifier) Verify(hash crypto.Hash, hashed, sig []byte) error {
	prefix, ok := digestInfo[hash]
	if !ok || len(hashed) != hash.Size() {
		return ErrHash
	}
	// EM = 0x00 || 0x01 || PS (0xff, at least 8) || 0x00 || DigestInfo.
	tLen := len(prefix) + len(hashed)
	if v.k < tLen+11 {
		return ErrVerification
	}
	if len(sig) != v.k {
		return ErrVerification
	}
	s, err := bigmod.NewNat().SetBytes(sig, v.n)
	if err != nil {
		// The signature is not below the modulus.
		return ErrVerification
	}
	em := bigmod.NewNat().ExpShortVarTime(s, v.e, v.n).Bytes(v.n)
	want := make([]byte, v.k)
	want[1] = 1
	ps := want[2 : v.k-tLen-1]
	for i := range ps {
		ps[i] = 0xff
	}
	copy(want[v.k-tLen:], prefix)
	copy(want[v.k-len(hashed):], hashed)
	if subtle.ConstantTimeCompare(em, want) != 1 {
		return ErrVerification
	}
	return nil
}

// Cache keeps the Verifiers of up to a bounded number of keys, looked up
// by the key's pointer and checked against its value, so that a key
// changed in place is never verified with the modulus of what it was.
// Past its bound it starts over: a stream of keys never seen again costs
// what crypto/rsa costs, no more. It is safe for concurrent use.
type Cache struct {
	limit int
	mu    sync.RWMutex
	m     map[*rsa.PublicKey]*Verifier
}

// NewCache returns a Cache of at most limit keys.
func NewCache(limit int) *Cache {
	return &Cache{limit: limit, m: make(map[*rsa.PublicKey]*Verifier)}
}

// Verify checks sig as Verifier.Verify does, with pub's kept Verifier or
// a new one.
func (c *Cache) Verify(pub *rsa.PublicKey, hash crypto.Hash, hashed, sig []byte) error {
	v, err := c.verifier(pub)
	if err != nil {
		return err
	}
	return v.Verify(hash, hashed, sig)
}

func (c *Cache) verifier(pub *rsa.PublicKey) (*Verifier, error) {
	c.mu.RLock()
	v := c.m[pub]
	c.mu.RUnlock()
	if v != nil && v.Of(pub) {
		return v, nil
	}
	v, err := New(pub)
	if err != nil {
		return nil, err
	}
	c.mu.Lock()
	if len(c.m) >= c.limit {
		clear(c.m)
	}
	c.m[pub] = v
	c.mu.Unlock()
	return v, nil
}
