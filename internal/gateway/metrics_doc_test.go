package gateway

import (
	"bufio"
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/internal/builtin"
	"github.com/gatehouse/gatehouse/internal/peertest"
	"github.com/gatehouse/gatehouse/internal/telemetry"
	"github.com/google/go-cmp/cmp"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// documentedMetric is one row of the metrics table of docs/operations.md.
type documentedMetric struct {
	name, typ string
	labels    []string
	// atStart: the "series from" column says start or load, so the
	// metric is in a scrape taken before any request (the test's config
	// names everything a "load" metric is labelled by).
	atStart bool
}

// readMetricsTable parses the table of the "## Metrics" section of
// docs/operations.md: | metric | type | labels | series from | meaning |.
func readMetricsTable(t *testing.T) map[string]documentedMetric {
	t.Helper()
	f, err := os.Open("../../docs/operations.md")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	tick := regexp.MustCompile("`([^`]*)`")
	out := map[string]documentedMetric{}
	in := false
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := sc.Text()
		if strings.HasPrefix(line, "## ") {
			in = line == "## Metrics"
			continue
		}
		if !in || !strings.HasPrefix(line, "| `gatehouse_") {
			continue
		}
		cells := strings.Split(strings.Trim(line, "|"), "|")
		if len(cells) < 5 {
			t.Fatalf("operations.md: metrics row with %d cells: %s", len(cells), line)
		}
		m := documentedMetric{
			name: strings.Trim(strings.TrimSpace(cells[0]), "`"),
			typ:  strings.TrimSpace(cells[1]),
		}
		for _, l := range tick.FindAllStringSubmatch(cells[2], -1) {
			m.labels = append(m.labels, l[1])
		}
		sort.Strings(m.labels)
		from := strings.TrimSpace(cells[3])
		m.atStart = from == "start" || from == "load"
		if _, dup := out[m.name]; dup {
			t.Errorf("operations.md lists %s twice", m.name)
		}
		out[m.name] = m
	}
	if len(out) == 0 {
		t.Fatal("operations.md: no metrics table under ## Metrics")
	}
	return out
}

