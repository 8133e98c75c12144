package authserver

import (
	"bufio"
	"net/http"
	"net/url"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/internal/authn/oidcpeer"
	"github.com/gatehouse/gatehouse/internal/npmtest"
	"github.com/gatehouse/gatehouse/internal/store"
	"github.com/gatehouse/gatehouse/internal/store/redistest"
)

// startUpstream runs node-oidc-provider (testdata/upstreamidp) as the
// corporate IdP and returns its issuer.
func startUpstream(t *testing.T) string {
	t.Helper()
	dir, _ := filepath.Abs(filepath.Join("testdata", "upstreamidp"))
	node := npmtest.Install(t, dir, map[string]string{"oidc-provider": oidcpeer.Version})
	cmd := exec.Command(node, "upstream.mjs")
	cmd.Dir = dir
	stdin, _ := cmd.StdinPipe()
	stdout, _ := cmd.StdoutPipe()
	var stderr strings.Builder
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		stdin.Close()
		done := make(chan struct{})
		go func() { cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			cmd.Process.Kill()
			<-done
		}
	})
	lines := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			if iss, ok := strings.CutPrefix(sc.Text(), "ISSUER "); ok {
				lines <- iss
			}
		}
		close(lines)
	}()
	select {
	case iss, ok := <-lines:
		if !ok {
			t.Fatalf("upstream exited: %s", stderr.String())
		}
		return iss
	case <-time.After(60 * time.Second):
		t.Fatal("upstream did not start within 60s")
	}
	return ""
}

// newFedEnv starts the AS federated to upstream (issuer given, so that a
// test can name another one), with or without the users file, and
// registers its callback at the upstream.
func newFedEnv(t *testing.T, upstream, issuer string, withUsers bool, opts ...func(*env)) *env {
	t.Helper()
	fed := "  login:\n    federation:\n      issuer: " + issuer + "\n      client_id: gatehouse\n      client_secret: gatehouse-secret\n" +
		"      scopes: [openid, email, profile, roles]\n      claims: {sub: employee_id, username: upn, groups: roles}\n      button_label: Sign in with Corp\n"
	var e *env
	if withUsers {
		e = newLoginEnv(t, fed, opts...)
	} else {
		section := strings.Replace(loginSection(t, fed), "  users_file: users.yaml\n", "", 1)
		e = newEnv(t, section, opts...)
	}
	resp, err := http.Post(upstream+"/__client?redirect_uri="+url.QueryEscape(e.issuer+DefaultFederationCallback), "text/plain", nil)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("registering at the upstream: %v %v", err, resp)
	}
	resp.Body.Close()
	return e
}

// toUpstream starts an authorization at the AS and follows it to the
// upstream's login form; it returns the form's URL.
func (b *browser) toUpstream(t *testing.T, viaButton bool, tamper func(*url.URL)) string {
	t.Helper()
	p := b.get(b.e.authzURL("web", webRedirect, verifierA, "scope", "openid profile email groups products:read"))
	if viaButton {
		if p.status != http.StatusOK || !strings.Contains(p.body, "Sign in with Corp") || strings.Contains(p.body, "<script") {
			t.Fatalf("login page: %d %s", p.status, p.body)
		}
		// The federation form's POST is answered with a redirect to the
		// upstream, which form-action must allow.
		if csp := p.header.Get("Content-Security-Policy"); !strings.Contains(csp, "form-action 'self' http://127.0.0.1:9 "+originOf(b.e.srv.s.login.fed.issuer)+";") {
			t.Fatalf("CSP %q does not allow the upstream as a form target", csp)
		}
		p = b.post(b.e.issuer+PathLogin, url.Values{"tx": {b.tx}, "csrf": {b.cs}, "method": {"federation"}})
	}
	if p.status != http.StatusSeeOther {
		t.Fatalf("not sent upstream: %d %s", p.status, p.body)
	}
	u := p.location(t)
	if tamper != nil {
		tamper(u)
	}
	for range 5 { // the upstream's own redirects to its interaction page
		p = b.get(u.String())
		if p.status == http.StatusOK {
			return u.String()
		}
		if p.status != http.StatusSeeOther && p.status != http.StatusFound {
			t.Fatalf("upstream: %d %s", p.status, p.body)
		}
		u = u.ResolveReference(p.location(t))
	}
	t.Fatal("no upstream login form")
	return ""
}

