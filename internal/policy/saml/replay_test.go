package saml

import (
	"context"
	"encoding/base64"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/beevik/etree"

	"github.com/gatehouse/gatehouse/internal/policy"
	"github.com/gatehouse/gatehouse/internal/policy/policytest"
	"github.com/gatehouse/gatehouse/internal/policy/wssecurity"
	"github.com/gatehouse/gatehouse/internal/sts"
	"github.com/gatehouse/gatehouse/internal/xmlsig/xmlsigtest"
)

var sigValueRE = regexp.MustCompile(`<ds:SignatureValue>([^<]*)</ds:SignatureValue>`)

func rewrap(t *testing.T, msg string) string {
	t.Helper()
	m := sigValueRE.FindStringSubmatch(msg)
	if m == nil {
		t.Fatal("no SignatureValue")
	}
	var b strings.Builder
	for i := 0; i < len(m[1]); i += 64 {
		b.WriteString(m[1][i:min(i+64, len(m[1]))] + "\r\n")
	}
	return strings.Replace(msg, m[0], "<ds:SignatureValue>"+b.String()+"</ds:SignatureValue>", 1)
}

// signedRST is an X.509-signed PublicKey Issue request of the fixture's
// client, over Body and Timestamp.
func (f *fixture) signedRST(t *testing.T) string {
	t.Helper()
	created := f.clock.t.Format(time.RFC3339)
	msg := `<s:Envelope xmlns:s="http://www.w3.org/2003/05/soap-envelope" xmlns:wsse="` + nsWSSE + `" xmlns:wsu="` + nsWSU + `"><s:Header><wsse:Security>` +
		`<wsu:Timestamp wsu:Id="t"><wsu:Created>` + created + `</wsu:Created></wsu:Timestamp><wsse:BinarySecurityToken wsu:Id="bst" ValueType="http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-x509-token-profile-1.0#X509v3">` +
		base64.StdEncoding.EncodeToString(f.client.Cert.Raw) + `</wsse:BinarySecurityToken></wsse:Security></s:Header><s:Body wsu:Id="b"><wst:RequestSecurityToken xmlns:wst="` + sts.NamespaceWST + `"><wst:RequestType>` + sts.RequestIssue + `</wst:RequestType>` +
		`<wst:KeyType>` + sts.KeyTypePublicKey + `</wst:KeyType><wsp:AppliesTo xmlns:wsp="http://schemas.xmlsoap.org/ws/2004/09/policy"><wsa:EndpointReference xmlns:wsa="http://www.w3.org/2005/08/addressing"><wsa:Address>urn:gatehouse:products</wsa:Address></wsa:EndpointReference></wsp:AppliesTo>` +
		`</wst:RequestSecurityToken></s:Body></s:Envelope>`
	doc := etree.NewDocument()
	if err := doc.ReadFromString(msg); err != nil {
		t.Fatal(err)
	}
	str := etree.NewElement("wsse:SecurityTokenReference")
	str.CreateElement("wsse:Reference").CreateAttr("URI", "#bst")
	xmlsigtest.Signer{Key: f.client.Key}.Sign(t, doc.FindElement("//Security"), []string{"b", "t"}, str)
	s, _ := doc.WriteToString()
	return s
}

// TestHolderOfKeyReplay: a holder-of-key message signature is spent once;
// the same message, its signature re-spelled, or its signed Body and
// Timestamp in another envelope are refused as replays, on this policy
// and on another instance sharing the store.
func TestHolderOfKeyReplay(t *testing.T) {
	f := newFixture(t)
	p := f.policy(t, "audience: urn:gatehouse:products\nsts: true\n")
	other := f.policy(t, "audience: urn:gatehouse:products\nsts: true\n")
	tok := f.tokenOf(t, f.signedRST(t))
	msg := f.hokMessage(t, tok, f.client, []string{"body", "ts"})
	// A new message (a later Timestamp: RSA PKCS#1 v1.5 signatures are
	// deterministic, so new content is what makes it new) is not a
	// replay.
	f.clock.t = f.clock.t.Add(time.Second)
	msg2 := f.hokMessage(t, tok, f.client, []string{"body", "ts"})
	f.clock.t = f.clock.t.Add(-time.Second)

	_, err := apply(t, p, msg, false)
	wantCode(t, err, "", 0)
	for _, v := range []struct{ name, msg string }{
		{"identical", msg},
		{"signature value re-wrapped", rewrap(t, msg)},
		{"another envelope", strings.Replace(msg, `<soap:Header>`, `<soap:Header><x:Extra xmlns:x="urn:extra"/>`, 1)},
		{"SignedInfo namespace redeclared", strings.Replace(msg, `<ds:SignedInfo>`, `<ds:SignedInfo xmlns:ds="http://www.w3.org/2000/09/xmldsig#" xmlns:u="urn:u">`, 1)},
	} {
		for name, pol := range map[string]*Policy{"same instance": p, "other instance": other} {
			_, err := apply(t, pol, v.msg, false)
			d, ok := policy.AsDenial(err)
			if !ok || d.Code != wssecurity.CodeFailedAuthentication || !strings.Contains(d.Err.Error(), "replay") {
				t.Errorf("%s, %s: got %v, want a replay", v.name, name, err)
			}
		}
	}
	_, err = apply(t, p, msg2, false)
	wantCode(t, err, "", 0)
}

// TestSignedRSTReplayAcrossDoors: a signed RST accepted by the STS is a
// replay at the STS, and at a wssecurity route sharing the store: one
// replay cache keyed on the canonical SignedInfo serves every door.
func TestSignedRSTReplayAcrossDoors(t *testing.T) {
	f := newFixture(t)
	signed := f.signedRST(t)
	if _, err := f.sts.Handle(context.Background(), []byte(signed), false); err != nil {
		t.Fatalf("first RST: %v", err)
	}
	if _, err := f.sts.Handle(context.Background(), []byte(rewrap(t, signed)), false); err == nil || !strings.Contains(err.Error(), "FailedAuthentication") {
		t.Fatalf("re-wrapped RST replayed at the STS: got %v, want a FailedAuthentication fault", err)
	}
	env := policytest.Env()
	env.Route.Protocol = policy.SOAP12
	env.Now, env.Store = f.clock.now, f.store
	wp, err := wssecurity.New(policytest.Node(t, "x509:\n  trust: {ca_file: "+filepath.Join(f.dir, "ca.pem")+"}\n"), env)
	if err != nil {
		t.Fatal(err)
	}
	applyWSS := func(body string) error {
		r := httptest.NewRequest(http.MethodPost, "/soap", strings.NewReader(body))
		r.Header.Set("Content-Type", "application/soap+xml; charset=utf-8")
		ex := policytest.Exchange(r)
		ex.Route.Protocol = policy.SOAP12
		return wp.Apply(context.Background(), ex)
	}
	// The route accepts a signed message it has not seen ...
	f.clock.t = f.clock.t.Add(time.Second)
	if err := applyWSS(f.signedRST(t)); err != nil {
		t.Fatalf("a fresh signed message refused by the route: %v", err)
	}
	// ... and refuses the one the STS accepted.
	err = applyWSS(signed)
	if d, ok := policy.AsDenial(err); !ok || d.Code != wssecurity.CodeFailedAuthentication || !strings.Contains(d.Err.Error(), "replay") {
		t.Fatalf("RST accepted by the STS, then at the route: got %v, want a replay", err)
	}
}
