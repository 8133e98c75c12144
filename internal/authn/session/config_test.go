package session

import (
	"net/http"
	"slices"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/internal/authn"
	"github.com/gatehouse/gatehouse/internal/policy/policytest"
)

func build(t *testing.T, yaml string) (*Authenticator, error) {
	t.Helper()
	return New(policytest.Node(t, yaml), &authn.Env{Env: policytest.Env(), Realm: "app"})
}

func TestConfigErrors(t *testing.T) {
	const base = "issuer: https://idp.example\nclient_id: gw\n"
	tests := []struct {
		name, yaml string
		line       int
		path, msg  string
	}{
		{"no issuer", "client_id: gw\n", 1, "", "issuer is required"},
		{"issuer not a URL", "issuer: idp.example\nclient_id: gw\n", 1, "issuer", "not an http(s) URL"},
		{"issuer with query", "issuer: https://idp.example/?a=b\nclient_id: gw\n", 1, "issuer", "no credentials, query or fragment"},
		{"issuer in clear text", "issuer: http://idp.example\nclient_id: gw\n", 1, "issuer", "clear text"},
		{"no client id", "issuer: https://idp.example\n", 1, "", "client_id is required"},
		{"unknown field", base + "cookie_domain: example.com\n", 3, "cookie_domain", "unknown field"},
		{"redirect with query", base + "redirect_url: https://app.example/cb?x=1\n", 3, "redirect_url", "no query"},
		{"redirect relative", base + "redirect_url: oauth2/callback\n", 3, "redirect_url", "neither an absolute URL nor an absolute path"},
		{"redirect scheme-relative", base + "redirect_url: //evil.example/cb\n", 3, "redirect_url", "neither"},
		{"redirect ftp", base + "redirect_url: ftp://app.example/cb\n", 3, "redirect_url", "not an http(s) URL"},
		{"redirect without path", base + "redirect_url: https://app.example\n", 3, "redirect_url", "needs a path"},
		{"logout path not a path", base + "logout_path: logout\n", 3, "logout_path", "not a plain absolute path"},
		{"login path with query", base + "login_path: /start?x\n", 3, "login_path", "not a plain absolute path"},
		{"post logout elsewhere", base + "post_logout_redirect_url: //evil.example\n", 3, "post_logout_redirect_url", "same-site path"},
		{"bad scope", base + "scopes: [openid, \"a b\"]\n", 3, "scopes[1]", "not a scope token"},
		{"bad cookie name", base + "cookie_name: \"a;b\"\n", 3, "cookie_name", "not a cookie name"},
		{"short cookie secret", base + "cookie_secret: short\n", 3, "cookie_secret", "at least 32 bytes"},
		{"negative ttl", base + "session_ttl: -1h\n", 3, "session_ttl", "must not be negative"},
		{"bad duration", base + "refresh_before: 5\n", 3, "refresh_before", "unit"},
		{"callback is logout", base + "redirect_url: /out\nlogout_path: /out\n", 3, "redirect_url", "also the login or logout path"},
		{"missing ca", base + "ca_file: /nonexistent/ca.pem\n", 3, "ca_file", "no such file"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := build(t, tt.yaml)
			policytest.WantConfigError(t, err, tt.line, tt.path, tt.msg)
		})
	}
}

func TestConfigErrorsTogether(t *testing.T) {
	_, err := build(t, "issuer: ftp://x\nclient_id: gw\ncookie_secret: short\nscopes: [\"\"]\n")
	policytest.WantConfigErrors(t, err,
		policytest.ConfigErrorAt{Line: 1, Path: "issuer"},
		policytest.ConfigErrorAt{Line: 3, Path: "cookie_secret"},
		policytest.ConfigErrorAt{Line: 4, Path: "scopes[0]"})
}

