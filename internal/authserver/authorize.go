package authserver

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/gatehouse/gatehouse/internal/config"
	"github.com/gatehouse/gatehouse/internal/store"
)

// oidcScopes are the OpenID Connect scopes every client with the
// authorization_code grant may ask for besides its own scopes.
var oidcScopes = []string{"openid", "profile", "email", "groups", "offline_access"}

// authzRequest is a checked authorization request (RFC 6749 §4.1.1 with
// PKCE, RFC 7636, and OpenID Connect Core §3.1.2.1), as kept in a login
// transaction, a pushed request and an authorization code.
type authzRequest struct {
	ClientID    string `json:"client_id"`
	RedirectURI string `json:"redirect_uri"`
	Scope       string `json:"scope"`
	State       string `json:"state,omitempty"`
	Nonce       string `json:"nonce,omitempty"`
	Challenge   string `json:"code_challenge"`
	Prompt      string `json:"prompt,omitempty"`
	MaxAge      int64  `json:"max_age"` // -1: none
}

// authzError is an error of the authorization endpoint. Once the client
// and redirect URI are known it is sent there (redirect); before, it is
// shown to the user, never redirected (RFC 6749 §4.1.2.1).
type authzError struct {
	code, desc string
	redirect   bool
}

// maxParam bounds one parameter of an authorization request.
const maxParam = 2048

// parseAuthz checks the parameters of an authorization request, from the
// query, a form POST or a pushed request.
func (srv *Server) parseAuthz(q url.Values) (authzRequest, *authzError) {
	for k, v := range q {
		if len(v) > 1 {
			return authzRequest{}, &authzError{code: "invalid_request", desc: "parameter " + k + " is repeated"}
		}
		if len(v[0]) > maxParam {
			return authzRequest{}, &authzError{code: "invalid_request", desc: "parameter " + k + " is too long"}
		}
	}
	req := authzRequest{ClientID: q.Get("client_id"), RedirectURI: q.Get("redirect_uri"), MaxAge: -1}
	c, ok := srv.s.clients[req.ClientID]
	if req.ClientID == "" || !ok {
		return req, &authzError{code: "invalid_request", desc: "unknown client"}
	}
	if !slices.Contains(c.grants, config.GrantAuthorizationCode) {
		return req, &authzError{code: "unauthorized_client", desc: "the client may not use the authorization code grant"}
	}
	// Exact string comparison (RFC 9700 §4.1.3): no prefix, no wildcard,
	// no normalization. OpenID Connect requires redirect_uri.
	if req.RedirectURI == "" || !slices.Contains(c.redirects, req.RedirectURI) {
		return req, &authzError{code: "invalid_request", desc: "redirect_uri is missing or not registered for the client"}
	}
	// From here errors go back to the client.
	fail := func(code, desc string) (authzRequest, *authzError) {
		return req, &authzError{code: code, desc: desc, redirect: true}
	}
	req.State = q.Get("state")
	if q.Get("request") != "" {
		return fail("request_not_supported", "request objects are not supported; use pushed authorization requests")
	}
	if q.Get("request_uri") != "" {
		return fail("request_uri_not_supported", "request_uri is only for pushed authorization requests")
	}
	if rt := q.Get("response_type"); rt != "code" {
		return fail("unsupported_response_type", "only response_type=code is supported")
	}
	if rm := q.Get("response_mode"); rm != "" && rm != "query" {
		return fail("invalid_request", "only response_mode=query is supported")
	}
	req.Challenge = q.Get("code_challenge")
	switch q.Get("code_challenge_method") {
	case "S256":
	case "":
		if req.Challenge == "" {
			return fail("invalid_request", "PKCE is required: code_challenge with code_challenge_method=S256")
		}
		// RFC 7636 §4.3: absent means plain, which is refused.
		return fail("invalid_request", "code_challenge_method is required and must be S256")
	default:
		return fail("invalid_request", "code_challenge_method must be S256 (plain is refused)")
	}
	if !validChallenge(req.Challenge) {
		return fail("invalid_request", "code_challenge must be the 43-character base64url S256 hash of the verifier")
	}
	scopes, e := srv.authzScopes(c, q.Get("scope"))
	if e != nil {
		return fail("invalid_scope", e.desc)
	}
	req.Scope = strings.Join(scopes, " ")
	req.Nonce = q.Get("nonce")
	if len(req.Nonce) > 512 {
		return fail("invalid_request", "nonce is too long")
	}
	if p := q.Get("prompt"); p != "" {
		for v := range strings.FieldsSeq(p) {
			switch v {
			case "none", "login", "consent", "select_account":
			default:
				return fail("invalid_request", "unknown prompt value "+strconv.Quote(v))
			}
		}
		if slices.Contains(strings.Fields(p), "none") && len(strings.Fields(p)) > 1 {
			return fail("invalid_request", "prompt=none cannot be combined")
		}
		req.Prompt = p
	}
	if ma := q.Get("max_age"); ma != "" {
		n, err := strconv.ParseInt(ma, 10, 64)
		if err != nil || n < 0 {
			return fail("invalid_request", "max_age must be a non-negative integer")
		}
		req.MaxAge = n
	}
	return req, nil
}

