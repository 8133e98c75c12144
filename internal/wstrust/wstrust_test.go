package wstrust

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"math/big"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/internal/store"
)

func TestPublishLoad(t *testing.T) {
	st := store.NewMemory(time.Now)
	if _, _, err := LoadPublished(t.Context(), st); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("before publishing: got %v, want store.ErrNotFound", err)
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "sts"}, NotBefore: time.Now(), NotAfter: time.Now().Add(time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	if err := Publish(t.Context(), st, "urn:issuer", cert); err != nil {
		t.Fatal(err)
	}
	iss, got, err := LoadPublished(t.Context(), st)
	if err != nil || iss != "urn:issuer" || !got.Equal(cert) {
		t.Fatalf("got %q %v %v, want the published issuer and certificate", iss, got, err)
	}
	for _, bad := range []string{`{`, `{"issuer":"x","certificate":"AAAA"}`} {
		if err := st.Set(t.Context(), PublishedKey, []byte(bad), 0); err != nil {
			t.Fatal(err)
		}
		if _, _, err := LoadPublished(t.Context(), st); err == nil {
			t.Errorf("corrupt %s: got no error", bad)
		}
	}
}
