package authserver

import (
	"cmp"
	"context"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"

	"github.com/gatehouse/gatehouse/internal/audit"
	"github.com/gatehouse/gatehouse/internal/config"
	"github.com/gatehouse/gatehouse/internal/store"
)

// Federation defaults (config.AuthServerFederation).
const (
	DefaultFederationCallback = "/oauth2/federation/callback"
	defaultFederationLabel    = "Sign in with single sign-on"
	// fedPrefix + hash(state): a login waiting for the upstream.
	fedPrefix = "authserver:fed:"
	// fedSIDPrefix + sid: a federated session's user claims, for
	// userinfo (an access token carries sid, not the claims).
	fedSIDPrefix = "authserver:fed-sid:"
)

// federation is the AS as the relying party of an upstream OpenID
// provider. Discovery happens at the first login, not at start, so that
// an upstream that is down does not keep the gateway from starting; a
// failed discovery is retried at the next login.
type federation struct {
	issuer, clientID, clientSecret string
	callbackPath, callbackURL      string
	scopes                         []string
	claims                         config.FederationClaims
	label                          string
	client                         *http.Client

	mu       sync.Mutex
	provider *oidc.Provider
}

func newFederation(f *config.AuthServerFederation, issuer, prefix string) *federation {
	cb := cmp.Or(f.RedirectPath, DefaultFederationCallback)
	scopes := f.Scopes
	if len(scopes) == 0 {
		scopes = []string{oidc.ScopeOpenID, "profile", "email"}
	}
	c := f.Claims
	c.Sub = cmp.Or(c.Sub, "sub")
	c.Username = cmp.Or(c.Username, "preferred_username")
	c.Email = cmp.Or(c.Email, "email")
	c.Name = cmp.Or(c.Name, "name")
	c.Groups = cmp.Or(c.Groups, "groups")
	return &federation{
		issuer: f.Issuer, clientID: f.ClientID, clientSecret: f.ClientSecret.Value(),
		callbackPath: prefix + cb, callbackURL: issuer + cb, scopes: scopes, claims: c,
		label:  cmp.Or(f.ButtonLabel, defaultFederationLabel),
		client: &http.Client{Timeout: 10 * time.Second},
	}
}

// discover returns the upstream provider, fetching its discovery document
// once. go-oidc refuses a document whose issuer is not the configured one.
func (f *federation) discover(ctx context.Context) (*oidc.Provider, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.provider != nil {
		return f.provider, nil
	}
	p, err := oidc.NewProvider(oidc.ClientContext(ctx, f.client), f.issuer)
	if err != nil {
		return nil, err
	}
	f.provider = p
	return p, nil
}

func (f *federation) oauth(p *oidc.Provider) *oauth2.Config {
	return &oauth2.Config{ClientID: f.clientID, ClientSecret: f.clientSecret, Endpoint: p.Endpoint(),
		RedirectURL: f.callbackURL, Scopes: f.scopes}
}

// fedTx is a login sent to the upstream, kept under the hash of its
// state: the login transaction it continues, the nonce and PKCE verifier
// sent, and the browser it is bound to.
type fedTx struct {
	TxID     string `json:"tx"`
	Nonce    string `json:"nonce"`
	Verifier string `json:"verifier"`
	Browser  string `json:"browser"`
}

// fedUser is a federated user's claims, mapped from the upstream's. They
// live in the session, the code and the refresh token family (and, for
// userinfo, under the session id), because the users file does not know
// the user.
type fedUser struct {
	Sub           string   `json:"sub"`
	Username      string   `json:"username,omitempty"`
	Name          string   `json:"name,omitempty"`
	Email         string   `json:"email,omitempty"`
	EmailVerified *bool    `json:"email_verified,omitempty"`
	Groups        []string `json:"groups,omitempty"`
}

// startFederation sends the browser to the upstream for login tx.
func (srv *Server) startFederation(w http.ResponseWriter, r *http.Request, txID string, tx *loginTx) {
	fed := srv.s.login.fed
	p, err := fed.discover(r.Context())
	if err != nil {
		srv.log.Error("upstream OpenID provider discovery failed", "issuer", fed.issuer, "err", err)
		srv.errorPage(w, r, http.StatusBadGateway, "temporarily_unavailable", "The identity provider cannot be reached; try again later.")
		return
	}
	state, nonce, verifier := randomToken(), randomToken(), oauth2.GenerateVerifier()
	ft := fedTx{TxID: txID, Nonce: nonce, Verifier: verifier, Browser: tx.Browser}
	if err := srv.st.Set(r.Context(), fedPrefix+hashKey(state), mustJSON(ft), loginTxLifetime); err != nil {
		srv.errorPage(w, r, http.StatusServiceUnavailable, "temporarily_unavailable", "The sign-in service is unavailable; try again later.")
		return
	}
	w.Header().Set("Location", fed.oauth(p).AuthCodeURL(state, oidc.Nonce(nonce), oauth2.S256ChallengeOption(verifier)))
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("Referrer-Policy", "no-referrer")
	w.WriteHeader(http.StatusSeeOther)
}

