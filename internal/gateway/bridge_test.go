package gateway

import (
	"encoding/base64"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"
)

// TestSAMLToJWTBridge is the one-login-for-both-worlds flow of docs/sts.md:
// alice gets a SAML assertion from the gateway's own STS (WS-Trust Issue,
// UsernameToken), a client exchanges it at the gateway's own authorization
// server (RFC 8693, subject_token_type saml2) for a JWT, and that JWT opens
// a REST route whose jwt authenticator trusts the authorization server.
// The authorization server trusts the STS without any saml_issuers entry.
// It runs with the STS signing with RSA-SHA256 and with ECDSA-SHA256.
func TestSAMLToJWTBridge(t *testing.T) {
	for _, tc := range []struct{ signature, method string }{
		{"rsa-sha256", "http://www.w3.org/2001/04/xmldsig-more#rsa-sha256"},
		{"ecdsa-sha256", "http://www.w3.org/2001/04/xmldsig-more#ecdsa-sha256"},
	} {
		t.Run(tc.signature, func(t *testing.T) { samlToJWTBridge(t, tc.signature, tc.method) })
	}
}

// samlToJWTBridge walks the bridge with an STS signing with signature,
// whose assertions must name method.
func samlToJWTBridge(t *testing.T, signature, method string) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close() // the issuer URLs name this address, so it is fixed
	var upstreamSub string
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		upstreamSub = r.Header.Get("X-Auth-Subject")
		io.WriteString(w, "products")
	}))
	defer up.Close()
	base := "http://" + addr
	g := startGateway(t, `
listeners:
  - {name: main, address: "`+addr+`"}
admin: {address: "off"}
store: {type: memory}
sts:
  issuer: `+base+`/sts
  insecure_plaintext_keys: true
  signature: `+signature+`
  authentication:
    username_token: {text: allowed, users: [{username: alice, password: alice-password}]}
  subjects: [{subject: alice, roles: [reader]}]
  relying_parties: [{audience: "`+base+`"}]
authorization_server:
  issuer: `+base+`
  insecure_plaintext_keys: true
  clients:
    - client_id: bridge
      secret: {env: BRIDGE_SECRET}
      scopes: [products:read]
      audience: [products]
      grant_types: [urn:ietf:params:oauth:grant-type:token-exchange]
routes:
  - name: products
    match: {path: /product}
    upstream: {url: "${UP}"}
    policies:
      - authenticate:
          with:
            - jwt: {issuer: "`+base+`", oidc_discovery: true, audiences: [products], algorithms: [ES256], typ: at+jwt}
      - scopes: {all: [products:read]}
      - identity: {headers: {subject: X-Auth-Subject}}
`, map[string]string{"UP": up.URL, "BRIDGE_SECRET": "bridge-secret-0123456789"})

	// 1. WS-Trust Issue at the STS, SOAP 1.2, alice's UsernameToken.
	now := time.Now().UTC()
	rst := `<s:Envelope xmlns:s="http://www.w3.org/2003/05/soap-envelope" xmlns:wsa="http://www.w3.org/2005/08/addressing"` +
		` xmlns:wsse="http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-secext-1.0.xsd"` +
		` xmlns:wsu="http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-utility-1.0.xsd"><s:Header>` +
		`<wsa:Action>http://docs.oasis-open.org/ws-sx/ws-trust/200512/RST/Issue</wsa:Action><wsse:Security>` +
		`<wsu:Timestamp><wsu:Created>` + now.Format(time.RFC3339) + `</wsu:Created></wsu:Timestamp>` +
		`<wsse:UsernameToken><wsse:Username>alice</wsse:Username><wsse:Password>alice-password</wsse:Password></wsse:UsernameToken>` +
		`</wsse:Security></s:Header><s:Body><wst:RequestSecurityToken xmlns:wst="http://docs.oasis-open.org/ws-sx/ws-trust/200512">` +
		`<wst:RequestType>http://docs.oasis-open.org/ws-sx/ws-trust/200512/Issue</wst:RequestType>` +
		`<wsp:AppliesTo xmlns:wsp="http://schemas.xmlsoap.org/ws/2004/09/policy"><wsa:EndpointReference><wsa:Address>` + base +
		`</wsa:Address></wsa:EndpointReference></wsp:AppliesTo></wst:RequestSecurityToken></s:Body></s:Envelope>`
	resp, err := http.Post(g.base+"/sts", "application/soap+xml; charset=utf-8", strings.NewReader(rst))
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	assertion := regexp.MustCompile(`(?s)<(\w+:)?Assertion\b.*</(\w+:)?Assertion>`).Find(body)
	if resp.StatusCode != http.StatusOK || assertion == nil {
		t.Fatalf("STS Issue: %d\n%s", resp.StatusCode, body)
	}
	if !strings.Contains(string(assertion), `SignatureMethod Algorithm="`+method+`"`) {
		t.Fatalf("the STS's assertion is not signed with %s:\n%s", method, assertion)
	}

	// 2. RFC 8693 exchange at the authorization server.
	form := url.Values{
		"grant_type":         {"urn:ietf:params:oauth:grant-type:token-exchange"},
		"subject_token":      {base64.RawURLEncoding.EncodeToString(assertion)},
		"subject_token_type": {"urn:ietf:params:oauth:token-type:saml2"},
		"scope":              {"products:read"},
		"audience":           {"products"},
	}
	req, _ := http.NewRequest("POST", g.base+"/oauth2/token", strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth("bridge", "bridge-secret-0123456789")
	resp, err = http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	var tok struct {
		AccessToken     string `json:"access_token"`
		IssuedTokenType string `json:"issued_token_type"`
	}
	body, _ = io.ReadAll(resp.Body)
	resp.Body.Close()
	if err := json.Unmarshal(body, &tok); err != nil || resp.StatusCode != http.StatusOK || tok.AccessToken == "" {
		t.Fatalf("token exchange: %d %s", resp.StatusCode, body)
	}

	// 3. The JWT on the REST route: the upstream learns it is alice.
	req, _ = http.NewRequest("GET", g.base+"/product", nil)
	req.Header.Set("Authorization", "Bearer "+tok.AccessToken)
	resp, err = http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ = io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || upstreamSub != "alice" {
		t.Fatalf("REST call with the exchanged token: %d %s; upstream saw subject %q, want alice", resp.StatusCode, body, upstreamSub)
	}

	// The assertion is single-use at the exchange.
	req, _ = http.NewRequest("POST", g.base+"/oauth2/token", strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth("bridge", "bridge-secret-0123456789")
	resp, err = http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusBadRequest {
		t.Errorf("the same assertion exchanged twice: %d, want 400 invalid_grant", resp.StatusCode)
	}
}
