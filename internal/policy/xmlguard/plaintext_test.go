package xmlguard

import (
	"context"
	"strings"
	"testing"

	"github.com/gatehouse/gatehouse/internal/policy"
	"github.com/gatehouse/gatehouse/internal/policy/policytest"
)

// encBody is a Body whose only child is an EncryptedData (the ciphertext
// is not read: the guard only checks its shape before decryption).
const encBody = `<xenc:EncryptedData xmlns:xenc="http://www.w3.org/2001/04/xmlenc#" Type="http://www.w3.org/2001/04/xmlenc#Content"><xenc:CipherData><xenc:CipherValue>AAAA</xenc:CipherValue></xenc:CipherData></xenc:EncryptedData>`

// TestPlaintextCheck: a message that passes registers the guard as a
// policy.PlaintextCheck; CheckPlaintext applies the same limits and
// allow-list to the decrypted message, with the denials Apply gives a
// message arriving in clear. An encrypted Body defers the operation
// check to CheckPlaintext, and FinishRequest refuses the request when no
// policy ran it.
func TestPlaintextCheck(t *testing.T) {
	g := newGuard(t, policytest.Node(t, "max_bytes: 2KiB\nmax_depth: 8\nsoap:\n  operations: [\"{urn:gatehouse:demo:products}GetProduct\"]\n"), policy.SOAP11)
	ctx := context.Background()
	deep := `<tns:GetProduct>` + strings.Repeat("<tns:x>", 8) + strings.Repeat("</tns:x>", 8) + `</tns:GetProduct>`
	tests := []struct {
		name      string
		arrived   string // the body as it arrives
		plaintext string // the decrypted message; "" when nothing decrypts it
		status    int
		code      string
	}{
		{"clear, allowed, nothing decrypts", env11(getProduct), "", 0, ""},
		{"clear, allowed, checked again", env11(getProduct), env11(getProduct), 0, ""},
		{"encrypted, decrypted to an allowed operation", env11(encBody), env11(getProduct), 0, ""},
		{"encrypted, decrypted to another operation", env11(encBody), env11(createProduct), 400, CodeOperationNotAllowed},
		{"encrypted, decrypted too deep", env11(encBody), env11(deep), 400, "xml_limit_exceeded"},
		{"encrypted, decrypted too large", env11(encBody), env11(`<tns:GetProduct><tns:id>` + strings.Repeat("1", 2<<10) + `</tns:id></tns:GetProduct>`), 413, "body_too_large"},
		{"encrypted, decrypted with a DTD", env11(encBody), `<!DOCTYPE r []>` + env11(getProduct), 400, "xml_dtd_forbidden"},
		{"encrypted, still encrypted after decryption", env11(encBody), env11(encBody), 400, CodeOperationNotAllowed},
		{"encrypted, nothing decrypts it", env11(encBody), "", 400, CodeOperationNotAllowed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ex := request{body: tt.arrived, contentType: ct11}.exchange(policy.SOAP11)
			if err := g.Apply(ctx, ex); err != nil {
				t.Fatalf("Apply = %v", err)
			}
			checks := ex.PlaintextChecks()
			if len(checks) != 1 || checks[0] != g {
				t.Fatalf("PlaintextChecks = %v, want the guard", checks)
			}
			var err error
			if tt.plaintext != "" {
				ex.SetBody([]byte(tt.plaintext))
				err = checks[0].CheckPlaintext(ctx, ex, []byte(tt.plaintext))
			}
			if err == nil {
				err = g.FinishRequest(ctx, ex)
			}
			status, code := 0, ""
			if err != nil {
				d, ok := policy.AsDenial(err)
				if !ok {
					t.Fatalf("err = %v, want a Denial", err)
				}
				status, code = d.StatusCode(), d.Code
			}
			if status != tt.status || code != tt.code {
				t.Errorf("got %d %q, want %d %q", status, code, tt.status, tt.code)
			}
			if err == nil && tt.plaintext != "" && (ex.SOAP == nil || ex.SOAP.Operation.Local != "GetProduct") {
				t.Errorf("ex.SOAP = %v, want the decrypted message's tree", ex.SOAP)
			}
		})
	}
}

// TestEncryptedBodyWithoutAllowList: without an allow-list there is
// nothing to defer, and FinishRequest passes an encrypted Body.
func TestEncryptedBodyWithoutAllowList(t *testing.T) {
	g := newGuard(t, policytest.Node(t, "soap: {}\n"), policy.SOAP11)
	ex := request{body: env11(encBody), contentType: ct11}.exchange(policy.SOAP11)
	if err := g.Apply(context.Background(), ex); err != nil {
		t.Fatal(err)
	}
	if err := g.FinishRequest(context.Background(), ex); err != nil {
		t.Fatal(err)
	}
}
