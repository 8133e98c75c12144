package authserver

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"golang.org/x/oauth2"
)

// TestOAuth2CodeFlow drives the whole flow with golang.org/x/oauth2 as
// the relying party: authorization request with PKCE S256, login page,
// code exchange, ID token, userinfo, refresh with rotation, reuse
// detection, logout.
func TestOAuth2CodeFlow(t *testing.T) {
	e := newLoginEnv(t, "")
	ctx := context.WithValue(t.Context(), oauth2.HTTPClient, e.ts.Client())
	conf := &oauth2.Config{
		ClientID: "web", ClientSecret: webSecret, RedirectURL: webRedirect,
		Endpoint: oauth2.Endpoint{AuthURL: e.issuer + PathAuthorize, TokenURL: e.issuer + PathToken, AuthStyle: oauth2.AuthStyleInHeader},
		Scopes:   []string{"openid", "profile", "email", "groups", "products:read"},
	}
	verifier := oauth2.GenerateVerifier()
	b := e.browser()
	p := b.get(conf.AuthCodeURL("state-xyz", oauth2.S256ChallengeOption(verifier), oauth2.SetAuthURLParam("nonce", "nonce-123")))
	if p.status != 200 || !strings.Contains(p.body, `<label for="username">`) || !strings.Contains(p.body, `autocomplete="current-password"`) {
		t.Fatalf("login page: %d %s", p.status, p.body)
	}
	csp := p.header.Get("Content-Security-Policy")
	for _, want := range []string{"default-src 'none'", "frame-ancestors 'none'", "form-action 'self' http://127.0.0.1:9"} {
		if !strings.Contains(csp, want) {
			t.Errorf("CSP %q lacks %q", csp, want)
		}
	}
	if strings.Contains(p.body, "<script") || strings.Contains(p.body, " style=") {
		t.Error("the login page has script or inline style")
	}
	if p = b.login("alice", "wrong-password"); p.status != http.StatusUnauthorized || !strings.Contains(p.body, `role="alert"`) {
		t.Fatalf("wrong password: %d %s", p.status, p.body)
	}
	p = b.login("alice", alicePassword)
	loc := p.location(t)
	if p.status != http.StatusSeeOther || !strings.HasPrefix(loc.String(), webRedirect+"?") || loc.Query().Get("state") != "state-xyz" ||
		loc.Query().Get("iss") != e.issuer {
		t.Fatalf("after login: %d %s", p.status, loc)
	}
	tok, err := conf.Exchange(ctx, loc.Query().Get("code"), oauth2.VerifierOption(verifier))
	if err != nil {
		t.Fatal(err)
	}
	idt, _ := tok.Extra("id_token").(string)
	_, ic := e.verify(idt)
	hdr := decodePart(t, idt, 0)
	if hdr["typ"] != "JWT" {
		t.Errorf("ID token typ %v", hdr["typ"])
	}
	want := map[string]any{"iss": e.issuer, "sub": "u-alice", "aud": "web", "azp": "web", "nonce": "nonce-123",
		"name": "Alice Example", "preferred_username": "alice", "email": "alice@example.com", "email_verified": true,
		"at_hash": atHash("ES256", tok.AccessToken)}
	for k, v := range want {
		if ic[k] != v {
			t.Errorf("ID token %s = %v, want %v", k, ic[k], v)
		}
	}
	if ic["auth_time"] != float64(e.clock.now().Unix()) || ic["sid"] == nil || len(ic["groups"].([]any)) != 1 {
		t.Errorf("ID token claims %v", ic)
	}
	_, ac := e.verify(tok.AccessToken)
	if ac["sub"] != "u-alice" || ac["client_id"] != "web" || ac["aud"] != "api://products" || ac["sid"] != ic["sid"] ||
		!strings.Contains(ac["scope"].(string), "products:read") {
		t.Errorf("access token claims %v", ac)
	}
	// userinfo
	req, _ := http.NewRequest(http.MethodGet, e.issuer+PathUserinfo, nil)
	req.Header.Set("Authorization", "Bearer "+tok.AccessToken)
	resp, err := e.ts.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	var ui map[string]any
	decodeBody(t, resp, &ui)
	if resp.StatusCode != 200 || ui["sub"] != "u-alice" || ui["email"] != "alice@example.com" {
		t.Errorf("userinfo: %d %v", resp.StatusCode, ui)
	}
	// A second authorization request in the same browser needs no login.
	p = b.get(conf.AuthCodeURL("s2", oauth2.S256ChallengeOption(verifier)))
	if p.status != http.StatusSeeOther || p.location(t).Query().Get("code") == "" {
		t.Fatalf("second authorization request: %d %s", p.status, p.body)
	}
	// prompt=login asks again.
	if p = b.get(conf.AuthCodeURL("s3", oauth2.S256ChallengeOption(verifier), oauth2.SetAuthURLParam("prompt", "login"))); p.status != 200 {
		t.Fatalf("prompt=login: %d", p.status)
	}

	// Refresh: rotation.
	rt1 := tok.RefreshToken
	e.clock.add(time.Minute)
	tok2, err := conf.TokenSource(ctx, &oauth2.Token{RefreshToken: rt1}).Token()
	if err != nil {
		t.Fatal(err)
	}
	if tok2.RefreshToken == "" || tok2.RefreshToken == rt1 || tok2.AccessToken == tok.AccessToken {
		t.Fatalf("refresh did not rotate: %+v", tok2)
	}
	_, ic2 := e.verify(tok2.Extra("id_token").(string))
	if ic2["auth_time"] != ic["auth_time"] || ic2["sub"] != "u-alice" || ic2["nonce"] != nil {
		t.Errorf("refreshed ID token %v", ic2)
	}
	// Reuse of rt1: the family is revoked, rt2 with it, and the access
	// token issued with rt2.
	_, err = conf.TokenSource(ctx, &oauth2.Token{RefreshToken: rt1}).Token()
	var re *oauth2.RetrieveError
	if !errors.As(err, &re) || re.ErrorCode != "invalid_grant" {
		t.Fatalf("reused refresh token: %v", err)
	}
	if _, err = conf.TokenSource(ctx, &oauth2.Token{RefreshToken: tok2.RefreshToken}).Token(); err == nil {
		t.Fatal("the family's newest refresh token still works after reuse")
	}
	_, ac2 := e.verify(tok2.AccessToken)
	if !e.revs.Revoked(ac2["jti"].(string)) || !e.revs.Revoked(ac["jti"].(string)) {
		t.Error("the family's access tokens are not revoked")
	}
}