// validChallenge: an S256 challenge is the unpadded base64url of 32 bytes.
func validChallenge(s string) bool {
	if len(s) != 43 {
		return false
	}
	b, err := base64.RawURLEncoding.DecodeString(s)
	return err == nil && len(b) == 32
}

// validVerifier: RFC 7636 §4.1, 43 to 128 unreserved characters.
func validVerifier(s string) bool {
	if len(s) < 43 || len(s) > 128 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('A' <= c && c <= 'Z' || 'a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '-' || c == '.' || c == '_' || c == '~') {
			return false
		}
	}
	return true
}

func s256(verifier string) string {
	sum := sha256.Sum256([]byte(verifier))
	return base64.RawURLEncoding.EncodeToString(sum[:])
}

// authzScopes: the client's scopes and the OpenID Connect ones; none
// asked means openid alone.
func (srv *Server) authzScopes(c *client, requested string) ([]string, *oauthError) {
	if strings.TrimSpace(requested) == "" {
		return []string{"openid"}, nil
	}
	return grantScopes(requested, append(slices.Clip(c.scopes), oidcScopes...))
}

// browserParams reads the parameters of a browser endpoint that takes GET
// or a form POST (OpenID Connect Core §3.1.2.1 for the authorization
// endpoint; RP-initiated logout likewise), answering a request it cannot
// read with an error page and ok false.
func (srv *Server) browserParams(w http.ResponseWriter, r *http.Request) (q url.Values, ok bool) {
	switch r.Method {
	case http.MethodGet:
		return r.URL.Query(), true
	case http.MethodPost:
		r.Body = http.MaxBytesReader(w, r.Body, maxForm)
		if err := r.ParseForm(); err != nil {
			srv.errorPage(w, r, http.StatusBadRequest, "invalid_request", "The request does not parse.")
			return nil, false
		}
		return r.PostForm, true
	default:
		w.Header().Set("Allow", "GET, POST")
		srv.errorPage(w, r, http.StatusMethodNotAllowed, "invalid_request", "Use GET or POST.")
		return nil, false
	}
}

// authorize serves the authorization endpoint (GET or form POST, OpenID
// Connect Core §3.1.2.1).
func (srv *Server) authorize(w http.ResponseWriter, r *http.Request) {
	q, ok := srv.browserParams(w, r)
	if !ok {
		return
	}
	var req authzRequest
	var e *authzError
	if uri := q.Get("request_uri"); uri != "" {
		req, e = srv.pushedRequest(r.Context(), q)
	} else if srv.s.login.requirePAR {
		e = &authzError{code: "invalid_request", desc: "this server requires pushed authorization requests (RFC 9126)"}
	} else {
		req, e = srv.parseAuthz(q)
	}
	if e != nil {
		if !e.redirect {
			srv.errorPage(w, r, http.StatusBadRequest, e.code, "The application sent an invalid sign-in request: "+e.desc+".")
			return
		}
		srv.redirectError(w, r, req, e.code, e.desc)
		return
	}
	sess, _, err := srv.currentSession(r.Context(), r)
	if err != nil {
		srv.redirectError(w, r, req, "temporarily_unavailable", "the session store is unavailable")
		return
	}
	prompts := strings.Fields(req.Prompt)
	fresh := sess != nil && !slices.Contains(prompts, "login") &&
		(req.MaxAge < 0 || srv.now().Unix()-sess.AuthTime <= req.MaxAge)
	if slices.Contains(prompts, "none") {
		if !fresh {
			srv.redirectError(w, r, req, "login_required", "the user is not logged in")
			return
		}
	}
	if fresh {
		srv.respondWithCode(w, r, req, sess)
		return
	}
	srv.startLogin(w, r, req)
}

// redirectError sends an error to the client's redirect URI with its
// state and the issuer (RFC 9207, against mix-up attacks).
func (srv *Server) redirectError(w http.ResponseWriter, r *http.Request, req authzRequest, code, desc string) {
	srv.log.Info("authorization request refused", "client_id", req.ClientID, "error", code, "detail", desc, "client_ip", srv.clientIP(r).String())
	v := url.Values{"error": {code}, "iss": {srv.s.issuer}}
	if desc != "" {
		v.Set("error_description", desc)
	}
	if req.State != "" {
		v.Set("state", req.State)
	}
	redirectTo(w, req.RedirectURI, v)
}

