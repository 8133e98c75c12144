package wsse

import (
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/gatehouse/gatehouse/internal/store"
)

// The gateway's decryption keys in the shared store: RSA key transport keys
// that every gateway instance reads by name, so that a key is provisioned
// (and replaced) once, in one place, instead of as a file on every host.
// The certificate is kept in clear; the PKCS #8 private key is sealed with
// AES-256-GCM under a key-encryption key that the store never sees, with
// the name and the certificate's SHA-256 as additional data, so that a
// record cannot be moved to another name or paired with another
// certificate by whoever can write the store.

// EncryptionKeyPrefix prefixes the store key of a stored decryption key:
// EncryptionKeyPrefix + name.
const EncryptionKeyPrefix = "wsse:enckey:"

// ErrEncryptionKey is the cause of every failure to read a stored key.
var ErrEncryptionKey = errors.New("stored decryption key")

// storedEncKey is the record under EncryptionKeyPrefix + name.
type storedEncKey struct {
	Cert    []byte    `json:"cert"`
	Created time.Time `json:"created"`
	Nonce   []byte    `json:"nonce"`
	Sealed  []byte    `json:"sealed"`
}

func encKeyAAD(name string, cert []byte) []byte {
	h := sha256.Sum256(cert)
	return []byte("gatehouse-wsse-enckey\x00" + name + "\x00" + hex.EncodeToString(h[:]))
}

// ParseKEK reads a key-encryption key: 32 bytes as base64 (standard or
// URL alphabet, padded or not) or as 64 hex digits.
func ParseKEK(v string) ([]byte, error) {
	v = strings.TrimSpace(v)
	if len(v) == 64 {
		if b, err := hex.DecodeString(v); err == nil {
			return b, nil
		}
	}
	for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.RawStdEncoding, base64.URLEncoding, base64.RawURLEncoding} {
		if b, err := enc.DecodeString(v); err == nil {
			if len(b) != 32 {
				return nil, fmt.Errorf("the key-encryption key is %d bytes, want 32", len(b))
			}
			return b, nil
		}
	}
	return nil, errors.New("the key-encryption key is neither base64 nor 64 hex digits")
}

func kekAEAD(kek []byte) (cipher.AEAD, error) {
	if len(kek) != 32 {
		return nil, fmt.Errorf("the key-encryption key is %d bytes, want 32", len(kek))
	}
	b, err := aes.NewCipher(kek)
	if err != nil {
		return nil, err
	}
	return cipher.NewGCM(b)
}

// CheckKeyName refuses names that would not read back as one store key.
func CheckKeyName(name string) error {
	if name == "" || len(name) > 128 || strings.ContainsAny(name, " \t\r\n:") {
		return fmt.Errorf("key name %q: want 1 to 128 characters without spaces or ':'", name)
	}
	return nil
}

// PutEncryptionKey stores key and its certificate under name, sealed with
// kek (32 bytes), replacing what was there: how an operator provisions or
// replaces the gateway's decryption key for every instance. Instances read
// it when their config is (re)loaded.
func PutEncryptionKey(ctx context.Context, st store.Store, name string, kek []byte, key *rsa.PrivateKey, cert *x509.Certificate, now time.Time) error {
	if err := CheckKeyName(name); err != nil {
		return err
	}
	pub, ok := cert.PublicKey.(*rsa.PublicKey)
	if !ok || !pub.Equal(&key.PublicKey) {
		return errors.New("the key does not match the certificate")
	}
	g, err := kekAEAD(kek)
	if err != nil {
		return err
	}
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return err
	}
	rec := storedEncKey{Cert: cert.Raw, Created: now.UTC(), Nonce: make([]byte, g.NonceSize())}
	if _, err := rand.Read(rec.Nonce); err != nil {
		return err
	}
	rec.Sealed = g.Seal(nil, rec.Nonce, der, encKeyAAD(name, cert.Raw))
	raw, err := json.Marshal(rec)
	if err != nil {
		return err
	}
	return st.Set(ctx, EncryptionKeyPrefix+name, raw, 0)
}

// LoadEncryptionKey reads the key stored under name and opens it with
// kek. Its errors wrap ErrEncryptionKey (and store.ErrNotFound when there
// is none) and never hold key material.
func LoadEncryptionKey(ctx context.Context, st store.Store, name string, kek []byte) (*rsa.PrivateKey, *x509.Certificate, error) {
	if err := CheckKeyName(name); err != nil {
		return nil, nil, fmt.Errorf("%w: %v", ErrEncryptionKey, err)
	}
	raw, err := st.Get(ctx, EncryptionKeyPrefix+name)
	if err != nil {
		return nil, nil, fmt.Errorf("%w %q: %w", ErrEncryptionKey, name, err)
	}
	var rec storedEncKey
	if err := json.Unmarshal(raw, &rec); err != nil {
		return nil, nil, fmt.Errorf("%w %q: not a stored key", ErrEncryptionKey, name)
	}
	cert, err := x509.ParseCertificate(rec.Cert)
	if err != nil {
		return nil, nil, fmt.Errorf("%w %q: its certificate: %v", ErrEncryptionKey, name, err)
	}
	g, err := kekAEAD(kek)
	if err != nil {
		return nil, nil, fmt.Errorf("%w: %v", ErrEncryptionKey, err)
	}
	if len(rec.Nonce) != g.NonceSize() {
		return nil, nil, fmt.Errorf("%w %q: not a stored key", ErrEncryptionKey, name)
	}
	der, err := g.Open(nil, rec.Nonce, rec.Sealed, encKeyAAD(name, rec.Cert))
	if err != nil {
		return nil, nil, fmt.Errorf("%w %q: it does not open with the key-encryption key (wrong key, or a record moved or altered)", ErrEncryptionKey, name)
	}
	k, err := x509.ParsePKCS8PrivateKey(der)
	if err != nil {
		return nil, nil, fmt.Errorf("%w %q: %v", ErrEncryptionKey, name, err)
	}
	rk, ok := k.(*rsa.PrivateKey)
	if !ok || !rk.PublicKey.Equal(cert.PublicKey) {
		return nil, nil, fmt.Errorf("%w %q: the key does not match its certificate", ErrEncryptionKey, name)
	}
	return rk, cert, nil
}
