package gateway

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/internal/admin"
	"github.com/gatehouse/gatehouse/internal/audit"
	"github.com/gatehouse/gatehouse/internal/builtin"
	"github.com/gatehouse/gatehouse/internal/config"
)

func freePort(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

func sha256Hex(s string) string {
	sum := sha256.Sum256([]byte(s))
	return "sha256:" + hex.EncodeToString(sum[:])
}

const adminToken = "admin-token-for-tests-0123456789"

// auditGateway runs a gateway with the authorization server, a route that
// trusts its tokens, an apikey route and the audit log in a file; the
// admin API needs adminToken.
type auditGateway struct {
	g          *Gateway
	base       string
	admin      string
	auditPath  string
	configPath string
}

func startAuditGateway(t *testing.T) *auditGateway {
	t.Helper()
	upstream := echoUpstream(t)
	addr, adminAddr := freePort(t), freePort(t)
	dir := t.TempDir()
	issuer := "http://" + addr
	doc := `
listeners: [{name: public, address: "` + addr + `"}]
admin:
  address: "` + adminAddr + `"
  token: ` + adminToken + `
access_log: {disabled: true}
store: {type: memory}
audit:
  output: audit.log
  max_size: 1MiB
authorization_server:
  issuer: ` + issuer + `
  insecure_plaintext_keys: true
  clients:
    - client_id: reader
      secret_hash: ` + sha256Hex("reader-secret-value-1234") + `
      scopes: [products:read]
      audience: [gatehouse-test]
routes:
  - name: products
    match: {path: /product}
    upstream: {url: ` + upstream.URL + `}
    policies:
      - ipfilter: {allow: [127.0.0.0/8]}
      - authenticate:
          with:
            - jwt:
                issuer: ` + issuer + `
                oidc_discovery: true
                audiences: [gatehouse-test]
                algorithms: [ES256]
                typ: at+jwt
      - scopes:
          methods: {GET: [products:read], POST: [products:write]}
`
	path := filepath.Join(dir, "gatehouse.yaml")
	if err := os.WriteFile(path, []byte(doc), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := config.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	g, err := New(cfg, Options{
		Registry: builtin.Registry(), BaseDir: dir,
		Logger: slog.New(slog.DiscardHandler),
		Load:   func() (*config.Config, error) { return config.Load(path) },
	})
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	if err := g.Start(); err != nil {
		t.Fatalf("Start: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		g.Shutdown(ctx)
	})
	return &auditGateway{g: g, base: "http://" + addr, admin: "http://" + g.AdminAddr().String(), auditPath: filepath.Join(dir, "audit.log"), configPath: path}
}

func send(t *testing.T, method, url, auth string, body io.Reader, contentType string) (*http.Response, []byte) {
	t.Helper()
	req, err := http.NewRequest(method, url, body)
	if err != nil {
		t.Fatal(err)
	}
	if auth != "" {
		req.Header.Set("Authorization", auth)
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	resp, err := (&http.Client{Timeout: 5 * time.Second}).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, b
}

func (ag *auditGateway) token(t *testing.T, secret string) (int, string) {
	t.Helper()
	form := url.Values{"grant_type": {"client_credentials"}, "client_id": {"reader"}, "client_secret": {secret}}
	resp, b := send(t, "POST", ag.base+"/oauth2/token", "", strings.NewReader(form.Encode()), "application/x-www-form-urlencoded")
	var tr struct {
		AccessToken string `json:"access_token"`
	}
	json.Unmarshal(b, &tr)
	return resp.StatusCode, tr.AccessToken
}

func readAudit(t *testing.T, path string) ([]audit.Event, string) {
	t.Helper()
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var out []audit.Event
	sc := bufio.NewScanner(bytes.NewReader(raw))
	for sc.Scan() {
		var e audit.Event
		dec := json.NewDecoder(bytes.NewReader(sc.Bytes()))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&e); err != nil {
			t.Fatalf("audit line %q: %v", sc.Text(), err)
		}
		out = append(out, e)
	}
	return out, string(raw)
}

func find(evs []audit.Event, f func(e audit.Event) bool) (audit.Event, bool) {
	for _, e := range evs {
		if f(e) {
			return e, true
		}
	}
	return audit.Event{}, false
}

// TestAuditLogEventsAndNoSecrets drives every event kind the gateway and
// the authorization server record through a running gateway, with real
// tokens and secrets flowing through denials, then checks each line's
// fields and that no token, secret or key is anywhere in the file.
func TestAuditLogEventsAndNoSecrets(t *testing.T) {
	ag := startAuditGateway(t)
	const badSecret = "wrong-secret-value-9876543210"
	if code, _ := ag.token(t, badSecret); code != http.StatusUnauthorized {
		t.Fatalf("token with a wrong secret: got %d, want 401", code)
	}
	code, tok := ag.token(t, "reader-secret-value-1234")
	if code != http.StatusOK || tok == "" {
		t.Fatalf("token: got %d", code)
	}
	resp, _ := send(t, "GET", ag.base+"/product", "", nil, "")
	noCredsID := resp.Header.Get("X-Request-Id")
	if resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("no token: got %d, want 401", resp.StatusCode)
	}
	tampered := tok[:len(tok)-4] + "AAAA"
	resp, _ = send(t, "GET", ag.base+"/product", "Bearer "+tampered, nil, "")
	tamperedID := resp.Header.Get("X-Request-Id")
	if resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("tampered token: got %d, want 401", resp.StatusCode)
	}
	resp, _ = send(t, "POST", ag.base+"/product", "Bearer "+tok, strings.NewReader(`{"name":"x"}`), "application/json")
	scopeID := resp.Header.Get("X-Request-Id")
	if resp.StatusCode != http.StatusForbidden {
		t.Fatalf("insufficient scope: got %d, want 403", resp.StatusCode)
	}
	resp, _ = send(t, "GET", ag.base+"/product", "Bearer "+tok, nil, "")
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("good token: got %d, want 200", resp.StatusCode)
	}

	// Admin actions: revoke the token whole, rotate, reload.
	bearer := "Bearer " + adminToken
	resp, b := send(t, "POST", ag.admin+"/api/v1/tokens/revoke", bearer, strings.NewReader(`{"token":"`+tok+`"}`), "application/json")
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("admin revoke: got %d %s", resp.StatusCode, b)
	}
	var revoked admin.Revoked
	json.Unmarshal(b, &revoked)
	resp, _ = send(t, "GET", ag.base+"/product", "Bearer "+tok, nil, "")
	revokedID := resp.Header.Get("X-Request-Id")
	if resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("revoked token: got %d, want 401", resp.StatusCode)
	}
	if resp, b := send(t, "POST", ag.admin+"/api/v1/keys/rotate", bearer, nil, ""); resp.StatusCode != http.StatusOK {
		t.Fatalf("rotate: got %d %s", resp.StatusCode, b)
	}
	if resp, b := send(t, "POST", ag.admin+"/api/v1/reload", bearer, nil, ""); resp.StatusCode != http.StatusOK {
		t.Fatalf("reload: got %d %s", resp.StatusCode, b)
	}
	if err := ag.g.Audit().Close(); err != nil { // flush nothing, but stop writing
		t.Fatal(err)
	}

	evs, raw := readAudit(t, ag.auditPath)
	is := func(k audit.Kind) func(audit.Event) bool { return func(e audit.Event) bool { return e.Kind == k } }
	checks := []struct {
		name  string
		match func(audit.Event) bool
		check func(t *testing.T, e audit.Event)
	}{
		{"client auth failure at the token endpoint", func(e audit.Event) bool { return e.Kind == audit.AuthFailure && e.ClientID == "reader" }, func(t *testing.T, e audit.Event) {
			if e.Code != "invalid_client" || e.Status != 401 || e.RequestID == "" || e.ClientIP.String() != "127.0.0.1" {
				t.Errorf("got %+v", e)
			}
		}},
		{"token issue", is(audit.TokenIssue), func(t *testing.T, e audit.Event) {
			if e.ClientID != "reader" || e.JTI == "" || e.KeyID == "" || e.Expires.IsZero() || e.RequestID == "" {
				t.Errorf("got %+v", e)
			}
		}},
		{"no credentials", func(e audit.Event) bool { return e.RequestID == noCredsID }, func(t *testing.T, e audit.Event) {
			if e.Kind != audit.AuthFailure || e.Route != "products" || e.Policy != "authenticate" || e.Status != 401 || e.Code == "" || e.ClientIP.String() != "127.0.0.1" {
				t.Errorf("got %+v", e)
			}
		}},
		{"tampered token", func(e audit.Event) bool { return e.RequestID == tamperedID }, func(t *testing.T, e audit.Event) {
			if e.Kind != audit.AuthFailure || e.Code != "invalid_token" {
				t.Errorf("got %+v", e)
			}
		}},
		{"insufficient scope", func(e audit.Event) bool { return e.RequestID == scopeID }, func(t *testing.T, e audit.Event) {
			if e.Kind != audit.Denial || e.Policy != "scopes" || e.Code != "insufficient_scope" || e.Status != 403 || e.Principal != "reader" {
				t.Errorf("got %+v", e)
			}
		}},
		{"revoked token refused", func(e audit.Event) bool { return e.RequestID == revokedID }, func(t *testing.T, e audit.Event) {
			if e.Kind != audit.AuthFailure || e.Status != 401 {
				t.Errorf("got %+v", e)
			}
		}},
		{"token revoke", is(audit.TokenRevoke), func(t *testing.T, e audit.Event) {
			if e.JTI == "" || e.JTI != revoked.JTI || e.Result != "success" || e.Action != "tokens.revoke" {
				t.Errorf("got %+v (revoked %+v)", e, revoked)
			}
		}},
		{"key rotation", is(audit.KeyRotation), func(t *testing.T, e audit.Event) {
			if e.KeyID == "" || e.Result != "success" {
				t.Errorf("got %+v", e)
			}
		}},
		{"config reload", is(audit.ConfigReload), func(t *testing.T, e audit.Event) {
			if e.Result != "success" {
				t.Errorf("got %+v", e)
			}
		}},
		{"admin actions", func(e audit.Event) bool { return e.Kind == audit.AdminAction && e.Action == "reload" }, func(t *testing.T, e audit.Event) {
			if e.Result != "success" || e.Principal != "admin-token" {
				t.Errorf("got %+v", e)
			}
		}},
	}
	for _, c := range checks {
		t.Run(c.name, func(t *testing.T) {
			e, ok := find(evs, c.match)
			if !ok {
				t.Fatalf("no such event in\n%s", raw)
			}
			if e.Time.IsZero() {
				t.Errorf("no time: %+v", e)
			}
			c.check(t, e)
		})
	}
	for _, action := range []string{"tokens.revoke", "keys.rotate", "reload"} {
		if _, ok := find(evs, func(e audit.Event) bool { return e.Kind == audit.AdminAction && e.Action == action }); !ok {
			t.Errorf("no admin_action %s", action)
		}
	}

	t.Run("no secret or token in the file", func(t *testing.T) {
		parts := strings.Split(tok, ".")
		for name, s := range map[string]string{
			"token": tok, "tampered token": tampered, "token signature": parts[2], "token payload": parts[1],
			"client secret": "reader-secret-value-1234", "wrong secret": badSecret, "admin token": adminToken,
		} {
			if strings.Contains(raw, s) {
				t.Errorf("the audit log contains the %s", name)
			}
		}
	})

	t.Run("explain a denial", func(t *testing.T) {
		resp, b := send(t, "GET", ag.admin+"/api/v1/decisions/"+scopeID, bearer, nil, "")
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("got %d %s", resp.StatusCode, b)
		}
		var d admin.Decision
		if err := json.Unmarshal(b, &d); err != nil {
			t.Fatal(err)
		}
		var verdicts []string
		for _, p := range d.Policies {
			verdicts = append(verdicts, p.Policy+"="+p.Verdict)
		}
		got := strings.Join(verdicts, " ")
		if want := "ipfilter=allow authenticate=allow scopes=deny"; got != want || d.Route != "products" || d.Decision != "deny" ||
			d.Code != "insufficient_scope" || d.Status != 403 || d.Source != "memory" || d.Cause == "" || d.Method != "POST" {
			t.Errorf("got %s %+v, want %s", got, d, want)
		}
		if strings.Contains(string(b), tok) {
			t.Error("the explanation contains the token")
		}
		resp, _ = send(t, "GET", ag.admin+"/api/v1/decisions/no-such-request", bearer, nil, "")
		if resp.StatusCode != http.StatusNotFound {
			t.Errorf("unknown id: got %d, want 404", resp.StatusCode)
		}
	})

	t.Run("admin API needs the token", func(t *testing.T) {
		for _, auth := range []string{"", "Bearer wrong-token-wrong-token", "Basic " + adminToken} {
			resp, _ := send(t, "GET", ag.admin+"/api/v1/config", auth, nil, "")
			if resp.StatusCode != http.StatusUnauthorized {
				t.Errorf("auth %q: got %d, want 401", auth, resp.StatusCode)
			}
		}
		resp, b := send(t, "GET", ag.admin+"/api/v1/config", bearer, nil, "")
		if resp.StatusCode != http.StatusOK || strings.Contains(string(b), adminToken) || !strings.Contains(string(b), "[redacted]") {
			t.Errorf("config: got %d %s", resp.StatusCode, b)
		}
		// Probes and scrapers stay open.
		if resp, _ := send(t, "GET", ag.admin+"/healthz", "", nil, ""); resp.StatusCode != http.StatusOK {
			t.Errorf("healthz: got %d", resp.StatusCode)
		}
	})
}

