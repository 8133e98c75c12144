package main

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/pem"
	"math/big"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/internal/store"
	"github.com/gatehouse/gatehouse/internal/wsse"
)

// TestKeysStoreEncryption: the command seals an RSA decryption key into
// the config's file store, where wsse.LoadEncryptionKey (what the
// wssecurity policy reads at load) opens it with the same KEK; a missing
// KEK and a key that does not match its certificate are refused.
func TestKeysStoreEncryption(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "gatehouse.yaml")
	if err := os.WriteFile(path, []byte("listeners: [{name: main, address: \"127.0.0.1:0\"}]\nstore: {type: file, path: state.db}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	other, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(7), Subject: pkix.Name{CommonName: "gateway encryption"}, NotBefore: time.Now(), NotAfter: time.Now().Add(time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	write := func(name string, typ string, b []byte) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: b}), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	certFile := write("enc.pem", "CERTIFICATE", der)
	keyFile := write("enc.key", "RSA PRIVATE KEY", x509.MarshalPKCS1PrivateKey(key))
	otherFile := write("other.key", "RSA PRIVATE KEY", x509.MarshalPKCS1PrivateKey(other))
	kek := make([]byte, 32)
	rand.Read(kek)

	args := []string{"keys", "store-encryption", "--config", path, "--name", "gw-enc-1", "--cert", certFile, "--key", keyFile, "--kek-env", "GH_TEST_KEK"}
	if code, _, errs := runCLI(t, "", args...); code != 1 || !strings.Contains(errs, "$GH_TEST_KEK") {
		t.Fatalf("without a KEK: %d %q", code, errs)
	}
	t.Setenv("GH_TEST_KEK", base64.StdEncoding.EncodeToString(kek))
	bad := append([]string{}, args...)
	bad[9] = otherFile
	if code, _, errs := runCLI(t, "", bad...); code != 1 || !strings.Contains(errs, "does not match") {
		t.Fatalf("mismatched key: %d %q", code, errs)
	}
	code, out, errs := runCLI(t, "", args...)
	if code != 0 || !strings.Contains(out, `"gw-enc-1" stored`) {
		t.Fatalf("store-encryption: %d %q %q", code, out, errs)
	}
	st, err := store.OpenFile(filepath.Join(dir, "state.db"), time.Now)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	k, c, err := wsse.LoadEncryptionKey(context.Background(), st, "gw-enc-1", kek)
	if err != nil || !k.Equal(key) || c.Subject.CommonName != "gateway encryption" {
		t.Fatalf("load: %v", err)
	}
}
