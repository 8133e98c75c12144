package session_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/internal/authn/oidcpeer"
	"github.com/gatehouse/gatehouse/internal/authn/session"
	"github.com/gatehouse/gatehouse/internal/builtin"
	"github.com/gatehouse/gatehouse/internal/gateway"
	"github.com/gatehouse/gatehouse/internal/gatewaytest"
	"github.com/gatehouse/gatehouse/internal/store"
	"github.com/gatehouse/gatehouse/internal/store/redistest"
)

// upstream is the protected application: it answers with who the gateway
// says the user is and records what it received.
type upstream struct {
	*httptest.Server
	mu   sync.Mutex
	last http.Header
}

func newUpstream(t *testing.T) *upstream {
	u := &upstream{}
	u.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		u.mu.Lock()
		u.last = r.Header.Clone()
		u.mu.Unlock()
		w.Header().Set("Content-Type", "text/plain")
		fmt.Fprintf(w, "Hello %s at %s", r.Header.Get("X-Auth-Subject"), r.URL.RequestURI())
	}))
	t.Cleanup(u.Close)
	return u
}

func (u *upstream) header() http.Header {
	u.mu.Lock()
	defer u.mu.Unlock()
	return u.last
}

// browser is a cookie-keeping client that follows redirects itself, so
// that a test can stop at the gateway's callback.
type browser struct {
	t   *testing.T
	c   *http.Client
	jar *cookiejar.Jar
}

func newBrowser(t *testing.T) *browser {
	jar, _ := cookiejar.New(nil)
	return &browser{t: t, jar: jar, c: &http.Client{
		Jar:           jar,
		Timeout:       30 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}}
}

// do sends one request as a browser navigation (Accept: text/html) unless
// h says otherwise, and returns the response with its body read.
func (b *browser) do(method, u string, form url.Values, h http.Header) (*http.Response, string) {
	b.t.Helper()
	var body io.Reader
	if form != nil {
		body = strings.NewReader(form.Encode())
	}
	req, err := http.NewRequest(method, u, body)
	if err != nil {
		b.t.Fatal(err)
	}
	req.Header.Set("Accept", "text/html,application/xhtml+xml")
	if form != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	for k, v := range h {
		req.Header[k] = v
	}
	resp, err := b.c.Do(req)
	if err != nil {
		b.t.Fatal(err)
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	return resp, string(data)
}

// login opens start and logs in as user at the provider; it stops at the
// gateway's callback (returning its URL) or, with finish, goes on and
// returns the final response.
func (b *browser) login(start, user string, finish bool) (callback *url.URL, resp *http.Response, body string) {
	b.t.Helper()
	next, method := start, http.MethodGet
	var form url.Values
	for range 20 {
		resp, body = b.do(method, next, form, nil)
		method, form = http.MethodGet, nil
		if resp.StatusCode == http.StatusOK && strings.Contains(resp.Request.URL.Path, "/interaction/") {
			next, method = resp.Request.URL.String(), http.MethodPost
			form = url.Values{"login": {user}, "password": {oidcpeer.Users[user]}}
			continue
		}
		if resp.StatusCode < 300 || resp.StatusCode > 399 {
			return nil, resp, body
		}
		loc, err := resp.Request.URL.Parse(resp.Header.Get("Location"))
		if err != nil {
			b.t.Fatal(err)
		}
		if loc.Path == "/oauth2/callback" && !finish {
			return loc, resp, body
		}
		next = loc.String()
	}
	b.t.Fatalf("too many redirects from %s", start)
	return nil, nil, ""
}

func (b *browser) cookie(base, name string) string {
	u, _ := url.Parse(base)
	for _, c := range b.jar.Cookies(u) {
		if c.Name == name {
			return c.Value
		}
	}
	return ""
}

func (b *browser) setCookie(base, name, value string) {
	u, _ := url.Parse(base)
	b.jar.SetCookies(u, []*http.Cookie{{Name: name, Value: value, Path: "/"}})
}

type fixture struct {
	idp      *oidcpeer.Provider
	up       *upstream
	gw1, gw2 string
	st       store.Store // the shared store as the tests see it
	now      atomic.Int64
}

const prefix = "sess-e2e:"

// start runs node-oidc-provider, a Redis, and two gateway instances
// sharing it, protecting the upstream with the session authenticator.
func start(t *testing.T) *fixture {
	f := &fixture{idp: oidcpeer.Start(t), up: newUpstream(t)}
	f.now.Store(time.Now().UnixNano())
	clock := func() time.Time { return time.Unix(0, f.now.Load()) }
	srv := redistest.Start(t)
	newStore := func() store.Store {
		st, err := store.NewRedis(store.RedisOptions{Addrs: []string{srv.Addr()}, KeyPrefix: prefix + t.Name() + ":"})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { st.Close() })
		return st
	}
	f.st = newStore()
	yaml := `
listeners: [{name: main, address: "127.0.0.1:0"}]
admin: {address: "off"}
routes:
  - name: app
    match: {path_prefix: /}
    upstream: {url: "` + f.up.URL + `"}
    policies:
      - authenticate:
          with:
            - session:
                issuer: ` + f.idp.Issuer + `
                client_id: web
                client_secret: web-secret
                scopes: [openid, email, profile, offline_access]
                login_path: /oauth2/start
                post_logout_redirect_url: /bye
                forward_access_token: true
      - identity:
          headers:
            subject: X-Auth-Subject
            method: X-Auth-Method
            claims: {email: X-Auth-Email}
`
	for _, gw := range []*string{&f.gw1, &f.gw2} {
		*gw = gatewaytest.Start(t, yaml, gateway.Options{
			Registry:  builtin.Registry(),
			AccessLog: slog.New(slog.DiscardHandler),
			Store:     newStore(),
			Now:       clock,
		}).URL
	}
	f.idp.AddClient(t, "web", "web-secret",
		[]string{f.gw1 + "/oauth2/callback", f.gw2 + "/oauth2/callback"},
		[]string{f.gw1 + "/bye", f.gw2 + "/bye"})
	return f
}

