package sts

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/beevik/etree"

	"github.com/gatehouse/gatehouse/internal/audit"
	"github.com/gatehouse/gatehouse/internal/saml2"
	"github.com/gatehouse/gatehouse/internal/soap"
)

func TestIssue(t *testing.T) {
	for _, sig := range []string{"rsa-sha256", "ecdsa-sha256"} {
		for _, v12 := range []bool{false, true} {
			t.Run(sig+"/"+map[bool]string{false: "soap1.1", true: "soap1.2"}[v12], func(t *testing.T) {
				f := newFixture(t, sig)
				resp, code := f.do(t, f.rst(v12, "alice", "pässword & <more>", actIssue, issueBody("urn:gatehouse:products", KeyTypeBearer)))
				if code != "" {
					t.Fatalf("got fault %s, want a token", code)
				}
				_, a := f.assertionOf(t, resp)
				if a.NameID != "alice" || a.Issuer != "https://gw.example/sts" {
					t.Errorf("got NameID %q issuer %q", a.NameID, a.Issuer)
				}
				if !a.AudienceOK("urn:gatehouse:products") {
					t.Errorf("got audiences %v, want urn:gatehouse:products", a.Audiences)
				}
				if got := strings.Join(a.Attributes["roles"], ","); got != "reader,writer" {
					t.Errorf("got roles %q, want reader,writer", got)
				}
				if got := a.Attributes["email"]; len(got) != 1 || got[0] != "alice@example.com" {
					t.Errorf("got email %v", got)
				}
				if a.Confirmation(saml2.MethodBearer) == nil || a.OneTimeUse {
					t.Errorf("got confirmations %+v one-time %v, want bearer, reusable", a.Confirmations, a.OneTimeUse)
				}
				if got, want := a.NotOnOrAfter.Sub(a.NotBefore), DefaultTokenLifetime; got != want {
					t.Errorf("got lifetime %v, want %v", got, want)
				}
				doc := etree.NewDocument()
				if err := doc.ReadFromString(resp); err != nil {
					t.Fatal(err)
				}
				wantNS := soap.V11.Namespace()
				if v12 {
					wantNS = soap.V12.Namespace()
				}
				if got := doc.Root().NamespaceURI(); got != wantNS {
					t.Errorf("got envelope %q, want %q", got, wantNS)
				}
				for path, want := range map[string]string{
					"//Header/Action":    wstBase + "RSTRC/IssueFinal",
					"//Header/RelatesTo": "urn:uuid:1234",
					"//RequestSecurityTokenResponseCollection/RequestSecurityTokenResponse/TokenType":                  saml2.TokenTypeSAML20,
					"//RequestSecurityTokenResponse/AppliesTo/EndpointReference/Address":                               "urn:gatehouse:products",
					"//RequestSecurityTokenResponse/KeyType":                                                           KeyTypeBearer,
					"//RequestSecurityTokenResponse/RequestedAttachedReference/SecurityTokenReference/KeyIdentifier":   a.ID,
					"//RequestSecurityTokenResponse/RequestedUnattachedReference/SecurityTokenReference/KeyIdentifier": a.ID,
					"//RequestSecurityTokenResponse/Lifetime/Expires":                                                  saml2.FormatTime(a.NotOnOrAfter),
				} {
					el := doc.FindElement(path)
					if el == nil {
						t.Errorf("no %s in the response", path)
						continue
					}
					if got := el.Text(); got != want {
						t.Errorf("%s: got %q, want %q", path, got, want)
					}
				}
				if got := doc.FindElement("//RequestSecurityTokenResponse").SelectAttrValue("Context", ""); got != "ctx-42" {
					t.Errorf("got Context %q, want ctx-42 echoed", got)
				}
			})
		}
	}
}

func TestIssueOneTimeUseAndShorterLifetime(t *testing.T) {
	f := newFixture(t, "")
	_, a := f.issue(t, "bob", "bobpw", "urn:gatehouse:once")
	if !a.OneTimeUse {
		t.Error("got no OneTimeUse, want it for this relying party")
	}
	if got := a.NotOnOrAfter.Sub(a.NotBefore); got != 5*time.Minute {
		t.Errorf("got lifetime %v, want 5m", got)
	}
	if got := a.Attributes["roles"]; len(got) != 1 || got[0] != "reader" {
		t.Errorf("got roles %v, want [reader]", got)
	}
}

