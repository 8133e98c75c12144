// Package session is the `session` authenticator: browser users log in at
// an OpenID provider (authorization code flow with PKCE S256, state and
// nonce) and the gateway keeps a server-side session in the state store,
// referenced by an HMAC-protected cookie.
//
// The flows, all on the route the authenticator protects:
//
//   - a browser request (GET or HEAD, Accept naming text/html, no
//     X-Requested-With) without a session is sent (302) to the provider's
//     authorization endpoint; a pre-login cookie binds the login to this
//     browser; state, nonce, the PKCE verifier and the target are kept
//     in the state store under a hash of state, for LoginTTL, once;
//   - the callback (the path of redirect_url) consumes the state once
//     (a replayed callback is refused on every instance), checks the
//     pre-login cookie, exchanges the code with the verifier, verifies
//     the ID token (signature, iss, aud, exp) and its nonce, and creates
//     a fresh session: a new random id, never one the browser brought;
//   - a request with a session gets the principal of the ID token's
//     claims; its access token is refreshed with the refresh token
//     RefreshBefore its expiry;
//   - the logout path deletes the session from the state store (so it
//     ends on every instance) and sends the browser to the provider's
//     end_session_endpoint (RP-initiated logout).
//
// Requests without a session that are not a browser's (API calls) are
// "not mine" (authn.ErrNoCredentials): the next authenticator of the
// route tries them, and without one the request gets 401.
//
// The store holds a session under a hash of its id, encrypted (AES-GCM)
// under a key derived from the id: what is in Redis names no cookie and
// reveals no token.
package session

import (
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"mime"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"

	"github.com/gatehouse/gatehouse/internal/authn"
	"github.com/gatehouse/gatehouse/internal/config"
	"github.com/gatehouse/gatehouse/internal/policy"
	"github.com/gatehouse/gatehouse/internal/store"
)

// Unit is the `session` authenticator type.
var Unit = authn.Unit{Name: "session", New: func(cfg *config.Node, env *authn.Env) (authn.Authenticator, error) {
	return New(cfg, env)
}}

// Store key prefixes.
const (
	keyLogin   = "session:login:"   // a pending login, by hash of state
	keyUsed    = "session:used:"    // a consumed state (one-time use)
	keySession = "session:s:"       // a session, by hash of its id
	keyRefresh = "session:refresh:" // the lock of one session's refresh
	keyCookie  = "session:key:"     // the cookie HMAC key
)

// Authenticator is the session authenticator. Safe for concurrent use.
type Authenticator struct {
	s         *settings
	realm     string
	now       func() time.Time
	store     store.Store
	log       *slog.Logger
	client    *http.Client
	tr        *http.Transport
	hostSess  string // __Host-<cookie>
	hostLogin string // __Host-<cookie>_login

	mu       sync.Mutex
	prov     *provider
	failedAt time.Time
	key      []byte

	cache      *cache // nil: no cache
	subscribed bool   // the cache listens to channelEnded
	stop       context.CancelFunc
	subFailed  time.Time
}

// provider is what discovery found.
type provider struct {
	oauth      oauth2.Config // RedirectURL set per login
	verifier   *oidc.IDTokenVerifier
	endSession string
	userinfo   *oidc.Provider // nil: the provider has no userinfo endpoint
}

// pending is a login between the redirect and the callback.
type pending struct {
	Verifier string `json:"v"`
	Nonce    string `json:"n"`
	Target   string `json:"t"`
	Bind     string `json:"b"` // hash of the pre-login cookie's value
	Redirect string `json:"r"` // the redirect_uri sent
}

// record is a session as the store keeps it (encrypted).
type record struct {
	Subject      string         `json:"sub"`
	Claims       map[string]any `json:"claims"`
	Scopes       []string       `json:"scopes,omitempty"`
	IDToken      string         `json:"id_token"`
	AccessToken  string         `json:"at,omitempty"`
	RefreshToken string         `json:"rt,omitempty"`
	Expiry       int64          `json:"exp,omitempty"` // access token expiry, Unix seconds; 0 unknown
	Ends         int64          `json:"ends"`          // the session's end, Unix seconds
}

