package saml

import (
	"context"
	"crypto/x509/pkix"
	"encoding/base64"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/beevik/etree"

	"github.com/gatehouse/gatehouse/internal/config"
	"github.com/gatehouse/gatehouse/internal/policy"
	"github.com/gatehouse/gatehouse/internal/policy/policytest"
	"github.com/gatehouse/gatehouse/internal/policy/wssecurity"
	"github.com/gatehouse/gatehouse/internal/saml2"
	"github.com/gatehouse/gatehouse/internal/store"
	"github.com/gatehouse/gatehouse/internal/sts"
	"github.com/gatehouse/gatehouse/internal/xmlsig/xmlsigtest"
)

type clock struct{ t time.Time }

func (c *clock) now() time.Time { return c.t }

const stsConfig = `listeners:
  - address: ":8080"
sts:
  issuer: https://gw.example/sts
  insecure_plaintext_keys: true
  authentication:
    username_token:
      text: allowed
      users:
        - {username: alice, password: alicepw}
        - {username: bob, password: bobpw}
    x509:
      trust: {ca_file: CAFILE}
  subjects:
    - {subject: alice, roles: [reader, admin], email: alice@example.com}
    - {subject: bob, roles: [reader]}
    - {subject: "CN=client,O=Example", roles: [reader]}
  relying_parties:
    - {audience: "urn:gatehouse:products"}
    - {audience: "urn:gatehouse:other"}
    - {audience: "urn:gatehouse:once", one_time_use: true}
routes:
  - name: r
    match: {path_prefix: /}
    upstream: {url: "http://u"}
`

// fixture is an embedded STS and the store it shares with the policies.
type fixture struct {
	sts    *sts.Server
	clock  *clock
	store  store.Store
	ca     *xmlsigtest.Cert
	client *xmlsigtest.Cert
	dir    string
}

