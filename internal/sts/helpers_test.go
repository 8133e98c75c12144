package sts

import (
	"context"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"errors"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/beevik/etree"

	"github.com/gatehouse/gatehouse/internal/audit"
	"github.com/gatehouse/gatehouse/internal/config"
	"github.com/gatehouse/gatehouse/internal/saml2"
	"github.com/gatehouse/gatehouse/internal/store"
	"github.com/gatehouse/gatehouse/internal/xmlsig/xmlsigtest"
)

// clock is a settable test clock.
type clock struct{ t time.Time }

func (c *clock) now() time.Time { return c.t }

func (c *clock) add(d time.Duration) { c.t = c.t.Add(d) }

// testConfig is an sts section; CAFILE is replaced by the test CA's file.
const testConfig = `listeners:
  - address: ":8080"
sts:
  issuer: https://gw.example/sts
  insecure_plaintext_keys: true
  SIGNATURE
  renew_grace: 10m
  authentication:
    username_token:
      text: allowed
      users:
        - {username: alice, password: "pässword & <more>"}
        - {username: bob, password: bobpw}
        - {username: eve, password: evepw}
    x509:
      trust: {ca_file: CAFILE}
  subjects:
    - {subject: alice, roles: [reader, writer], groups: [staff], email: alice@example.com}
    - {subject: bob, roles: [reader]}
    - {subject: "CN=client,O=Example", roles: [service]}
  relying_parties:
    - {audience: "urn:gatehouse:products"}
    - {audience: "urn:gatehouse:once", one_time_use: true, token_lifetime: 5m}
routes:
  - name: r
    match: {path_prefix: /}
    upstream: {url: "http://u"}
`

// fixture is an STS with its clock, store and a client certificate issued
// by the CA its authentication trusts.
type fixture struct {
	srv    *Server
	clock  *clock
	store  store.Store
	ca     *xmlsigtest.Cert
	client *xmlsigtest.Cert
	dir    string
	audit  *audit.Log // the events of every server the fixture builds
}

func newFixture(t testing.TB, signature string) *fixture {
	t.Helper()
	f := &fixture{clock: &clock{time.Now().UTC().Truncate(time.Second)}, dir: t.TempDir()}
	f.store = store.NewMemory(f.clock.now)
	var err error
	if f.audit, err = audit.New(config.Audit{}, nil, audit.Options{Now: f.clock.now}); err != nil {
		t.Fatal(err)
	}
	f.ca = xmlsigtest.NewCA(t, "Test CA")
	f.client = f.ca.Issue(t, pkix.Name{CommonName: "client", Organization: []string{"Example"}}, xmlsigtest.RSAKey(t, 1), nil)
	caFile := filepath.Join(f.dir, "ca.pem")
	if err := os.WriteFile(caFile, f.ca.CertPEM(), 0o600); err != nil {
		t.Fatal(err)
	}
	f.srv = f.build(t, signature, caFile)
	return f
}