var (
	_ authn.Authenticator = (*Authenticator)(nil)
	_ policy.Closer       = (*Authenticator)(nil)
)

// New builds a session authenticator. It does not contact the provider:
// discovery happens at the first login or session use, so that a provider
// that is down (or the gateway's own authorization server, not yet
// listening) does not stop the gateway from starting.
func New(cfg *config.Node, env *authn.Env) (*Authenticator, error) {
	s, err := decode(cfg)
	if err != nil {
		return nil, err
	}
	a := &Authenticator{
		s:         s,
		realm:     env.Realm,
		now:       env.Env.Clock(),
		store:     env.Env.StateStore(),
		log:       env.Env.Log(),
		hostSess:  "__Host-" + s.cookie,
		hostLogin: "__Host-" + s.cookie + "_login",
		key:       s.cookieKey,
		stop:      func() {},
	}
	if !s.noCache {
		a.cache = newCache(s.cacheSize)
	}
	a.tr = &http.Transport{
		Proxy:                 nil,
		DialContext:           (&net.Dialer{Timeout: s.timeout, KeepAlive: 30 * time.Second}).DialContext,
		TLSClientConfig:       &tls.Config{MinVersion: tls.VersionTLS12, RootCAs: s.roots},
		TLSHandshakeTimeout:   s.timeout,
		ResponseHeaderTimeout: s.timeout,
		ForceAttemptHTTP2:     true,
		MaxIdleConnsPerHost:   16,
		IdleConnTimeout:       90 * time.Second,
	}
	a.client = &http.Client{
		Transport:     a.tr,
		Timeout:       s.timeout,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
	return a, nil
}

// Challenge returns "": a browser is redirected, not challenged.
func (a *Authenticator) Challenge() string { return "" }

// Close releases the idle connections to the provider.
func (a *Authenticator) Close() error {
	a.mu.Lock()
	a.stop()
	a.mu.Unlock()
	a.tr.CloseIdleConnections()
	return nil
}

// Authenticate serves the callback, login and logout paths and otherwise
// finds the request's session (see the package doc).
func (a *Authenticator) Authenticate(ctx context.Context, ex *policy.Exchange) (*policy.Principal, error) {
	r := ex.Request
	switch r.URL.Path {
	case a.s.callbackPath:
		return nil, a.callback(ctx, ex)
	case a.s.logoutPath:
		return nil, a.logout(ctx, ex)
	case a.s.loginPath:
		if a.s.loginPath != "" {
			rd := r.URL.Query().Get("rd")
			if rd == "" {
				rd = "/"
			}
			if !safeTarget(rd) {
				return nil, &policy.Denial{Status: http.StatusBadRequest, Code: "invalid_redirect",
					Detail: "the post-login target must be a path on this site"}
			}
			return nil, a.startLogin(ctx, ex, rd)
		}
	}
	if _, ok := r.Header["Authorization"]; ok {
		// A bearer (or other) credential is some other authenticator's.
		return nil, authn.ErrNoCredentials
	}
	sessName, loginName := a.cookieNames(ex.TLS)
	raw, has := findCookie(r, sessName)
	if has {
		pr, token, err := a.lookup(ctx, ex, raw)
		if err != nil {
			return nil, err
		}
		if pr != nil {
			stripCookies(r, sessName, loginName)
			if a.s.forwardToken && token != "" {
				r.Header.Set("Authorization", "Bearer "+token)
			}
			return pr, nil
		}
	}
	if !isBrowser(r) {
		if has {
			// A cookie that names no session (tampered, ended, expired):
			// refused as invalid, not taken for an absent credential.
			return nil, authn.Decline(&policy.Denial{Status: http.StatusUnauthorized, Code: "invalid_session",
				Detail: "the session is not valid: log in again"})
		}
		return nil, authn.ErrNoCredentials
	}
	target := r.URL.RequestURI()
	if !safeTarget(target) {
		target = "/"
	}
	return nil, a.startLogin(ctx, ex, target)
}

// isBrowser reports whether r is a browser's navigation, which is sent to
// log in, rather than an API call, which gets 401.
func isBrowser(r *http.Request) bool {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		return false
	}
	if _, ok := r.Header["X-Requested-With"]; ok {
		return false
	}
	for _, v := range r.Header.Values("Accept") {
		for part := range strings.SplitSeq(v, ",") {
			mt, params, err := mime.ParseMediaType(strings.TrimSpace(part))
			if err == nil && mt == "text/html" && params["q"] != "0" {
				return true
			}
		}
	}
	return false
}