func newFixture(t testing.TB) *fixture {
	t.Helper()
	f := &fixture{clock: &clock{time.Now().UTC().Truncate(time.Second)}, dir: t.TempDir()}
	f.store = store.NewMemory(f.clock.now)
	f.ca = xmlsigtest.NewCA(t, "Test CA")
	f.client = f.ca.Issue(t, pkix.Name{CommonName: "client", Organization: []string{"Example"}}, xmlsigtest.RSAKey(t, 1), nil)
	caFile := filepath.Join(f.dir, "ca.pem")
	if err := os.WriteFile(caFile, f.ca.CertPEM(), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := config.LoadBytes(filepath.Join(f.dir, "gh.yaml"), []byte(strings.Replace(stsConfig, "CAFILE", caFile, 1)), nil)
	if err != nil {
		t.Fatal(err)
	}
	f.sts, err = sts.New(*cfg.STS, sts.Deps{Store: f.store, Now: f.clock.now, Config: cfg, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	return f
}

// policy builds the saml policy from yaml on the fixture's store.
func (f *fixture) policy(t testing.TB, yaml string) *Policy {
	t.Helper()
	env := policytest.Env()
	env.Route.Protocol = policy.SOAP11
	env.Now = f.clock.now
	env.Store = f.store
	p, err := Factory(wssecurity.New)(policytest.Node(t, yaml), env)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return p.(*Policy)
}

// issue asks the STS for an assertion; keyType "" is Bearer.
func (f *fixture) issue(t testing.TB, user, password, audience string) string {
	t.Helper()
	created := f.clock.t.Format(time.RFC3339)
	msg := `<s:Envelope xmlns:s="http://www.w3.org/2003/05/soap-envelope" xmlns:wsse="` + nsWSSE + `" xmlns:wsu="` + nsWSU + `"><s:Header><wsse:Security>` +
		`<wsu:Timestamp><wsu:Created>` + created + `</wsu:Created></wsu:Timestamp><wsse:UsernameToken><wsse:Username>` + user + `</wsse:Username><wsse:Password>` + password + `</wsse:Password></wsse:UsernameToken>` +
		`</wsse:Security></s:Header><s:Body><wst:RequestSecurityToken xmlns:wst="` + sts.NamespaceWST + `"><wst:RequestType>` + sts.RequestIssue + `</wst:RequestType>` +
		`<wsp:AppliesTo xmlns:wsp="http://schemas.xmlsoap.org/ws/2004/09/policy"><wsa:EndpointReference xmlns:wsa="http://www.w3.org/2005/08/addressing"><wsa:Address>` + audience + `</wsa:Address></wsa:EndpointReference></wsp:AppliesTo>` +
		`</wst:RequestSecurityToken></s:Body></s:Envelope>`
	return f.tokenOf(t, msg)
}

func (f *fixture) tokenOf(t testing.TB, msg string) string {
	t.Helper()
	out, err := f.sts.Handle(context.Background(), []byte(msg), false)
	if err != nil {
		t.Fatalf("STS: %v", err)
	}
	el := out.Body.FindElement("//Assertion")
	doc := etree.NewDocument()
	doc.SetRoot(el.Copy())
	s, err := doc.WriteToString()
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// message is a SOAP 1.1 call of op carrying token in its Security header.
func (f *fixture) message(token, op string) string {
	return `<soap:Envelope xmlns:soap="http://schemas.xmlsoap.org/soap/envelope/" xmlns:wsse="` + nsWSSE + `" xmlns:wsu="` + nsWSU + `">` +
		`<soap:Header><wsse:Security soap:mustUnderstand="1"><wsu:Timestamp wsu:Id="ts"><wsu:Created>` + f.clock.t.Format(time.RFC3339) + `</wsu:Created></wsu:Timestamp>` +
		token + `</wsse:Security></soap:Header><soap:Body wsu:Id="body"><p:` + op + ` xmlns:p="urn:example:products"><p:id>42</p:id></p:` + op + `></soap:Body></soap:Envelope>`
}

func apply(t testing.TB, p *Policy, body string, tls bool) (*policy.Exchange, error) {
	t.Helper()
	url := "/soap"
	if tls {
		url = "https://gw.example/soap"
	}
	r := httptest.NewRequest(http.MethodPost, url, strings.NewReader(body))
	r.Header.Set("Content-Type", "text/xml; charset=utf-8")
	ex := policytest.Exchange(r)
	ex.Route.Protocol = policy.SOAP11
	return ex, p.Apply(context.Background(), ex)
}

func wantCode(t testing.TB, err error, code string, status int) {
	t.Helper()
	if code == "" {
		if err != nil {
			t.Fatalf("got %v, want the request accepted", err)
		}
		return
	}
	d, ok := policy.AsDenial(err)
	if !ok {
		t.Fatalf("got %v, want a denial %s", err, code)
	}
	if d.Code != code || d.StatusCode() != status {
		t.Fatalf("got %d %s (%v), want %d %s", d.StatusCode(), d.Code, d.Err, status, code)
	}
}

const basicPolicy = `audience: urn:gatehouse:products
sts: true
authorize:
  - {operation: "{urn:example:products}DeleteProduct", roles: [admin]}
  - {operation: "*", roles: [reader]}
`

func TestBearer(t *testing.T) {
	f := newFixture(t)
	p := f.policy(t, basicPolicy)
	tok := f.issue(t, "alice", "alicepw", "urn:gatehouse:products")
	ex, err := apply(t, p, f.message(tok, "GetProduct"), true)
	wantCode(t, err, "", 0)
	pr := ex.Principal
	if pr == nil || pr.Subject != "alice" || pr.Method != "saml" {
		t.Fatalf("got principal %+v, want alice by saml", pr)
	}
	if roles, _ := pr.Claims["roles"].([]string); strings.Join(roles, ",") != "reader,admin" {
		t.Errorf("got roles %v", pr.Claims["roles"])
	}
	b, _ := ex.Body(1 << 20)
	if strings.Contains(string(b), "Assertion") || !strings.Contains(string(b), "GetProduct") {
		t.Errorf("forwarded body still carries the Security header or lost the call:\n%s", b)
	}
	// Same assertion without TLS: bearer needs TLS.
	_, err = apply(t, p, f.message(tok, "GetProduct"), false)
	wantCode(t, err, "wsse:FailedAuthentication", 401)
}

func TestRefused(t *testing.T) {
	f := newFixture(t)
	p := f.policy(t, basicPolicy)
	good := f.issue(t, "alice", "alicepw", "urn:gatehouse:products")
	bob := f.issue(t, "bob", "bobpw", "urn:gatehouse:products")
	other := f.issue(t, "alice", "alicepw", "urn:gatehouse:other")

	// Same issuer name, another key: an untrusted signer.
	key := xmlsigtest.ECKey(t)
	ca := xmlsigtest.NewCAWithKey(t, "evil", key)
	signer, err := saml2.NewSigner(key, ca.Cert)
	if err != nil {
		t.Fatal(err)
	}
	forged := saml2.Build(&saml2.Assertion{Issuer: "https://gw.example/sts", IssueInstant: f.clock.t, NameID: "alice",
		NotBefore: f.clock.t, NotOnOrAfter: f.clock.t.Add(time.Hour), Audiences: [][]string{{"urn:gatehouse:products"}},
		Confirmations: []saml2.Confirmation{{Method: saml2.MethodBearer}}})
	if err := signer.Sign(forged); err != nil {
		t.Fatal(err)
	}
	fd := etree.NewDocument()
	fd.SetRoot(forged)
	forgedXML, _ := fd.WriteToString()

	for _, tc := range []struct {
		name, msg, code string
		status          int
	}{
		{"wrong audience", f.message(other, "GetProduct"), "wsse:InvalidSecurityToken", 401},
		{"untrusted signer", f.message(forgedXML, "GetProduct"), "wsse:InvalidSecurityToken", 401},
		{"tampered", f.message(strings.Replace(good, ">alice<", ">admin<", 1), "GetProduct"), "wsse:InvalidSecurityToken", 401},
		{"role not allowed", f.message(bob, "DeleteProduct"), "wsse:FailedAuthentication", 403},
		{"no assertion", f.message("", "GetProduct"), "wsse:FailedAuthentication", 401},
		{"two assertions", f.message(good+good, "GetProduct"), "wsse:InvalidSecurity", 400},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := apply(t, p, tc.msg, true)
			wantCode(t, err, tc.code, tc.status)
		})
	}
	t.Run("role allowed", func(t *testing.T) {
		_, err := apply(t, p, f.message(good, "DeleteProduct"), true)
		wantCode(t, err, "", 0)
	})
}

func TestExpiredCancelledReplayed(t *testing.T) {
	f := newFixture(t)
	p := f.policy(t, basicPolicy)
	tok := f.issue(t, "alice", "alicepw", "urn:gatehouse:products")
	start := f.clock.t
	f.clock.t = start.Add(sts.DefaultTokenLifetime + time.Minute)
	_, err := apply(t, p, f.message(tok, "GetProduct"), true)
	wantCode(t, err, "wsse:InvalidSecurityToken", 401)
	f.clock.t = start

	// Cancelled at the STS: refused from then on.
	_, err = apply(t, p, f.message(tok, "GetProduct"), true)
	wantCode(t, err, "", 0)
	cancel := `<s:Envelope xmlns:s="http://www.w3.org/2003/05/soap-envelope" xmlns:wsse="` + nsWSSE + `" xmlns:wsu="` + nsWSU + `"><s:Header><wsse:Security>` +
		`<wsu:Timestamp><wsu:Created>` + f.clock.t.Format(time.RFC3339) + `</wsu:Created></wsu:Timestamp><wsse:UsernameToken><wsse:Username>alice</wsse:Username><wsse:Password>alicepw</wsse:Password></wsse:UsernameToken>` +
		`</wsse:Security></s:Header><s:Body><wst:RequestSecurityToken xmlns:wst="` + sts.NamespaceWST + `"><wst:RequestType>` + sts.RequestCancel + `</wst:RequestType>` +
		`<wst:CancelTarget>` + tok + `</wst:CancelTarget></wst:RequestSecurityToken></s:Body></s:Envelope>`
	if _, err := f.sts.Handle(context.Background(), []byte(cancel), false); err != nil {
		t.Fatalf("cancel: %v", err)
	}
	_, err = apply(t, p, f.message(tok, "GetProduct"), true)
	wantCode(t, err, "wsse:InvalidSecurityToken", 401)

	// OneTimeUse: accepted once, then a replay.
	once := f.policy(t, "audience: urn:gatehouse:once\nsts: true\n")
	tok = f.issue(t, "bob", "bobpw", "urn:gatehouse:once")
	_, err = apply(t, once, f.message(tok, "GetProduct"), true)
	wantCode(t, err, "", 0)
	_, err = apply(t, once, f.message(tok, "GetProduct"), true)
	wantCode(t, err, "wsse:FailedAuthentication", 401)
}

// hokMessage returns a call carrying token, signed by key over Body and
// Timestamp (and what ids name), its KeyInfo referring to the assertion.
func (f *fixture) hokMessage(t testing.TB, token string, key *xmlsigtest.Cert, ids []string) string {
	t.Helper()
	doc := etree.NewDocument()
	if err := doc.ReadFromString(f.message(token, "GetProduct")); err != nil {
		t.Fatal(err)
	}
	sec := doc.FindElement("//Security")
	id := doc.FindElement("//Assertion").SelectAttrValue("ID", "")
	str := etree.NewElement("wsse:SecurityTokenReference")
	ki := str.CreateElement("wsse:KeyIdentifier")
	ki.CreateAttr("ValueType", saml2.ValueTypeSAMLID)
	ki.SetText(id)
	xmlsigtest.Signer{Key: key.Key}.Sign(t, sec, ids, str)
	s, _ := doc.WriteToString()
	return s
}

func TestHolderOfKey(t *testing.T) {
	f := newFixture(t)
	p := f.policy(t, "audience: urn:gatehouse:products\nsts: true\n")
	// An X.509-signed PublicKey RST: the STS binds the client's key.
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
	ref := str.CreateElement("wsse:Reference")
	ref.CreateAttr("URI", "#bst")
	xmlsigtest.Signer{Key: f.client.Key}.Sign(t, doc.FindElement("//Security"), []string{"b", "t"}, str)
	signed, _ := doc.WriteToString()
	tok := f.tokenOf(t, signed)

	mallory := f.ca.Issue(t, pkix.Name{CommonName: "mallory"}, xmlsigtest.ECKey(t), nil)
	for _, tc := range []struct {
		name, msg, code string
	}{
		{"signed with the confirmed key", f.hokMessage(t, tok, f.client, []string{"body", "ts"}), ""},
		{"signed with another key", f.hokMessage(t, tok, mallory, []string{"body", "ts"}), "wsse:FailedCheck"},
		{"body not signed", f.hokMessage(t, tok, f.client, []string{"ts"}), "wsse:FailedCheck"},
		{"not signed at all", f.message(tok, "GetProduct"), "wsse:FailedAuthentication"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			// Holder-of-key needs no TLS: the signature proves the sender.
			ex, err := apply(t, p, tc.msg, false)
			wantCode(t, err, tc.code, 401)
			if tc.code == "" && (ex.Principal.Subject != "CN=client,O=Example" || ex.Principal.Claims["saml_confirmation"] != saml2.MethodHolderOfKey) {
				t.Errorf("got principal %+v", ex.Principal)
			}
		})
	}
}

func TestWSSecurityFallback(t *testing.T) {
	f := newFixture(t)
	p := f.policy(t, basicPolicy+`wssecurity:
  username_token:
    text: allowed
    users: [{username: carol, password: carolpw}]
`)
	ut := `<wsse:UsernameToken><wsse:Username>carol</wsse:Username><wsse:Password>carolpw</wsse:Password></wsse:UsernameToken>`
	ex, err := apply(t, p, f.message(ut, "GetProduct"), false)
	wantCode(t, err, "", 0)
	if ex.Principal == nil || ex.Principal.Subject != "carol" || ex.Principal.Method != "wss-username" {
		t.Fatalf("got principal %+v, want carol by UsernameToken", ex.Principal)
	}
	// A SAML message on the same route still goes through the saml checks.
	tok := f.issue(t, "alice", "alicepw", "urn:gatehouse:other")
	_, err = apply(t, p, f.message(tok, "GetProduct"), true)
	wantCode(t, err, "wsse:InvalidSecurityToken", 401)
}

func TestValidateWithSTS(t *testing.T) {
	f := newFixture(t)
	calls := 0
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		calls++
		f.sts.ServeHTTP(w, r)
	}))
	defer srv.Close()
	p := f.policy(t, basicPolicy+"validate_with_sts: {url: \""+srv.URL+"/sts\", cache: 30s}\n")
	tok := f.issue(t, "alice", "alicepw", "urn:gatehouse:products")
	for range 3 {
		_, err := apply(t, p, f.message(tok, "GetProduct"), true)
		wantCode(t, err, "", 0)
	}
	if calls != 1 {
		t.Errorf("got %d STS calls for 3 requests, want 1 (cached)", calls)
	}
}

