package lifecycle_test

import (
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/beevik/etree"

	"github.com/gatehouse/gatehouse/internal/builtin"
	"github.com/gatehouse/gatehouse/internal/gateway"
	"github.com/gatehouse/gatehouse/internal/gatewaytest"
	"github.com/gatehouse/gatehouse/internal/saml2"
	"github.com/gatehouse/gatehouse/internal/store"
	"github.com/gatehouse/gatehouse/internal/store/redistest"
	"github.com/gatehouse/gatehouse/internal/sts"
)

const (
	nsWSSE = "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-secext-1.0.xsd"
	nsWSU  = "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-utility-1.0.xsd"
	wstNS  = "http://docs.oasis-open.org/ws-sx/ws-trust/200512"

	grantExchange = "urn:ietf:params:oauth:grant-type:token-exchange"
	typeSAML2     = "urn:ietf:params:oauth:token-type:saml2"
)

func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// doorsConfig is one gateway instance: the embedded STS, the
// authorization server (trusting the STS for token exchange) and saml
// routes for the two audiences the STS issues for, each plainly and
// through validate_with_sts (asking instance A's STS).
const doorsConfig = `
listeners: [{name: main, address: "ADDR"}]
admin: {address: "off"}
access_log: {disabled: true}
authorization_server:
  issuer: ISSUER
  insecure_plaintext_keys: true
  clients:
    - client_id: exch
      secret_hash: sha256:` + exchSecretHash + `
      scopes: [products:read]
      audience: [products]
      grant_types: [client_credentials, urn:ietf:params:oauth:grant-type:token-exchange]
sts:
  issuer: ISSUER/sts
  insecure_plaintext_keys: true
  authentication:
    username_token:
      text: allowed
      users:
        - {username: alice, password: alice-pw}
  subjects:
    - {subject: alice, roles: [reader]}
  relying_parties:
    - {audience: "ISSUER"}
    - {audience: "ISSUER/oauth2/token", one_time_use: true}
routes:
  - name: soap
    soap: "1.1"
    match: {path: /soap, methods: [POST]}
    upstream: {url: UPSTREAM}
    policies:
      - saml: {audience: "ISSUER", sts: true, bearer_requires_tls: false}
  - name: soapv
    soap: "1.1"
    match: {path: /soapv, methods: [POST]}
    upstream: {url: UPSTREAM}
    policies:
      - saml: {audience: "ISSUER", sts: true, bearer_requires_tls: false, validate_with_sts: {url: "STSURL"}}
  - name: soap-once
    soap: "1.1"
    match: {path: /soap-once, methods: [POST]}
    upstream: {url: UPSTREAM}
    policies:
      - saml: {audience: "ISSUER/oauth2/token", sts: true, bearer_requires_tls: false}
  - name: soapv-once
    soap: "1.1"
    match: {path: /soapv-once, methods: [POST]}
    upstream: {url: UPSTREAM}
    policies:
      - saml: {audience: "ISSUER/oauth2/token", sts: true, bearer_requires_tls: false, validate_with_sts: {url: "STSURL"}}
`

// sha256("exch-secret")
const exchSecretHash = "efea2b08a85bb22ef11f92cc581fa9ecb808a4ea0c9e33859f0895eabb71e641"

// instance is one gateway of the pair.
type instance struct {
	name string
	url  string
}

// pair starts two gateway instances sharing one real Redis (each with its
// own connection), as two replicas behind a load balancer would.
func pair(t *testing.T) (a, b instance, issuer string, upstreamURL string, st store.Store) {
	t.Helper()
	srv := redistest.Start(t)
	upstream := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "ok") }))
	t.Cleanup(upstream.Close)
	addrA, addrB := freeAddr(t), freeAddr(t)
	issuer = "http://" + addrA
	prefix := strings.NewReplacer("/", "_").Replace(t.Name()) + ":" + time.Now().Format("150405.000000") + ":"
	start := func(name, addr string) instance {
		var err error
		st, err = store.NewRedis(store.RedisOptions{Addrs: []string{srv.Addr()}, KeyPrefix: prefix})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { st.Close() })
		src := strings.NewReplacer("ADDR", addr, "ISSUER", issuer, "UPSTREAM", upstream.URL, "STSURL", issuer+"/sts").Replace(doorsConfig)
		g := gatewaytest.Start(t, src, gateway.Options{Registry: builtin.Registry(), Store: st})
		return instance{name: name, url: g.URL}
	}
	a = start("A", addrA)
	b = start("B", addrB)
	return a, b, issuer, upstream.URL, st
}

