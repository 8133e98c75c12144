package sts

import (
	"testing"

	"github.com/beevik/etree"
)

// FuzzParseRST feeds arbitrary RST bodies to the parser: it must never
// panic, and what it accepts has a known RequestType.
func FuzzParseRST(f *testing.F) {
	for _, s := range []string{
		`<wst:RequestSecurityToken xmlns:wst="` + NamespaceWST + `"><wst:RequestType>` + RequestIssue + `</wst:RequestType></wst:RequestSecurityToken>`,
		`<wst:RequestSecurityToken xmlns:wst="` + NamespaceWST + `" Context="c">` + issueBody("urn:x", KeyTypePublicKey) + `</wst:RequestSecurityToken>`,
		`<wst:RequestSecurityToken xmlns:wst="` + NamespaceWST + `">` + targetBody(RequestCancel, "CancelTarget", `<wsse:SecurityTokenReference xmlns:wsse="`+nsWSSE+`"><wsse:KeyIdentifier ValueType="http://docs.oasis-open.org/wss/oasis-wss-saml-token-profile-1.1#SAMLID">_1</wsse:KeyIdentifier></wsse:SecurityTokenReference>`) + `</wst:RequestSecurityToken>`,
		`<wst:RequestSecurityToken xmlns:wst="` + NamespaceWST + `"><wst:UseKey><x/></wst:UseKey></wst:RequestSecurityToken>`,
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		doc := etree.NewDocument()
		doc.ReadSettings.MaxDepth = 32
		if doc.ReadFromString(s) != nil || doc.Root() == nil {
			return
		}
		r, err := parseRST(doc.Root())
		if err != nil {
			return
		}
		switch r.requestType {
		case RequestIssue, RequestRenew, RequestCancel, RequestValidate:
		default:
			t.Fatalf("accepted RequestType %q", r.requestType)
		}
	})
}
