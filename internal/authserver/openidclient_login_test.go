package authserver

import (
	"context"
	"encoding/json"
	"os/exec"
	"strings"
	"testing"
	"time"
)

type authcodeResult struct {
	EndSession      string         `json:"end_session_endpoint"`
	Callback        string         `json:"callback"`
	IDToken         string         `json:"id_token"`
	Claims          map[string]any `json:"claims"`
	AccessToken     string         `json:"access_token"`
	RefreshToken    string         `json:"refresh_token"`
	Userinfo        map[string]any `json:"userinfo"`
	Replay          string         `json:"replay"`
	RefreshedAT     string         `json:"refreshed_access_token"`
	Rotated         bool           `json:"refreshed_rotated"`
	RefreshedClaims map[string]any `json:"refreshed_claims"`
	Reuse           string         `json:"reuse"`
	AfterReuse      string         `json:"after_reuse"`
	Logout          *struct {
		Status     int    `json:"status"`
		Location   string `json:"location"`
		NextStatus int    `json:"next_status"`
	} `json:"logout"`
}

// TestOpenIDClientCodeFlow runs the npm package openid-client (a
// certified relying party) through the authorization code flow with PKCE
// against the server, as a confidential client, as a public one, and
// through a pushed authorization request: ID token validation (nonce,
// at_hash, iss in the response), userinfo, refresh rotation, code replay
// and refresh token reuse refused, RP-initiated logout.
func TestOpenIDClientCodeFlow(t *testing.T) {
	needOpenIDClient(t)
	e := newLoginEnv(t, "")
	for _, tc := range []struct {
		name, client, secret, redirect, logout, mode string
	}{
		{"confidential", "web", webSecret, webRedirect, webLoggedOut, "plain"},
		{"public", "spa", "-", spaRedirect, "-", "plain"},
		{"pushed request", "web", webSecret, webRedirect, "-", "par"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(t.Context(), 60*time.Second)
			defer cancel()
			cmd := exec.CommandContext(ctx, "node", "authcode.mjs", e.issuer, tc.client, tc.secret, tc.redirect, "alice", alicePassword, tc.logout, tc.mode)
			cmd.Dir = openidClientDir
			out, err := cmd.Output()
			if err != nil {
				var stderr []byte
				if ee, ok := err.(*exec.ExitError); ok {
					stderr = ee.Stderr
				}
				t.Fatalf("node authcode.mjs: %v\n%s", err, stderr)
			}
			var r authcodeResult
			if err := json.Unmarshal(out, &r); err != nil {
				t.Fatalf("output %q: %v", out, err)
			}
			if !strings.HasPrefix(r.Callback, tc.redirect+"?") || r.EndSession != e.issuer+PathLogout {
				t.Errorf("callback %s, end_session_endpoint %s", r.Callback, r.EndSession)
			}
			_, ic := e.verify(r.IDToken)
			if ic["sub"] != "u-alice" || ic["aud"] != tc.client || ic["nonce"] == nil || ic["at_hash"] != atHash("ES256", r.AccessToken) ||
				r.Claims["sid"] != ic["sid"] {
				t.Errorf("ID token %v", ic)
			}
			if r.Userinfo["sub"] != "u-alice" || r.Userinfo["email"] != "alice@example.com" || r.Userinfo["name"] != "Alice Example" {
				t.Errorf("userinfo %v", r.Userinfo)
			}
			if r.Replay != "invalid_grant" || r.Reuse != "invalid_grant" || r.AfterReuse != "invalid_grant" || !r.Rotated {
				t.Errorf("replay %q, reuse %q, after reuse %q, rotated %v", r.Replay, r.Reuse, r.AfterReuse, r.Rotated)
			}
			// The replay revoked the first access token; the reuse the
			// refreshed one.
			for _, tok := range []string{r.AccessToken, r.RefreshedAT} {
				if _, c := e.verify(tok); !e.revs.Revoked(c["jti"].(string)) {
					t.Errorf("access token %v not revoked", c["jti"])
				}
			}
			if r.RefreshedClaims["auth_time"] != ic["auth_time"] {
				t.Errorf("refreshed ID token %v", r.RefreshedClaims)
			}
			if tc.logout != "-" {
				if r.Logout == nil || r.Logout.Status != 303 || r.Logout.Location != tc.logout+"?state=bye" || r.Logout.NextStatus != 200 {
					t.Errorf("logout %+v", r.Logout)
				}
			}
		})
	}
}
