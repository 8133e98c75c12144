package wssecurity

import (
	"crypto/x509/pkix"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/internal/policy"
	"github.com/gatehouse/gatehouse/internal/policy/policytest"
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