// TestLogout: RP-initiated logout with id_token_hint ends the session,
// revokes its refresh tokens and redirects to the registered URI with
// state; an unregistered URI is refused, never redirected to.
func TestLogout(t *testing.T) {
	e := newLoginEnv(t, "")
	b := e.browser()
	code := b.code("web", webRedirect, verifierA, "alice", alicePassword)
	resp, tok := e.redeem("web", code, webRedirect, verifierA)
	if resp.StatusCode != 200 {
		t.Fatalf("redeem: %d %v", resp.StatusCode, tok)
	}
	idt := tok["id_token"].(string)
	for _, bad := range []string{"https://evil.example/", webLoggedOut + "/x", webRedirect} {
		p := b.get(e.issuer + PathLogout + "?" + url.Values{"id_token_hint": {idt}, "post_logout_redirect_uri": {bad}}.Encode())
		if p.status != 400 || p.header.Get("Location") != "" {
			t.Errorf("post_logout_redirect_uri %s: %d %v", bad, p.status, p.header)
		}
	}
	// Without a hint, the user is asked (a cross-site link must not log
	// people out), and a POST without the form's token is refused.
	p := b.get(e.issuer + PathLogout + "?client_id=web&post_logout_redirect_uri=" + url.QueryEscape(webLoggedOut))
	if p.status != 200 || !strings.Contains(p.body, "Sign out") {
		t.Fatalf("logout without hint: %d %s", p.status, p.body)
	}
	if p = b.post(e.issuer+PathLogout, url.Values{"csrf": {"forged"}}); p.status != 200 || !strings.Contains(p.body, "Do you want to sign out") {
		t.Fatalf("forged logout: %d %s", p.status, p.body)
	}
	p = b.get(e.issuer + PathLogout + "?" + url.Values{"id_token_hint": {idt}, "post_logout_redirect_uri": {webLoggedOut}, "state": {"bye"}}.Encode())
	if loc := p.location(t); p.status != 303 || loc.String() != webLoggedOut+"?state=bye" {
		t.Fatalf("logout: %d %s", p.status, loc)
	}
	if r, m := e.post(PathToken, "web", webSecret, formOf("grant_type", "refresh_token", "refresh_token", tok["refresh_token"].(string))); r.StatusCode != 400 || m["error"] != "invalid_grant" {
		t.Errorf("refresh after logout: %d %v", r.StatusCode, m)
	}
	// The session is gone: the next request shows the login page.
	if p = b.get(e.authzURL("web", webRedirect, verifierA)); p.status != 200 || !strings.Contains(p.body, "Sign in") {
		t.Errorf("after logout: %d", p.status)
	}
}

