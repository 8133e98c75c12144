package authserver

import (
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"github.com/gatehouse/gatehouse/internal/benchcpu"
	"github.com/gatehouse/gatehouse/internal/users"
)

// cheapHash is an argon2id hash with the least parameters the users file
// takes (8 KiB, 1 pass): what is left of a login's cost is the server's
// own work, which is what the login benchmarks measure.
const cheapHash = "$argon2id$v=19$m=8,t=1,p=1$c2FsdHNhbHRzYWx0$"

func cheapUsers(b *testing.B) string {
	// The hash of "pw" under the cheap parameters, made with the users
	// package so that it is a real argon2id.
	h := cheapHash + argonB64(b)
	return "users:\n  - username: alice\n    password_hash: " + h + "\n"
}

func argonB64(b *testing.B) string {
	p, err := users.ParseHash(cheapHash + "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA")
	if err != nil {
		b.Fatal(err)
	}
	return p.EncodeFor("pw")
}

// roundTrip serves one request to the handler without the network.
func roundTrip(e *env, method, target, body, cookie string, basic ...string) *httptest.ResponseRecorder {
	var r *http.Request
	if body != "" {
		r = httptest.NewRequest(method, target, strings.NewReader(body))
		r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	} else {
		r = httptest.NewRequest(method, target, nil)
	}
	if cookie != "" {
		r.Header.Set("Cookie", cookie)
	}
	if len(basic) == 2 {
		r.SetBasicAuth(basic[0], basic[1])
	}
	w := httptest.NewRecorder()
	e.srv.ServeHTTP(w, r)
	return w
}

func cookieHeader(w *httptest.ResponseRecorder) string {
	var parts []string
	for _, c := range w.Result().Cookies() {
		parts = append(parts, c.Name+"="+c.Value)
	}
	return strings.Join(parts, "; ")
}

// BenchmarkLoginRoundTrip is one whole login as the AS sees it: the
// authorization request (login page), the login form's POST (CSRF and
// browser checks, failure budgets, session, code) and the code's
// redemption (client authentication, PKCE, access token, ID token,
// refresh token), with the memory store. The password hash is the
// cheapest argon2id; BenchmarkCheapArgon2 is that hash alone, to subtract.
func BenchmarkLoginRoundTrip(b *testing.B) {
	e := newEnv(b, loginSection(b, ""), func(e *env) { e.writeFile("users.yaml", []byte(cheapUsers(b))) })
	authz := strings.TrimPrefix(e.authzURL("web", webRedirect, verifierA), e.issuer)
	redeem := url.Values{"grant_type": {"authorization_code"}, "redirect_uri": {webRedirect}, "code_verifier": {verifierA}}
	b.ReportAllocs()
	cpu := benchcpu.Start(b)
	for b.Loop() {
		w := roundTrip(e, http.MethodGet, authz, "", "")
		m := hiddenRe.FindAllStringSubmatch(w.Body.String(), -1)
		if w.Code != 200 || len(m) != 2 {
			b.Fatalf("login page: %d", w.Code)
		}
		form := url.Values{"tx": {m[0][2]}, "csrf": {m[1][2]}, "username": {"alice"}, "password": {"pw"}}.Encode()
		w = roundTrip(e, http.MethodPost, PathLogin, form, cookieHeader(w))
		if w.Code != 303 {
			b.Fatalf("login: %d %s", w.Code, w.Body)
		}
		loc, _ := url.Parse(w.Header().Get("Location"))
		redeem.Set("code", loc.Query().Get("code"))
		w = roundTrip(e, http.MethodPost, PathToken, redeem.Encode(), "", "web", webSecret)
		if w.Code != 200 || !strings.Contains(w.Body.String(), "id_token") {
			b.Fatalf("token: %d %s", w.Code, w.Body)
		}
	}
	cpu.Report()
}

// BenchmarkSessionRoundTrip is a login answered from an existing AS
// session (no password): authorization request to code, and the code's
// redemption.
func BenchmarkSessionRoundTrip(b *testing.B) {
	e := newEnv(b, loginSection(b, ""), func(e *env) { e.writeFile("users.yaml", []byte(cheapUsers(b))) })
	authz := strings.TrimPrefix(e.authzURL("web", webRedirect, verifierA), e.issuer)
	w := roundTrip(e, http.MethodGet, authz, "", "")
	m := hiddenRe.FindAllStringSubmatch(w.Body.String(), -1)
	form := url.Values{"tx": {m[0][2]}, "csrf": {m[1][2]}, "username": {"alice"}, "password": {"pw"}}.Encode()
	w = roundTrip(e, http.MethodPost, PathLogin, form, cookieHeader(w))
	sess := cookieHeader(w)
	redeem := url.Values{"grant_type": {"authorization_code"}, "redirect_uri": {webRedirect}, "code_verifier": {verifierA}}
	b.ReportAllocs()
	cpu := benchcpu.Start(b)
	for b.Loop() {
		w := roundTrip(e, http.MethodGet, authz, "", sess)
		if w.Code != 303 {
			b.Fatalf("authorize: %d", w.Code)
		}
		loc, _ := url.Parse(w.Header().Get("Location"))
		redeem.Set("code", loc.Query().Get("code"))
		if w = roundTrip(e, http.MethodPost, PathToken, redeem.Encode(), "", "web", webSecret); w.Code != 200 {
			b.Fatalf("token: %d %s", w.Code, w.Body)
		}
	}
	cpu.Report()
}

// BenchmarkCheapArgon2 is the password check inside
// BenchmarkLoginRoundTrip, to subtract from it.
func BenchmarkCheapArgon2(b *testing.B) {
	s, err := users.Parse("u.yaml", []byte(cheapUsers(b)))
	if err != nil {
		b.Fatal(err)
	}
	cpu := benchcpu.Start(b)
	for b.Loop() {
		if _, ok := s.Authenticate("alice", "pw"); !ok {
			b.Fatal("no match")
		}
	}
	cpu.Report()
}
