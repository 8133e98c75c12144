package wssecurity

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/internal/policy"
	"github.com/gatehouse/gatehouse/internal/policy/policytest"
	"github.com/gatehouse/gatehouse/internal/policy/xmlguard"
)

// TestXmlguardAfterDecryption: on a route [xmlguard, wssecurity,
// xmlguard], the first guard checks the message as it arrives (the
// ciphertext), and the second the decrypted message wssecurity forwards:
// its limits and its operation allow-list are applied to the plaintext.
// A plaintext within xmlscan's defaults (which the decrypter applies in
// place) but deeper than the route's max_depth, or calling an operation
// the route does not allow, is refused after decryption.
func TestXmlguardAfterDecryption(t *testing.T) {
	f := newEncFixture(t)
	now := time.Now()
	env := policytest.Env()
	env.Route.Protocol = policy.SOAP11
	before, err := xmlguard.New(policytest.Node(t, "soap: {}\n"), env)
	if err != nil {
		t.Fatal(err)
	}
	after, err := xmlguard.New(policytest.Node(t, "max_depth: 12\nsoap:\n  operations: ['{urn:gatehouse:demo:products}GetProduct']\n"), env)
	if err != nil {
		t.Fatal(err)
	}
	wss := build(t, f.config("  required_parts: [Body]\n"), &clock{now.Add(time.Second)})
	deep := `<m:GetProduct xmlns:m="urn:gatehouse:demo:products">` + strings.Repeat("<m:x>", 12) + strings.Repeat("</m:x>", 12) + `</m:GetProduct>`
	other := `<m:DeleteProduct xmlns:m="urn:gatehouse:demo:products"><m:id>p-1001</m:id></m:DeleteProduct>`
	for _, tc := range []struct {
		name, payload, code string
	}{
		{"allowed", "", ""},
		{"too deep after decryption", deep, "xml_limit_exceeded"},
		{"operation not allowed after decryption", other, xmlguard.CodeOperationNotAllowed},
	} {
		t.Run(tc.name, func(t *testing.T) {
			doc := utEnc(t, now, false)
			if tc.payload != "" {
				body := doc.FindElement("//Body")
				body.RemoveChildAt(0)
				p := parseDoc(t, tc.payload)
				body.AddChild(p.Root())
			}
			wssEncrypt(t, doc, encOpts{to: f.pub()}, "Body-1")
			ex := soapRequest(docString(t, doc))
			ctx := context.Background()
			for i, p := range []policy.Policy{before, wss, after} {
				if err := p.Apply(ctx, ex); err != nil {
					d, ok := policy.AsDenial(err)
					if i != 2 || !ok || d.Code != tc.code {
						t.Fatalf("policy %d: %v (code %v), want %q from the second xmlguard", i, err, d, tc.code)
					}
					return
				}
			}
			if tc.code != "" {
				t.Fatalf("passed, want %s", tc.code)
			}
		})
	}
}