// TestCodeFlowRefusals: each check of the authorization and token
// endpoints, one wrong thing at a time.
func TestCodeFlowRefusals(t *testing.T) {
	e := newLoginEnv(t, "")

	t.Run("replayed code revokes its tokens", func(t *testing.T) {
		b := e.browser()
		code := b.code("web", webRedirect, verifierA, "alice", alicePassword)
		resp, m := e.redeem("web", code, webRedirect, verifierA)
		if resp.StatusCode != 200 {
			t.Fatalf("%d %v", resp.StatusCode, m)
		}
		resp, m2 := e.redeem("web", code, webRedirect, verifierA)
		if resp.StatusCode != 400 || m2["error"] != "invalid_grant" {
			t.Fatalf("replay: %d %v", resp.StatusCode, m2)
		}
		jti := decodePart(t, m["access_token"].(string), 1)["jti"].(string)
		if !e.revs.Revoked(jti) {
			t.Error("the access token of a replayed code is not revoked")
		}
		if r, m3 := e.post(PathToken, "web", webSecret, formOf("grant_type", "refresh_token", "refresh_token", m["refresh_token"].(string))); r.StatusCode != 400 {
			t.Errorf("refresh token of a replayed code: %d %v", r.StatusCode, m3)
		}
	})
	t.Run("code for another client", func(t *testing.T) {
		code := e.browser().code("spa", spaRedirect, verifierA, "bob", bobPassword)
		f := formOf("grant_type", "authorization_code", "code", code, "redirect_uri", spaRedirect, "code_verifier", verifierA)
		if r, m := e.post(PathToken, "web", webSecret, f); r.StatusCode != 400 || m["error"] != "invalid_grant" {
			t.Errorf("%d %v", r.StatusCode, m)
		}
		// The rightful client still redeems it.
		if r, m := e.redeem("spa", code, spaRedirect, verifierA); r.StatusCode != 200 || m["id_token"] == nil {
			t.Errorf("spa: %d %v", r.StatusCode, m)
		}
	})
	t.Run("PKCE mismatch", func(t *testing.T) {
		code := e.browser().code("web", webRedirect, verifierA, "alice", alicePassword)
		if r, m := e.redeem("web", code, webRedirect, verifierA+"x"); r.StatusCode != 400 || m["error"] != "invalid_grant" {
			t.Errorf("%d %v", r.StatusCode, m)
		}
		if r, m := e.redeem("web", code, webRedirect, ""); r.StatusCode != 400 || m["error"] != "invalid_request" {
			t.Errorf("no verifier: %d %v", r.StatusCode, m)
		}
	})
	t.Run("redirect_uri mismatch at the token endpoint", func(t *testing.T) {
		code := e.browser().code("web", webRedirect, verifierA, "alice", alicePassword)
		if r, m := e.redeem("web", code, webRedirect+"/", verifierA); r.StatusCode != 400 || m["error"] != "invalid_grant" {
			t.Errorf("%d %v", r.StatusCode, m)
		}
	})
	t.Run("expired code", func(t *testing.T) {
		code := e.browser().code("web", webRedirect, verifierA, "alice", alicePassword)
		e.clock.add(codeLifetime + time.Second)
		if r, m := e.redeem("web", code, webRedirect, verifierA); r.StatusCode != 400 || m["error"] != "invalid_grant" {
			t.Errorf("%d %v", r.StatusCode, m)
		}
	})

	// Authorization requests that are shown an error page, never
	// redirected (unknown client or redirect URI).
	for _, tc := range []struct {
		name string
		kv   []string
	}{
		{"unregistered redirect_uri", []string{"redirect_uri", "https://evil.example/cb"}},
		{"redirect_uri prefix", []string{"redirect_uri", webRedirect + "/../x"}},
		{"no redirect_uri", []string{"redirect_uri", ""}},
		{"unknown client", []string{"client_id", "nobody"}},
		{"client without the grant", []string{"client_id", "reader"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := e.browser().get(e.authzURL("web", webRedirect, verifierA, tc.kv...))
			if p.status != 400 || p.header.Get("Location") != "" || !strings.Contains(p.header.Get("Content-Type"), "text/html") {
				t.Errorf("%d %v", p.status, p.header)
			}
		})
	}
	// Errors sent back to the client, with state and iss.
	for _, tc := range []struct {
		name, code string
		kv         []string
	}{
		{"plain PKCE refused", "invalid_request", []string{"code_challenge_method", "plain", "code_challenge", verifierA}},
		{"no PKCE", "invalid_request", []string{"code_challenge_method", "", "code_challenge", ""}},
		{"challenge without method (plain)", "invalid_request", []string{"code_challenge_method", ""}},
		{"short challenge", "invalid_request", []string{"code_challenge", "abc"}},
		{"implicit flow", "unsupported_response_type", []string{"response_type", "token"}},
		{"hybrid flow", "unsupported_response_type", []string{"response_type", "code id_token"}},
		{"unknown scope", "invalid_scope", []string{"scope", "openid products:write"}},
		{"request object", "request_not_supported", []string{"request", "eyJ"}},
		{"prompt=none without session", "login_required", []string{"prompt", "none"}},
		{"fragment response mode", "invalid_request", []string{"response_mode", "fragment"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := e.browser().get(e.authzURL("web", webRedirect, verifierA, tc.kv...))
			loc := p.location(t)
			q := loc.Query()
			if p.status != 303 || !strings.HasPrefix(loc.String(), webRedirect+"?") || q.Get("error") != tc.code ||
				q.Get("state") != "st-1" || q.Get("iss") != e.issuer || q.Get("code") != "" {
				t.Errorf("%d %s", p.status, loc)
			}
		})
	}
}