// discover returns the provider, running discovery once it is needed; a
// failure is retried at most every 5 seconds, the requests in between
// refused with 503 at once.
func (a *Authenticator) discover() (*provider, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.prov != nil {
		return a.prov, nil
	}
	unavailable := &policy.Denial{Status: http.StatusServiceUnavailable, Code: "idp_unavailable",
		Detail: "the identity provider cannot be reached", Header: http.Header{"Retry-After": {"5"}}}
	if !a.failedAt.IsZero() && a.now().Sub(a.failedAt) < 5*time.Second {
		return nil, unavailable
	}
	// The key set fetches with this context for its whole life: not a
	// request's.
	ctx := oidc.ClientContext(context.Background(), a.client)
	p, err := oidc.NewProvider(ctx, a.s.issuer)
	if err != nil {
		a.failedAt = a.now()
		a.log.Error("session: OpenID provider discovery failed", "issuer", a.s.issuer, "err", err)
		return nil, unavailable.WithErr(err)
	}
	var meta struct {
		EndSession string   `json:"end_session_endpoint"`
		Methods    []string `json:"code_challenge_methods_supported"`
	}
	if err := p.Claims(&meta); err != nil {
		a.failedAt = a.now()
		return nil, unavailable.WithErr(err)
	}
	ep := p.Endpoint()
	ep.AuthStyle = oauth2.AuthStyleInHeader
	if a.s.secret == "" {
		ep.AuthStyle = oauth2.AuthStyleInParams
	}
	a.prov = &provider{
		oauth: oauth2.Config{
			ClientID:     a.s.clientID,
			ClientSecret: a.s.secret,
			Endpoint:     ep,
			Scopes:       a.s.scopes,
		},
		verifier:   p.Verifier(&oidc.Config{ClientID: a.s.clientID, Now: a.now}),
		endSession: meta.EndSession,
	}
	if p.UserInfoEndpoint() != "" {
		a.prov.userinfo = p
	}
	return a.prov, nil
}

// cookieKey returns the cookies' HMAC key: the configured one, or the one
// kept in the state store (the first instance to need one writes it).
func (a *Authenticator) cookieKey(ctx context.Context) ([]byte, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.key != nil {
		return a.key, nil
	}
	k := keyCookie + hashKey("cookie-key", a.s.issuer+" "+a.s.clientID)
	fresh := make([]byte, 32)
	rand.Read(fresh)
	if _, err := a.store.SetNX(ctx, k, fresh, 0); err != nil {
		return nil, err
	}
	got, err := a.store.Get(ctx, k)
	if err != nil {
		return nil, err
	}
	if len(got) < minSecret {
		return nil, fmt.Errorf("session: the cookie key in the state store is %d bytes", len(got))
	}
	a.key = got
	return got, nil
}

// redirectURI is the callback URL for a login started by r.
func (a *Authenticator) redirectURI(ex *policy.Exchange) string {
	if strings.HasPrefix(a.s.redirect, "/") {
		scheme := "http"
		if ex.TLS {
			scheme = "https"
		}
		return scheme + "://" + ex.Request.Host + a.s.redirect
	}
	return a.s.redirect
}

