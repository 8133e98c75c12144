package xmlenc

import (
	"encoding/base64"
	"encoding/hex"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/beevik/etree"

	"github.com/gatehouse/gatehouse/internal/peertest"
)

// TestOpenSSLKeyTransport: the content key of each RSA-OAEP variant is
// encrypted by an independent implementation, the OpenSSL command line
// (Debian's openssl; xmlsec1 1.2 knows only SHA-1 OAEP), with the
// digest, MGF1 hash and label the EncryptedKey then declares; the
// Decrypter unwraps it. A declared variant that differs from what OpenSSL
// used fails like a wrong key.
func TestOpenSSLKeyTransport(t *testing.T) {
	bin := peertest.Debian(t, "openssl", "openssl")
	f := newFixture(t)
	dir := t.TempDir()
	certFile := filepath.Join(dir, "k1.pem")
	if err := os.WriteFile(certFile, f.k1.CertPEM(), 0o600); err != nil {
		t.Fatal(err)
	}
	label := []byte("gatehouse label")
	tests := []struct {
		name           string
		method         string
		digest, mgf    string // XML declaration; "" leaves it out
		oaepMD, mgf1MD string // OpenSSL's
		label          []byte
		declareLabel   bool
		wantFail       bool
	}{
		{"mgf1p sha1 (defaults)", RSAOAEPMGF1P, "", "", "sha1", "sha1", nil, false, false},
		{"mgf1p sha256 digest", RSAOAEPMGF1P, DigestSHA256, "", "sha256", "sha1", nil, false, false},
		{"oaep11 sha256 mgf1sha256", RSAOAEP, DigestSHA256, MGF1SHA256, "sha256", "sha256", nil, false, false},
		{"oaep11 sha1 mgf1sha256", RSAOAEP, DigestSHA1, MGF1SHA256, "sha1", "sha256", nil, false, false},
		{"oaep11 sha256 mgf1sha1", RSAOAEP, DigestSHA256, MGF1SHA1, "sha256", "sha1", nil, false, false},
		{"oaep11 with OAEPparams label", RSAOAEP, DigestSHA256, MGF1SHA256, "sha256", "sha256", label, true, false},
		{"label used, not declared", RSAOAEP, DigestSHA256, MGF1SHA256, "sha256", "sha256", label, false, true},
		{"declared sha256, made with sha1", RSAOAEP, DigestSHA256, MGF1SHA256, "sha1", "sha256", nil, false, true},
		{"declared mgf1sha1, made with mgf1sha256", RSAOAEP, DigestSHA256, MGF1SHA1, "sha256", "sha256", nil, false, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			key := NewKey(AES256GCM)
			keyFile := filepath.Join(dir, "content.key")
			if err := os.WriteFile(keyFile, key, 0o600); err != nil {
				t.Fatal(err)
			}
			args := []string{"pkeyutl", "-encrypt", "-certin", "-inkey", certFile, "-in", keyFile,
				"-pkeyopt", "rsa_padding_mode:oaep", "-pkeyopt", "rsa_oaep_md:" + tc.oaepMD, "-pkeyopt", "rsa_mgf1_md:" + tc.mgf1MD}
			if tc.label != nil {
				args = append(args, "-pkeyopt", "rsa_oaep_label:"+hex.EncodeToString(tc.label))
			}
			out, err := exec.Command(bin, args...).Output()
			if err != nil {
				t.Fatalf("openssl %s: %v", strings.Join(args, " "), err)
			}
			if len(out) != 256 {
				t.Fatalf("openssl made %d bytes, want 256", len(out))
			}
			ek := etree.NewElement("xenc:EncryptedKey")
			ek.CreateAttr("xmlns:xenc", NamespaceXENC)
			m := ek.CreateElement("xenc:EncryptionMethod")
			m.CreateAttr("Algorithm", tc.method)
			if tc.digest != "" {
				dm := m.CreateElement("ds:DigestMethod")
				dm.CreateAttr("xmlns:ds", NamespaceDSig)
				dm.CreateAttr("Algorithm", tc.digest)
			}
			if tc.mgf != "" {
				mg := m.CreateElement("xenc11:MGF")
				mg.CreateAttr("xmlns:xenc11", NamespaceXENC11)
				mg.CreateAttr("Algorithm", tc.mgf)
			}
			if tc.declareLabel {
				m.CreateElement("xenc:OAEPparams").SetText(base64.StdEncoding.EncodeToString(tc.label))
			}
			ek.CreateElement("xenc:CipherData").CreateElement("xenc:CipherValue").SetText(base64.StdEncoding.EncodeToString(out))
			doc, b := envelope(t, body)
			ki := etree.NewElement("ds:KeyInfo")
			ki.CreateAttr("xmlns:ds", NamespaceDSig)
			ki.AddChild(ek)
			if _, err := Seal(b, TypeContent, AES256GCM, key, "", ki); err != nil {
				t.Fatal(err)
			}
			got, err := decryptBody(t, f, doc, false)
			switch {
			case tc.wantFail && err != ErrDecrypt:
				t.Fatalf("got %v (%q), want ErrDecrypt", err, got)
			case !tc.wantFail && (err != nil || got != body):
				t.Fatalf("got %q, %v; want the body", got, err)
			}
		})
	}
}