func redirectTo(w http.ResponseWriter, base string, v url.Values) {
	sep := "?"
	if strings.Contains(base, "?") {
		sep = "&"
	}
	w.Header().Set("Location", base+sep+v.Encode())
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("Referrer-Policy", "no-referrer")
	w.WriteHeader(http.StatusSeeOther)
}

// codeGrant is what an authorization code stands for, kept under the
// code's hash.
type codeGrant struct {
	Req      authzRequest `json:"req"`
	Sub      string       `json:"sub"`
	SID      string       `json:"sid"`
	AuthTime int64        `json:"auth_time"`
	AMR      []string     `json:"amr,omitempty"`
	ACR      string       `json:"acr,omitempty"`
	Exp      int64        `json:"exp"`
	Fed      *fedUser     `json:"fed,omitempty"`
}

// respondWithCode issues an authorization code for the logged-in user and
// redirects to the client with it.
func (srv *Server) respondWithCode(w http.ResponseWriter, r *http.Request, req authzRequest, sess *session) {
	code := randomToken()
	g := codeGrant{Req: req, Sub: sess.Sub, SID: sess.SID, AuthTime: sess.AuthTime, AMR: sess.AMR, ACR: sess.ACR,
		Exp: srv.now().Add(codeLifetime).Unix(), Fed: sess.Fed}
	if err := srv.st.Set(r.Context(), codePrefix+hashKey(code), mustJSON(g), codeRecordTTL); err != nil {
		srv.redirectError(w, r, req, "temporarily_unavailable", "the code store is unavailable")
		return
	}
	v := url.Values{"code": {code}, "iss": {srv.s.issuer}}
	if req.State != "" {
		v.Set("state", req.State)
	}
	redirectTo(w, req.RedirectURI, v)
}

// par serves pushed authorization requests (RFC 9126): the client
// authenticates and posts the request; it gets a request_uri to send the
// browser with.
func (srv *Server) par(w http.ResponseWriter, r *http.Request) {
	form, e := parseForm(w, r)
	if e != nil {
		srv.fail(w, r, e, "")
		return
	}
	ctx := r.Context()
	a, id, e := srv.authenticateClient(ctx, r, form)
	if e != nil {
		srv.fail(w, r, e, id)
		return
	}
	if form.Get("client_id") == "" {
		form.Set("client_id", a.c.id)
	}
	form.Del("client_secret")
	form.Del("client_assertion")
	form.Del("client_assertion_type")
	if form.Get("request_uri") != "" {
		srv.fail(w, r, badRequest("invalid_request", "request_uri is not allowed in a pushed request", nil), a.c.id)
		return
	}
	req, ae := srv.parseAuthz(form)
	if ae != nil {
		srv.fail(w, r, badRequest(ae.code, ae.desc, nil), a.c.id)
		return
	}
	id = randomToken()
	if err := srv.st.Set(ctx, parPrefix+id, mustJSON(req), parLifetime); err != nil {
		srv.fail(w, r, unavailable(err), a.c.id)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(http.StatusCreated)
	json.NewEncoder(w).Encode(map[string]any{"request_uri": parURN + id, "expires_in": int(parLifetime / time.Second)})
}

const parURN = "urn:ietf:params:oauth:request_uri:"

// pushedRequest takes a pushed request by its request_uri, once (RFC 9126
// §4: one-time use), for the client that pushed it.
func (srv *Server) pushedRequest(ctx context.Context, q url.Values) (authzRequest, *authzError) {
	uri := q.Get("request_uri")
	id, ok := strings.CutPrefix(uri, parURN)
	if !ok || len(id) > 64 {
		return authzRequest{}, &authzError{code: "invalid_request_uri", desc: "unknown request_uri"}
	}
	raw, err := srv.st.Get(ctx, parPrefix+id)
	if errors.Is(err, store.ErrNotFound) {
		return authzRequest{}, &authzError{code: "invalid_request_uri", desc: "the request_uri is unknown, used or expired"}
	} else if err != nil {
		return authzRequest{}, &authzError{code: "temporarily_unavailable", desc: "the request store is unavailable"}
	}
	var req authzRequest
	if json.Unmarshal(raw, &req) != nil || req.ClientID != q.Get("client_id") {
		return authzRequest{}, &authzError{code: "invalid_request_uri", desc: "the request_uri belongs to another client"}
	}
	fresh, err := srv.st.SetNX(ctx, parPrefix+"used:"+id, []byte("1"), parLifetime)
	if err != nil || !fresh {
		return authzRequest{}, &authzError{code: "invalid_request_uri", desc: "the request_uri was already used"}
	}
	srv.st.Delete(ctx, parPrefix+id)
	return req, nil
}

// errCodeInvalid is the one answer to a code that is unknown, expired,
// spent, or bound to something else: which it was is for the log.
func invalidGrant(cause string) *oauthError {
	return badRequest("invalid_grant", "the authorization code or refresh token is invalid, expired or revoked", fmt.Errorf("%s", cause))
}
