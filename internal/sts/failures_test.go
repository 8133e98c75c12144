package sts

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

// TestFailureBudget guesses alice's password over HTTP: after
// FailuresPerIP failures in a minute the address is refused with 429 and
// Retry-After, even with the right password and whatever X-Forwarded-For
// an untrusted peer claims; a minute later it is served again.
func TestFailureBudget(t *testing.T) {
	f := newFixture(t, "")
	srv := httptest.NewServer(f.srv)
	defer srv.Close()
	post := func(password, xff string) (int, string, http.Header) {
		t.Helper()
		req, err := http.NewRequest(http.MethodPost, srv.URL+"/sts", strings.NewReader(f.rst(true, "alice", password, actIssue, issueBody("urn:gatehouse:products", ""))))
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Content-Type", "application/soap+xml; charset=utf-8")
		if xff != "" {
			req.Header.Set("X-Forwarded-For", xff)
		}
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		b, _ := io.ReadAll(res.Body)
		return res.StatusCode, string(b), res.Header
	}
	for i := range FailuresPerIP {
		if code, body, _ := post("guess", ""); code != 401 || !strings.Contains(body, "wst:FailedAuthentication") {
			t.Fatalf("guess %d: %d %s, want 401 FailedAuthentication", i+1, code, body)
		}
	}
	for _, c := range []struct{ name, password, xff string }{
		{"one more guess", "guess", ""},
		{"the right password", "pässword & <more>", ""},
		{"another address claimed by an untrusted peer", "pässword & <more>", "198.51.100.7"},
	} {
		code, body, h := post(c.password, c.xff)
		if code != 429 || h.Get("Retry-After") == "" || !strings.Contains(body, "wst:RequestFailed") || strings.Contains(body, "Assertion") {
			t.Errorf("%s after %d failures: %d (Retry-After %q) %s\nwant 429 with Retry-After, a wst:RequestFailed fault and no assertion", c.name, FailuresPerIP, code, h.Get("Retry-After"), body)
		}
	}
	f.clock.add(time.Minute)
	if code, body, _ := post("pässword & <more>", ""); code != 200 || !strings.Contains(body, "Assertion") {
		t.Errorf("a minute later, the right password: %d %s, want 200 and an assertion", code, body)
	}
}