// TestLoginFormCSRF: the login form must come from this browser's login
// page: a forged or missing CSRF token, another browser's transaction
// (login CSRF), a spent transaction are refused.
func TestLoginFormCSRF(t *testing.T) {
	e := newLoginEnv(t, "")
	victim, attacker := e.browser(), e.browser()
	attacker.get(e.authzURL("web", webRedirect, verifierA))
	tx, cs := attacker.tx, attacker.cs
	// The attacker's own form, posted from the victim's browser.
	p := victim.post(e.issuer+PathLogin, url.Values{"tx": {tx}, "csrf": {cs}, "username": {"bob"}, "password": {bobPassword}})
	if p.status != http.StatusForbidden || p.header.Get("Location") != "" {
		t.Errorf("login CSRF: %d %s", p.status, p.body)
	}
	// The right browser with a wrong token.
	p = attacker.post(e.issuer+PathLogin, url.Values{"tx": {tx}, "csrf": {"forged"}, "username": {"bob"}, "password": {bobPassword}})
	if p.status != http.StatusForbidden {
		t.Errorf("forged token: %d", p.status)
	}
	if p = attacker.post(e.issuer+PathLogin, url.Values{"tx": {tx}, "username": {"bob"}, "password": {bobPassword}}); p.status != http.StatusForbidden {
		t.Errorf("no token: %d", p.status)
	}
	// The genuine post works once; the same form again does not.
	if p = attacker.login("bob", bobPassword); p.status != 303 {
		t.Fatalf("genuine: %d %s", p.status, p.body)
	}
	if p = attacker.post(e.issuer+PathLogin, url.Values{"tx": {tx}, "csrf": {cs}, "username": {"bob"}, "password": {bobPassword}}); p.status != 400 {
		t.Errorf("spent transaction: %d", p.status)
	}
	// Session fixation: a session cookie planted before the login is not
	// adopted; the login sets a new one.
	fix := e.browser()
	u, _ := url.Parse(e.issuer)
	fix.c.Jar.SetCookies(u, []*http.Cookie{{Name: sessionCookie, Value: "planted-by-attacker", Path: "/"}})
	fix.get(e.authzURL("web", webRedirect, verifierA))
	fix.login("alice", alicePassword)
	for _, c := range fix.c.Jar.Cookies(u) {
		if c.Name == sessionCookie && c.Value == "planted-by-attacker" {
			t.Error("the planted session cookie was kept")
		}
	}
}