func TestIssueRefused(t *testing.T) {
	f := newFixture(t, "")
	for _, tc := range []struct {
		name, msg, want string
	}{
		{"wrong password", f.rst(true, "alice", "nope", actIssue, issueBody("urn:gatehouse:products", "")), FaultFailedAuthentication},
		{"no credentials", f.rst(true, "", "", actIssue, issueBody("urn:gatehouse:products", "")), FaultFailedAuthentication},
		{"authenticated but not a subject", f.rst(true, "eve", "evepw", actIssue, issueBody("urn:gatehouse:products", "")), FaultFailedAuthentication},
		{"unknown relying party", f.rst(true, "alice", "pässword & <more>", actIssue, issueBody("urn:evil", "")), FaultInvalidScope},
		{"no AppliesTo", f.rst(true, "alice", "pässword & <more>", actIssue, issueBody("", "")), FaultInvalidRequest},
		{"symmetric key", f.rst(true, "alice", "pässword & <more>", actIssue, issueBody("urn:gatehouse:products", KeyTypeSymmetric)), FaultInvalidRequest},
		{"public key without a signature", f.rst(true, "alice", "pässword & <more>", actIssue, issueBody("urn:gatehouse:products", KeyTypePublicKey)), FaultInvalidRequest},
		{"SAML 1.1 token type", f.rst(true, "alice", "pässword & <more>", actIssue, `<wst:RequestType>`+RequestIssue+`</wst:RequestType><wst:TokenType>urn:oasis:names:tc:SAML:1.0:assertion</wst:TokenType>`), FaultBadRequest},
		{"action mismatch", f.rst(true, "alice", "pässword & <more>", actCancel, issueBody("urn:gatehouse:products", "")), FaultInvalidRequest},
		{"no RequestType", f.rst(true, "alice", "pässword & <more>", "", `<wst:TokenType>`+saml2.TokenTypeSAML20+`</wst:TokenType>`), FaultInvalidRequest},
		{"two RequestTypes", f.rst(true, "alice", "pässword & <more>", "", `<wst:RequestType>`+RequestIssue+`</wst:RequestType><wst:RequestType>`+RequestIssue+`</wst:RequestType>`), FaultInvalidRequest},
		{"DTD", `<!DOCTYPE x [<!ENTITY a "b">]>` + f.rst(true, "alice", "pässword & <more>", actIssue, issueBody("urn:gatehouse:products", "")), FaultInvalidRequest},
		{"not an RST", strings.Replace(f.rst(true, "alice", "pässword & <more>", actIssue, ""), "RequestSecurityToken", "Other", 2), FaultInvalidRequest},
	} {
		t.Run(tc.name, func(t *testing.T) {
			resp, code := f.do(t, tc.msg)
			if code != tc.want {
				t.Fatalf("got fault %q (response %.200s), want %s", code, resp, tc.want)
			}
		})
	}
}

func TestIssueHolderOfKey(t *testing.T) {
	f := newFixture(t, "")
	resp, code := f.do(t, f.signedRST(t, issueBody("urn:gatehouse:products", KeyTypePublicKey)))
	if code != "" {
		t.Fatalf("got fault %s, want a holder-of-key token", code)
	}
	_, a := f.assertionOf(t, resp)
	c := a.Confirmation(saml2.MethodHolderOfKey)
	if c == nil || c.Certificate == nil || !c.Certificate.Equal(f.client.Cert) {
		t.Fatalf("got confirmations %+v, want holder-of-key with the client's certificate", a.Confirmations)
	}
	if a.NameID != "CN=client,O=Example" || a.AuthnContext != saml2.AuthnX509 {
		t.Errorf("got NameID %q authn %q", a.NameID, a.AuthnContext)
	}
	if got := a.Attributes["roles"]; len(got) != 1 || got[0] != "service" {
		t.Errorf("got roles %v, want [service]", got)
	}
	// The same request with a UseKey naming another certificate.
	other := f.ca.Issue(t, f.client.Cert.Subject, f.ca.Key, nil)
	body := issueBody("urn:gatehouse:products", KeyTypePublicKey) + `<wst:UseKey><wsse:BinarySecurityToken xmlns:wsse="` + nsWSSE + `" ValueType="` + valueX509v3 + `">` +
		b64(other.Cert.Raw) + `</wsse:BinarySecurityToken></wst:UseKey>`
	if _, code := f.do(t, f.signedRST(t, body)); code != FaultInvalidRequest {
		t.Fatalf("UseKey of another key: got fault %q, want InvalidRequest", code)
	}
}