// scrape reads the admin listener's /metrics in the text format, and
// returns the gatehouse_* families and the raw text.
func scrape(t *testing.T, admin, accept string) (map[string]*dto.MetricFamily, string, string) {
	t.Helper()
	req, _ := http.NewRequest("GET", admin+"/metrics", nil)
	if accept != "" {
		req.Header.Set("Accept", accept)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET /metrics: %d %s", resp.StatusCode, body)
	}
	ct := resp.Header.Get("Content-Type")
	if accept != "" {
		return nil, string(body), ct
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(bytes.NewReader(body))
	if err != nil {
		t.Fatalf("the scrape does not parse: %v", err)
	}
	for name := range fams {
		if !strings.HasPrefix(name, "gatehouse_") {
			delete(fams, name)
		}
	}
	return fams, string(body), ct
}

// familyType is a family's type as the table writes it.
func familyType(f *dto.MetricFamily) string {
	return strings.ToLower(f.GetType().String())
}

// familyLabels are the label names of a family's series (all of them have
// the same set).
func familyLabels(f *dto.MetricFamily) []string {
	seen := map[string]bool{}
	for _, m := range f.GetMetric() {
		for _, l := range m.GetLabel() {
			seen[l.GetName()] = true
		}
	}
	var out []string
	for l := range seen {
		out = append(out, l)
	}
	sort.Strings(out)
	return out
}

// checkAgainstTable checks a scrape both ways: every scraped gatehouse_*
// family is documented with its type and labels, and every documented
// one (every one that exists from the start, when atStart) was scraped.
func checkAgainstTable(t *testing.T, when string, doc map[string]documentedMetric, fams map[string]*dto.MetricFamily, atStart bool) {
	t.Helper()
	for name, f := range fams {
		d, ok := doc[name]
		if !ok {
			t.Errorf("%s: scraped %s is not in docs/operations.md", when, name)
			continue
		}
		if typ := familyType(f); typ != d.typ {
			t.Errorf("%s: %s is a %s; operations.md says %s", when, name, typ, d.typ)
		}
		if diff := cmp.Diff(d.labels, familyLabels(f)); diff != "" {
			t.Errorf("%s: %s labels (-documented +scraped):\n%s", when, name, diff)
		}
	}
	for name, d := range doc {
		if atStart && !d.atStart {
			continue
		}
		if _, ok := fams[name]; !ok {
			t.Errorf("%s: documented %s (series from start or load: %v) is not in the scrape", when, name, d.atStart)
		}
	}
}

// value returns the value of the series of family name whose labels
// include want, and whether there is one.
func value(fams map[string]*dto.MetricFamily, name string, want map[string]string) (float64, bool) {
	f, ok := fams[name]
	if !ok {
		return 0, false
	}
next:
	for _, m := range f.GetMetric() {
		have := map[string]string{}
		for _, l := range m.GetLabel() {
			have[l.GetName()] = l.GetValue()
		}
		for k, v := range want {
			if have[k] != v {
				continue next
			}
		}
		switch {
		case m.Counter != nil:
			return m.GetCounter().GetValue(), true
		case m.Gauge != nil:
			return m.GetGauge().GetValue(), true
		case m.Histogram != nil:
			return float64(m.GetHistogram().GetSampleCount()), true
		}
	}
	return 0, false
}

// TestDocumentedMetrics runs a gateway with the authorization server, the
// STS, and routes with a jwt authenticator finding its keys by discovery,
// an introspect authenticator, a rate limit, dlp, waf and a dead upstream.
// It scrapes the admin listener before any request and after traffic that
// reaches each metric, and holds docs/operations.md's table and the
// scrapes to each other both ways; then checks what the traffic counted,
// the route label of the token services, exemplars in OpenMetrics and
// (with promtool) the exposition's lint.
func TestDocumentedMetrics(t *testing.T) {
	doc := readMetricsTable(t)
	addr := freePort(t)
	base := "http://" + addr
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, `{"ok":true}`)
	}))
	defer up.Close()
	cfg := load(t, `
listeners:
  - {name: main, address: "`+addr+`"}
admin: {address: "127.0.0.1:0"}
store: {type: memory}
sts:
  issuer: `+base+`/sts
  insecure_plaintext_keys: true
  authentication:
    username_token: {text: allowed, users: [{username: alice, password: alice-password}]}
  subjects: [{subject: alice, roles: [reader]}]
  relying_parties: [{audience: "`+base+`"}]
authorization_server:
  issuer: `+base+`
  insecure_plaintext_keys: true
  clients:
    - client_id: svc
      secret: {env: SVC_SECRET}
      scopes: [products:read]
      audience: [products]
      grant_types: [client_credentials, urn:ietf:params:oauth:grant-type:token-exchange]
    - client_id: gw
      secret: {env: GW_SECRET}
      scopes: [products:read]
      audience: [products]
routes:
  - name: keyed
    match: {path: /keyed}
    upstream: {url: "${UP}"}
    policies:
      - authenticate:
          with:
            - jwt: {issuer: "`+base+`", oidc_discovery: true, audiences: [products], algorithms: [ES256], typ: at+jwt}
      - rate_limit: {key: ip, rate: 1000, per: 1s}
      - dlp: {credit_cards: {action: mask}}
  - name: introspected
    match: {path: /introspected}
    upstream: {url: "${UP}"}
    policies:
      - authenticate:
          with:
            - introspect: {endpoint: "`+base+`/oauth2/introspect", client_id: gw, client_secret: {env: GW_SECRET}}
  - name: guarded
    match: {path: /guarded}
    upstream: {url: "${UP}"}
    policies:
      - waf: {mode: block}
  - name: down
    match: {path: /down}
    upstream: {url: "http://127.0.0.1:1"}
`, map[string]string{"UP": up.URL, "SVC_SECRET": "svc-secret-0123456789", "GW_SECRET": "gw-secret-0123456789"})
	const traceID = "4bf92f3577b34da6a3ce929d0e0e4736"
	m := telemetry.NewMetrics()
	m.SetExemplarFunc(func(context.Context) (string, bool) { return traceID, true })
	g, err := New(cfg, Options{BaseDir: t.TempDir(), Registry: builtin.Registry(), Metrics: m,
		Logger: slog.New(slog.DiscardHandler), AccessLog: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	if err := g.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = g.Shutdown(ctx)
	})
	admin := "http://" + g.AdminAddr().String()

	// Before any request of ours (the jwt authenticator's discovery may
	// have reached the authorization server already).
	start, _, _ := scrape(t, admin, "")
	checkAgainstTable(t, "at start", doc, start, true)
	for _, kind := range telemetry.UpstreamErrorKinds {
		if v, ok := value(start, "gatehouse_upstream_errors_total", map[string]string{"route": "down", "kind": kind}); !ok || v != 0 {
			t.Errorf("at start: upstream errors of route down, kind %s: %v (present %v), want 0", kind, v, ok)
		}
	}
	if v, ok := value(start, "gatehouse_build_info", nil); v != 1 || !ok {
		t.Errorf("gatehouse_build_info = %v, want 1", v)
	}

	// Traffic that reaches every metric.
	post := func(path, user, pass string, form url.Values) (int, []byte) {
		t.Helper()
		req, _ := http.NewRequest("POST", base+path, strings.NewReader(form.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.SetBasicAuth(user, pass)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, b
	}
	get := func(path, token string) int {
		t.Helper()
		req, _ := http.NewRequest("GET", base+path, nil)
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return resp.StatusCode
	}
	code, body := post("/oauth2/token", "svc", "svc-secret-0123456789", url.Values{"grant_type": {"client_credentials"}, "scope": {"products:read"}, "audience": {"products"}})
	var tok struct {
		AccessToken string `json:"access_token"`
	}
	if err := json.Unmarshal(body, &tok); err != nil || code != 200 {
		t.Fatalf("client_credentials: %d %s", code, body)
	}
	if code, body := post("/oauth2/token", "svc", "not-the-secret-0123", url.Values{"grant_type": {"client_credentials"}}); code != 401 {
		t.Fatalf("a wrong secret: %d %s", code, body)
	}
	if code := get("/keyed", tok.AccessToken); code != 200 {
		t.Errorf("jwt route: %d", code)
	}
	if code := get("/keyed", ""); code != 401 {
		t.Errorf("jwt route without a token: %d", code)
	}
	if code := get("/introspected", tok.AccessToken); code != 200 {
		t.Errorf("introspect route: %d", code)
	}
	if code := get("/guarded?q=1'%20OR%20'1'='1'%20--", ""); code != 403 {
		t.Errorf("waf route with an injection: %d", code)
	}
	if code := get("/down", ""); code != 502 {
		t.Errorf("dead upstream: %d", code)
	}
	assertion := stsIssue(t, base)
	if code, body := post("/oauth2/token", "svc", "svc-secret-0123456789", url.Values{
		"grant_type":         {"urn:ietf:params:oauth:grant-type:token-exchange"},
		"subject_token":      {base64.RawURLEncoding.EncodeToString(assertion)},
		"subject_token_type": {"urn:ietf:params:oauth:token-type:saml2"},
		"scope":              {"products:read"}, "audience": {"products"},
	}); code != 200 {
		t.Fatalf("token exchange: %d %s", code, body)
	}

	after, text, _ := scrape(t, admin, "")
	checkAgainstTable(t, "after traffic", doc, after, false)
	for _, c := range []struct {
		name   string
		labels map[string]string
		want   float64
	}{
		{"gatehouse_authserver_tokens_issued_total", map[string]string{"grant": "client_credentials", "client": "svc"}, 1},
		{"gatehouse_authserver_tokens_issued_total", map[string]string{"grant": "urn:ietf:params:oauth:grant-type:token-exchange", "client": "svc"}, 1},
		{"gatehouse_authserver_client_auth_failures_total", map[string]string{"reason": "invalid_secret"}, 1},
		{"gatehouse_authserver_token_exchanges_total", map[string]string{"subject_token_type": "saml2", "outcome": "issued"}, 1},
		{"gatehouse_authserver_introspections_total", map[string]string{"result": "active"}, 1},
		{"gatehouse_sts_requests_total", map[string]string{"operation": "issue", "outcome": "success"}, 1},
		{"gatehouse_upstream_errors_total", map[string]string{"route": "down", "kind": "connect"}, 1},
		{"gatehouse_introspection_duration_seconds", map[string]string{"endpoint": base + "/oauth2/introspect", "result": "success"}, 1},
		{"gatehouse_requests_total", map[string]string{"route": "sts", "code": "200"}, 1},
		{"gatehouse_requests_total", map[string]string{"route": "authserver", "code": "401"}, 1},
	} {
		if v, _ := value(after, c.name, c.labels); v != c.want {
			t.Errorf("%s%v = %v, want %v", c.name, c.labels, v, c.want)
		}
	}
	// The token requests and the discovery and JWKS fetches are the
	// authorization server's, not requests that matched no route.
	if v, _ := value(after, "gatehouse_requests_total", map[string]string{"route": ""}); v != 0 {
		t.Errorf("%v requests counted under route \"\"", v)
	}
	if v, _ := value(after, "gatehouse_jwks_fetches_total", map[string]string{"source": base, "result": "success"}); v < 1 {
		t.Errorf("no successful key set fetch counted")
	}
	if v, _ := value(after, "gatehouse_jwks_fetch_duration_seconds", map[string]string{"source": base, "result": "success"}); v < 1 {
		t.Errorf("no successful key set fetch timed")
	}

	// OpenMetrics when asked, with the fixed trace id as exemplar of the
	// request latency.
	_, om, ct := scrape(t, admin, "application/openmetrics-text;version=1.0.0,text/plain;q=0.5")
	if !strings.HasPrefix(ct, "application/openmetrics-text") || !strings.HasSuffix(om, "# EOF\n") {
		t.Errorf("OpenMetrics asked for: Content-Type %q, ends %q", ct, om[max(0, len(om)-20):])
	}
	ex := regexp.MustCompile(`(?m)^gatehouse_request_duration_seconds_bucket\{[^}]*route="keyed"[^}]*\} \d+ # \{trace_id="` + traceID + `"\}`)
	if !ex.MatchString(om) {
		t.Errorf("no exemplar with trace id %s on route keyed's latency buckets", traceID)
	}
	if strings.Contains(text, "trace_id") {
		t.Error("the Prometheus text format carries exemplars")
	}

	t.Run("promtool", func(t *testing.T) {
		promtool := peertest.Debian(t, "promtool", "prometheus")
		cmd := exec.Command(promtool, "check", "metrics")
		cmd.Stdin = strings.NewReader(text)
		out, err := cmd.CombinedOutput()
		if err != nil || len(bytes.TrimSpace(out)) != 0 {
			t.Errorf("promtool check metrics: %v\n%s", err, out)
		}
	})
	if t.Failed() {
		var names []string
		for n := range after {
			names = append(names, n)
		}
		slices.Sort(names)
		t.Logf("scraped: %s", strings.Join(names, " "))
	}
}

// stsIssue gets a SAML assertion for alice from the gateway's STS
// (WS-Trust Issue, SOAP 1.2, UsernameToken).
func stsIssue(t *testing.T, base string) []byte {
	t.Helper()
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
	resp, err := http.Post(base+"/sts", "application/soap+xml; charset=utf-8", strings.NewReader(rst))
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	a := regexp.MustCompile(`(?s)<(\w+:)?Assertion\b.*</(\w+:)?Assertion>`).Find(body)
	if resp.StatusCode != http.StatusOK || a == nil {
		t.Fatalf("STS Issue: %d\n%s", resp.StatusCode, body)
	}
	return a
}

// TestTokenServiceRouteName: a route may not take the route label of a
// token service the config enables; with the service off it may.
func TestTokenServiceRouteName(t *testing.T) {
	const routes = `
routes:
  - name: sts
    match: {path: /x}
    upstream: {url: "http://127.0.0.1:1"}
`
	on := `
listeners: [{name: main, address: "127.0.0.1:0"}]
admin: {address: "off"}
store: {type: memory}
sts:
  issuer: http://127.0.0.1/sts
  insecure_plaintext_keys: true
  authentication:
    username_token: {text: allowed, users: [{username: alice, password: alice-password}]}
  subjects: [{subject: alice}]
  relying_parties: [{audience: "urn:x"}]
` + routes
	_, err := New(load(t, on, nil), Options{BaseDir: t.TempDir(), Registry: builtin.Registry(), Logger: slog.New(slog.DiscardHandler)})
	if err == nil || !strings.Contains(err.Error(), ":14:11:") || !strings.Contains(err.Error(), "routes[0].name") {
		t.Errorf("a route named sts beside the STS: %v, want an error at 14:11, routes[0].name", err)
	}
	off := "listeners: [{name: main, address: \"127.0.0.1:0\"}]\nadmin: {address: \"off\"}\nstore: {type: memory}\n" + routes
	g, err := New(load(t, off, nil), Options{BaseDir: t.TempDir(), Registry: builtin.Registry(), Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatalf("a route named sts without the STS: %v", err)
	}
	g.Close()
}