// TestLoginFailureBudgets: failed logins are limited per username and per
// address, with 429 and Retry-After, before the password is checked.
func TestLoginFailureBudgets(t *testing.T) {
	e := newLoginEnv(t, "  login:\n    failures_per_user: 2\n  limits:\n    failures_per_ip: 4\n")
	b := e.browser()
	b.get(e.authzURL("web", webRedirect, verifierA))
	for i := range 2 {
		if p := b.login("alice", "wrong"); p.status != 401 {
			t.Fatalf("failure %d: %d", i, p.status)
		}
	}
	p := b.login("alice", alicePassword)
	if p.status != 429 || p.header.Get("Retry-After") == "" {
		t.Fatalf("alice after 2 failures: %d", p.status)
	}
	// bob is another budget, but the address has two failures left.
	for range 2 {
		b.login("bob", "wrong")
	}
	if p = b.login("bob", bobPassword); p.status != 429 {
		t.Fatalf("address budget: %d", p.status)
	}
	// A minute later both budgets have refilled.
	e.clock.add(time.Minute)
	if p = b.login("alice", alicePassword); p.status != 303 {
		t.Fatalf("after a minute: %d %s", p.status, p.body)
	}
}

// TestPAR: a pushed request (RFC 9126) then the browser with request_uri;
// with require_pushed_authorization_requests a plain request is refused.
func TestPAR(t *testing.T) {
	e := newLoginEnv(t, "  login:\n    require_pushed_authorization_requests: true\n")
	q, _ := url.ParseQuery(strings.SplitN(e.authzURL("web", webRedirect, verifierA), "?", 2)[1])
	resp, m := e.post(PathPAR, "web", webSecret, q)
	if resp.StatusCode != 201 || !strings.HasPrefix(m["request_uri"].(string), parURN) || m["expires_in"] != float64(60) {
		t.Fatalf("PAR: %d %v", resp.StatusCode, m)
	}
	b := e.browser()
	uri := e.issuer + PathAuthorize + "?" + url.Values{"client_id": {"web"}, "request_uri": {m["request_uri"].(string)}}.Encode()
	if p := b.get(uri); p.status != 200 {
		t.Fatalf("authorize with request_uri: %d %s", p.status, p.body)
	}
	p := b.login("alice", alicePassword)
	code := p.location(t).Query().Get("code")
	if r, tok := e.redeem("web", code, webRedirect, verifierA); r.StatusCode != 200 {
		t.Fatalf("redeem: %d %v", r.StatusCode, tok)
	}
	// One-time use; a plain request is refused; a pushed request with
	// plain PKCE is refused at the push.
	if p = e.browser().get(uri); p.status != 400 {
		t.Errorf("request_uri reused: %d", p.status)
	}
	if p = e.browser().get(e.authzURL("web", webRedirect, verifierA)); p.status != 400 {
		t.Errorf("unpushed request: %d", p.status)
	}
	q.Set("code_challenge_method", "plain")
	if resp, m = e.post(PathPAR, "web", webSecret, q); resp.StatusCode != 400 || m["error"] != "invalid_request" {
		t.Errorf("pushed plain PKCE: %d %v", resp.StatusCode, m)
	}
	// Another client cannot use a pushed request.
	q.Set("code_challenge_method", "S256")
	_, m = e.post(PathPAR, "web", webSecret, q)
	p = e.browser().get(e.issuer + PathAuthorize + "?" + url.Values{"client_id": {"spa"}, "request_uri": {m["request_uri"].(string)}}.Encode())
	if p.status != 400 {
		t.Errorf("another client's request_uri: %d", p.status)
	}
}