func api(extra ...string) http.Header {
	h := http.Header{"Accept": {"application/json"}}
	for i := 0; i+1 < len(extra); i += 2 {
		h.Set(extra[i], extra[i+1])
	}
	return h
}

func wantStatus(t *testing.T, what string, resp *http.Response, body string, status int, code string) {
	t.Helper()
	if resp.StatusCode != status || (code != "" && !strings.Contains(body, `"`+code+`"`)) {
		t.Fatalf("%s: %d %s, want %d %s", what, resp.StatusCode, body, status, code)
	}
}

// A user logs in through node-oidc-provider; the session works for pages
// and API calls on both instances, is refreshed, and logout ends it on
// both.
func TestOIDCProviderLogin(t *testing.T) {
	f := start(t)
	b := newBrowser(t)

	// Not logged in: a page is redirected to the provider, with PKCE S256,
	// state and nonce; an API call gets 401.
	resp, body := b.do(http.MethodGet, f.gw1+"/app/page?x=1", nil, nil)
	wantStatus(t, "page without session", resp, body, http.StatusFound, "login_required")
	loc, _ := url.Parse(resp.Header.Get("Location"))
	q := loc.Query()
	if !strings.HasPrefix(loc.String(), f.idp.Issuer+"/") || q.Get("code_challenge_method") != "S256" ||
		q.Get("code_challenge") == "" || q.Get("state") == "" || q.Get("nonce") == "" ||
		q.Get("redirect_uri") != f.gw1+"/oauth2/callback" || q.Get("client_id") != "web" {
		t.Fatalf("authorization request %s", loc)
	}
	for name, h := range map[string]http.Header{
		"json":             api(),
		"X-Requested-With": {"Accept": {"text/html"}, "X-Requested-With": {"XMLHttpRequest"}},
		"no Accept":        {"Accept": {"*/*"}},
	} {
		resp, body := b.do(http.MethodGet, f.gw1+"/api/products", nil, h)
		wantStatus(t, "API call without session ("+name+")", resp, body, http.StatusUnauthorized, "missing_credentials")
	}
	resp, body = b.do(http.MethodPost, f.gw1+"/app/page", url.Values{"a": {"b"}}, nil)
	wantStatus(t, "POST without session", resp, body, http.StatusUnauthorized, "missing_credentials")

	_, resp, body = b.login(f.gw1+"/app/page?x=1", "alice", true)
	if resp.StatusCode != http.StatusOK || body != "Hello alice at /app/page?x=1" {
		t.Fatalf("after login: %d %q", resp.StatusCode, body)
	}
	h := f.up.header()
	at := strings.TrimPrefix(h.Get("Authorization"), "Bearer ")
	if h.Get("X-Auth-Method") != "session" || h.Get("X-Auth-Email") != "alice@example.com" || at == "" {
		t.Fatalf("upstream got %v", h)
	}
	if c := h.Get("Cookie"); strings.Contains(c, "gatehouse_session") {
		t.Errorf("the session cookie reached the upstream: %q", c)
	}
	sid := b.cookie(f.gw1, "gatehouse_session")
	if sid == "" {
		t.Fatal("no session cookie")
	}

	// The same session on API calls, on the other instance too.
	for _, gw := range []string{f.gw1, f.gw2} {
		resp, body = b.do(http.MethodGet, gw+"/api/products", nil, api())
		wantStatus(t, "API call with session at "+gw, resp, body, http.StatusOK, "")
	}

	// Refresh: 30 s before the access token (1 h) expires, the next request
	// refreshes it; the upstream gets the new one.
	f.now.Add(int64(time.Hour - 30*time.Second))
	resp, body = b.do(http.MethodGet, f.gw2+"/api/products", nil, api())
	wantStatus(t, "API call after refresh", resp, body, http.StatusOK, "")
	at2 := strings.TrimPrefix(f.up.header().Get("Authorization"), "Bearer ")
	if at2 == "" || at2 == at {
		t.Fatalf("access token not refreshed: %q -> %q", at, at2)
	}
	resp, body = b.do(http.MethodGet, f.gw1+"/api/products", nil, api())
	wantStatus(t, "API call on the other instance after refresh", resp, body, http.StatusOK, "")
	if got := strings.TrimPrefix(f.up.header().Get("Authorization"), "Bearer "); got != at2 {
		t.Errorf("instance 1 forwards %q, want the refreshed %q", got, at2)
	}

	// Logout on instance 2: RP-initiated logout at the provider; the
	// session ends on instance 1 too.
	resp, body = b.do(http.MethodGet, f.gw2+"/oauth2/logout", nil, nil)
	wantStatus(t, "logout", resp, body, http.StatusFound, "logged_out")
	out, _ := url.Parse(resp.Header.Get("Location"))
	if !strings.HasPrefix(out.String(), f.idp.Issuer+"/session/end") || out.Query().Get("id_token_hint") == "" ||
		out.Query().Get("post_logout_redirect_uri") != f.gw2+"/bye" {
		t.Fatalf("logout goes to %s", out)
	}
	resp, body = b.do(http.MethodGet, out.String(), nil, nil)
	if resp.StatusCode != http.StatusOK || !strings.Contains(body, "form") {
		t.Errorf("the provider's logout page: %d %s", resp.StatusCode, body)
	}
	b.setCookie(f.gw1, "gatehouse_session", sid) // a copy kept by an attacker
	// Instance 1 had the session in its cache: the state store's message
	// drops it there (asynchronously: wait for it, generously).
	for deadline := time.Now().Add(20 * time.Second); ; {
		resp, body = b.do(http.MethodGet, f.gw1+"/api/products", nil, api())
		if resp.StatusCode != http.StatusOK || time.Now().After(deadline) {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	wantStatus(t, "API call after logout", resp, body, http.StatusUnauthorized, "invalid_session")
	resp, body = b.do(http.MethodGet, f.gw2+"/api/products", nil, api())
	wantStatus(t, "API call after logout, at the instance that logged out", resp, body, http.StatusUnauthorized, "invalid_session")
	resp, body = b.do(http.MethodGet, f.gw1+"/app/page", nil, nil)
	wantStatus(t, "page after logout", resp, body, http.StatusFound, "login_required")
}

// Each check of the callback and the cookies refuses what it must.
func TestOIDCProviderRefusals(t *testing.T) {
	f := start(t)
	ctx := context.Background()

	t.Run("wrong state", func(t *testing.T) {
		b := newBrowser(t)
		cb, _, _ := b.login(f.gw1+"/app", "alice", false)
		q := cb.Query()
		q.Set("state", q.Get("state")+"x")
		cb.RawQuery = q.Encode()
		resp, body := b.do(http.MethodGet, cb.String(), nil, nil)
		wantStatus(t, "wrong state", resp, body, http.StatusBadRequest, "invalid_callback")
		if b.cookie(f.gw1, "gatehouse_session") != "" {
			t.Error("a session was created")
		}
	})
	t.Run("replayed callback, on the other instance too", func(t *testing.T) {
		b := newBrowser(t)
		cb, _, _ := b.login(f.gw1+"/app", "alice", false)
		login := b.cookie(f.gw1, "gatehouse_session_login")
		resp, body := b.do(http.MethodGet, cb.String(), nil, nil)
		wantStatus(t, "first callback", resp, body, http.StatusFound, "login_complete")
		for _, gw := range []string{f.gw1, f.gw2} {
			b.setCookie(gw, "gatehouse_session_login", login)
			replay := strings.Replace(cb.String(), f.gw1, gw, 1)
			resp, body = b.do(http.MethodGet, replay, nil, nil)
			wantStatus(t, "replay at "+gw, resp, body, http.StatusBadRequest, "invalid_callback")
		}
	})
	t.Run("replayed code", func(t *testing.T) {
		b := newBrowser(t)
		cb, _, _ := b.login(f.gw1+"/app", "alice", false)
		resp, body := b.do(http.MethodGet, cb.String(), nil, nil)
		wantStatus(t, "first callback", resp, body, http.StatusFound, "login_complete")
		// A new login of this browser, answered with the used code.
		cb2, _, _ := b.login(f.gw1+"/oauth2/start?rd=/other", "alice", false)
		q := cb2.Query()
		q.Set("code", cb.Query().Get("code"))
		cb2.RawQuery = q.Encode()
		resp, body = b.do(http.MethodGet, cb2.String(), nil, nil)
		wantStatus(t, "used code", resp, body, http.StatusUnauthorized, "login_failed")
	})
	t.Run("PKCE mismatch", func(t *testing.T) {
		// The code of login A, unused, presented with login B's state: the
		// gateway exchanges it with B's verifier and the provider refuses.
		b := newBrowser(t)
		cbA, _, _ := b.login(f.gw1+"/a", "alice", false)
		cbB, _, _ := b.login(f.gw1+"/b", "alice", false)
		q := cbB.Query()
		q.Set("code", cbA.Query().Get("code"))
		cbB.RawQuery = q.Encode()
		resp, body := b.do(http.MethodGet, cbB.String(), nil, nil)
		wantStatus(t, "PKCE mismatch", resp, body, http.StatusUnauthorized, "login_failed")
	})
	t.Run("nonce mismatch", func(t *testing.T) {
		b := newBrowser(t)
		cb, _, _ := b.login(f.gw1+"/app", "alice", false)
		// The pending login's nonce is changed in the store: the ID token
		// the provider issues carries the nonce of the request, not this.
		k := session.LoginKey(cb.Query().Get("state"))
		raw, err := f.st.Get(ctx, k)
		if err != nil {
			t.Fatal(err)
		}
		var pd map[string]any
		json.Unmarshal(raw, &pd)
		pd["n"] = "another-nonce"
		raw, _ = json.Marshal(pd)
		if err := f.st.Set(ctx, k, raw, time.Minute); err != nil {
			t.Fatal(err)
		}
		resp, body := b.do(http.MethodGet, cb.String(), nil, nil)
		wantStatus(t, "nonce mismatch", resp, body, http.StatusUnauthorized, "login_failed")
	})
	t.Run("callback without the pre-login cookie (login CSRF)", func(t *testing.T) {
		b := newBrowser(t)
		cb, _, _ := b.login(f.gw1+"/app", "alice", false)
		victim := newBrowser(t)
		resp, body := victim.do(http.MethodGet, cb.String(), nil, nil)
		wantStatus(t, "foreign callback", resp, body, http.StatusBadRequest, "invalid_callback")
	})
	t.Run("open redirect", func(t *testing.T) {
		b := newBrowser(t)
		for _, rd := range []string{"//evil.example", "/\\evil.example", "\\\\evil.example", "https://evil.example/",
			"/%2Fevil.example", "/\t/evil.example", "evil.example", "javascript:alert(1)", "/%5cevil.example"} {
			resp, body := b.do(http.MethodGet, f.gw1+"/oauth2/start?rd="+url.QueryEscape(rd), nil, nil)
			wantStatus(t, "rd="+rd, resp, body, http.StatusBadRequest, "invalid_redirect")
		}
		_, resp, body := b.login(f.gw1+"/oauth2/start?rd="+url.QueryEscape("/app/deep?q=1"), "bob", true)
		if resp.StatusCode != http.StatusOK || body != "Hello bob at /app/deep?q=1" {
			t.Fatalf("same-site target: %d %q", resp.StatusCode, body)
		}
	})
	t.Run("session fixation", func(t *testing.T) {
		// The attacker's own valid session, planted in the victim's browser,
		// is replaced at login, and stays the attacker's.
		attacker := newBrowser(t)
		attacker.login(f.gw1+"/app", "bob", true)
		planted := attacker.cookie(f.gw1, "gatehouse_session")
		victim := newBrowser(t)
		victim.setCookie(f.gw1, "gatehouse_session", "not-a-session.AAAAAAAAAAAAAAAAAAAAAA")
		resp, body := victim.do(http.MethodGet, f.gw1+"/app", nil, nil)
		wantStatus(t, "planted garbage", resp, body, http.StatusFound, "login_required")
		victim.setCookie(f.gw1, "gatehouse_session", planted)
		// The victim is logged in as bob (the planted session) until
		// logging in; a login never keeps the planted id.
		_, resp, body = victim.login(f.gw1+"/oauth2/start?rd=/app", "alice", true)
		if resp.StatusCode != http.StatusOK || body != "Hello alice at /app" {
			t.Fatalf("victim after login: %d %q", resp.StatusCode, body)
		}
		if got := victim.cookie(f.gw1, "gatehouse_session"); got == planted || got == "" {
			t.Fatalf("the planted session id was kept: %q", got)
		}
		resp, body = attacker.do(http.MethodGet, f.gw1+"/app", nil, nil)
		if resp.StatusCode != http.StatusOK || body != "Hello bob at /app" {
			t.Fatalf("the attacker's session: %d %q", resp.StatusCode, body)
		}
	})
	t.Run("cookie tampering", func(t *testing.T) {
		b := newBrowser(t)
		b.login(f.gw1+"/app", "alice", true)
		good := b.cookie(f.gw1, "gatehouse_session")
		value, tag, _ := strings.Cut(good, ".")
		flip := func(s string) string {
			c := byte('A')
			if s[0] == 'A' {
				c = 'B'
			}
			return string(c) + s[1:]
		}
		for name, v := range map[string]string{
			"value changed":  flip(value) + "." + tag,
			"tag changed":    value + "." + flip(tag),
			"no tag":         value,
			"tag of another": value + "." + strings.Split(b.cookie(f.gw1, "gatehouse_session"), ".")[1][:4] + "AAAAAAAAAAAAAAAAAA",
		} {
			b.setCookie(f.gw1, "gatehouse_session", v)
			resp, body := b.do(http.MethodGet, f.gw1+"/api/x", nil, api())
			wantStatus(t, "API with cookie "+name, resp, body, http.StatusUnauthorized, "invalid_session")
			resp, body = b.do(http.MethodGet, f.gw1+"/app", nil, nil)
			wantStatus(t, "page with cookie "+name, resp, body, http.StatusFound, "login_required")
		}
		b.setCookie(f.gw1, "gatehouse_session", good)
		resp, body := b.do(http.MethodGet, f.gw1+"/api/x", nil, api())
		wantStatus(t, "the untouched cookie", resp, body, http.StatusOK, "")
	})
}