// TestAdminRefusesPublicAddressWithoutAuth: the load refuses it with the
// file and line, and so does Start for a config changed in code.
func TestAdminRefusesPublicAddressWithoutAuth(t *testing.T) {
	doc := `
listeners: [{address: "127.0.0.1:0"}]
admin:
  address: "0.0.0.0:0"
routes:
  - name: a
    match: {path: /a}
    upstream: {url: "http://127.0.0.1:1"}
`
	_, err := config.LoadBytes("gw.yaml", []byte(doc), nil)
	if err == nil || !strings.Contains(err.Error(), "gw.yaml:4:") || !strings.Contains(err.Error(), "admin.address") {
		t.Fatalf("load: got %v, want an error at gw.yaml:4 admin.address", err)
	}
	withToken := strings.Replace(doc, `address: "0.0.0.0:0"`, `{address: "0.0.0.0:0", token: "`+adminToken+`"}`, 1)
	withToken = strings.Replace(withToken, "admin:\n  {", "admin: {", 1)
	if _, err := config.LoadBytes("gw.yaml", []byte(withToken), nil); err != nil {
		t.Fatalf("with a token: %v", err)
	}

	cfg := load(t, strings.Replace(doc, "0.0.0.0:0", "127.0.0.1:0", 1), nil)
	cfg.Admin.Address = "0.0.0.0:0"
	g, err := New(cfg, Options{BaseDir: t.TempDir(), Registry: builtin.Registry(), Logger: slog.New(slog.DiscardHandler), AccessLog: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	defer g.Close()
	if err := g.Start(); err == nil || !strings.Contains(err.Error(), "admin.address") {
		t.Fatalf("Start: got %v, want a refusal naming admin.address", err)
	}
}

// TestDecisionRing: a full ring keeps the newest records only, and
// Evaluate decides without recording.
func TestDecisionRing(t *testing.T) {
	cfg := load(t, `
listeners: [{address: "127.0.0.1:0"}]
admin: {address: "127.0.0.1:0", decision_history: 4}
access_log: {disabled: true}
store: {type: memory}
routes:
  - name: closed
    match: {path: /closed}
    upstream: {url: "http://127.0.0.1:1"}
    policies:
      - ipfilter: {deny: [127.0.0.0/8]}
`, nil)
	g, err := New(cfg, Options{BaseDir: t.TempDir(), Registry: builtin.Registry(), Logger: slog.New(slog.DiscardHandler), Audit: audit.Discard()})
	if err != nil {
		t.Fatal(err)
	}
	defer g.Close()
	var ids []string
	for range 6 {
		req, _ := http.NewRequest("GET", "http://localhost/closed", nil)
		req.RemoteAddr = "127.0.0.1:5000"
		rec := &discardWriter{h: http.Header{}}
		g.ServeHTTP(rec, req)
		ids = append(ids, rec.h.Get("X-Request-Id"))
	}
	b := adminBackend{g}
	for i, id := range ids {
		_, got := b.Decision(id)
		if want := i >= 2; got != want {
			t.Errorf("request %d held: got %v, want %v", i, got, want)
		}
	}
	if got := len(b.Decisions(admin.DecisionFilter{Decision: "deny"}, 100)); got != 4 {
		t.Errorf("denials held: got %d, want 4", got)
	}
	if s := b.Stats(); s.TotalDenied != 6 || s.TotalByCode["ip_denied"] != 6 {
		t.Errorf("stats: got %d denied, by code %v", s.TotalDenied, s.TotalByCode)
	}
	req, _ := http.NewRequest("GET", "http://localhost/closed", nil)
	req.RemoteAddr = "127.0.0.1:5000"
	d := g.Evaluate(req)
	if d.Decision != "deny" || d.Code != "ip_denied" || d.Status != 403 || len(d.Policies) != 1 {
		t.Errorf("Evaluate: got %+v", d)
	}
	if _, held := b.Decision(d.RequestID); held {
		t.Error("Evaluate recorded its decision")
	}
}
