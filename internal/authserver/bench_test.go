package authserver

import (
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
)

// BenchmarkIssueES256 is one client_credentials request through the token
// handler (form parsing, client_secret_basic with a sha256 hash, failure
// budget check, ES256 signature, JSON), without the network.
func BenchmarkIssueES256(b *testing.B) {
	e := newEnv(b, defaultSection(""))
	body := url.Values{"grant_type": {"client_credentials"}, "scope": {"products:read"}}.Encode()
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		r := httptest.NewRequest(http.MethodPost, "/oauth2/token", strings.NewReader(body))
		r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		r.SetBasicAuth("reader", readerSecret)
		w := httptest.NewRecorder()
		e.srv.ServeHTTP(w, r)
		if w.Code != 200 {
			b.Fatalf("%d %s", w.Code, w.Body)
		}
	}
}

// BenchmarkSignOnly is the signature alone, for comparison.
func BenchmarkSignOnly(b *testing.B) {
	e := newEnv(b, defaultSection(""))
	k := e.srv.ring.signing()
	payload := []byte(`{"iss":"x","sub":"reader","aud":"api://products","client_id":"reader","scope":"products:read","jti":"abc","iat":1,"exp":2}`)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := k.Sign(payload, "at+jwt"); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkIntrospect is one RFC 7662 request through the handler: client
// authentication, signature verification, revocation check, JSON.
func BenchmarkIntrospect(b *testing.B) {
	e := newEnv(b, defaultSection(""))
	body := url.Values{"token": {e.token("reader", readerSecret, "")}}.Encode()
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		r := httptest.NewRequest(http.MethodPost, "/oauth2/introspect", strings.NewReader(body))
		r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		r.SetBasicAuth("writer", writerSecret)
		w := httptest.NewRecorder()
		e.srv.ServeHTTP(w, r)
		if w.Code != 200 || !strings.Contains(w.Body.String(), `"active":true`) {
			b.Fatalf("%d %s", w.Code, w.Body)
		}
	}
}

// BenchmarkArgon2Secret is the cost of one client authentication with an
// argon2id secret hash (what a human-chosen demo secret costs per token).
func BenchmarkArgon2Secret(b *testing.B) {
	h, err := HashSecret("demo-reader-secret")
	if err != nil {
		b.Fatal(err)
	}
	v, err := parseSecretHash(h)
	if err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		if !v.verify("demo-reader-secret") {
			b.Fatal("no match")
		}
	}
}