func TestValidateRenewCancel(t *testing.T) {
	f := newFixture(t, "")
	tok, a := f.issue(t, "alice", "pässword & <more>", "urn:gatehouse:products")
	validate := func(tok string) string {
		t.Helper()
		resp, code := f.do(t, f.rst(false, "", "", actValidate, targetBody(RequestValidate, "ValidateTarget", tok)))
		if code != "" {
			t.Fatalf("Validate: fault %s", code)
		}
		return statusOf(t, resp)
	}
	if got := validate(tok); got != StatusValid {
		t.Fatalf("fresh assertion: got %s, want valid", got)
	}
	if got := validate(strings.Replace(tok, ">alice<", ">bob<", 1)); got != StatusInvalid {
		t.Fatalf("tampered assertion: got %s, want invalid", got)
	}

	// Renew: by another subject refused, by alice a new one, only once.
	renewMsg := targetBody(RequestRenew, "RenewTarget", tok)
	if _, code := f.do(t, f.rst(true, "bob", "bobpw", actRenew, renewMsg)); code != FaultFailedAuthentication {
		t.Fatalf("renew by bob: got %q, want FailedAuthentication", code)
	}
	f.clock.add(time.Second) // a fresh Timestamp and nonce-free token
	resp, code := f.do(t, f.rst(true, "alice", "pässword & <more>", actRenew, renewMsg))
	if code != "" {
		t.Fatalf("renew: fault %s", code)
	}
	tok2, a2 := f.assertionOf(t, resp)
	if a2.ID == a.ID || a2.NameID != "alice" || !a2.NotOnOrAfter.After(a.NotOnOrAfter) {
		t.Fatalf("renewed: got ID %s (old %s) exp %s (old %s)", a2.ID, a.ID, a2.NotOnOrAfter, a.NotOnOrAfter)
	}
	if _, code := f.do(t, f.rst(true, "alice", "pässword & <more>", actRenew, renewMsg)); code != FaultUnableToRenew {
		t.Fatalf("second renew: got %q, want UnableToRenew", code)
	}

	// Cancel: by another subject refused; by alice; then never valid or
	// renewable again, on any STS sharing the store.
	cancelByRef := targetBody(RequestCancel, "CancelTarget", `<wsse:SecurityTokenReference><wsse:KeyIdentifier ValueType="`+saml2.ValueTypeSAMLID+`">`+a2.ID+`</wsse:KeyIdentifier></wsse:SecurityTokenReference>`)
	if _, code := f.do(t, f.rst(true, "bob", "bobpw", actCancel, cancelByRef)); code != FaultFailedAuthentication {
		t.Fatalf("cancel by bob: got %q, want FailedAuthentication", code)
	}
	resp, code = f.do(t, f.rst(true, "alice", "pässword & <more>", actCancel, cancelByRef))
	if code != "" {
		t.Fatalf("cancel: fault %s", code)
	}
	if !strings.Contains(resp, "RequestedTokenCancelled") {
		t.Fatalf("cancel response without RequestedTokenCancelled:\n%s", resp)
	}
	other := f.build(t, "", f.dir+"/ca.pem")
	f.srv = other
	if got := validate(tok2); got != StatusInvalid {
		t.Fatalf("cancelled assertion on another instance: got %s, want invalid", got)
	}
	if _, code := f.do(t, f.rst(true, "alice", "pässword & <more>", actRenew, targetBody(RequestRenew, "RenewTarget", tok2))); code != FaultInvalidSecurityToken {
		t.Fatalf("renew of a cancelled assertion: got %q, want InvalidSecurityToken", code)
	}
	// Cancel by the assertion itself works too (the first one).
	if _, code := f.do(t, f.rst(true, "alice", "pässword & <more>", actCancel, targetBody(RequestCancel, "CancelTarget", tok))); code != "" {
		t.Fatalf("cancel by assertion: fault %s", code)
	}
	if got := validate(tok); got != StatusInvalid {
		t.Fatalf("cancelled first assertion: got %s, want invalid", got)
	}
	// The audit log has each issue (two: the first, the renewed) and each
	// cancellation, by assertion id and subject, and never an assertion.
	for _, c := range []struct {
		kind audit.Kind
		ids  []string
	}{{audit.STSIssue, []string{a.ID, a2.ID}}, {audit.STSCancel, []string{a2.ID, a.ID}}} {
		var got []string
		for _, e := range f.audit.Recent(audit.Filter{Kind: c.kind}, 10) {
			if e.Principal != "alice" || strings.Contains(e.Detail, "Assertion") {
				t.Errorf("%s event %+v", c.kind, e)
			}
			got = append(got, e.JTI)
		}
		slices.Sort(got)
		want := slices.Sorted(slices.Values(c.ids))
		if !slices.Equal(got, want) {
			t.Errorf("%s events for %v, want %v", c.kind, got, want)
		}
	}
}