func (f *fixture) build(t testing.TB, signature, caFile string) *Server {
	t.Helper()
	src := strings.Replace(testConfig, "CAFILE", caFile, 1)
	sig := ""
	if signature != "" {
		sig = "signature: " + signature
	}
	src = strings.Replace(src, "SIGNATURE", sig, 1)
	cfg, err := config.LoadBytes(filepath.Join(f.dir, "gatehouse.yaml"), []byte(src), nil)
	if err != nil {
		t.Fatalf("config: %v", err)
	}
	srv, err := New(*cfg.STS, Deps{Store: f.store, Now: f.clock.now, Config: cfg, BaseDir: f.dir, Audit: f.audit, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return srv
}

const (
	ns11 = "http://schemas.xmlsoap.org/soap/envelope/"
	ns12 = "http://www.w3.org/2003/05/soap-envelope"
)

// rst returns a SOAP message carrying an RST with body as its content,
// authenticated with a UsernameToken of user and password (none when user
// is ""), with a Timestamp from the clock.
func (f *fixture) rst(v12 bool, user, password, action, body string) string {
	env := ns11
	if v12 {
		env = ns12
	}
	created := f.clock.t.Format(time.RFC3339)
	expires := f.clock.t.Add(5 * time.Minute).Format(time.RFC3339)
	sec := ""
	if user != "" {
		sec = `<wsse:Security s:mustUnderstand="1"><wsu:Timestamp wsu:Id="ts"><wsu:Created>` + created + `</wsu:Created><wsu:Expires>` + expires + `</wsu:Expires></wsu:Timestamp>` +
			`<wsse:UsernameToken><wsse:Username>` + user + `</wsse:Username><wsse:Password>` + xmlEscape(password) + `</wsse:Password></wsse:UsernameToken></wsse:Security>`
	}
	return `<s:Envelope xmlns:s="` + env + `" xmlns:wsa="http://www.w3.org/2005/08/addressing" xmlns:wsse="` + nsWSSE + `" xmlns:wsu="` + nsWSU + `">` +
		`<s:Header><wsa:Action>` + action + `</wsa:Action><wsa:MessageID>urn:uuid:1234</wsa:MessageID>` + sec + `</s:Header>` +
		`<s:Body><wst:RequestSecurityToken xmlns:wst="` + NamespaceWST + `" Context="ctx-42">` + body + `</wst:RequestSecurityToken></s:Body></s:Envelope>`
}

func xmlEscape(s string) string {
	return strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;", `"`, "&quot;").Replace(s)
}

func issueBody(appliesTo, keyType string) string {
	b := `<wst:RequestType>` + RequestIssue + `</wst:RequestType><wst:TokenType>` + saml2.TokenTypeSAML20 + `</wst:TokenType>`
	if appliesTo != "" {
		b += `<wsp:AppliesTo xmlns:wsp="http://schemas.xmlsoap.org/ws/2004/09/policy"><wsa:EndpointReference><wsa:Address>` + appliesTo + `</wsa:Address></wsa:EndpointReference></wsp:AppliesTo>`
	}
	if keyType != "" {
		b += `<wst:KeyType>` + keyType + `</wst:KeyType>`
	}
	return b
}

func targetBody(requestType, targetTag, token string) string {
	return `<wst:RequestType>` + requestType + `</wst:RequestType><wst:` + targetTag + `>` + token + `</wst:` + targetTag + `>`
}

const (
	actIssue    = wstBase + "RST/Issue"
	actValidate = wstBase + "RST/Validate"
	actRenew    = wstBase + "RST/Renew"
	actCancel   = wstBase + "RST/Cancel"
)

// do runs one message and returns the response envelope as a string, or
// the fault code.
func (f *fixture) do(t testing.TB, msg string) (string, string) {
	t.Helper()
	out, err := f.srv.Handle(context.Background(), []byte(msg), false)
	if err != nil {
		var ft *fault
		if !errors.As(err, &ft) {
			t.Fatalf("Handle: internal error %v", err)
		}
		return "", ft.code
	}
	s, err := out.Envelope().WriteToString()
	if err != nil {
		t.Fatal(err)
	}
	return s, ""
}

// issue gets an assertion for user and returns it as XML and parsed.
func (f *fixture) issue(t testing.TB, user, password, audience string) (string, *saml2.Assertion) {
	t.Helper()
	resp, code := f.do(t, f.rst(true, user, password, actIssue, issueBody(audience, "")))
	if code != "" {
		t.Fatalf("Issue for %s: fault %s", user, code)
	}
	xml, a := f.assertionOf(t, resp)
	return xml, a
}

// assertionOf extracts and verifies the assertion of a response.
func (f *fixture) assertionOf(t testing.TB, resp string) (string, *saml2.Assertion) {
	t.Helper()
	doc := etree.NewDocument()
	if err := doc.ReadFromString(resp); err != nil {
		t.Fatal(err)
	}
	el := doc.FindElement("//RequestedSecurityToken/Assertion")
	if el == nil {
		t.Fatalf("no assertion in\n%s", resp)
	}
	a, err := saml2.Verify(el, saml2.VerifyOptions{Trusted: []*x509.Certificate{f.srv.Certificate()}, Now: f.clock.t})
	if err != nil {
		t.Fatalf("the issued assertion does not verify: %v", err)
	}
	d := etree.NewDocument()
	d.SetRoot(el.Copy())
	s, _ := d.WriteToString()
	return s, a
}

func statusOf(t testing.TB, resp string) string {
	t.Helper()
	doc := etree.NewDocument()
	if err := doc.ReadFromString(resp); err != nil {
		t.Fatal(err)
	}
	c := doc.FindElement("//Status/Code")
	if c == nil {
		t.Fatalf("no wst:Status in\n%s", resp)
	}
	return c.Text()
}

// signedRST returns an RST signed by the fixture's client certificate
// (BinarySecurityToken, signature over Body and Timestamp), the way WSS4J
// clients send PublicKey requests.
func (f *fixture) signedRST(t testing.TB, body string) string {
	t.Helper()
	created := f.clock.t.Format(time.RFC3339)
	msg := `<s:Envelope xmlns:s="` + ns12 + `" xmlns:wsa="http://www.w3.org/2005/08/addressing" xmlns:wsse="` + nsWSSE + `" xmlns:wsu="` + nsWSU + `">` +
		`<s:Header><wsa:Action>` + actIssue + `</wsa:Action><wsse:Security><wsu:Timestamp wsu:Id="ts"><wsu:Created>` + created + `</wsu:Created></wsu:Timestamp>` +
		`<wsse:BinarySecurityToken wsu:Id="bst" ValueType="` + valueX509v3 + `" EncodingType="http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-soap-message-security-1.0#Base64Binary">` +
		base64.StdEncoding.EncodeToString(f.client.Cert.Raw) + `</wsse:BinarySecurityToken></wsse:Security></s:Header>` +
		`<s:Body wsu:Id="body"><wst:RequestSecurityToken xmlns:wst="` + NamespaceWST + `">` + body + `</wst:RequestSecurityToken></s:Body></s:Envelope>`
	doc := etree.NewDocument()
	if err := doc.ReadFromString(msg); err != nil {
		t.Fatal(err)
	}
	sec := doc.FindElement("//Security")
	str := etree.NewElement("wsse:SecurityTokenReference")
	ref := str.CreateElement("wsse:Reference")
	ref.CreateAttr("URI", "#bst")
	ref.CreateAttr("ValueType", valueX509v3)
	xmlsigtest.Signer{Key: f.client.Key}.Sign(t, sec, []string{"body", "ts"}, str)
	s, err := doc.WriteToString()
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func b64(b []byte) string { return base64.StdEncoding.EncodeToString(b) }
