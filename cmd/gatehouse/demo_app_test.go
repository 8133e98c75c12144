package main

import (
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/gatehouse/gatehouse/internal/npmtest"
	"github.com/gatehouse/gatehouse/internal/peertest"
)

// TestDemoAppInBrowser runs `gatehouse demo` and, in headless chromium,
// opens its web application: redirected to the embedded authorization
// server's login page, alice logs in, sees her page, the page calls the
// products API with the same session, she logs out and opening the page
// again leads to the login page. The script is the session
// authenticator's (internal/authn/session/testdata/browser/login.mjs).
func TestDemoAppInBrowser(t *testing.T) {
	if testing.Short() {
		t.Skip("browser test: not in -short")
	}
	chromium := peertest.Debian(t, "chromium", "chromium")
	dir, err := filepath.Abs(filepath.Join("..", "..", "internal", "authn", "session", "testdata", "browser"))
	if err != nil {
		t.Fatal(err)
	}
	node := npmtest.Install(t, dir, map[string]string{"playwright-core": "1.65.1"})

	addr, adminAddr := freeAddr(t), freeAddr(t)
	p := start(t, "demo", "--listen", addr, "--admin-listen", adminAddr)
	base := "http://" + addr
	eventually(t, "demo up", func() string {
		if !strings.Contains(p.stdout.String(), "Press Ctrl-C") {
			return "no banner yet"
		}
		return ""
	})
	out := p.stdout.String()
	for _, want := range []string{base + "/app", "alice  password alice-demo-password", "bob    password bob-demo-password"} {
		if !strings.Contains(out, want) {
			t.Errorf("the banner does not say %q:\n%s", want, out)
		}
	}
	// Without a browser: an API call without a session is 401, a page is
	// redirected to the login.
	if code, _, err := do("GET", base+"/app", "", ""); err != nil || code != http.StatusUnauthorized {
		t.Errorf("GET /app as an API call: %d %v", code, err)
	}

	artifacts := os.Getenv("TEST_ARTIFACTS")
	if artifacts == "" {
		artifacts = t.TempDir()
	}
	shot := filepath.Join(artifacts, "demo-app.png")
	cmd := exec.Command(node, "login.mjs", base+"/app", base+"/product", base+"/app/logout",
		"alice", "alice-demo-password", "Hello alice, here are your products", shot)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "CHROMIUM="+chromium)
	res, err := cmd.Output()
	if err != nil {
		t.Fatalf("node login.mjs: %v\n%s", err, res)
	}
	t.Logf("browser: %s", res)
	fmt.Printf("demo app screenshot saved to %s\n", shot)
	var run struct {
		Errors        []string
		RedirectedTo  string
		Page, PageURL string
		API           struct {
			Status int
			Body   string
		}
		APIAfterLogout struct{ Status int }
		AgainAt        string
		Fatal          string
	}
	if err := json.Unmarshal(res, &run); err != nil {
		t.Fatalf("login.mjs output: %v\n%s", err, res)
	}
	if run.Fatal != "" {
		t.Fatalf("in the browser: %s", run.Fatal)
	}
	if !strings.HasPrefix(run.RedirectedTo, base+"/oauth2/") {
		t.Errorf("the app did not send the browser to the login page: %s", run.RedirectedTo)
	}
	if !strings.Contains(run.Page, "Hello alice, here are your products") || !strings.Contains(run.Page, "p-1001") {
		t.Errorf("alice's page: %q", run.Page)
	}
	if strings.Contains(run.Page, "4111 1111 1111 1111") {
		t.Errorf("the card number is not masked on the page: %q", run.Page)
	}
	if run.API.Status != http.StatusOK || !strings.Contains(run.API.Body, `"id":"p-1001"`) {
		t.Errorf("the page's API call: %+v", run.API)
	}
	if run.APIAfterLogout.Status != http.StatusUnauthorized {
		t.Errorf("the API call after logout: %+v", run.APIAfterLogout)
	}
	if !strings.HasPrefix(run.AgainAt, base+"/oauth2/") {
		t.Errorf("after logout the app is not sent to the login page: %s", run.AgainAt)
	}
	if len(run.Errors) > 0 {
		t.Errorf("page errors: %v", run.Errors)
	}
}