func TestConfigErrors(t *testing.T) {
	for _, tc := range []struct {
		name, yaml string
		line       int
		path, msg  string
	}{
		{"no audience", "sts: true\n", 1, "audience", "audience is required"},
		{"no trust", "audience: a\n", 1, "", "trust some issuer"},
		{"unknown field", "audience: a\nsts: true\nbogus: 1\n", 3, "bogus", "unknown field"},
		{"bad confirmation", "audience: a\nsts: true\nconfirmations: [bearer, magic]\n", 3, "confirmations[1]", "magic"},
		{"sender-vouches without senders", "audience: a\nsts: true\nconfirmations: [sender-vouches]\n", 1, "senders", "senders"},
		{"bad operation", "audience: a\nsts: true\nauthorize:\n  - {operation: GetProduct}\n", 4, "authorize[0].operation", "namespace"},
		{"missing issuer file", "audience: a\nissuers:\n  - {issuer: x, certificate_file: /nonexistent.pem}\n", 3, "issuers[0].certificate_file", "no such file"},
		{"http remote", "audience: a\nsts: true\nvalidate_with_sts: {url: \"http://sts.example/sts\"}\n", 3, "validate_with_sts.url", "loopback"},
		{"bad wssecurity", "audience: a\nsts: true\nwssecurity:\n  bogus: 1\n", 4, "wssecurity.bogus", "unknown field"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Factory(wssecurity.New)(policytest.Node(t, tc.yaml), policytest.Env())
			policytest.WantConfigError(t, err, tc.line, tc.path, tc.msg)
		})
	}
}

// TestNoFallbackFactory: a `wssecurity:` block when no wssecurity factory
// was handed in is a config error at the block, not a silently ignored
// fallback; without the block none is needed.
func TestNoFallbackFactory(t *testing.T) {
	_, err := Factory(nil)(policytest.Node(t, "audience: a\nsts: true\nwssecurity:\n  x509: {}\n"), policytest.Env())
	policytest.WantConfigError(t, err, 3, "wssecurity", "no wssecurity policy type")
	if _, err := Factory(nil)(policytest.Node(t, "audience: a\nsts: true\n"), policytest.Env()); err != nil {
		t.Fatal(err)
	}
	if u := Unit(wssecurity.New); u.Name != "saml" || u.New == nil {
		t.Errorf("Unit = %+v", u)
	}
}
