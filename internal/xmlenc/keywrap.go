package xmlenc

import (
	"crypto/aes"
	"crypto/subtle"
	"encoding/binary"
	"errors"
)

// defaultIV is RFC 3394's initial value.
var defaultIV = []byte{0xA6, 0xA6, 0xA6, 0xA6, 0xA6, 0xA6, 0xA6, 0xA6}

// errUnwrap is every failure of Unwrap.
var errUnwrap = errors.New("xmlenc: key unwrap failed")

// Wrap wraps key (a multiple of 8 bytes, at least 16) with kek, RFC 3394
// AES key wrap, as xmlenc#kw-aes128/192/256 do.
func Wrap(kek, key []byte) ([]byte, error) {
	if len(key) < 16 || len(key)%8 != 0 {
		return nil, errors.New("xmlenc: key to wrap must be a multiple of 8 bytes, at least 16")
	}
	b, err := aes.NewCipher(kek)
	if err != nil {
		return nil, err
	}
	n := len(key) / 8
	r := make([]byte, 8+len(key))
	copy(r[:8], defaultIV)
	copy(r[8:], key)
	var buf [16]byte
	for j := 0; j < 6; j++ {
		for i := 1; i <= n; i++ {
			copy(buf[:8], r[:8])
			copy(buf[8:], r[i*8:i*8+8])
			b.Encrypt(buf[:], buf[:])
			t := uint64(n*j + i)
			binary.BigEndian.PutUint64(r[:8], binary.BigEndian.Uint64(buf[:8])^t)
			copy(r[i*8:i*8+8], buf[8:])
		}
	}
	return r, nil
}

// Unwrap reverses Wrap and checks the integrity value in constant time.
func Unwrap(kek, wrapped []byte) ([]byte, error) {
	if len(wrapped) < 24 || len(wrapped)%8 != 0 {
		return nil, errUnwrap
	}
	b, err := aes.NewCipher(kek)
	if err != nil {
		return nil, errUnwrap
	}
	n := len(wrapped)/8 - 1
	a := make([]byte, 8)
	copy(a, wrapped[:8])
	r := make([]byte, len(wrapped)-8)
	copy(r, wrapped[8:])
	var buf [16]byte
	for j := 5; j >= 0; j-- {
		for i := n; i >= 1; i-- {
			t := uint64(n*j + i)
			binary.BigEndian.PutUint64(buf[:8], binary.BigEndian.Uint64(a)^t)
			copy(buf[8:], r[(i-1)*8:i*8])
			b.Decrypt(buf[:], buf[:])
			copy(a, buf[:8])
			copy(r[(i-1)*8:i*8], buf[8:])
		}
	}
	if subtle.ConstantTimeCompare(a, defaultIV) != 1 {
		return nil, errUnwrap
	}
	return r, nil
}
