package main

import (
	"bytes"
	"context"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/internal/authn"
	"github.com/gatehouse/gatehouse/internal/authn/apikey"
	"github.com/gatehouse/gatehouse/internal/policy"
	"github.com/gatehouse/gatehouse/internal/policy/policytest"
	"github.com/gatehouse/gatehouse/internal/store"
	"github.com/gatehouse/gatehouse/internal/store/redistest"
)

// TestAPIKeyStore: `apikey create --store` writes a key a store-backed
// authenticator on the same Redis accepts; `apikey delete` removes it.
func TestAPIKeyStore(t *testing.T) {
	srv := redistest.Start(t)
	prefix := "gh-test-" + t.Name() + ":"
	dir := t.TempDir()
	cfgPath := filepath.Join(dir, "gatehouse.yaml")
	cfg := `listeners: [{name: main, address: "127.0.0.1:0"}]
store: {type: redis, redis: {addresses: ["` + srv.Addr() + `"], key_prefix: "` + prefix + `"}}
routes:
  - name: r
    match: {path: /}
    upstream: {url: "http://127.0.0.1:1"}
`
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	var out, errb bytes.Buffer
	if code := cmdAPIKey([]string{"create", "--consumer", "cli-app", "--store", "--config", cfgPath, "--scopes", "a:read,b:write", "--tier", "gold"}, &out, &errb); code != 0 {
		t.Fatalf("create: %d %s", code, errb.String())
	}
	m := regexp.MustCompile(`(?m)^\s+(gh_[A-Za-z0-9_-]{43})$`).FindStringSubmatch(out.String())
	h := regexp.MustCompile(`sha256:[A-Za-z0-9_-]{43}`).FindString(out.String())
	if m == nil || h == "" {
		t.Fatalf("no key or hash in:\n%s", out.String())
	}
	st, err := store.NewRedis(store.RedisOptions{Addrs: []string{srv.Addr()}, KeyPrefix: prefix})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	env := policytest.Env()
	env.Store = st
	env.Now = time.Now
	a, err := apikey.New(policytest.Node(t, "store: {cache_ttl: 1ms, negative_ttl: 1ms}\n"), &authn.Env{Env: env, Realm: "api"})
	if err != nil {
		t.Fatal(err)
	}
	auth := func() (*policy.Principal, error) {
		r := httptest.NewRequest("GET", "/", nil)
		r.Header.Set("X-Api-Key", m[1])
		return a.Authenticate(context.Background(), policytest.Exchange(r))
	}
	pr, err := auth()
	if err != nil || pr.Consumer != "cli-app" || strings.Join(pr.Scopes, " ") != "a:read b:write" || pr.Claims["tier"] != "gold" {
		t.Fatalf("got %+v, %v", pr, err)
	}
	out.Reset()
	if code := cmdAPIKey([]string{"delete", "--hash", h, "--config", cfgPath}, &out, &errb); code != 0 {
		t.Fatalf("delete: %d %s", code, errb.String())
	}
	time.Sleep(5 * time.Millisecond) // past the 1ms cache_ttl
	if _, err := auth(); err == nil {
		t.Error("deleted key still accepted")
	}
	// Bad uses.
	for _, args := range [][]string{
		{"create", "--consumer", "x", "--store"},
		{"create", "--consumer", "x", "--tier", "gold"},
		{"delete", "--hash", h},
		{"create", "--consumer", "bad name", "--store", "--config", cfgPath},
	} {
		if code := cmdAPIKey(args, &out, &errb); code == 0 {
			t.Errorf("%v: exit 0", args)
		}
	}
}