var hc = &http.Client{Timeout: 10 * time.Second}

func post(t *testing.T, u, ctype string, body string, edit func(*http.Request)) (int, string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, u, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", ctype)
	if edit != nil {
		edit(req)
	}
	resp, err := hc.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// rst is a SOAP 1.2 WS-Trust request authenticated as alice.
func rst(action, body string) string {
	now := time.Now().UTC()
	return `<s:Envelope xmlns:s="http://www.w3.org/2003/05/soap-envelope" xmlns:wsa="http://www.w3.org/2005/08/addressing" xmlns:wsse="` + nsWSSE + `" xmlns:wsu="` + nsWSU + `">` +
		`<s:Header><wsa:Action>` + wstNS + `/RST/` + action + `</wsa:Action><wsse:Security s:mustUnderstand="1"><wsu:Timestamp><wsu:Created>` + now.Format(time.RFC3339) + `</wsu:Created><wsu:Expires>` + now.Add(5*time.Minute).Format(time.RFC3339) + `</wsu:Expires></wsu:Timestamp>` +
		`<wsse:UsernameToken><wsse:Username>alice</wsse:Username><wsse:Password>alice-pw</wsse:Password></wsse:UsernameToken></wsse:Security></s:Header>` +
		`<s:Body><wst:RequestSecurityToken xmlns:wst="` + wstNS + `">` + body + `</wst:RequestSecurityToken></s:Body></s:Envelope>`
}

func stsCall(t *testing.T, in instance, action, body string) string {
	t.Helper()
	code, resp := post(t, in.url+"/sts", `application/soap+xml; charset=utf-8; action="`+wstNS+`/RST/`+action+`"`, rst(action, body), nil)
	if code != 200 {
		t.Fatalf("%s at %s: %d %s", action, in.name, code, resp)
	}
	return resp
}

// issue gets a bearer assertion for audience from in's STS.
func issue(t *testing.T, in instance, audience string) string {
	t.Helper()
	resp := stsCall(t, in, "Issue", `<wst:RequestType>`+sts.RequestIssue+`</wst:RequestType><wst:TokenType>`+saml2.TokenTypeSAML20+`</wst:TokenType>`+
		`<wsp:AppliesTo xmlns:wsp="http://schemas.xmlsoap.org/ws/2004/09/policy"><wsa:EndpointReference xmlns:wsa="http://www.w3.org/2005/08/addressing"><wsa:Address>`+audience+`</wsa:Address></wsa:EndpointReference></wsp:AppliesTo>`)
	doc := etree.NewDocument()
	if err := doc.ReadFromString(resp); err != nil {
		t.Fatal(err)
	}
	el := doc.FindElement("//RequestedSecurityToken/Assertion")
	if el == nil {
		t.Fatalf("no assertion in %s", resp)
	}
	out := etree.NewDocument()
	out.SetRoot(el.Copy())
	s, err := out.WriteToString()
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func cancel(t *testing.T, in instance, assertion string) {
	t.Helper()
	resp := stsCall(t, in, "Cancel", `<wst:RequestType>`+sts.RequestCancel+`</wst:RequestType><wst:CancelTarget>`+assertion+`</wst:CancelTarget>`)
	if !strings.Contains(resp, "RequestedTokenCancelled") {
		t.Fatalf("cancel: %s", resp)
	}
}

// validate asks in's STS (Validate binding) and reports whether it said
// valid.
func validate(t *testing.T, in instance, assertion string) bool {
	t.Helper()
	resp := stsCall(t, in, "Validate", `<wst:RequestType>`+sts.RequestValidate+`</wst:RequestType><wst:TokenType>`+sts.TokenTypeStatus+`</wst:TokenType><wst:ValidateTarget>`+assertion+`</wst:ValidateTarget>`)
	switch {
	case strings.Contains(resp, sts.StatusValid):
		return true
	case strings.Contains(resp, sts.StatusInvalid):
		return false
	}
	t.Fatalf("validate: no status in %s", resp)
	return false
}

// soapCall presents the assertion at a saml route and returns the status.
func soapCall(t *testing.T, in instance, path, assertion string) int {
	t.Helper()
	msg := `<soap:Envelope xmlns:soap="http://schemas.xmlsoap.org/soap/envelope/" xmlns:wsse="` + nsWSSE + `" xmlns:wsu="` + nsWSU + `">` +
		`<soap:Header><wsse:Security soap:mustUnderstand="1"><wsu:Timestamp wsu:Id="ts"><wsu:Created>` + time.Now().UTC().Format(time.RFC3339) + `</wsu:Created></wsu:Timestamp>` +
		assertion + `</wsse:Security></soap:Header><soap:Body><p:GetProduct xmlns:p="urn:example:products"><p:id>42</p:id></p:GetProduct></soap:Body></soap:Envelope>`
	code, _ := post(t, in.url+path, "text/xml; charset=utf-8", msg, func(r *http.Request) { r.Header.Set("SOAPAction", `""`) })
	return code
}

// exchange presents the assertion for RFC 8693 token exchange and returns
// the status and the OAuth error code, if any.
func exchange(t *testing.T, in instance, assertion string) (int, string) {
	t.Helper()
	code, e, _ := exchangeToken(t, in, assertion)
	return code, e
}

// exchangeToken is exchange that also returns the access token.
func exchangeToken(t *testing.T, in instance, assertion string) (int, string, string) {
	t.Helper()
	form := url.Values{"grant_type": {grantExchange}, "subject_token_type": {typeSAML2},
		"subject_token": {base64.RawURLEncoding.EncodeToString([]byte(assertion))}}
	code, body := post(t, in.url+"/oauth2/token", "application/x-www-form-urlencoded", form.Encode(), func(r *http.Request) { r.SetBasicAuth("exch", "exch-secret") })
	var m map[string]any
	json.Unmarshal([]byte(body), &m)
	e, _ := m["error"].(string)
	tok, _ := m["access_token"].(string)
	if code == 200 && tok == "" {
		t.Fatalf("exchange at %s: 200 without a token: %s", in.name, body)
	}
	return code, e, tok
}

// active asks in's introspection endpoint about tok.
func active(t *testing.T, in instance, tok string) bool {
	t.Helper()
	code, body := post(t, in.url+"/oauth2/introspect", "application/x-www-form-urlencoded", url.Values{"token": {tok}}.Encode(),
		func(r *http.Request) { r.SetBasicAuth("exch", "exch-secret") })
	var m map[string]any
	if code != 200 || json.Unmarshal([]byte(body), &m) != nil {
		t.Fatalf("introspect at %s: %d %s", in.name, code, body)
	}
	return m["active"] == true
}

// TestCancelledAtEveryDoor: an assertion of the STS, accepted at its doors,
// is refused at every door of every instance once cancelled at one: the
// saml policy, the saml policy asking the STS (validate_with_sts), the
// STS's Validate and the authorization server's token exchange (which
// issued a JWT for it before). The JWT an assertion was exchanged for
// before its cancellation is revoked with it.
func TestCancelledAtEveryDoor(t *testing.T) {
	a, b, issuer, _, _ := pair(t)
	as := issue(t, a, issuer)
	// Open doors first, so that a refusal below is the cancellation's.
	for _, in := range []instance{a, b} {
		if got := soapCall(t, in, "/soap", as); got != 200 {
			t.Fatalf("saml at %s before cancel: %d", in.name, got)
		}
		if got := soapCall(t, in, "/soapv", as); got != 200 {
			t.Fatalf("validate_with_sts at %s before cancel: %d", in.name, got)
		}
		if !validate(t, in, as) {
			t.Fatalf("Validate at %s before cancel: invalid", in.name)
		}
	}
	fresh := issue(t, a, issuer)
	code, e, jwt := exchangeToken(t, b, fresh)
	if code != 200 || !active(t, a, jwt) {
		t.Fatalf("exchange of a live assertion: %d %s", code, e)
	}

	cancel(t, b, as)
	// The token an assertion was exchanged for dies with it, on every
	// instance.
	cancel(t, a, fresh)
	deadline := time.Now().Add(5 * time.Second)
	for active(t, a, jwt) || active(t, b, jwt) {
		if time.Now().After(deadline) {
			t.Fatal("the JWT exchanged for a cancelled assertion is still active")
		}
		time.Sleep(20 * time.Millisecond)
	}
	for _, in := range []instance{a, b} {
		if got := soapCall(t, in, "/soap", as); got != 401 {
			t.Errorf("saml at %s: %d, want 401", in.name, got)
		}
		if got := soapCall(t, in, "/soapv", as); got != 401 {
			t.Errorf("validate_with_sts at %s: %d, want 401", in.name, got)
		}
		if validate(t, in, as) {
			t.Errorf("Validate at %s: valid, want invalid", in.name)
		}
		if code, e := exchange(t, in, as); code != 400 || e != "invalid_grant" {
			t.Errorf("exchange at %s: %d %s, want 400 invalid_grant", in.name, code, e)
		}
	}
}

// TestOneTimeUseAtEveryDoor: a OneTimeUse assertion is spent by its first
// use at any door of either instance, and refused at every door of both
// after; presented at all doors at once, exactly one accepts it.
func TestOneTimeUseAtEveryDoor(t *testing.T) {
	a, b, issuer, _, _ := pair(t)
	aud := issuer + "/oauth2/token"
	type door struct {
		name string
		use  func(string) bool
	}
	var doors []door
	for _, in := range []instance{a, b} {
		doors = append(doors,
			door{"saml at " + in.name, func(as string) bool { return soapCall(t, in, "/soap-once", as) == 200 }},
			door{"validate_with_sts at " + in.name, func(as string) bool { return soapCall(t, in, "/soapv-once", as) == 200 }},
			door{"exchange at " + in.name, func(as string) bool { code, _ := exchange(t, in, as); return code == 200 }},
		)
	}
	for _, first := range doors {
		t.Run(first.name, func(t *testing.T) {
			as := issue(t, a, aud)
			if !validate(t, b, as) {
				t.Fatal("Validate before use: invalid")
			}
			if !first.use(as) {
				t.Fatalf("first use at %s refused", first.name)
			}
			for _, d := range doors {
				if d.use(as) {
					t.Errorf("%s accepted an assertion spent at %s", d.name, first.name)
				}
			}
			if validate(t, a, as) || validate(t, b, as) {
				t.Error("Validate says a spent one-time assertion is valid")
			}
		})
	}
	t.Run("all at once", func(t *testing.T) {
		as := issue(t, b, aud)
		var wg sync.WaitGroup
		var mu sync.Mutex
		var won []string
		for range 3 {
			for _, d := range doors {
				wg.Go(func() {
					if d.use(as) {
						mu.Lock()
						won = append(won, d.name)
						mu.Unlock()
					}
				})
			}
		}
		wg.Wait()
		if len(won) != 1 {
			t.Fatalf("accepted at %v, want exactly one door", won)
		}
	})
}

// TestValidateWithSTSElsewhere: a gateway that shares no state with the
// STS (its own memory store) trusts its certificate and asks its Validate
// binding (validate_with_sts, no cache): what the STS knows (a
// cancellation, a one-time assertion spent at another door) refuses the
// assertion there too.
func TestValidateWithSTSElsewhere(t *testing.T) {
	a, _, issuer, upstreamURL, st := pair(t)
	_, cert, err := sts.LoadPublished(t.Context(), st)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "sts.pem"), pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: cert.Raw}), 0o600); err != nil {
		t.Fatal(err)
	}
	src := strings.NewReplacer("ADDR", freeAddr(t), "ISSUER", issuer, "UPSTREAM", upstreamURL).Replace(`
listeners: [{name: main, address: "ADDR"}]
admin: {address: "off"}
access_log: {disabled: true}
store: {type: memory}
routes:
  - name: soapv
    soap: "1.1"
    match: {path: /soapv, methods: [POST]}
    upstream: {url: UPSTREAM}
    policies:
      - saml: {audience: "ISSUER", issuers: [{issuer: "ISSUER/sts", certificate_file: sts.pem}], bearer_requires_tls: false, validate_with_sts: {url: "ISSUER/sts"}}
  - name: soapv-once
    soap: "1.1"
    match: {path: /soapv-once, methods: [POST]}
    upstream: {url: UPSTREAM}
    policies:
      - saml: {audience: "ISSUER/oauth2/token", issuers: [{issuer: "ISSUER/sts", certificate_file: sts.pem}], bearer_requires_tls: false, validate_with_sts: {url: "ISSUER/sts"}}
`)
	g := gatewaytest.Start(t, src, gateway.Options{Registry: builtin.Registry(), BaseDir: dir})
	c := instance{name: "C", url: g.URL}

	as := issue(t, a, issuer)
	if got := soapCall(t, c, "/soapv", as); got != 200 {
		t.Fatalf("before cancel: %d", got)
	}
	cancel(t, a, as)
	if got := soapCall(t, c, "/soapv", as); got != 401 {
		t.Errorf("cancelled at the STS: %d, want 401", got)
	}

	once := issue(t, a, issuer+"/oauth2/token")
	if code, e := exchange(t, a, once); code != 200 {
		t.Fatalf("exchange: %d %s", code, e)
	}
	if got := soapCall(t, c, "/soapv-once", once); got != 401 {
		t.Errorf("one-time assertion spent at the exchange: %d, want 401", got)
	}
}
