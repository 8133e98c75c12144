package faulttest

import (
	"net/http/httptest"
	"sync"
	"testing"
	"time"
)

// fakeClock is the gateway's clock in a test: it moves only when told.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// TestClockSkew: the jwt authenticator's leeway (30s by default) through a
// route, with the gateway's clock set by the test: a token expired or not
// yet valid by less than the leeway is accepted, by more is refused with
// 401 invalid_token; an iat in the future beyond the leeway is refused;
// and a token accepted (and cached) stops being accepted once the clock
// passes its exp plus the leeway.
func TestClockSkew(t *testing.T) {
	up := httptest.NewServer(&recorder{})
	defer up.Close()
	p := newIDP(t, "ok")
	clk := &fakeClock{t: time.Now().Truncate(time.Second)}
	g := startGateway(t, idpConfig, idpVars(up, p.srv), options{now: clk.now})
	T := clk.now()
	unix := func(d time.Duration) int64 { return T.Add(d).Unix() }
	for _, tc := range []struct {
		name   string
		claims map[string]any
		status int
	}{
		{"valid", nil, 200},
		{"expired 20s ago, within the leeway", map[string]any{"exp": unix(-20 * time.Second)}, 200},
		{"expired 40s ago", map[string]any{"exp": unix(-40 * time.Second)}, 401},
		{"nbf 20s ahead, within the leeway", map[string]any{"nbf": unix(20 * time.Second)}, 200},
		{"nbf 40s ahead", map[string]any{"nbf": unix(40 * time.Second)}, 401},
		{"iat 20s ahead, within the leeway", map[string]any{"iat": unix(20 * time.Second)}, 200},
		{"iat 40s ahead", map[string]any{"iat": unix(40 * time.Second)}, 401},
		{"issued long ago, still valid", map[string]any{"iat": unix(-24 * time.Hour)}, 200},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code := ""
			if tc.status == 401 {
				code = "invalid_token"
			}
			r := get(t, g.base+"/jwt", "Authorization", "Bearer "+p.token(t, T, tc.claims))
			r.want(t, tc.name, tc.status, code)
			if tc.status == 401 && r.header.Get("WWW-Authenticate") == "" {
				t.Error("401 without WWW-Authenticate")
			}
		})
	}

	t.Run("a cached token expires with the clock", func(t *testing.T) {
		tok := p.token(t, T, map[string]any{"exp": unix(time.Minute), "jti": "cached"})
		get(t, g.base+"/jwt", "Authorization", "Bearer "+tok).want(t, "before exp", 200, "")
		clk.add(80 * time.Second) // exp + 20s: inside the leeway
		get(t, g.base+"/jwt", "Authorization", "Bearer "+tok).want(t, "exp passed by 20s", 200, "")
		clk.add(20 * time.Second) // exp + 40s
		get(t, g.base+"/jwt", "Authorization", "Bearer "+tok).want(t, "exp passed by 40s", 401, "invalid_token")
	})
}