func TestValidateExpiry(t *testing.T) {
	f := newFixture(t, "")
	tok, _ := f.issue(t, "alice", "pässword & <more>", "urn:gatehouse:products")
	f.clock.add(DefaultTokenLifetime + ClockSkew + time.Second)
	resp, code := f.do(t, f.rst(false, "", "", actValidate, targetBody(RequestValidate, "ValidateTarget", tok)))
	if code != "" {
		t.Fatal(code)
	}
	if got := statusOf(t, resp); got != StatusInvalid {
		t.Fatalf("expired: got %s, want invalid", got)
	}
	// Within renew_grace (10m) it renews; beyond it, ExpiredData.
	if _, code := f.do(t, f.rst(true, "alice", "pässword & <more>", actRenew, targetBody(RequestRenew, "RenewTarget", tok))); code != "" {
		t.Fatalf("renew within grace: fault %s", code)
	}
	tok2, _ := f.issue(t, "alice", "pässword & <more>", "urn:gatehouse:products")
	f.clock.add(DefaultTokenLifetime + 11*time.Minute)
	if _, code := f.do(t, f.rst(true, "alice", "pässword & <more>", actRenew, targetBody(RequestRenew, "RenewTarget", tok2))); code != FaultExpiredData {
		t.Fatalf("renew beyond grace: got %q, want ExpiredData", code)
	}
}

func TestHTTP(t *testing.T) {
	f := newFixture(t, "")
	srv := httptest.NewServer(f.srv)
	defer srv.Close()
	res, err := http.Get(srv.URL + "/sts?wsdl")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(res.Body)
	res.Body.Close()
	ops, err := soap.ParseWSDL(b)
	if err != nil {
		t.Fatalf("our WSDL does not parse: %v", err)
	}
	if len(ops) < 4 {
		t.Errorf("got %d WSDL operations, want the four bindings", len(ops))
	}
	for _, tc := range []struct {
		name, ct, body string
		status         int
		want           string
	}{
		{"soap 1.1 fault", "text/xml; charset=utf-8", f.rst(false, "alice", "bad", actIssue, issueBody("urn:gatehouse:products", "")), 401, "<faultcode>wst:FailedAuthentication</faultcode>"},
		{"soap 1.2 fault", "application/soap+xml; charset=utf-8", f.rst(true, "alice", "bad", actIssue, issueBody("urn:gatehouse:products", "")), 401, "<s:Value>wst:FailedAuthentication</s:Value>"},
		{"soap 1.2 token", "application/soap+xml; charset=utf-8", f.rst(true, "alice", "pässword & <more>", actIssue, issueBody("urn:gatehouse:products", "")), 200, "saml2:Assertion"},
		{"garbage", "text/xml", "<<<", 400, "wst:InvalidRequest"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			res, err := http.Post(srv.URL+"/sts", tc.ct, strings.NewReader(tc.body))
			if err != nil {
				t.Fatal(err)
			}
			b, _ := io.ReadAll(res.Body)
			res.Body.Close()
			if res.StatusCode != tc.status || !strings.Contains(string(b), tc.want) {
				t.Fatalf("got %d %s, want %d with %s", res.StatusCode, b, tc.status, tc.want)
			}
			if strings.Contains(string(b), "bad") && tc.status != 200 {
				t.Errorf("the fault echoes the request: %s", b)
			}
		})
	}
}

func TestSigningKeyShared(t *testing.T) {
	f := newFixture(t, "ecdsa-sha256")
	second := f.build(t, "ecdsa-sha256", f.dir+"/ca.pem")
	if !second.Certificate().Equal(f.srv.Certificate()) {
		t.Fatal("two instances on one store got different signing certificates")
	}
	iss, cert, err := LoadPublished(context.Background(), f.store)
	if err != nil || iss != "https://gw.example/sts" || !cert.Equal(f.srv.Certificate()) {
		t.Fatalf("LoadPublished: got %q %v %v", iss, cert, err)
	}
}
