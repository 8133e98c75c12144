package session_test

import (
	"context"
	"errors"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/internal/authn"
	"github.com/gatehouse/gatehouse/internal/authn/oidcpeer"
	"github.com/gatehouse/gatehouse/internal/authn/session"
	"github.com/gatehouse/gatehouse/internal/config"
	"github.com/gatehouse/gatehouse/internal/policy"
	"github.com/gatehouse/gatehouse/internal/policy/policytest"
	"github.com/gatehouse/gatehouse/internal/store"
)

// Over TLS the cookies are __Host- prefixed and Secure; a cookie of the
// plain name is not taken for the session there.
func TestCookiesOverTLS(t *testing.T) {
	idp := oidcpeer.Start(t)
	idp.AddClient(t, "web", "web-secret", []string{"https://app.test/oauth2/callback"}, nil)
	env := policytest.Env()
	env.Now = time.Now
	env.Store = store.NewMemory(time.Now)
	n, err := config.ParseNode(policytest.File, []byte("issuer: "+idp.Issuer+"\nclient_id: web\nclient_secret: web-secret\n"), nil)
	if err != nil {
		t.Fatal(err)
	}
	a, err := session.New(n, &authn.Env{Env: env, Realm: "app"})
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	ctx := context.Background()
	auth := func(r *http.Request) (*policy.Principal, *policy.Denial) {
		pr, err := a.Authenticate(ctx, policytest.Exchange(r))
		d, _ := policy.AsDenial(err)
		if pr == nil && d == nil {
			t.Fatalf("neither a principal nor a denial: %v", err)
		}
		return pr, d
	}
	page := httptest.NewRequest(http.MethodGet, "https://app.test/app", nil) // r.TLS set
	page.Header.Set("Accept", "text/html")
	_, d := auth(page)
	login := d.Header.Get("Set-Cookie")
	if d.Code != "login_required" || !strings.HasPrefix(login, "__Host-gatehouse_session_login=") {
		t.Fatalf("%v, Set-Cookie %q", d, login)
	}
	for _, attr := range []string{"; Path=/", "; HttpOnly", "; Secure", "; SameSite=Lax"} {
		if !strings.Contains(login, attr) {
			t.Errorf("pre-login cookie %q lacks %s", login, attr)
		}
	}
	if strings.Contains(strings.ToLower(login), "domain=") {
		t.Errorf("a __Host- cookie has no Domain: %q", login)
	}
	jar, _ := cookiejar.New(nil)
	client := &http.Client{Jar: jar, Timeout: 30 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	cb := httptest.NewRequest(http.MethodGet, toCallback(t, client, d.Header.Get("Location"), "https://app.test/oauth2/callback"), nil)
	cb.Header.Set("Cookie", strings.SplitN(login, ";", 2)[0])
	_, d = auth(cb)
	var sess string
	for _, c := range d.Header.Values("Set-Cookie") {
		if strings.HasPrefix(c, "__Host-gatehouse_session=") {
			sess = c
		}
	}
	if d.Code != "login_complete" || !strings.Contains(sess, "; Secure") || !strings.Contains(sess, "; HttpOnly") || !strings.Contains(sess, "; SameSite=Lax") {
		t.Fatalf("callback: %v, session cookie %q", d, sess)
	}
	value := strings.TrimPrefix(strings.SplitN(sess, ";", 2)[0], "__Host-gatehouse_session=")
	api := func(cookie string) (*policy.Principal, *policy.Denial) {
		r := httptest.NewRequest(http.MethodGet, "https://app.test/api", nil)
		r.Header.Set("Accept", "application/json")
		r.Header.Set("Cookie", cookie)
		return auth(r)
	}
	if pr, d := api("__Host-gatehouse_session=" + value); pr == nil || pr.Subject != "alice" {
		t.Fatalf("the __Host- session: %v", d)
	}
	// The same value under the plain name (as a sibling domain could set
	// it) is not the session over TLS.
	r := httptest.NewRequest(http.MethodGet, "https://app.test/api", nil)
	r.Header.Set("Accept", "application/json")
	r.Header.Set("Cookie", "gatehouse_session="+value)
	if pr, err := a.Authenticate(ctx, policytest.Exchange(r)); pr != nil || !errors.Is(err, authn.ErrNoCredentials) {
		t.Errorf("the plain-named cookie over TLS: %+v, %v; want no credentials", pr, err)
	}
}
