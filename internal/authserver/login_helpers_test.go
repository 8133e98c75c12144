package authserver

import (
	"html"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"testing"

	"github.com/gatehouse/gatehouse/internal/users"
)

const (
	webSecret     = "web-secret-0123456789abcdef"
	webRedirect   = "http://127.0.0.1:9/callback"
	spaRedirect   = "http://127.0.0.1:9/spa/callback"
	webLoggedOut  = "http://127.0.0.1:9/logged-out"
	alicePassword = "alice-password-1"
	bobPassword   = "bob-password-1"
)

var (
	usersOnce sync.Once
	usersYAML string
)

// usersFile is the users file of the login tests: alice (profile, email,
// groups) and bob; hashed once per test binary.
func usersFile(t testing.TB) string {
	usersOnce.Do(func() {
		ha, err := users.HashPassword(alicePassword)
		if err != nil {
			t.Fatal(err)
		}
		hb, _ := users.HashPassword(bobPassword)
		usersYAML = "users:\n  - username: alice\n    sub: u-alice\n    password_hash: " + ha +
			"\n    name: Alice Example\n    email: alice@example.com\n    email_verified: true\n    groups: [staff]\n" +
			"  - username: bob\n    password_hash: " + hb + "\n"
	})
	return usersYAML
}

// loginClients registers web (confidential, code and refresh) and spa
// (public, code and refresh) besides the base clients.
const loginClients = `    - client_id: web
      secret_hash: ` + "SHA_WEB" + `
      scopes: [products:read]
      audience: [api://products]
      grant_types: [authorization_code, refresh_token]
      redirect_uris: [` + webRedirect + `]
      post_logout_redirect_uris: [` + webLoggedOut + `]
    - client_id: spa
      auth_methods: [none]
      scopes: [products:read]
      audience: [api://products]
      grant_types: [authorization_code, refresh_token]
      redirect_uris: [` + spaRedirect + `]
`

// loginSection is the authorization_server section of the login tests;
// extra goes after users_file (indented 2).
func loginSection(t testing.TB, extra string) string {
	return "  issuer: ISSUER\n  key_encryption_key: " + testKEK + "\n  users_file: users.yaml\n" + extra +
		"  clients:" + baseClients(strings.ReplaceAll(loginClients, "SHA_WEB", sha256Hex(webSecret)))
}

// newLoginEnv starts a server with end-user login.
func newLoginEnv(t testing.TB, extra string, opts ...func(*env)) *env {
	t.Helper()
	f := usersFile(t)
	return newEnv(t, loginSection(t, extra), append([]func(*env){func(e *env) { e.writeFile("users.yaml", []byte(f)) }}, opts...)...)
}

// browser is a cookie-keeping HTTP client that does not follow
// redirects, so that the test sees each step.
type browser struct {
	t  testing.TB
	c  *http.Client
	e  *env
	tx string // the last login form's hidden fields
	cs string
}

func (e *env) browser() *browser {
	jar, _ := cookiejar.New(nil)
	c := *e.ts.Client()
	c.Jar = jar
	c.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	return &browser{t: e.t, c: &c, e: e}
}

type page struct {
	status int
	header http.Header
	body   string
}

func (p page) location(t testing.TB) *url.URL {
	t.Helper()
	u, err := url.Parse(p.header.Get("Location"))
	if err != nil || p.header.Get("Location") == "" {
		t.Fatalf("no redirect: %d %s", p.status, p.body)
	}
	return u
}

func (b *browser) do(req *http.Request) page {
	b.t.Helper()
	resp, err := b.c.Do(req)
	if err != nil {
		b.t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	p := page{resp.StatusCode, resp.Header, string(body)}
	if m := hiddenRe.FindAllStringSubmatch(p.body, -1); m != nil {
		for _, f := range m {
			switch f[1] {
			case "tx":
				b.tx = html.UnescapeString(f[2])
			case "csrf":
				b.cs = html.UnescapeString(f[2])
			}
		}
	}
	return p
}

var hiddenRe = regexp.MustCompile(`<input type="hidden" name="([a-z_]+)" value="([^"]*)">`)

func (b *browser) get(u string) page {
	b.t.Helper()
	req, _ := http.NewRequest(http.MethodGet, u, nil)
	return b.do(req)
}

func (b *browser) post(u string, f url.Values) page {
	b.t.Helper()
	req, _ := http.NewRequest(http.MethodPost, u, strings.NewReader(f.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	return b.do(req)
}

// login posts the last login form with a username and password.
func (b *browser) login(user, pw string) page {
	b.t.Helper()
	return b.post(b.e.issuer+PathLogin, url.Values{"tx": {b.tx}, "csrf": {b.cs}, "username": {user}, "password": {pw}})
}

// authzURL is an authorization request of client with PKCE S256.
func (e *env) authzURL(client, redirect, verifier string, kv ...string) string {
	q := url.Values{"response_type": {"code"}, "client_id": {client}, "redirect_uri": {redirect},
		"scope": {"openid profile email products:read"}, "state": {"st-1"}, "nonce": {"n-1"},
		"code_challenge": {s256(verifier)}, "code_challenge_method": {"S256"}}
	for i := 0; i+1 < len(kv); i += 2 {
		if kv[i+1] == "" {
			q.Del(kv[i])
		} else {
			q.Set(kv[i], kv[i+1])
		}
	}
	return e.issuer + PathAuthorize + "?" + q.Encode()
}

const verifierA = "verifier-aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"

// code runs the login of user at client and returns the code.
func (b *browser) code(client, redirect, verifier, user, pw string, kv ...string) string {
	b.t.Helper()
	p := b.get(b.e.authzURL(client, redirect, verifier, kv...))
	if p.status == http.StatusOK {
		p = b.login(user, pw)
	}
	if p.status != http.StatusSeeOther {
		b.t.Fatalf("login: %d %s", p.status, p.body)
	}
	loc := p.location(b.t)
	q := loc.Query()
	if q.Get("code") == "" || q.Get("state") != "st-1" || q.Get("iss") != b.e.issuer {
		b.t.Fatalf("authorization response %s", loc)
	}
	return q.Get("code")
}

// redeem posts the code at the token endpoint as web (Basic) or spa.
func (e *env) redeem(client, code, redirect, verifier string) (*http.Response, map[string]any) {
	e.t.Helper()
	f := url.Values{"grant_type": {"authorization_code"}, "code": {code}, "redirect_uri": {redirect}, "code_verifier": {verifier}}
	if client == "web" {
		return e.post(PathToken, "web", webSecret, f)
	}
	f.Set("client_id", client)
	return e.post(PathToken, "", "", f)
}