// TestLoginDiscovery: the metadata lists exactly what is served.
func TestLoginDiscovery(t *testing.T) {
	e := newLoginEnv(t, "")
	resp, err := e.ts.Client().Get(e.issuer + PathOIDC)
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	decodeBody(t, resp, &m)
	list := func(k string) []string {
		var out []string
		for _, v := range m[k].([]any) {
			out = append(out, v.(string))
		}
		return out
	}
	for k, want := range map[string][]string{
		"response_types_supported":              {"code"},
		"code_challenge_methods_supported":      {"S256"},
		"grant_types_supported":                 {"client_credentials", "urn:ietf:params:oauth:grant-type:token-exchange", "authorization_code", "refresh_token"},
		"id_token_signing_alg_values_supported": {"ES256"},
		"response_modes_supported":              {"query"},
	} {
		if got := list(k); !slices.Equal(got, want) {
			t.Errorf("%s = %v, want %v", k, got, want)
		}
	}
	for k, want := range map[string]string{
		"authorization_endpoint": PathAuthorize, "userinfo_endpoint": PathUserinfo,
		"end_session_endpoint": PathLogout, "pushed_authorization_request_endpoint": PathPAR,
	} {
		if m[k] != e.issuer+want {
			t.Errorf("%s = %v", k, m[k])
		}
	}
	if m["authorization_response_iss_parameter_supported"] != true || !slices.Contains(list("token_endpoint_auth_methods_supported"), "none") {
		t.Errorf("metadata %v", m)
	}
	// Without login: no response types, no ID token algorithms.
	e2 := newEnv(t, defaultSection(""))
	resp, _ = e2.ts.Client().Get(e2.issuer + PathOIDC)
	var m2 map[string]any
	decodeBody(t, resp, &m2)
	if len(m2["response_types_supported"].([]any)) != 0 || m2["authorization_endpoint"] != nil || m2["id_token_signing_alg_values_supported"] != nil {
		t.Errorf("metadata without login: %v", m2)
	}
	if r, _ := e2.ts.Client().Get(e2.issuer + PathAuthorize); r.StatusCode != 404 {
		t.Errorf("authorize without login: %d", r.StatusCode)
	}
}

