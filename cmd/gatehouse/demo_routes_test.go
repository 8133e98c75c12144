package main

import (
	"fmt"
	"html"
	"io"
	"log/slog"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/internal/config"
)

// demoPublicRoutes are the routes of examples/demo.yaml that serve without
// credentials on purpose, each with the reason. Every other route must
// refuse an anonymous request. A public route is still checked for the
// WAF and a rate limit.
var demoPublicRoutes = map[string]string{
	"soap-wsdl": "the WSDL describes the service to clients that have no credentials yet; it holds no data",
}

// demoEveryRoute are the policies every route of the demo has, public or
// not, and demoDataRoute those every route that serves data has besides:
// a structural check beside the behavioural ones below, for what they
// cannot observe from outside (identity strips the identity headers a
// client sends on every route; the quota).
var (
	demoEveryRoute = []string{"ipfilter", "size_limit", "rate_limit", "waf", "identity", "headers"}
	demoDataRoute  = []string{"dlp", "quota"}
)

// The injection each route must refuse, and the card number the demo's
// data holds (a test number no bank issues) and each route must mask.
const (
	demoSQLi       = `1' OR '1'='1' --`
	demoCardNumber = "4111 1111 1111 1111"
	demoCardMasked = "**** **** **** 1111"
)

// TestDemoRoutesProtected starts the demo as `gatehouse demo` does (the
// in-process upstreams and the gateway with examples/demo.yaml, on free
// ports) and walks every route of its config: whatever route is added
// later must either be listed in demoPublicRoutes with a reason or, for
// each of its methods, refuse a request without credentials (401, or a
// WS-Security fault), refuse SQL injection with 403, mask the card number
// of the demo data in its response, and limit a burst with 429.
func TestDemoRoutesProtected(t *testing.T) {
	if testing.Short() {
		t.Skip("starts the whole demo")
	}
	d, err := startDemo(freeAddr(t), freeAddr(t), "127.0.0.1:0", "127.0.0.1:0", slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(d.close)
	var writer string
	for _, c := range d.clients {
		if c.env == "WRITER" {
			writer = c.token
		}
	}
	if writer == "" {
		t.Fatal("the demo has no WRITER client")
	}
	seen := map[string]bool{}
	for _, r := range d.cfg.Routes {
		seen[r.Name] = true
		t.Run(r.Name, func(t *testing.T) {
			want := demoEveryRoute
			if _, ok := demoPublicRoutes[r.Name]; !ok {
				want = append(want[:len(want):len(want)], demoDataRoute...)
			}
			for _, typ := range want {
				if !slices.ContainsFunc(r.Policies, func(p config.PolicySpec) bool { return p.Type == typ }) {
					t.Errorf("route %s has no %s policy", r.Name, typ)
				}
			}
			if reason, ok := demoPublicRoutes[r.Name]; ok {
				t.Logf("public on purpose: %s", reason)
				testPublicDemoRoute(t, d, r)
				return
			}
			if len(r.Match.Methods) == 0 {
				t.Fatalf("route %s names no methods: list them, so that each is probed here", r.Name)
			}
			var probes []demoProbe
			for _, m := range r.Match.Methods {
				p := demoProbeFor(t, d, r, m, writer)
				probes = append(probes, p)
				t.Run(m, p.check)
			}
			// Guessing a password (where the credential is one) is limited
			// too; then, once the route serves again, one burst per route,
			// last: the limit is the route's, whatever the method, and
			// refuses what follows for a while.
			for _, p := range probes {
				if p.guess != nil {
					t.Run("guessing", func(t *testing.T) {
						if !burstLimited(t, func() *http.Request { return p.guess(t) }) {
							t.Errorf("%s: 400 wrong passwords in a burst, none refused with 429", p.name)
						}
						waitServed(t, p)
					})
				}
			}
			t.Run("burst", probes[0].checkBurst)
		})
	}
	for name := range demoPublicRoutes {
		if !seen[name] {
			t.Errorf("demoPublicRoutes names %s, which is not a route of the demo", name)
		}
	}
	t.Run("banner", func(t *testing.T) {
		// The banner's dlp line names the product whose masking was
		// checked above.
		var b strings.Builder
		printDemoHelp(&b, d.base, nil, d.clients, d.pki, d.up.cardProductID)
		if want := "curl -s " + d.base + "/product/" + d.up.cardProductID + " "; !strings.Contains(b.String(), want) {
			t.Errorf("the banner has no %q line:\n%s", want, b.String())
		}
	})
	t.Run("authorization-server", func(t *testing.T) { testDemoTokenEndpoint(t, d.base) })
	t.Run("sts", func(t *testing.T) { testDemoSTSRefusesAnonymous(t, d.base) })
}

// A demoProbe knows how to call one method of one route: build makes the
// request with or without credentials, with inject (when not empty) put
// where the route reads client input (a query parameter, a body field).
type demoProbe struct {
	name  string
	soap  bool
	build func(t *testing.T, cred bool, inject string) *http.Request
	// guess, when the credential is a password, makes the request with a
	// wrong one.
	guess func(t *testing.T) *http.Request
}

// demoProbeFor returns the probe of method m on route r; a method or kind
// of route this test cannot call fails the test, so that a new one gets a
// probe rather than going unchecked.
func demoProbeFor(t *testing.T, d *runningDemo, r config.Route, m, token string) demoProbe {
	t.Helper()
	// The web application's credential is a session (a cookie, after
	// logging in as alice at the login page), not a token.
	setCred := func(req *http.Request) { req.Header.Set("Authorization", "Bearer "+token) }
	if usesSession(r) {
		cookie := demoSessionCookie(t, d.base)
		setCred = func(req *http.Request) { req.Header.Set("Cookie", cookie) }
	}
	var target string
	switch {
	case r.Match.Path != "":
		// Path parameters name the product that holds the card number.
		target = d.base + regexp.MustCompile(`\{[^}]*\}`).ReplaceAllString(r.Match.Path, d.up.cardProductID)
	case r.Name == "app":
		target = d.base + r.Match.PathPrefix
	default:
		t.Fatalf("route %s matches a path prefix (%q): give it a probe", r.Name, r.Match.PathPrefix)
	}
	if r.SOAP != "" {
		if r.SOAP != "1.1" || m != http.MethodPost {
			t.Fatalf("route %s: no probe for SOAP %s %s", r.Name, r.SOAP, m)
		}
		build := func(t *testing.T, password, inject string) *http.Request {
			id := d.up.cardProductID
			if inject != "" {
				id = xmlEscape(inject)
			}
			sec := ""
			if password != "" {
				sec = usernameToken("alice", password, true, time.Now().UTC())
			}
			req, err := http.NewRequest(http.MethodPost, target, strings.NewReader(soapMessage(sec,
				`<GetProduct xmlns="urn:gatehouse:demo:products"><id>`+id+`</id></GetProduct>`)))
			if err != nil {
				t.Fatal(err)
			}
			req.Header.Set("Content-Type", "text/xml; charset=utf-8")
			req.Header.Set("SOAPAction", `"urn:gatehouse:demo:products/GetProduct"`)
			return req
		}
		return demoProbe{name: "SOAP GetProduct", soap: true,
			build: func(t *testing.T, cred bool, inject string) *http.Request {
				password := ""
				if cred {
					password = demoAlicePassword
				}
				return build(t, password, inject)
			},
			guess: func(t *testing.T) *http.Request { return build(t, "guess", "") },
		}
	}
	switch m {
	case http.MethodGet:
		return demoProbe{name: "GET", build: func(t *testing.T, cred bool, inject string) *http.Request {
			u := target
			if inject != "" {
				u += "?q=" + url.QueryEscape(inject)
			}
			req, err := http.NewRequest(http.MethodGet, u, nil)
			if err != nil {
				t.Fatal(err)
			}
			if cred {
				setCred(req)
			}
			return req
		}}
	case http.MethodPost:
		return demoProbe{name: "POST", build: func(t *testing.T, cred bool, inject string) *http.Request {
			// The created product comes back in the response: its name
			// carries the card number, or the injection.
			name := "Gift card (test card " + demoCardNumber + ")"
			if inject != "" {
				name = inject
			}
			req, err := http.NewRequest(http.MethodPost, target, strings.NewReader(fmt.Sprintf(`{"name":%q,"price":25,"currency":"EUR"}`, name)))
			if err != nil {
				t.Fatal(err)
			}
			req.Header.Set("Content-Type", "application/json")
			if cred {
				setCred(req)
			}
			return req
		}}
	}
	t.Fatalf("route %s: no probe for method %s", r.Name, m)
	return demoProbe{}
}

// usesSession reports whether r's only authenticator is a session.
func usesSession(r config.Route) bool {
	for _, p := range r.Policies {
		if p.Type != "authenticate" {
			continue
		}
		var a map[string]any
		if err := p.Config.Decode(&a); err != nil {
			return false
		}
		with, _ := a["with"].([]any)
		if len(with) != 1 {
			return false
		}
		first, _ := with[0].(map[string]any)
		return first["session"] != nil
	}
	return false
}

// demoSessionCookie logs alice in to the demo's web application at the
// embedded authorization server's login page and returns the Cookie
// header of her session.
func demoSessionCookie(t *testing.T, base string) string {
	t.Helper()
	jar, _ := cookiejar.New(nil)
	c := &http.Client{Jar: jar, Timeout: 30 * time.Second}
	req, _ := http.NewRequest(http.MethodGet, base+"/app", nil)
	req.Header.Set("Accept", "text/html")
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	page, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	form := url.Values{"username": {"alice"}, "password": {demoAlicePassword}}
	for _, m := range regexp.MustCompile(`<input type="hidden" name="([^"]+)" value="([^"]*)">`).FindAllSubmatch(page, -1) {
		form.Set(string(m[1]), html.UnescapeString(string(m[2])))
	}
	action := regexp.MustCompile(`<form method="post" action="([^"]+)"`).FindSubmatch(page)
	if action == nil {
		t.Fatalf("no login form at %s: %d\n%s", resp.Request.URL, resp.StatusCode, page)
	}
	u, _ := resp.Request.URL.Parse(html.UnescapeString(string(action[1])))
	resp, err = c.PostForm(u.String(), form)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || !strings.Contains(string(body), "Hello alice") {
		t.Fatalf("logging alice in: %d at %s\n%s", resp.StatusCode, resp.Request.URL, body)
	}
	bu, _ := url.Parse(base)
	for _, ck := range jar.Cookies(bu) {
		if ck.Name == "gatehouse_session" {
			return ck.Name + "=" + ck.Value
		}
	}
	t.Fatal("no session cookie after logging alice in")
	return ""
}

// check asserts the refusals and the masking.
func (p demoProbe) check(t *testing.T) {
	t.Helper()
	// No credentials.
	code, body := sendDemo(t, p.build(t, false, ""))
	if p.soap {
		if (code != 400 && code != 401) || !strings.Contains(body, "Fault>") || !regexp.MustCompile(`wsse:(InvalidSecurity|FailedAuthentication)`).MatchString(body) {
			t.Errorf("%s without WS-Security: %d\n%s\nwant a 400 or 401 SOAP Fault wsse:InvalidSecurity or wsse:FailedAuthentication", p.name, code, body)
		}
	} else if code != 401 || !strings.Contains(body, `"code":"missing_credentials"`) {
		t.Errorf("%s without a token: %d\n%s\nwant 401 missing_credentials", p.name, code, body)
	}
	// SQL injection, with credentials.
	code, body = sendDemo(t, p.build(t, true, demoSQLi))
	if code != 403 || !strings.Contains(body, "waf_blocked") || (p.soap && !strings.Contains(body, "Fault>")) {
		t.Errorf("%s with SQL injection: %d\n%s\nwant 403 waf_blocked", p.name, code, body)
	}
	// The card number in the upstream's answer is masked, and the answer
	// has the security headers.
	code, body, h := sendDemoH(t, p.build(t, true, ""))
	checkSecurityHeaders(t, p.name, h)
	if code/100 != 2 || !strings.Contains(body, demoCardMasked) || strings.Contains(body, demoCardNumber) || strings.Contains(body, strings.ReplaceAll(demoCardNumber, " ", "")) {
		t.Errorf("%s: %d\n%s\nwant a 2xx with the card number masked (%s)", p.name, code, body, demoCardMasked)
	}
}

// checkBurst sends requests with credentials, eight at a time, until one
// is refused with 429 (with Retry-After), at most 400: every route limits
// a client to 20 a second, which eight parallel clients on loopback
// outrun however loaded the machine.
func (p demoProbe) checkBurst(t *testing.T) {
	t.Helper()
	if !burstLimited(t, func() *http.Request { return p.build(t, true, "") }) {
		t.Errorf("%s: 400 requests in a burst, none refused with 429 and Retry-After", p.name)
	}
}

// waitServed waits (10 s at most) until the probe's request with
// credentials is served again after a burst.
func waitServed(t *testing.T, p demoProbe) {
	t.Helper()
	eventually(t, p.name+" served again", func() string {
		if code, body := sendDemo(t, p.build(t, true, "")); code/100 != 2 {
			return fmt.Sprintf("%d %s", code, body)
		}
		return ""
	})
}

func burstLimited(t *testing.T, build func() *http.Request) bool {
	t.Helper()
	var limited atomic.Bool
	var sent atomic.Int32
	var wg sync.WaitGroup
	client := &http.Client{Timeout: 10 * time.Second}
	for range 8 {
		wg.Go(func() {
			for !limited.Load() && sent.Add(1) <= 400 {
				resp, err := client.Do(build())
				if err != nil {
					t.Error(err)
					return
				}
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if resp.StatusCode == http.StatusTooManyRequests && resp.Header.Get("Retry-After") != "" {
					limited.Store(true)
				}
			}
		})
	}
	wg.Wait()
	return limited.Load()
}

// testPublicDemoRoute checks a route that is public on purpose: it
// answers without credentials, and still refuses SQL injection and limits
// a burst.
func testPublicDemoRoute(t *testing.T, d *runningDemo, r config.Route) {
	t.Helper()
	if r.Match.Path == "" || len(r.Match.Methods) != 1 || r.Match.Methods[0] != http.MethodGet || r.SOAP == "" {
		t.Fatalf("public route %s: this test knows how to call a SOAP route's GET ?wsdl only", r.Name)
	}
	wsdl := d.base + r.Match.Path + "?wsdl"
	get := func(u string) *http.Request {
		req, err := http.NewRequest(http.MethodGet, u, nil)
		if err != nil {
			t.Fatal(err)
		}
		return req
	}
	code, body, h := sendDemoH(t, get(wsdl))
	if code != 200 || !strings.Contains(body, "definitions") {
		t.Errorf("GET ?wsdl without credentials: %d\n%s", code, body)
	}
	checkSecurityHeaders(t, "GET ?wsdl", h)
	if code, body := sendDemo(t, get(wsdl+"&q="+url.QueryEscape(demoSQLi))); code != 403 || !strings.Contains(body, "waf_blocked") {
		t.Errorf("GET ?wsdl with SQL injection: %d\n%s\nwant 403 waf_blocked", code, body)
	}
	if !burstLimited(t, func() *http.Request { return get(wsdl) }) {
		t.Errorf("GET ?wsdl: 400 requests in a burst, none refused with 429")
	}
}

// testDemoTokenEndpoint checks the embedded authorization server, which
// the gateway serves before the routes: its token, introspection and
// revocation endpoints refuse a request without client credentials with
// 401, its metadata and keys are public on purpose (RFC 8414, RFC 7517)
// and hold no private key member, and guessing a client's secret is cut
// off with 429.
func testDemoTokenEndpoint(t *testing.T, base string) {
	t.Helper()
	post := func(path, form, user, secret string) *http.Request {
		req, err := http.NewRequest(http.MethodPost, base+path, strings.NewReader(form))
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		if user != "" {
			req.SetBasicAuth(user, secret)
		}
		return req
	}
	const tokenForm = "grant_type=client_credentials&scope=products%3Aread"
	for _, c := range []struct{ path, form string }{
		{"/oauth2/token", tokenForm},
		{"/oauth2/introspect", "token=x"},
		{"/oauth2/revoke", "token=x"},
	} {
		if code, body := sendDemo(t, post(c.path, c.form, "", "")); code != 401 || !strings.Contains(body, "invalid_client") {
			t.Errorf("%s without client credentials: %d\n%s\nwant 401 invalid_client", c.path, code, body)
		}
	}
	for _, path := range []string{"/oauth2/jwks", "/.well-known/openid-configuration", "/.well-known/oauth-authorization-server"} {
		req, err := http.NewRequest(http.MethodGet, base+path, nil)
		if err != nil {
			t.Fatal(err)
		}
		code, body := sendDemo(t, req)
		if code != 200 || regexp.MustCompile(`"(d|p|q|dp|dq|qi|k)"\s*:`).MatchString(body) {
			t.Errorf("%s (public): %d\n%s\nwant 200 and no private or symmetric key member", path, code, body)
		}
	}
	limited := false
	for i := 0; i < 40 && !limited; i++ {
		code, _ := sendDemo(t, post("/oauth2/token", tokenForm, "demo-reader", fmt.Sprintf("guess-%d", i)))
		limited = code == http.StatusTooManyRequests
	}
	if !limited {
		t.Error("40 wrong secrets for demo-reader: none refused with 429")
	}
}

// testDemoSTSRefusesAnonymous checks that the STS issues nothing to a
// request without WS-Security, and that guessing a password there is
// limited.
func testDemoSTSRefusesAnonymous(t *testing.T, base string) {
	t.Helper()
	msg := strings.Replace(stsRequest("Issue", `<wsp:AppliesTo xmlns:wsp="http://schemas.xmlsoap.org/ws/2004/09/policy"><wsa:EndpointReference><wsa:Address>`+
		`urn:gatehouse:demo:products</wsa:Address></wsa:EndpointReference></wsp:AppliesTo>`, time.Now().UTC()),
		regexp.MustCompile(`(?s)<wsse:Security>.*</wsse:Security>`).FindString(stsRequest("Issue", "", time.Now().UTC())), "", 1)
	req, err := http.NewRequest(http.MethodPost, base+"/sts", strings.NewReader(msg))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/soap+xml; charset=utf-8")
	code, body := sendDemo(t, req)
	if code/100 != 4 || !strings.Contains(body, "Fault>") || strings.Contains(body, "Assertion") {
		t.Errorf("STS Issue without WS-Security: %d\n%s\nwant a 4xx SOAP Fault and no assertion", code, body)
	}
	// Guessing alice's password is cut off.
	limited := false
	for i := 0; i < 100 && !limited; i++ {
		msg := strings.Replace(stsRequest("Issue", "", time.Now().UTC()), demoAlicePassword, fmt.Sprintf("guess-%d", i), 1)
		req, err := http.NewRequest(http.MethodPost, base+"/sts", strings.NewReader(msg))
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Content-Type", "application/soap+xml; charset=utf-8")
		code, _ := sendDemo(t, req)
		limited = code == http.StatusTooManyRequests
	}
	if !limited {
		t.Error("100 wrong passwords for alice at the STS: none refused with 429")
	}
}

func sendDemo(t *testing.T, req *http.Request) (int, string) {
	t.Helper()
	code, body, _ := sendDemoH(t, req)
	return code, body
}

func sendDemoH(t *testing.T, req *http.Request) (int, string, http.Header) {
	t.Helper()
	resp, err := (&http.Client{Timeout: 10 * time.Second}).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, string(b), resp.Header
}

// checkSecurityHeaders requires the headers every demo route sets on its
// answers.
func checkSecurityHeaders(t *testing.T, what string, h http.Header) {
	t.Helper()
	for name, want := range map[string]string{
		"X-Content-Type-Options":  "nosniff",
		"X-Frame-Options":         "DENY",
		"Referrer-Policy":         "no-referrer",
		"Content-Security-Policy": "default-src 'none'; frame-ancestors 'none'",
	} {
		if got := h.Get(name); got != want {
			t.Errorf("%s: %s is %q, want %q", what, name, got, want)
		}
	}
}

func xmlEscape(s string) string {
	return strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;", "'", "&apos;", `"`, "&quot;").Replace(s)
}
