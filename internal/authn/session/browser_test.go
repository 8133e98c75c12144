package session_test

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/gatehouse/gatehouse/internal/npmtest"
	"github.com/gatehouse/gatehouse/internal/peertest"
)

// PlaywrightVersion is the pinned playwright-core of testdata/browser.
const PlaywrightVersion = "1.65.1"

// BrowserRun is what testdata/browser/login.mjs saw.
type BrowserRun struct {
	Errors        []string
	Steps         []string
	RedirectedTo  string
	Page, PageURL string
	Cookies       []struct {
		Name, SameSite string
		HTTPOnly       bool `json:"httpOnly"`
		Secure         bool
		Path           string
	}
	API struct {
		Status int
		Body   string
	}
	AfterLogoutURL string
	APIAfterLogout struct{ Status int }
	AgainAt        string
	Fatal          string
}

// runBrowser logs user in at app in headless chromium (see login.mjs).
func runBrowser(t *testing.T, app, api, logout, user, password, expect string) BrowserRun {
	t.Helper()
	if testing.Short() {
		t.Skip("browser test: not in -short")
	}
	chromium := peertest.Debian(t, "chromium", "chromium")
	dir, err := filepath.Abs(filepath.Join("testdata", "browser"))
	if err != nil {
		t.Fatal(err)
	}
	node := npmtest.Install(t, dir, map[string]string{"playwright-core": PlaywrightVersion})
	artifacts := os.Getenv("TEST_ARTIFACTS")
	if artifacts == "" {
		artifacts = t.TempDir()
	}
	shot := filepath.Join(artifacts, "session-login.png")
	cmd := exec.Command(node, "login.mjs", app, api, logout, user, password, expect, shot)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "CHROMIUM="+chromium)
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("node login.mjs: %v\n%s", err, out)
	}
	var run BrowserRun
	if err := json.Unmarshal(out, &run); err != nil {
		t.Fatalf("login.mjs output: %v\n%s", err, out)
	}
	t.Logf("browser: %s (screenshot %s)", out, shot)
	if run.Fatal != "" {
		t.Fatalf("in the browser: %s", run.Fatal)
	}
	return run
}

// A real chromium logs in through node-oidc-provider.
func TestLoginInBrowser(t *testing.T) {
	f := start(t)
	run := runBrowser(t, f.gw1+"/app", f.gw1+"/api/products", f.gw1+"/oauth2/logout", "alice", "alice-password", "Hello alice")
	if !strings.HasPrefix(run.RedirectedTo, f.idp.Issuer+"/") {
		t.Errorf("the page was not redirected to the provider: %s", run.RedirectedTo)
	}
	if run.Page != "Hello alice at /app" || run.PageURL != f.gw1+"/app" {
		t.Errorf("the page after login: %q at %s", run.Page, run.PageURL)
	}
	found := false
	for _, c := range run.Cookies {
		if c.Name == "gatehouse_session" {
			found = true
			if !c.HTTPOnly || c.SameSite != "Lax" || c.Path != "/" {
				t.Errorf("session cookie %+v", c)
			}
		}
	}
	if !found {
		t.Errorf("no session cookie in %+v", run.Cookies)
	}
	if run.API.Status != 200 || run.API.Body != "Hello alice at /api/products" {
		t.Errorf("the API call from the page: %+v", run.API)
	}
	if run.APIAfterLogout.Status != 401 {
		t.Errorf("the API call after logout: %+v", run.APIAfterLogout)
	}
	if !strings.HasPrefix(run.AgainAt, f.idp.Issuer+"/") {
		t.Errorf("after logout, the page is not redirected to the login: %s", run.AgainAt)
	}
	if len(run.Errors) > 0 {
		t.Errorf("page errors: %v", run.Errors)
	}
}
