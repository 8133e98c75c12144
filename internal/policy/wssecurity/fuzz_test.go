package wssecurity

import (
	"bytes"
	"crypto/x509/pkix"
	"encoding/base64"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/internal/policy"
	"github.com/gatehouse/gatehouse/internal/policy/policytest"
	"github.com/gatehouse/gatehouse/internal/xmlenc"
	"github.com/gatehouse/gatehouse/internal/xmlsig/xmlsigtest"
)

// FuzzSecurityHeader feeds arbitrary messages, seeded with real ones
// (UsernameToken digest and text, X.509 signed), through the whole policy:
// it must never panic, and whatever it accepts must have authenticated.
// CI runs it briefly: go test -run XXX -fuzz FuzzSecurityHeader -fuzztime 20s.
func FuzzSecurityHeader(f *testing.F) {
	// ECDSA keys: every fuzz worker runs this set-up, and RSA key
	// generation under coverage instrumentation takes many seconds.
	ca := xmlsigtest.NewCAWithKey(f, "fuzz CA", xmlsigtest.ECKey(f))
	leaf := ca.Issue(f, pkix.Name{CommonName: "fuzz signer"}, xmlsigtest.ECKey(f), nil)
	caFile := writeFile(f, f.TempDir(), "ca.pem", ca.CertPEM())
	now := policytest.Start
	cfg := "x509: {trust: {ca_file: " + caFile + "}}\n" + strings.TrimPrefix(strings.Replace(utConfig, "tls_only", "allowed", 1), "\n")
	f.Add(utMessage(f, "alice", "s3cret", true, now))
	f.Add(utMessage(f, "alice", "s3cret", false, now))
	for _, mode := range []string{refReference, refSKI, refIssuerSerial} {
		f.Add(signedMessage(f, leaf, nil, now, mode, ""))
	}
	f.Add(`<!DOCTYPE a [<!ENTITY b "c">]><a>&b;</a>`)
	f.Fuzz(func(t *testing.T, msg string) {
		// Fresh each time: accepted seeds must stay acceptable (no
		// replay), and state must not leak between inputs.
		p := build(t, cfg, &clock{now.Add(time.Second)})
		ex, err := apply(t, p, msg, false)
		if err == nil {
			if ex.Principal == nil || ex.Principal.Subject == "" {
				t.Fatalf("accepted without a principal: %q", msg)
			}
			return
		}
		if _, ok := policy.AsDenial(err); !ok {
			t.Fatalf("not a denial: %v", err)
		}
	})
}

// FuzzEncryptedMessage feeds mutations of encrypted messages (Body and
// UsernameToken encrypted, signed then encrypted, encrypted then signed
// with CBC) through a policy with encryption: it must never panic,
// refusals are Denials, and an accepted message has a principal and went
// upstream without ciphertext. The seeds wrap their keys with kw-aes256:
// an RSA private-key operation under coverage instrumentation takes
// seconds, which would leave the fuzzer a handful of executions (the RSA
// path has its table tests). Run briefly: go test -run XXX -fuzz
// FuzzEncryptedMessage -fuzztime 20s ./internal/policy/wssecurity/.
func FuzzEncryptedMessage(f *testing.F) {
	ca := xmlsigtest.NewCAWithKey(f, "fuzz CA", xmlsigtest.ECKey(f))
	ef := &encFixture{x509Fixture: &x509Fixture{ca: ca}}
	ef.leaf = ca.Issue(f, pkix.Name{CommonName: "fuzz signer"}, xmlsigtest.ECKey(f), nil)
	dir := f.TempDir()
	ef.caFile = writeFile(f, dir, "ca.pem", ca.CertPEM())
	ef.knownFile = writeFile(f, dir, "known.pem", ef.leaf.CertPEM())
	kek := bytes.Repeat([]byte{0x5a}, 32)
	cfg := ef.x509Fixture.config("") +
		"username_token: {text: allowed, users: [{username: alice, password: s3cret}]}\n" +
		"encryption:\n  wrap_keys: [{name: kek-1, key: " + base64.StdEncoding.EncodeToString(kek) + "}]\n  allow_cbc: true\n"
	now := policytest.Start
	for i, ids := range [][]string{{"Body-1"}, {"Body-1", "UT-1"}} {
		doc := utEnc(f, now, i == 1)
		wssEncrypt(f, doc, encOpts{kek: kek}, ids...)
		f.Add(docString(f, doc))
	}
	doc := utEnc(f, now, false)
	signEnc(f, doc, ef.leaf, false)
	wssEncrypt(f, doc, encOpts{kek: kek}, "Body-1")
	f.Add(docString(f, doc))
	doc = utEnc(f, now, false)
	wssEncrypt(f, doc, encOpts{kek: kek, method: xmlenc.AES128CBC}, "Body-1")
	signEnc(f, doc, ef.leaf, true)
	f.Add(docString(f, doc))
	// One policy for all inputs: a seed's nonce is spent the first time,
	// which the invariants below do not mind.
	p := build(f, cfg, &clock{now.Add(time.Second)})
	f.Fuzz(func(t *testing.T, msg string) {
		ex, err := apply(t, p, msg, true)
		if err == nil {
			if ex.Principal == nil || ex.Principal.Subject == "" {
				t.Fatalf("accepted without a principal: %q", msg)
			}
			b, _ := ex.Body(1 << 20)
			if strings.Contains(string(b), "CipherValue") {
				t.Fatalf("accepted and forwarded ciphertext: %s", b)
			}
			return
		}
		if _, ok := policy.AsDenial(err); !ok {
			t.Fatalf("not a denial: %v", err)
		}
	})
}