// upstreamLogin posts the upstream's form and follows its redirects back
// to the AS's callback; it returns the callback URL (not yet visited).
func (b *browser) upstreamLogin(t *testing.T, form string, f url.Values) *url.URL {
	t.Helper()
	p := b.post(form, f)
	u, _ := url.Parse(form)
	for range 5 {
		if p.status != http.StatusSeeOther && p.status != http.StatusFound {
			t.Fatalf("upstream login: %d %s", p.status, p.body)
		}
		u = u.ResolveReference(p.location(t))
		if strings.HasPrefix(u.String(), b.e.issuer+DefaultFederationCallback) {
			return u
		}
		p = b.get(u.String())
	}
	t.Fatal("the upstream never sent the browser back")
	return nil
}

func TestFederation(t *testing.T) {
	upstream := startUpstream(t)

	t.Run("full chain with mapped claims", func(t *testing.T) {
		fedChain(t, newFedEnv(t, upstream, upstream, true))
	})

	t.Run("redis store", func(t *testing.T) {
		rs := redistest.Start(t)
		st, err := store.NewRedis(store.RedisOptions{Addrs: []string{rs.Addr()}, KeyPrefix: t.Name() + ":"})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { st.Close() })
		fedChain(t, newFedEnv(t, upstream, upstream, true, func(e *env) { e.store = st }))
	})

	t.Run("only method redirects straight upstream", func(t *testing.T) {
		e := newFedEnv(t, upstream, upstream, false)
		b := e.browser()
		form := b.toUpstream(t, false, nil)
		cb := b.upstreamLogin(t, form, url.Values{"login": {"carol"}})
		if p := b.get(cb.String()); p.status != http.StatusSeeOther || p.location(t).Query().Get("code") == "" {
			t.Fatalf("callback: %d %s", p.status, p.body)
		}
	})

	t.Run("wrong state", func(t *testing.T) {
		e := newFedEnv(t, upstream, upstream, false)
		b := e.browser()
		form := b.toUpstream(t, false, nil)
		cb := b.upstreamLogin(t, form, url.Values{"login": {"carol"}})
		q := cb.Query()
		q.Set("state", "forged-state")
		cb.RawQuery = q.Encode()
		if p := b.get(cb.String()); p.status != http.StatusBadRequest || strings.Contains(p.header.Get("Location"), "code=") {
			t.Fatalf("forged state: %d %s", p.status, p.body)
		}
	})

	t.Run("callback in another browser, and replayed", func(t *testing.T) {
		e := newFedEnv(t, upstream, upstream, false)
		b := e.browser()
		form := b.toUpstream(t, false, nil)
		cb := b.upstreamLogin(t, form, url.Values{"login": {"carol"}})
		// Login CSRF: the attacker's callback URL opened in the victim's
		// browser.
		if p := e.browser().get(cb.String()); p.status != http.StatusForbidden || p.header.Get("Location") != "" {
			t.Fatalf("callback in another browser: %d %s", p.status, p.body)
		}
		// The state was spent by that attempt: it never works again.
		if p := b.get(cb.String()); p.status != http.StatusBadRequest {
			t.Fatalf("replayed callback: %d %s", p.status, p.body)
		}
	})

	t.Run("nonce mismatch", func(t *testing.T) {
		e := newFedEnv(t, upstream, upstream, false)
		b := e.browser()
		// The nonce is changed on its way to the upstream: the ID token
		// that comes back carries a nonce the AS did not send.
		form := b.toUpstream(t, false, func(u *url.URL) {
			q := u.Query()
			q.Set("nonce", "attacker-nonce")
			u.RawQuery = q.Encode()
		})
		cb := b.upstreamLogin(t, form, url.Values{"login": {"carol"}})
		if p := b.get(cb.String()); p.status != http.StatusBadGateway || p.header.Get("Location") != "" {
			t.Fatalf("nonce mismatch: %d %s", p.status, p.body)
		}
	})

	t.Run("upstream error response", func(t *testing.T) {
		e := newFedEnv(t, upstream, upstream, false)
		b := e.browser()
		form := b.toUpstream(t, false, nil)
		cb := b.upstreamLogin(t, form, url.Values{"abort": {"1"}})
		p := b.get(cb.String())
		loc := p.location(t)
		if !strings.HasPrefix(loc.String(), webRedirect) || loc.Query().Get("error") != "access_denied" || loc.Query().Get("state") != "st-1" {
			t.Fatalf("upstream error: %s", loc)
		}
	})

	t.Run("unknown issuer", func(t *testing.T) {
		// localhost serves the same provider, whose discovery document
		// names 127.0.0.1: go-oidc refuses the mismatch.
		other := strings.Replace(upstream, "127.0.0.1", "localhost", 1)
		e := newFedEnv(t, upstream, other, false)
		b := e.browser()
		if p := b.get(e.authzURL("web", webRedirect, verifierA)); p.status != http.StatusBadGateway || p.header.Get("Location") != "" {
			t.Fatalf("unknown issuer: %d %s", p.status, p.body)
		}
	})
}

