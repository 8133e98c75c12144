package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/internal/audit"
	"github.com/gatehouse/gatehouse/internal/authn/oidcpeer"
	"github.com/gatehouse/gatehouse/internal/builtin"
	"github.com/gatehouse/gatehouse/internal/config"
	"github.com/gatehouse/gatehouse/internal/gateway"
)

// A gateway trusts node-oidc-provider with jwks_refresh 1h; the provider
// rotates its key, withdrawing the old one. `gatehouse keys refresh`,
// through the admin API with its token, makes the old key's (cached)
// token refused at once; without the token the admin API refuses.
func TestKeysRefreshWithdrawsAtOnce(t *testing.T) {
	idp := oidcpeer.Start(t)
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "ok") }))
	defer up.Close()
	const adminToken = "admin-token-for-the-test"
	cfg, err := config.LoadBytes("gw.yaml", []byte(fmt.Sprintf(`
listeners: [{address: "127.0.0.1:0"}]
admin: {address: "127.0.0.1:0", token: %q}
access_log: {disabled: true}
store: {type: memory}
routes:
  - name: api
    match: {path_prefix: /}
    upstream: {url: %q}
    policies:
      - authenticate:
          realm: api
          with:
            - jwt:
%s
`, adminToken, up.URL, indentLines(idp.JWTConfig("jwks_refresh: 1h"), "                "))), nil)
	if err != nil {
		t.Fatal(err)
	}
	g, err := gateway.New(cfg, gateway.Options{Registry: builtin.Registry(), Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	defer g.Close()
	gw := httptest.NewServer(g)
	defer gw.Close()
	adm := httptest.NewServer(g.AdminHandler())
	defer adm.Close()

	call := func(tok string) (int, string) {
		t.Helper()
		req, _ := http.NewRequest("GET", gw.URL+"/products", nil)
		req.Header.Set("Authorization", "Bearer "+tok)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		return resp.StatusCode, resp.Header.Get("Www-Authenticate")
	}
	old := idp.Token(t, oidcpeer.JWTResource)
	for range 2 {
		if code, _ := call(old); code != 200 {
			t.Fatalf("before the rotation: %d", code)
		}
	}
	idp.Rotate(t)
	if code, _ := call(old); code != 200 {
		t.Fatalf("before the refresh the cached token is still good (jwks_refresh 1h): %d; the test would prove nothing", code)
	}

	var stdout, stderr bytes.Buffer
	t.Setenv("GATEHOUSE_ADMIN_TOKEN", "")
	if code := run([]string{"keys", "refresh", "--admin", adm.URL}, &stdout, &stderr); code != 1 || !strings.Contains(stderr.String(), "needs a token") {
		t.Fatalf("without the admin token: exit %d\n%s%s", code, &stdout, &stderr)
	}
	if code, _ := call(old); code != 200 {
		t.Fatalf("a refused refresh refreshed: %d", code)
	}
	stdout.Reset()
	stderr.Reset()
	if code := run([]string{"keys", "refresh", "--admin", adm.URL, "--token", adminToken}, &stdout, &stderr); code != 0 {
		t.Fatalf("keys refresh: exit %d\n%s%s", code, &stdout, &stderr)
	}
	if !strings.Contains(stdout.String(), idp.Issuer+"/jwks") || !strings.Contains(stdout.String(), "refreshed") {
		t.Errorf("output:\n%s", &stdout)
	}
	code, ch := call(old)
	if code != 401 || !strings.HasPrefix(ch, `Bearer realm="api", error="invalid_token"`) {
		t.Fatalf("the withdrawn key's token after keys refresh: %d %q", code, ch)
	}
	if code, _ := call(idp.Token(t, oidcpeer.JWTResource)); code != 200 {
		t.Fatalf("a token of the new key: %d", code)
	}

	// The admin action directly, as JSON, and its audit record.
	req, _ := http.NewRequest("POST", adm.URL+"/api/v1/keys/refresh", nil)
	req.Header.Set("Authorization", "Bearer "+adminToken)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var out struct {
		Result  string `json:"result"`
		KeySets []struct {
			Source string `json:"source"`
			Keys   int    `json:"keys"`
			Error  string `json:"error"`
		} `json:"key_sets"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil || resp.StatusCode != 200 {
		t.Fatalf("%d %v", resp.StatusCode, err)
	}
	if out.Result != "refreshed" || len(out.KeySets) != 1 || out.KeySets[0].Source != idp.Issuer+"/jwks" || out.KeySets[0].Keys != 1 || out.KeySets[0].Error != "" {
		t.Errorf("answer %+v", out)
	}
	if evs := g.Audit().Recent(audit.Filter{Kind: audit.AdminAction}, 0); !hasAction(evs, "keys.refresh") {
		t.Errorf("no keys.refresh admin action audited: %+v", evs)
	}
}

func hasAction(evs []audit.Event, action string) bool {
	for _, e := range evs {
		if e.Action == action && e.Result == "success" {
			return true
		}
	}
	return false
}

func indentLines(s, by string) string {
	return by + strings.ReplaceAll(strings.TrimRight(s, "\n"), "\n", "\n"+by)
}

// `serve` refreshes every key set on SIGUSR2, for gateways whose admin
// API is off.
func TestServeRefreshesKeysOnSIGUSR2(t *testing.T) {
	var hits atomic.Int32
	jwks := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		io.WriteString(w, `{"keys":[{"kty":"EC","crv":"P-256","kid":"k1","use":"sig","alg":"ES256",`+
			`"x":"MKBCTNIcKUSDii11ySs3526iDZ8AiTo7Tu6KPAqv7D4","y":"4Etl6SRW2YiLUrN5vfvVHuhp7x8PxltmWWlbbM4IFyM"}]}`)
	}))
	defer jwks.Close()
	addr := freeAddr(t)
	cfgFile := filepath.Join(t.TempDir(), "gatehouse.yaml")
	writeFile(t, cfgFile, fmt.Sprintf(`
listeners: [{name: main, address: "%s"}]
admin: {address: "off"}
access_log: {disabled: true}
routes:
  - name: r
    match: {path: /r}
    upstream: {url: "http://127.0.0.1:1"}
    policies:
      - authenticate:
          with:
            - jwt: {issuer: https://idp.test, audiences: [api], algorithms: [ES256], jwks_url: "%s/keys", jwks_refresh: 1h}
`, addr, jwks.URL))
	p := start(t, "serve", "--config", cfgFile)
	eventually(t, "the first key fetch", func() string {
		if hits.Load() < 1 {
			return "no fetch yet"
		}
		return ""
	})
	before := hits.Load()
	if err := p.cmd.Process.Signal(syscall.SIGUSR2); err != nil {
		t.Fatal(err)
	}
	eventually(t, "a refresh on SIGUSR2", func() string {
		if hits.Load() <= before || !strings.Contains(p.stderr.String(), "key set refreshed") {
			return fmt.Sprintf("%d fetches, log:\n%s", hits.Load(), p.stderr.String())
		}
		return ""
	})
}

// Reloads of the gateway, more frequent than jwks_refresh, do not extend
// a withdrawn key's life: the key source (shared through the reloads)
// keeps its schedule, and the token signed by the withdrawn key is
// refused within the bound.
func TestReloadsDoNotExtendAWithdrawnKey(t *testing.T) {
	idp := oidcpeer.Start(t)
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "ok") }))
	defer up.Close()
	src := []byte(fmt.Sprintf(`
listeners: [{address: "127.0.0.1:0"}]
admin: {address: "off"}
access_log: {disabled: true}
store: {type: memory}
routes:
  - name: api
    match: {path_prefix: /}
    upstream: {url: %q}
    policies:
      - authenticate:
          realm: api
          with:
            - jwt:
%s
`, up.URL, indentLines(idp.JWTConfig("jwks_refresh: 2s", "fetch_timeout: 2s"), "                ")))
	load := func() *config.Config {
		cfg, err := config.LoadBytes("gw.yaml", src, nil)
		if err != nil {
			t.Fatal(err)
		}
		return cfg
	}
	g, err := gateway.New(load(), gateway.Options{Registry: builtin.Registry(), Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	defer g.Close()
	gw := httptest.NewServer(g)
	defer gw.Close()
	call := func(tok string) int {
		req, _ := http.NewRequest("GET", gw.URL+"/products", nil)
		req.Header.Set("Authorization", "Bearer "+tok)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	old := idp.Token(t, oidcpeer.JWTResource)
	if code := call(old); code != 200 {
		t.Fatalf("before the rotation: %d", code)
	}
	idp.Rotate(t)
	deadline := time.Now().Add(60 * time.Second)
	reloads := 0
	for call(old) == 200 {
		if time.Now().After(deadline) {
			t.Fatalf("the withdrawn key's token still accepted after %d reloads", reloads)
		}
		if err := g.Reload(load()); err != nil {
			t.Fatal(err)
		}
		reloads++
		time.Sleep(100 * time.Millisecond)
	}
	if code := call(idp.Token(t, oidcpeer.JWTResource)); code != 200 {
		t.Fatalf("a token of the new key: %d", code)
	}
	t.Logf("withdrawn after %d reloads", reloads)
}
