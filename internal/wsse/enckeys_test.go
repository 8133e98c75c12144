package wsse

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"math/big"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/internal/store"
)

func selfSigned(t *testing.T, k *rsa.PrivateKey) *x509.Certificate {
	t.Helper()
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "gw"}, NotBefore: time.Now(), NotAfter: time.Now().Add(time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &k.PublicKey, k)
	if err != nil {
		t.Fatal(err)
	}
	c, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestEncryptionKeyRoundTrip(t *testing.T) {
	ctx := context.Background()
	st := store.NewMemory(nil)
	k1, _ := rsa.GenerateKey(rand.Reader, 2048)
	k2, _ := rsa.GenerateKey(rand.Reader, 2048)
	c1 := selfSigned(t, k1)
	kek := make([]byte, 32)
	rand.Read(kek)
	if err := PutEncryptionKey(ctx, st, "gw", kek, k2, c1, time.Now()); err == nil || !strings.Contains(err.Error(), "does not match") {
		t.Errorf("mismatched key and certificate: %v", err)
	}
	for _, name := range []string{"", "a b", "a:b", strings.Repeat("x", 129)} {
		if err := PutEncryptionKey(ctx, st, name, kek, k1, c1, time.Now()); err == nil {
			t.Errorf("name %q accepted", name)
		}
	}
	if err := PutEncryptionKey(ctx, st, "gw", kek[:16], k1, c1, time.Now()); err == nil {
		t.Error("a 16 byte key-encryption key accepted")
	}
	if err := PutEncryptionKey(ctx, st, "gw", kek, k1, c1, time.Now()); err != nil {
		t.Fatal(err)
	}
	k, c, err := LoadEncryptionKey(ctx, st, "gw", kek)
	if err != nil || !k.Equal(k1) || !c.Equal(c1) {
		t.Fatalf("load: %v", err)
	}
	other := make([]byte, 32)
	rand.Read(other)
	if _, _, err := LoadEncryptionKey(ctx, st, "gw", other); !errors.Is(err, ErrEncryptionKey) {
		t.Errorf("wrong key-encryption key: %v", err)
	}
	if _, _, err := LoadEncryptionKey(ctx, st, "none", kek); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("absent: %v", err)
	}
	if err := st.Set(ctx, EncryptionKeyPrefix+"junk", []byte("{"), 0); err != nil {
		t.Fatal(err)
	}
	if _, _, err := LoadEncryptionKey(ctx, st, "junk", kek); !errors.Is(err, ErrEncryptionKey) {
		t.Errorf("junk: %v", err)
	}
}

func TestParseKEK(t *testing.T) {
	for _, tc := range []struct {
		in string
		ok bool
	}{
		{strings.Repeat("ab", 32), true},
		{"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=", true},
		{"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", true},
		{"AAAA", false},
		{"not a key!", false},
	} {
		if _, err := ParseKEK(tc.in); (err == nil) != tc.ok {
			t.Errorf("ParseKEK(%q): %v", tc.in, err)
		}
	}
}
