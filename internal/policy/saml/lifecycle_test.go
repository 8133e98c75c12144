package saml

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/beevik/etree"

	"github.com/gatehouse/gatehouse/internal/saml2"
	"github.com/gatehouse/gatehouse/internal/xmlsig/xmlsigtest"
)

// TestConfirmationData: the subject confirmation's data is checked by the
// shared lifecycle as at the token exchange: a Recipient must be this
// endpoint's URL (the request's, or a configured recipients entry), an
// Address the client's, no InResponseTo, within its own times.
func TestConfirmationData(t *testing.T) {
	f := newFixture(t)
	idp := xmlsigtest.NewCA(t, "IdP")
	signer, err := saml2.NewSigner(idp.Key, idp.Cert)
	if err != nil {
		t.Fatal(err)
	}
	pemFile := filepath.Join(f.dir, "idp.pem")
	if err := os.WriteFile(pemFile, idp.CertPEM(), 0o600); err != nil {
		t.Fatal(err)
	}
	p := f.policy(t, "audience: urn:gatehouse:products\nissuers: [{issuer: https://idp.test, certificate_file: "+pemFile+"}]\n")
	behind := f.policy(t, "audience: urn:gatehouse:products\nissuers: [{issuer: https://idp.test, certificate_file: "+pemFile+"}]\nrecipients: [https://public.example/soap]\n")
	now := f.clock.t
	token := func(c saml2.Confirmation) string {
		c.Method = saml2.MethodBearer
		el := saml2.Build(&saml2.Assertion{Issuer: "https://idp.test", IssueInstant: now, NameID: "carol",
			NotBefore: now.Add(-time.Minute), NotOnOrAfter: now.Add(5 * time.Minute),
			Audiences: [][]string{{"urn:gatehouse:products"}}, Confirmations: []saml2.Confirmation{c}})
		if err := signer.Sign(el); err != nil {
			t.Fatal(err)
		}
		doc := etree.NewDocument()
		doc.SetRoot(el)
		s, err := doc.WriteToString()
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	for _, tc := range []struct {
		name string
		p    *Policy
		c    saml2.Confirmation
		ok   bool
	}{
		{"no data", p, saml2.Confirmation{}, true},
		{"recipient is this endpoint", p, saml2.Confirmation{Recipient: "https://gw.example/soap"}, true},
		{"recipient elsewhere", p, saml2.Confirmation{Recipient: "https://evil.example/soap"}, false},
		{"recipient another path", p, saml2.Confirmation{Recipient: "https://gw.example/other"}, false},
		{"recipient the configured public URL", behind, saml2.Confirmation{Recipient: "https://public.example/soap"}, true},
		{"recipient the internal URL when one is configured", behind, saml2.Confirmation{Recipient: "https://gw.example/soap"}, false},
		{"address of the client", p, saml2.Confirmation{Address: "192.0.2.1"}, true},
		{"address of another", p, saml2.Confirmation{Address: "198.51.100.9"}, false},
		{"in response to", p, saml2.Confirmation{InResponseTo: "_req"}, false},
		{"confirmation expired", p, saml2.Confirmation{NotOnOrAfter: now.Add(-time.Minute)}, false},
		{"confirmation not yet", p, saml2.Confirmation{NotBefore: now.Add(time.Minute)}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := apply(t, tc.p, f.message(token(tc.c), "GetProduct"), true)
			if tc.ok {
				wantCode(t, err, "", 0)
			} else {
				wantCode(t, err, "wsse:InvalidSecurityToken", 401)
			}
		})
	}
}