// TestUserinfoRefusals: no token, a client_credentials token (no openid
// scope), a revoked token.
func TestUserinfoRefusals(t *testing.T) {
	e := newLoginEnv(t, "")
	call := func(tok string) (int, string) {
		req, _ := http.NewRequest(http.MethodGet, e.issuer+PathUserinfo, nil)
		if tok != "" {
			req.Header.Set("Authorization", "Bearer "+tok)
		}
		resp, err := e.ts.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode, resp.Header.Get("WWW-Authenticate")
	}
	if s, h := call(""); s != 401 || !strings.HasPrefix(h, "Bearer") {
		t.Errorf("no token: %d %q", s, h)
	}
	if s, h := call(e.token("reader", readerSecret, "")); s != 403 || !strings.Contains(h, "insufficient_scope") {
		t.Errorf("client token: %d %q", s, h)
	}
	code := e.browser().code("web", webRedirect, verifierA, "alice", alicePassword)
	_, m := e.redeem("web", code, webRedirect, verifierA)
	tok := m["access_token"].(string)
	if s, _ := call(tok); s != 200 {
		t.Fatalf("valid: %d", s)
	}
	if r, _ := e.post(PathRevoke, "web", webSecret, formOf("token", tok)); r.StatusCode != 200 {
		t.Fatal(r.StatusCode)
	}
	if s, h := call(tok); s != 401 || !strings.Contains(h, "invalid_token") {
		t.Errorf("revoked: %d %q", s, h)
	}
	// RFC 7009 revocation of a refresh token revokes its family.
	if r, _ := e.post(PathRevoke, "web", webSecret, formOf("token", m["refresh_token"].(string), "token_type_hint", "refresh_token")); r.StatusCode != 200 {
		t.Fatal(r.StatusCode)
	}
	if r, m2 := e.post(PathToken, "web", webSecret, formOf("grant_type", "refresh_token", "refresh_token", m["refresh_token"].(string))); r.StatusCode != 400 {
		t.Errorf("revoked refresh token: %d %v", r.StatusCode, m2)
	}
	// A public client may not introspect.
	if r, m3 := e.post(PathIntrospect, "", "", formOf("client_id", "spa", "token", tok)); r.StatusCode != 401 {
		t.Errorf("public introspection: %d %v", r.StatusCode, m3)
	}
}

// TestPromptAndMaxAge: prompt=none answers from the session, max_age
// older than the login asks again, and auth_time is the login's.
func TestPromptAndMaxAge(t *testing.T) {
	e := newLoginEnv(t, "")
	b := e.browser()
	b.code("web", webRedirect, verifierA, "alice", alicePassword)
	loginAt := e.clock.now().Unix()
	e.clock.add(2 * time.Minute)
	p := b.get(e.authzURL("web", webRedirect, verifierA, "prompt", "none"))
	code := p.location(t).Query().Get("code")
	if p.status != 303 || code == "" {
		t.Fatalf("prompt=none with a session: %d %s", p.status, p.location(t))
	}
	_, m := e.redeem("web", code, webRedirect, verifierA)
	if _, ic := e.verify(m["id_token"].(string)); ic["auth_time"] != float64(loginAt) {
		t.Errorf("auth_time %v, want the login's %d", ic["auth_time"], loginAt)
	}
	if p = b.get(e.authzURL("web", webRedirect, verifierA, "max_age", "60")); p.status != 200 || !strings.Contains(p.body, "Sign in") {
		t.Errorf("max_age older than the login: %d", p.status)
	}
	if p = b.get(e.authzURL("web", webRedirect, verifierA, "max_age", "600")); p.status != 303 {
		t.Errorf("max_age within the login: %d", p.status)
	}
	if p = b.get(e.authzURL("web", webRedirect, verifierA, "max_age", "-1")); p.location(t).Query().Get("error") != "invalid_request" {
		t.Errorf("negative max_age: %s", p.location(t))
	}
	// The session cookie expires with session_lifetime.
	e.clock.add(DefaultSessionLifetime)
	if p = b.get(e.authzURL("web", webRedirect, verifierA, "prompt", "none")); p.location(t).Query().Get("error") != "login_required" {
		t.Errorf("expired session: %s", p.location(t))
	}
}