func TestConfigSettings(t *testing.T) {
	a, err := build(t, "issuer: http://127.0.0.1:9/\nclient_id: gw\n")
	if err != nil {
		t.Fatal(err)
	}
	s := a.s
	if s.issuer != "http://127.0.0.1:9/" || s.callbackPath != "/oauth2/callback" || s.logoutPath != "/oauth2/logout" ||
		s.loginPath != "" || s.cookie != "gatehouse_session" || s.ttl != 12*time.Hour || s.refreshBefore != time.Minute ||
		s.loginTTL != 10*time.Minute || s.timeout != 5*time.Second || s.cookieKey != nil || s.noUserinfo ||
		!slices.Equal(s.scopes, []string{"openid", "profile", "email"}) {
		t.Errorf("defaults: %+v", s)
	}
	a, err = build(t, "issuer: https://idp.example\nclient_id: gw\nscopes: [email, openid]\nredirect_url: https://app.example/cb\n"+
		"cookie_secret: 0123456789abcdef0123456789abcdef\nuserinfo: false\n")
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(a.s.scopes, []string{"openid", "email"}) || a.s.callbackPath != "/cb" || string(a.s.cookieKey) != "0123456789abcdef0123456789abcdef" || !a.s.noUserinfo {
		t.Errorf("settings: %+v", a.s)
	}
}

func TestSafeTarget(t *testing.T) {
	for v, want := range map[string]bool{
		"/": true, "/app": true, "/app/x?y=1&z=%2F": true, "/a//b": true,
		"": false, "app": false, "//evil.example": false, "/\\evil.example": false, "\\\\evil.example": false,
		"/app\\..\\x": false, "https://evil.example": false, "javascript:alert(1)": false, "/\t/evil.example": false,
		"/\n/evil": false, "/%2fevil.example": false, "/%5Cevil.example": false, "/ x": false, "/\x7f": false,
	} {
		if got := safeTarget(v); got != want {
			t.Errorf("safeTarget(%q) = %v, want %v", v, got, want)
		}
	}
}

func TestCookieSignature(t *testing.T) {
	k1, k2 := []byte("0123456789abcdef0123456789abcdef"), []byte("fedcba9876543210fedcba9876543210")
	c := sign(k1, "s", "value")
	if v, ok := unsign(k1, "s", c); !ok || v != "value" {
		t.Fatalf("unsign(sign) = %q, %v", v, ok)
	}
	for name, bad := range map[string]struct {
		key  []byte
		name string
		v    string
	}{
		"other key":        {k2, "s", c},
		"other name":       {k1, "s_login", c},
		"value changed":    {k1, "s", "valuf" + c[5:]},
		"no tag":           {k1, "s", "value"},
		"short tag":        {k1, "s", c[:len(c)-2]},
		"tag not base64":   {k1, "s", "value.!!!!!!!!!!!!!!!!!!!!!!"},
		"empty value":      {k1, "s", c[5:]},
		"empty everything": {k1, "s", ""},
	} {
		if _, ok := unsign(bad.key, bad.name, bad.v); ok {
			t.Errorf("%s: accepted", name)
		}
	}
}

func TestIsBrowser(t *testing.T) {
	for _, tt := range []struct {
		method string
		h      http.Header
		want   bool
	}{
		{"GET", http.Header{"Accept": {"text/html,application/xhtml+xml,*/*;q=0.8"}}, true},
		{"HEAD", http.Header{"Accept": {"text/html"}}, true},
		{"GET", http.Header{"Accept": {"application/json"}}, false},
		{"GET", http.Header{"Accept": {"*/*"}}, false},
		{"GET", http.Header{}, false},
		{"GET", http.Header{"Accept": {"text/html;q=0"}}, false},
		{"GET", http.Header{"Accept": {"text/html"}, "X-Requested-With": {"XMLHttpRequest"}}, false},
		{"POST", http.Header{"Accept": {"text/html"}}, false},
	} {
		r, _ := http.NewRequest(tt.method, "http://x/", nil)
		r.Header = tt.h
		if got := isBrowser(r); got != tt.want {
			t.Errorf("%s %v: %v, want %v", tt.method, tt.h, got, tt.want)
		}
	}
}

func TestStripCookies(t *testing.T) {
	r, _ := http.NewRequest("GET", "http://x/", nil)
	r.Header["Cookie"] = []string{"a=1; gatehouse_session=x.y", "gatehouse_session_login=z; b=2"}
	stripCookies(r, "gatehouse_session", "gatehouse_session_login")
	if got := r.Header.Values("Cookie"); !slices.Equal(got, []string{"a=1; b=2"}) {
		t.Errorf("Cookie = %q", got)
	}
	r.Header["Cookie"] = []string{"gatehouse_session=x"}
	stripCookies(r, "gatehouse_session")
	if _, ok := r.Header["Cookie"]; ok {
		t.Error("an empty Cookie header is left")
	}
}