// federationCallback serves the upstream's authorization response: the
// state names a pending login of this browser (once), the code is
// redeemed with the PKCE verifier, the ID token is verified (signature,
// iss, aud, exp by go-oidc; the nonce here), its claims mapped, and the
// login continues as a password login would: a new session, then the
// client's code.
func (srv *Server) federationCallback(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet {
		w.Header().Set("Allow", "GET")
		srv.errorPage(w, r, http.StatusMethodNotAllowed, "invalid_request", "Use GET.")
		return
	}
	l := srv.s.login
	fed := l.fed
	ctx := r.Context()
	q := r.URL.Query()
	state := q.Get("state")
	if state == "" || len(state) > 128 {
		srv.errorPage(w, r, http.StatusBadRequest, "invalid_request", "The identity provider's answer has no valid state; start again from the application.")
		return
	}
	key := fedPrefix + hashKey(state)
	raw, err := srv.st.Get(ctx, key)
	if errors.Is(err, store.ErrNotFound) {
		srv.fedFailure(r, "", "state_mismatch", "unknown, spent or expired state at the federation callback")
		srv.errorPage(w, r, http.StatusBadRequest, "invalid_request", "The sign-in has expired or was not started in this browser; start again from the application.")
		return
	} else if err != nil {
		srv.errorPage(w, r, http.StatusServiceUnavailable, "temporarily_unavailable", "The sign-in service is unavailable; try again later.")
		return
	}
	// One use: a replayed callback URL finds nothing.
	srv.st.Delete(ctx, key)
	var ft fedTx
	if json.Unmarshal(raw, &ft) != nil {
		srv.errorPage(w, r, http.StatusBadRequest, "invalid_request", "The sign-in has expired; start again from the application.")
		return
	}
	browser := l.cookie(r, browserCookie)
	if browser == "" || subtle.ConstantTimeCompare([]byte(hashKey(browser)), []byte(ft.Browser)) != 1 {
		srv.fedFailure(r, "", "csrf", "federation callback from another browser")
		srv.errorPage(w, r, http.StatusForbidden, "access_denied", "The sign-in was not started in this browser. Start again from the application.")
		return
	}
	raw, err = srv.st.Get(ctx, loginTxPrefix+ft.TxID)
	if err != nil {
		srv.errorPage(w, r, http.StatusBadRequest, "invalid_request", "The sign-in page has expired; start again from the application.")
		return
	}
	var tx loginTx
	if json.Unmarshal(raw, &tx) != nil {
		srv.errorPage(w, r, http.StatusBadRequest, "invalid_request", "The sign-in page has expired; start again from the application.")
		return
	}
	// RFC 9207: an answer naming another issuer is a mix-up.
	if iss := q.Get("iss"); iss != "" && iss != fed.issuer {
		srv.fedFailure(r, tx.Req.ClientID, "issuer_mismatch", "federation callback from issuer "+iss)
		srv.errorPage(w, r, http.StatusBadRequest, "invalid_request", "The answer came from another identity provider.")
		return
	}
	if e := q.Get("error"); e != "" {
		srv.st.Delete(ctx, loginTxPrefix+ft.TxID)
		srv.fedFailure(r, tx.Req.ClientID, "upstream_error", fmt.Sprintf("upstream error %.64q: %.200q", e, q.Get("error_description")))
		srv.redirectError(w, r, tx.Req, "access_denied", "the identity provider refused the sign-in ("+truncate(e, 64)+")")
		return
	}
	u, err := srv.fedExchange(ctx, q.Get("code"), ft)
	if err != nil {
		srv.fedFailure(r, tx.Req.ClientID, "upstream_login_invalid", err.Error())
		srv.errorPage(w, r, http.StatusBadGateway, "access_denied", "The identity provider's answer could not be verified; start again from the application.")
		return
	}
	srv.st.Delete(ctx, loginTxPrefix+ft.TxID)
	now := srv.now()
	sess := &session{SID: randomToken()[:22], Sub: u.Sub, Username: u.Username, AuthTime: now.Unix(), AMR: []string{"fed"},
		Exp: now.Add(l.sessionLife).Unix(), Fed: u}
	if err := srv.st.Set(ctx, fedSIDPrefix+sess.SID, mustJSON(u), max(l.sessionLife, l.refreshLife)); err != nil {
		srv.errorPage(w, r, http.StatusServiceUnavailable, "temporarily_unavailable", "The sign-in service is unavailable; try again later.")
		return
	}
	srv.establishSession(w, r, tx, sess)
}