// startLogin answers with the redirect to the authorization endpoint.
func (a *Authenticator) startLogin(ctx context.Context, ex *policy.Exchange, target string) error {
	p, err := a.discover()
	if err != nil {
		return err
	}
	key, err := a.cookieKey(ctx)
	if err != nil {
		return storeFailure(err)
	}
	state, nonce, bind := random(32), random(32), random(32)
	pd := pending{
		Verifier: oauth2.GenerateVerifier(),
		Nonce:    nonce,
		Target:   target,
		Bind:     hashKey("bind", bind),
		Redirect: a.redirectURI(ex),
	}
	b, _ := json.Marshal(pd)
	if err := a.store.Set(ctx, keyLogin+hashKey("state", state), b, a.s.loginTTL); err != nil {
		return storeFailure(err)
	}
	conf := p.oauth
	conf.RedirectURL = pd.Redirect
	loc := conf.AuthCodeURL(state, oauth2.S256ChallengeOption(pd.Verifier), oidc.Nonce(nonce))
	_, loginName := a.cookieNames(ex.TLS)
	return &policy.Denial{
		Status: http.StatusFound,
		Code:   "login_required",
		Detail: "log in at the identity provider",
		Header: http.Header{
			"Location":   {loc},
			"Set-Cookie": {newCookie(loginName, sign(key, loginName, bind), ex.TLS, a.s.loginTTL)},
		},
	}
}

func storeFailure(err error) error {
	return &policy.Denial{Status: http.StatusServiceUnavailable, Code: "session_store_unavailable",
		Detail: "sessions are unavailable", Header: http.Header{"Retry-After": {"1"}}, Err: err}
}

func loginFailed(detail string, cause error) error {
	return &policy.Denial{Status: http.StatusUnauthorized, Code: "login_failed", Detail: detail, Err: cause}
}

func badCallback(detail string) error {
	return &policy.Denial{Status: http.StatusBadRequest, Code: "invalid_callback", Detail: detail}
}

