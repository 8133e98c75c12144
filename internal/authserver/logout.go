package authserver

import (
	"crypto/subtle"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/url"
	"slices"
	"strings"

	"github.com/gatehouse/gatehouse/internal/users"
)

// userinfo serves the UserInfo endpoint (OpenID Connect Core §5.3): the
// claims of the user an access token with scope openid was issued for,
// limited to its scopes.
func (srv *Server) userinfo(w http.ResponseWriter, r *http.Request) {
	fail := func(status int, code, desc string) {
		w.Header().Set("WWW-Authenticate", `Bearer realm="gatehouse", error="`+code+`", error_description="`+desc+`"`)
		writeError(w, &oauthError{status: status, code: code, desc: desc})
	}
	if r.Method != http.MethodGet && r.Method != http.MethodPost {
		methodNotAllowed(w, "GET, POST")
		return
	}
	scheme, tok, _ := strings.Cut(r.Header.Get("Authorization"), " ")
	if !strings.EqualFold(scheme, "Bearer") || tok == "" {
		w.Header().Set("WWW-Authenticate", `Bearer realm="gatehouse"`)
		w.WriteHeader(http.StatusUnauthorized)
		return
	}
	v, err := srv.verifyOwn(strings.TrimSpace(tok))
	if err == nil {
		err = srv.checkLive(v)
	}
	if err != nil {
		fail(http.StatusUnauthorized, "invalid_token", "the access token is invalid, expired or revoked")
		return
	}
	if len(v.claims.Cnf) > 0 {
		// A sender-constrained token must come with its proof, which this
		// endpoint does not take: refusing is safer than accepting it bare.
		fail(http.StatusUnauthorized, "invalid_token", "sender-constrained tokens are not accepted here")
		return
	}
	if !slices.Contains(strings.Fields(v.claims.Scope), "openid") {
		fail(http.StatusForbidden, "insufficient_scope", "the token was not issued with scope openid")
		return
	}
	out := struct {
		Sub string `json:"sub"`
		userClaims
	}{Sub: v.claims.Sub}
	// A federated session's claims come from the store, a local user's
	// from the users file.
	if fu, ok := srv.fedClaims(r.Context(), v.claims.SID, v.claims.Sub); ok {
		out.userClaims = fu.claims(v.claims.Scope)
	} else {
		var u *users.User
		if srv.s.login != nil {
			u, _ = srv.s.login.users.BySub(v.claims.Sub)
		}
		if u == nil || u.Disabled {
			fail(http.StatusUnauthorized, "invalid_token", "the token's user no longer exists")
			return
		}
		out.userClaims = claimsFor(u, v.claims.Scope)
	}
	writeJSON(w, out)
}

// idHint is a verified id_token_hint.
type idHint struct {
	Iss string `json:"iss"`
	Sub string `json:"sub"`
	Aud string `json:"aud"`
	SID string `json:"sid"`
}

// verifyIDTokenHint checks that hint is an ID token this server signed
// (expired ones are accepted: OpenID Connect RP-Initiated Logout §2).
func (srv *Server) verifyIDTokenHint(hint string) (*idHint, bool) {
	if len(hint) > maxToken || strings.Count(hint, ".") != 2 {
		return nil, false
	}
	hb, err := base64.RawURLEncoding.DecodeString(hint[:strings.IndexByte(hint, '.')])
	if err != nil {
		return nil, false
	}
	var h struct {
		Alg, Kid, Typ string
	}
	if json.Unmarshal(hb, &h) != nil || h.Typ != "JWT" {
		return nil, false
	}
	k, ok := srv.ring.key(h.Kid)
	if !ok || h.Alg != k.Algorithm() {
		return nil, false
	}
	payload, err := verifyWith(k, hint)
	if err != nil {
		return nil, false
	}
	var c idHint
	if json.Unmarshal(payload, &c) != nil || c.Iss != srv.s.issuer {
		return nil, false
	}
	return &c, true
}

// logout serves RP-initiated logout (OpenID Connect RP-Initiated Logout
// 1.0): it ends the AS session and revokes the refresh tokens issued in
// it, then sends the browser to a registered post_logout_redirect_uri
// (exact match, never an open redirect) with state. Without a valid
// id_token_hint naming the logged-in user, the user confirms in a form
// (a cross-site link must not log people out).
func (srv *Server) logout(w http.ResponseWriter, r *http.Request) {
	q, ok := srv.browserParams(w, r)
	if !ok {
		return
	}
	for k, v := range q {
		if len(v) > 1 || len(v[0]) > maxToken {
			srv.errorPage(w, r, http.StatusBadRequest, "invalid_request", "Parameter "+k+" is repeated or too long.")
			return
		}
	}
	ctx := r.Context()
	var hint *idHint
	if h := q.Get("id_token_hint"); h != "" {
		var ok bool
		if hint, ok = srv.verifyIDTokenHint(h); !ok {
			srv.errorPage(w, r, http.StatusBadRequest, "invalid_request", "The id_token_hint is not an ID token of this server.")
			return
		}
	}
	clientID := q.Get("client_id")
	if hint != nil {
		if clientID != "" && clientID != hint.Aud {
			srv.errorPage(w, r, http.StatusBadRequest, "invalid_request", "client_id differs from the id_token_hint's audience.")
			return
		}
		clientID = hint.Aud
	}
	redirect := q.Get("post_logout_redirect_uri")
	if redirect != "" {
		c, ok := srv.s.clients[clientID]
		if clientID == "" || !ok || !slices.Contains(c.logoutRed, redirect) {
			srv.errorPage(w, r, http.StatusBadRequest, "invalid_request", "The post_logout_redirect_uri is not registered for the client.")
			return
		}
	}
	sess, cookie, err := srv.currentSession(ctx, r)
	if err != nil {
		srv.errorPage(w, r, http.StatusServiceUnavailable, "temporarily_unavailable", "The sign-in service is unavailable; try again later.")
		return
	}
	confirmToken := ""
	if sess != nil {
		confirmToken = hashKey("logout:" + cookie)
	}
	confirmed := sess == nil ||
		(hint != nil && hint.Sub == sess.Sub) ||
		(r.Method == http.MethodPost && subtle.ConstantTimeCompare([]byte(q.Get("csrf")), []byte(confirmToken)) == 1)
	if !confirmed {
		srv.renderPage(w, http.StatusOK, pageData{Title: "Sign out", Logout: true, Action: srv.s.issuer + PathLogout, CSRF: confirmToken,
			Hidden: map[string]string{"client_id": clientID, "post_logout_redirect_uri": redirect, "state": q.Get("state")}}, originOf(redirect))
		return
	}
	if sess != nil {
		srv.st.Delete(ctx, sessionPrefix+hashKey(cookie))
		srv.revokeSessionFamilies(ctx, sess.SID)
		if sess.Fed != nil {
			// Userinfo no longer answers for the session.
			srv.st.Delete(ctx, fedSIDPrefix+sess.SID)
		}
		srv.log.Info("user logged out", "sub", sess.Sub, "sid", sess.SID, "client_id", clientID)
	}
	srv.s.login.setCookie(w, sessionCookie, "", -1)
	if redirect != "" {
		v := url.Values{}
		if st := q.Get("state"); st != "" {
			v.Set("state", st)
		}
		if len(v) == 0 {
			w.Header().Set("Location", redirect)
			w.Header().Set("Cache-Control", "no-store")
			w.WriteHeader(http.StatusSeeOther)
			return
		}
		redirectTo(w, redirect, v)
		return
	}
	srv.renderPage(w, http.StatusOK, pageData{Title: "Signed out", Message: "You are signed out."}, "")
}
