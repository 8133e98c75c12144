package saml

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/internal/config"
	"github.com/gatehouse/gatehouse/internal/policy/policytest"
)

// writeCert writes a self-signed PEM certificate to dir/name.
func writeCert(t *testing.T, dir, name string) {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: name},
		NotBefore: policytest.Start.Add(-time.Hour), NotAfter: policytest.Start.Add(time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &k.PublicKey, k)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, name), pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
}

// TestConfigGood checks the settings good configs give, defaults
// included, and that certificate files are found relative to the config
// file, not the working directory.
func TestConfigGood(t *testing.T) {
	dir := t.TempDir()
	writeCert(t, dir, "idp.pem")
	writeCert(t, dir, "sender.pem")
	for _, tc := range []struct {
		name, yaml string
		check      func(t *testing.T, s *settings)
	}{
		{"defaults", "audience: a\nsts: true\n", func(t *testing.T, s *settings) {
			if !s.bearer || !s.hok || s.sv || !s.bearerTLS || s.skew != 30*time.Second || s.maxAge != 300*time.Second ||
				s.rolesAttr != "roles" || s.maxBodyBytes != 1<<20 || s.remote != nil || len(s.rules) != 0 {
				t.Errorf("defaults: %+v", s)
			}
		}},
		{"relative files", "audience: a\nissuers: [{issuer: https://idp, certificate_file: idp.pem}]\nconfirmations: [sender-vouches]\nsenders: [sender.pem]\n", func(t *testing.T, s *settings) {
			if len(s.issuers["https://idp"]) != 1 || len(s.senders) != 1 || !s.sv || s.bearer {
				t.Errorf("files: %+v", s)
			}
		}},
		{"everything set", "audience: a\nsts: true\nclock_skew: 0s\nmax_age: 10s\nmax_body_bytes: 2KiB\nroles_attribute: groups\n" +
			"bearer_requires_tls: false\nauthorize: [{operation: '{urn:x}Op', roles: [r]}, {operation: '*'}]\n" +
			"validate_with_sts: {url: 'http://127.0.0.1:1/sts', cache: 0s, timeout: 1s}\n", func(t *testing.T, s *settings) {
			want := []rule{{space: "urn:x", local: "Op", roles: []string{"r"}}, {local: "*"}}
			if s.skew != 0 || s.maxAge != 10*time.Second || s.maxBodyBytes != 2048 || s.rolesAttr != "groups" || s.bearerTLS ||
				len(s.rules) != 2 || s.rules[0].space != want[0].space || s.rules[0].local != want[0].local || s.rules[1].local != "*" ||
				s.remote == nil || s.remote.cache != 0 || s.remote.invalidFor != 0 || s.remote.timeout != time.Second {
				t.Errorf("settings: %+v remote %+v", s, s.remote)
			}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			n, err := config.ParseNode(filepath.Join(dir, "gw.yaml"), []byte(tc.yaml), nil)
			if err != nil {
				t.Fatal(err)
			}
			s, err := decode(n)
			if err != nil {
				t.Fatal(err)
			}
			tc.check(t, s)
		})
	}
}

// TestConfigErrorsTogether checks that independent problems are reported
// in one load, each at its place, and that an unreadable file is reported
// at its entry.
func TestConfigErrorsTogether(t *testing.T) {
	yaml := "clock_skew: 10m\n" +
		"max_age: 2h\n" +
		"issuers:\n" +
		"  - {issuer: '', certificate_file: ''}\n" +
		"confirmations: [magic]\n" +
		"authorize: [{operation: Op}]\n" +
		"recipients: ['/relative']\n" +
		"validate_with_sts: {url: 'http://sts.example/', cache: 1h, timeout: 1ms}\n"
	_, err := decode(policytest.Node(t, yaml))
	policytest.WantConfigErrors(t, err,
		policytest.ConfigErrorAt{Line: 1, Path: "audience"}, // missing: at the mapping
		policytest.ConfigErrorAt{Line: 1, Path: "clock_skew"},
		policytest.ConfigErrorAt{Line: 2, Path: "max_age"},
		policytest.ConfigErrorAt{Line: 4, Path: "issuers[0].issuer"},
		policytest.ConfigErrorAt{Line: 4, Path: "issuers[0].certificate_file"},
		policytest.ConfigErrorAt{Line: 5, Path: "confirmations[0]"},
		policytest.ConfigErrorAt{Line: 6, Path: "authorize[0].operation"},
		policytest.ConfigErrorAt{Line: 7, Path: "recipients[0]"},
		policytest.ConfigErrorAt{Line: 8, Path: "validate_with_sts.url"},
		policytest.ConfigErrorAt{Line: 8, Path: "validate_with_sts.cache"},
		policytest.ConfigErrorAt{Line: 8, Path: "validate_with_sts.timeout"},
	)

	_, err = decode(policytest.Node(t, "audience: a\nissuers:\n  - {issuer: x, certificate_file: nope1.pem}\n  - {issuer: z, certificate_file: nope2.pem}\n"))
	policytest.WantConfigErrors(t, err,
		policytest.ConfigErrorAt{Line: 3, Path: "issuers[0].certificate_file"},
		policytest.ConfigErrorAt{Line: 4, Path: "issuers[1].certificate_file"},
	)
}