// callback finishes a login: one use of state, the pre-login cookie, the
// code exchanged with the PKCE verifier, the ID token and its nonce, and a
// fresh session.
func (a *Authenticator) callback(ctx context.Context, ex *policy.Exchange) error {
	r := ex.Request
	if r.Method != http.MethodGet {
		return badCallback("the callback takes GET")
	}
	q := r.URL.Query()
	state := q.Get("state")
	if state == "" || len(q["state"]) > 1 || len(state) > 512 {
		return badCallback("the callback has no valid state")
	}
	p, err := a.discover()
	if err != nil {
		return err
	}
	key, err := a.cookieKey(ctx)
	if err != nil {
		return storeFailure(err)
	}
	sh := hashKey("state", state)
	first, err := a.store.SetNX(ctx, keyUsed+sh, []byte{1}, a.s.loginTTL)
	if err != nil {
		return storeFailure(err)
	}
	if !first {
		return badCallback("this login was already completed or abandoned: start again")
	}
	b, err := a.store.Get(ctx, keyLogin+sh)
	if errors.Is(err, store.ErrNotFound) {
		return badCallback("unknown or expired login state: start again")
	}
	if err != nil {
		return storeFailure(err)
	}
	a.store.Delete(ctx, keyLogin+sh) //nolint:errcheck // the used marker already makes it one-time.
	var pd pending
	if err := json.Unmarshal(b, &pd); err != nil {
		return badCallback("unknown login state")
	}
	sessName, loginName := a.cookieNames(ex.TLS)
	clearLogin := newCookie(loginName, "", ex.TLS, -1)
	rawBind, _ := findCookie(r, loginName)
	bind, ok := unsign(key, loginName, rawBind)
	if !ok || subtle.ConstantTimeCompare([]byte(hashKey("bind", bind)), []byte(pd.Bind)) != 1 {
		// Login CSRF: a callback that this browser did not start.
		d := badCallback("this login was not started by this browser").(*policy.Denial)
		d.Header = http.Header{"Set-Cookie": {clearLogin}}
		return d
	}
	if e := q.Get("error"); e != "" {
		return loginFailed("the identity provider refused the login", fmt.Errorf("provider error %q: %q", e, q.Get("error_description")))
	}
	if iss := q.Get("iss"); iss != "" && iss != a.s.issuer {
		// RFC 9207: a response of another authorization server (mix-up).
		return loginFailed("the authorization response comes from another issuer", fmt.Errorf("iss %q", iss))
	}
	code := q.Get("code")
	if code == "" {
		return badCallback("the callback has no code")
	}
	conf := p.oauth
	conf.RedirectURL = pd.Redirect
	xctx := context.WithValue(ctx, oauth2.HTTPClient, a.client)
	tok, err := conf.Exchange(xctx, code, oauth2.VerifierOption(pd.Verifier))
	if err != nil {
		return loginFailed("the identity provider did not accept the code", err)
	}
	rawID, _ := tok.Extra("id_token").(string)
	if rawID == "" {
		return loginFailed("the identity provider returned no ID token", nil)
	}
	idt, err := p.verifier.Verify(oidc.ClientContext(ctx, a.client), rawID)
	if err != nil {
		return loginFailed("the ID token is not valid", err)
	}
	if subtle.ConstantTimeCompare([]byte(idt.Nonce), []byte(pd.Nonce)) != 1 {
		return loginFailed("the ID token is not for this login", errors.New("nonce mismatch"))
	}
	if idt.AccessTokenHash != "" {
		if err := idt.VerifyAccessToken(tok.AccessToken); err != nil {
			return loginFailed("the ID token does not match the access token", err)
		}
	}
	now := a.now()
	rec, err := newRecord(idt, rawID, tok, a.s.scopes, now)
	if err != nil {
		return loginFailed("the ID token's claims are not valid", err)
	}
	if p.userinfo != nil && !a.s.noUserinfo {
		if err := a.addUserinfo(ctx, p, tok, rec); err != nil {
			return loginFailed("the identity provider's userinfo could not be read", err)
		}
	}
	rec.Ends = now.Add(a.s.ttl).Unix()
	// Always a new id: a session id the browser brought is never adopted.
	sid := random(32)
	if err := a.save(ctx, sid, rec, now); err != nil {
		return storeFailure(err)
	}
	target := pd.Target
	if !safeTarget(target) {
		target = "/"
	}
	return &policy.Denial{
		Status: http.StatusFound,
		Code:   "login_complete",
		Detail: "logged in",
		Header: http.Header{
			"Location":   {target},
			"Set-Cookie": {newCookie(sessName, sign(key, sessName, sid), ex.TLS, 0), clearLogin},
		},
	}
}

// addUserinfo adds the userinfo endpoint's claims to the session's: many
// providers put email, name and the like there and not in the ID token
// (OpenID Connect Core §5.4). Its sub must be the ID token's (§5.3.2); the
// ID token's own claims win.
func (a *Authenticator) addUserinfo(ctx context.Context, p *provider, tok *oauth2.Token, rec *record) error {
	ui, err := p.userinfo.UserInfo(oidc.ClientContext(ctx, a.client), oauth2.StaticTokenSource(tok))
	if err != nil {
		return err
	}
	if ui.Subject != rec.Subject {
		return fmt.Errorf("userinfo sub %q is not the ID token's %q", ui.Subject, rec.Subject)
	}
	var claims map[string]any
	if err := ui.Claims(&claims); err != nil {
		return err
	}
	for k, v := range claims {
		if _, ok := rec.Claims[k]; !ok {
			rec.Claims[k] = v
		}
	}
	return nil
}