// fedChain runs the whole chain as carol and checks the mapped claims in
// the ID token, userinfo and a refreshed ID token, then SSO.
func fedChain(t *testing.T, e *env) {
	t.Helper()
	b := e.browser()
	form := b.toUpstream(t, true, nil)
	cb := b.upstreamLogin(t, form, url.Values{"login": {"carol"}})
	p := b.get(cb.String())
	loc := p.location(t)
	if loc.Query().Get("state") != "st-1" || loc.Query().Get("code") == "" {
		t.Fatalf("authorization response %s (%d %s)", loc, p.status, p.body)
	}
	resp, tok := e.redeem("web", loc.Query().Get("code"), webRedirect, verifierA)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("token: %d %v", resp.StatusCode, tok)
	}
	id := decodePart(t, tok["id_token"].(string), 1)
	want := map[string]any{"sub": "E-1001", "nonce": "n-1", "name": "Carol Corp", "preferred_username": "carol@corp.test",
		"email": "carol@corp.test", "email_verified": true, "iss": e.issuer}
	for k, v := range want {
		if id[k] != v {
			t.Errorf("id_token %s = %v, want %v", k, id[k], v)
		}
	}
	if g, _ := id["groups"].([]any); len(g) != 2 || g[0] != "eng" || g[1] != "ops" {
		t.Errorf("groups %v, want [eng ops] (mapped from roles)", id["groups"])
	}
	// userinfo: the claims from the store, not the users file.
	req, _ := http.NewRequest(http.MethodGet, e.issuer+PathUserinfo, nil)
	req.Header.Set("Authorization", "Bearer "+tok["access_token"].(string))
	ui, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	var info map[string]any
	decodeBody(t, ui, &info)
	if ui.StatusCode != http.StatusOK || info["sub"] != "E-1001" || info["email"] != "carol@corp.test" || info["name"] != "Carol Corp" {
		t.Fatalf("userinfo %d %v", ui.StatusCode, info)
	}
	// Refresh keeps the federated claims (from the family).
	resp, rt := e.post(PathToken, "web", webSecret, url.Values{"grant_type": {"refresh_token"}, "refresh_token": {tok["refresh_token"].(string)}})
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("refresh: %d %v", resp.StatusCode, rt)
	}
	if id2 := decodePart(t, rt["id_token"].(string), 1); id2["email"] != "carol@corp.test" || id2["sub"] != "E-1001" {
		t.Fatalf("refreshed id_token %v", id2)
	}
	// SSO: the session answers the next request without the upstream.
	p = b.get(e.authzURL("web", webRedirect, verifierA))
	if p.status != http.StatusSeeOther || p.location(t).Query().Get("code") == "" {
		t.Fatalf("second authorization: %d %s", p.status, p.body)
	}
}
