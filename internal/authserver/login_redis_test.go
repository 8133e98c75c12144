package authserver

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/internal/store"
	"github.com/gatehouse/gatehouse/internal/store/redistest"
)

// TestRedisLogin runs two instances behind one real Redis, as two
// gateways behind a load balancer: a login on one is a session on the
// other, a code issued by one is redeemed once on either, and a refresh
// token reused on one instance revokes the family rotated on the other,
// whose access tokens every instance then refuses.
func TestRedisLogin(t *testing.T) {
	rs := redistest.Start(t)
	open := func() store.Store {
		st, err := store.NewRedis(store.RedisOptions{Addrs: []string{rs.Addr()}, KeyPrefix: t.Name() + ":"})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { st.Close() })
		return st
	}
	a := newLoginEnv(t, "", func(e *env) { e.store = open() })
	b := &env{t: t, clock: a.clock, store: open(), revs: revocationList(a), dir: a.dir, issuer: a.issuer}
	b.start(loginSection(t, ""))
	bts := httptest.NewServer(b.srv)
	t.Cleanup(bts.Close)
	postB := func(f url.Values, id, secret string) (int, map[string]any) {
		req, _ := http.NewRequest(http.MethodPost, bts.URL+PathToken, strings.NewReader(f.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.SetBasicAuth(id, secret)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		var m map[string]any
		json.Unmarshal(body, &m)
		return resp.StatusCode, m
	}

	br := a.browser()
	code := br.code("web", webRedirect, verifierA, "alice", alicePassword)
	// The session made on a is found by b (the cookie jar ignores ports,
	// as browsers do: both instances are one host to it).
	p := br.get(bts.URL + strings.TrimPrefix(a.authzURL("web", webRedirect, verifierA), a.issuer))
	if p.status != http.StatusSeeOther || p.location(t).Query().Get("code") == "" {
		t.Fatalf("the other instance does not know the session: %d %s", p.status, p.body)
	}
	redeem := url.Values{"grant_type": {"authorization_code"}, "code": {code}, "redirect_uri": {webRedirect}, "code_verifier": {verifierA}}
	st, tok := postB(redeem, "web", webSecret)
	if st != 200 {
		t.Fatalf("redeem on b: %d %v", st, tok)
	}
	// The code issued by b: redeemed on a, then refused on b.
	redeem2 := url.Values{"grant_type": {"authorization_code"}, "code": {p.location(t).Query().Get("code")}, "redirect_uri": {webRedirect}, "code_verifier": {verifierA}}
	if r, m := a.post(PathToken, "web", webSecret, redeem2); r.StatusCode != 200 {
		t.Fatalf("redeem on a: %d %v", r.StatusCode, m)
	}
	if st, m := postB(redeem2, "web", webSecret); st != 400 || m["error"] != "invalid_grant" {
		t.Fatalf("the code redeemed on a is accepted again on b: %d %v", st, m)
	}
	rt1 := tok["refresh_token"].(string)
	r, tok2 := a.post(PathToken, "web", webSecret, formOf("grant_type", "refresh_token", "refresh_token", rt1))
	if r.StatusCode != 200 {
		t.Fatalf("refresh on a: %d %v", r.StatusCode, tok2)
	}
	// rt1 again, on b: reuse.
	if st, m := postB(formOf("grant_type", "refresh_token", "refresh_token", rt1), "web", webSecret); st != 400 || m["error"] != "invalid_grant" {
		t.Fatalf("reuse on b: %d %v", st, m)
	}
	if r, m := a.post(PathToken, "web", webSecret, formOf("grant_type", "refresh_token", "refresh_token", tok2["refresh_token"].(string))); r.StatusCode != 400 {
		t.Fatalf("the family revoked on b still refreshes on a: %d %v", r.StatusCode, m)
	}
	jti := decodePart(t, tok2["access_token"].(string), 1)["jti"].(string)
	deadline := time.Now().Add(10 * time.Second)
	for !a.revs.Revoked(jti) || !b.revs.Revoked(jti) {
		if time.Now().After(deadline) {
			t.Fatal("the access token of the revoked family is not revoked on both instances")
		}
		time.Sleep(10 * time.Millisecond)
	}
}