// newRecord builds a session from a verified ID token and the token response.
func newRecord(idt *oidc.IDToken, rawID string, tok *oauth2.Token, requested []string, now time.Time) (*record, error) {
	var claims map[string]any
	if err := idt.Claims(&claims); err != nil {
		return nil, err
	}
	rec := &record{Subject: idt.Subject, Claims: claims, IDToken: rawID}
	rec.setTokens(tok, requested, now)
	return rec, nil
}

// setTokens takes the tokens of a token response; the access token's
// expiry is counted from now on the gateway's clock.
func (rec *record) setTokens(tok *oauth2.Token, requested []string, now time.Time) {
	rec.AccessToken = tok.AccessToken
	if tok.RefreshToken != "" {
		rec.RefreshToken = tok.RefreshToken
	}
	rec.Expiry = 0
	switch {
	case tok.ExpiresIn > 0:
		rec.Expiry = now.Unix() + tok.ExpiresIn
	case !tok.Expiry.IsZero():
		rec.Expiry = tok.Expiry.Unix()
	}
	rec.Scopes = requested
	if s, ok := tok.Extra("scope").(string); ok && s != "" {
		rec.Scopes = strings.Fields(s)
	}
}

// save writes rec under sid, encrypted, until the session ends.
func (a *Authenticator) save(ctx context.Context, sid string, rec *record, now time.Time) error {
	ttl := time.Unix(rec.Ends, 0).Sub(now)
	if ttl <= 0 {
		return errors.New("session: already ended")
	}
	plain, err := json.Marshal(rec)
	if err != nil {
		return err
	}
	return a.store.Set(ctx, keySession+hashKey("sid", sid), seal(sid, plain), ttl)
}

// aeadFor is AES-256-GCM under a key derived from the session id, which
// only the browser holds.
func aeadFor(sid string) cipher.AEAD {
	k := sha256.Sum256([]byte("gatehouse session record\x00" + sid))
	blk, _ := aes.NewCipher(k[:])
	g, _ := cipher.NewGCM(blk)
	return g
}

func seal(sid string, plain []byte) []byte {
	g := aeadFor(sid)
	nonce := make([]byte, g.NonceSize())
	rand.Read(nonce)
	return g.Seal(nonce, nonce, plain, []byte(keySession))
}

func open(sid string, sealed []byte) ([]byte, error) {
	g := aeadFor(sid)
	if len(sealed) < g.NonceSize() {
		return nil, errors.New("session: short record")
	}
	return g.Open(nil, sealed[:g.NonceSize()], sealed[g.NonceSize():], []byte(keySession))
}