// fedExchange redeems the upstream's code and maps the verified claims.
func (srv *Server) fedExchange(ctx context.Context, code string, ft fedTx) (*fedUser, error) {
	fed := srv.s.login.fed
	if code == "" || len(code) > maxParam {
		return nil, errors.New("no code in the upstream's answer")
	}
	p, err := fed.discover(ctx)
	if err != nil {
		return nil, err
	}
	ctx = oidc.ClientContext(ctx, fed.client)
	tok, err := fed.oauth(p).Exchange(ctx, code, oauth2.VerifierOption(ft.Verifier))
	if err != nil {
		return nil, fmt.Errorf("redeeming the upstream code: %w", err)
	}
	rawID, _ := tok.Extra("id_token").(string)
	if rawID == "" {
		return nil, errors.New("the upstream token response has no id_token")
	}
	idt, err := p.VerifierContext(ctx, &oidc.Config{ClientID: fed.clientID, Now: srv.now}).Verify(ctx, rawID)
	if err != nil {
		return nil, fmt.Errorf("upstream ID token: %w", err)
	}
	if subtle.ConstantTimeCompare([]byte(idt.Nonce), []byte(ft.Nonce)) != 1 {
		return nil, errors.New("upstream ID token: nonce mismatch")
	}
	claims := map[string]any{}
	if err := idt.Claims(&claims); err != nil {
		return nil, fmt.Errorf("upstream ID token claims: %w", err)
	}
	// Many providers put profile claims only in userinfo (OpenID Connect
	// Core §5.4): the ID token's own claims win, userinfo fills the rest,
	// and only when it is about the same subject.
	if p.UserInfoEndpoint() != "" {
		ui, err := p.UserInfo(ctx, oauth2.StaticTokenSource(tok))
		if err != nil {
			return nil, fmt.Errorf("upstream userinfo: %w", err)
		}
		if ui.Subject != idt.Subject {
			return nil, errors.New("upstream userinfo is about another subject")
		}
		extra := map[string]any{}
		if err := ui.Claims(&extra); err != nil {
			return nil, fmt.Errorf("upstream userinfo: %w", err)
		}
		for k, v := range extra {
			if _, ok := claims[k]; !ok {
				claims[k] = v
			}
		}
	}
	return fed.mapClaims(claims)
}

// mapClaims turns the upstream's claims into the AS's user.
func (f *federation) mapClaims(c map[string]any) (*fedUser, error) {
	str := func(name string) string {
		s, _ := c[name].(string)
		return s
	}
	u := &fedUser{Sub: str(f.claims.Sub), Username: str(f.claims.Username), Name: str(f.claims.Name), Email: str(f.claims.Email)}
	if u.Sub == "" || len(u.Sub) > 255 {
		return nil, fmt.Errorf("upstream claim %q (mapped to sub) is missing, not a string, or longer than 255", f.claims.Sub)
	}
	if u.Email != "" {
		if v, ok := c["email_verified"].(bool); ok {
			u.EmailVerified = &v
		}
	}
	switch g := c[f.claims.Groups].(type) {
	case string:
		u.Groups = []string{g}
	case []any:
		for _, v := range g {
			if s, ok := v.(string); ok {
				u.Groups = append(u.Groups, s)
			}
		}
	}
	return u, nil
}

func (srv *Server) fedFailure(r *http.Request, clientID, code, detail string) {
	srv.log.Info("federated login refused", "code", code, "detail", detail, "client_ip", srv.clientIP(r).String())
	srv.audit.Record(audit.Event{Kind: audit.AuthFailure, ClientIP: srv.clientIP(r), ClientID: clientID,
		Policy: "authorization_server", Code: code, Status: http.StatusForbidden, Detail: detail})
}

// fedClaims returns the claims of a federated session by its id, when
// the record is about sub.
func (srv *Server) fedClaims(ctx context.Context, sid, sub string) (*fedUser, bool) {
	if sid == "" {
		return nil, false
	}
	raw, err := srv.st.Get(ctx, fedSIDPrefix+sid)
	if err != nil {
		return nil, false
	}
	var u fedUser
	if json.Unmarshal(raw, &u) != nil || u.Sub != sub {
		return nil, false
	}
	return &u, true
}

// fedOrigin is the upstream's origin, for the login page's form-action
// (browsers apply it to the redirect that follows the federation form).
func (srv *Server) fedOrigin() string {
	if srv.s.login.fed == nil {
		return ""
	}
	return originOf(srv.s.login.fed.issuer)
}

func truncate(s string, n int) string {
	if len(s) > n {
		return s[:n]
	}
	return strings.ToValidUTF8(s, "")
}