// load reads and decrypts the session sid; nil, nil when there is none.
func (a *Authenticator) load(ctx context.Context, sid string) (*record, error) {
	b, err := a.store.Get(ctx, keySession+hashKey("sid", sid))
	if errors.Is(err, store.ErrNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	plain, err := open(sid, b)
	if err != nil {
		return nil, nil
	}
	var rec record
	if err := json.Unmarshal(plain, &rec); err != nil {
		return nil, nil
	}
	return &rec, nil
}

// lookup returns the principal of the session the cookie names and its
// access token, refreshing them when they are about to expire; a nil
// principal when the cookie names no live session.
func (a *Authenticator) lookup(ctx context.Context, ex *policy.Exchange, raw string) (*policy.Principal, string, error) {
	now := a.now()
	var gen uint64
	if a.cache != nil {
		if e := a.cache.get(raw, now.UnixNano()); e != nil {
			return e.pr, e.token, nil
		}
		gen = a.cache.generation()
	}
	key, err := a.cookieKey(ctx)
	if err != nil {
		return nil, "", storeFailure(err)
	}
	sessName, _ := a.cookieNames(ex.TLS)
	sid, ok := unsign(key, sessName, raw)
	if !ok {
		return nil, "", nil
	}
	rec, err := a.load(ctx, sid)
	if err != nil {
		return nil, "", storeFailure(err)
	}
	if rec == nil || now.Unix() >= rec.Ends {
		return nil, "", nil
	}
	if rec.Expiry != 0 && now.Add(a.s.refreshBefore).Unix() >= rec.Expiry {
		rec, err = a.refresh(ctx, sid, rec, now)
		if err != nil {
			return nil, "", err
		}
		if rec == nil {
			return nil, "", nil
		}
	}
	pr := rec.principal(a.s.clientID)
	if a.cache != nil && a.listening(ctx) {
		until := now.Add(a.s.cacheTTL).UnixNano()
		if rec.Expiry != 0 {
			until = min(until, time.Unix(rec.Expiry, 0).Add(-a.s.refreshBefore).UnixNano())
		}
		until = min(until, time.Unix(rec.Ends, 0).UnixNano())
		a.cache.put(raw, &entry{pr: pr, token: rec.AccessToken, hash: hashKey("sid", sid), until: until}, gen)
	}
	return pr, rec.AccessToken, nil
}

// listening reports whether the cache hears of ended sessions, subscribing
// to channelEnded first when it does not yet (again at most every 5
// seconds after a failure: without it nothing is cached).
func (a *Authenticator) listening(ctx context.Context) bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.subscribed {
		return true
	}
	if !a.subFailed.IsZero() && a.now().Sub(a.subFailed) < 5*time.Second {
		return false
	}
	sctx, cancel := context.WithCancel(context.Background())
	msgs, err := a.store.Subscribe(sctx, channelEnded)
	if err != nil {
		cancel()
		a.subFailed = a.now()
		a.log.Warn("session: cannot subscribe to ended sessions; not caching sessions", "err", err)
		return false
	}
	a.stop = cancel
	a.subscribed = true
	go a.cache.listen(sctx, msgs)
	return true
}

// ended removes the session sid from the store and tells every instance
// to drop it from its cache.
func (a *Authenticator) ended(ctx context.Context, sid string) error {
	h := hashKey("sid", sid)
	err := a.store.Delete(ctx, keySession+h)
	if a.cache != nil {
		a.cache.drop(h)
	}
	if perr := a.store.Publish(ctx, channelEnded, []byte(h)); perr != nil {
		a.log.Warn("session: could not announce an ended session; other instances may use it until their cache entry expires", "err", perr)
	}
	return err
}

func (rec *record) principal(clientID string) *policy.Principal {
	return &policy.Principal{
		Subject:  rec.Subject,
		ClientID: clientID,
		Consumer: rec.Subject,
		Scopes:   rec.Scopes,
		Claims:   rec.Claims,
		Method:   "session",
	}
}

// refresh renews the session's tokens with its refresh token. One
// instance refreshes at a time (a lock in the store: with refresh token
// rotation, two concurrent refreshes would look like a reuse); the others
// keep using the current access token while it lasts. A session that
// cannot be refreshed ends when its access token expires.
func (a *Authenticator) refresh(ctx context.Context, sid string, rec *record, now time.Time) (*record, error) {
	expired := now.Unix() >= rec.Expiry
	if rec.RefreshToken == "" {
		if expired {
			return nil, nil
		}
		return rec, nil
	}
	lock := keyRefresh + hashKey("sid", sid)
	mine, err := a.store.SetNX(ctx, lock, []byte{1}, 2*a.s.timeout)
	if err != nil {
		return nil, storeFailure(err)
	}
	if !mine {
		if expired {
			return nil, &policy.Denial{Status: http.StatusServiceUnavailable, Code: "session_refreshing",
				Detail: "the session is being refreshed: retry", Header: http.Header{"Retry-After": {"1"}}}
		}
		return rec, nil
	}
	defer a.store.Delete(context.WithoutCancel(ctx), lock) //nolint:errcheck // it expires anyway.
	// Read again under the lock: another instance may have refreshed.
	if cur, err := a.load(ctx, sid); err == nil && cur != nil && now.Add(a.s.refreshBefore).Unix() < cur.Expiry {
		return cur, nil
	}
	p, err := a.discover()
	if err != nil {
		return nil, err
	}
	xctx := context.WithValue(ctx, oauth2.HTTPClient, a.client)
	tok, err := p.oauth.TokenSource(xctx, &oauth2.Token{RefreshToken: rec.RefreshToken, Expiry: time.Unix(1, 0)}).Token()
	if err != nil {
		var re *oauth2.RetrieveError
		if errors.As(err, &re) && re.Response != nil && re.Response.StatusCode < 500 {
			// The provider ended the grant (expired, revoked, reused).
			a.ended(ctx, sid) //nolint:errcheck // best effort; the session is refused anyway.
			a.log.Info("session: refresh refused, session ended", "sub", rec.Subject, "err", err)
			return nil, nil
		}
		if expired {
			return nil, &policy.Denial{Status: http.StatusServiceUnavailable, Code: "idp_unavailable",
				Detail: "the identity provider cannot be reached", Header: http.Header{"Retry-After": {"5"}}, Err: err}
		}
		return rec, nil
	}
	next := *rec
	next.setTokens(tok, rec.Scopes, now)
	if rawID, _ := tok.Extra("id_token").(string); rawID != "" {
		idt, err := p.verifier.Verify(oidc.ClientContext(ctx, a.client), rawID)
		if err != nil || idt.Subject != rec.Subject {
			a.ended(ctx, sid) //nolint:errcheck // as above.
			a.log.Warn("session: refreshed ID token refused, session ended", "sub", rec.Subject, "err", err)
			return nil, nil
		}
		var claims map[string]any
		if idt.Claims(&claims) == nil {
			next.Claims, next.IDToken = claims, rawID
		}
	}
	if err := a.save(ctx, sid, &next, now); err != nil {
		return nil, storeFailure(err)
	}
	return &next, nil
}

// logout ends the session and sends the browser to the provider's
// end_session_endpoint.
func (a *Authenticator) logout(ctx context.Context, ex *policy.Exchange) error {
	r := ex.Request
	if r.Method != http.MethodGet && r.Method != http.MethodPost {
		return &policy.Denial{Status: http.StatusMethodNotAllowed, Code: "method_not_allowed", Detail: "logout takes GET or POST",
			Header: http.Header{"Allow": {"GET, POST"}}}
	}
	sessName, _ := a.cookieNames(ex.TLS)
	var idToken string
	if raw, ok := findCookie(r, sessName); ok {
		key, err := a.cookieKey(ctx)
		if err != nil {
			return storeFailure(err)
		}
		if sid, ok := unsign(key, sessName, raw); ok {
			if rec, err := a.load(ctx, sid); err == nil && rec != nil {
				idToken = rec.IDToken
			}
			if err := a.ended(ctx, sid); err != nil {
				return storeFailure(err)
			}
		}
	}
	loc := a.s.postLogout
	if loc == "" {
		loc = "/"
	}
	if p, err := a.discover(); err == nil && p.endSession != "" {
		u, err := url.Parse(p.endSession)
		if err == nil {
			q := u.Query()
			q.Set("client_id", a.s.clientID)
			if idToken != "" {
				q.Set("id_token_hint", idToken)
			}
			if a.s.postLogout != "" {
				pl := a.s.postLogout
				if strings.HasPrefix(pl, "/") {
					scheme := "http"
					if ex.TLS {
						scheme = "https"
					}
					pl = scheme + "://" + r.Host + pl
				}
				q.Set("post_logout_redirect_uri", pl)
			}
			u.RawQuery = q.Encode()
			loc = u.String()
		}
	}
	return &policy.Denial{
		Status: http.StatusFound,
		Code:   "logged_out",
		Detail: "logged out",
		Header: http.Header{
			"Location":   {loc},
			"Set-Cookie": {newCookie(sessName, "", ex.TLS, -1)},
		},
	}
}
