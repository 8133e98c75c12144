package authserver

import (
	"cmp"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"embed"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"html/template"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/gatehouse/gatehouse/internal/audit"
	"github.com/gatehouse/gatehouse/internal/config"
	"github.com/gatehouse/gatehouse/internal/store"
	"github.com/gatehouse/gatehouse/internal/users"
)

// End-user login endpoint paths, below the issuer's path.
const (
	PathAuthorize = "/oauth2/authorize"
	PathLogin     = "/oauth2/login"
	PathPAR       = "/oauth2/par"
	PathUserinfo  = "/oauth2/userinfo"
	PathLogout    = "/oauth2/logout"
)

// Defaults of end-user login (config.AuthServerLogin).
const (
	DefaultSessionLifetime      = 8 * time.Hour
	DefaultRefreshTokenLifetime = 24 * time.Hour
	DefaultFailuresPerUser      = 5

	// codeLifetime is how long an authorization code may be redeemed
	// (RFC 6749 §4.1.2 recommends at most 10 minutes; a browser redirect
	// takes a second).
	codeLifetime = time.Minute
	// codeRecordTTL keeps a redeemed code's record long enough for a
	// replay to find, and revoke, what it gave.
	codeRecordTTL = 10 * time.Minute
	// loginTxLifetime is how long the login page may stay open.
	loginTxLifetime = 10 * time.Minute
	// parLifetime is a pushed request's lifetime (RFC 9126 §2.2).
	parLifetime = time.Minute
)

// Store keys of end-user login.
const (
	loginTxPrefix    = "authserver:login:"
	sessionPrefix    = "authserver:session:"
	codePrefix       = "authserver:code:"
	codeUsedPrefix   = "authserver:code-used:"
	codeIssuedPrefix = "authserver:code-issued:"
	codeReplayPrefix = "authserver:code-replayed:"
	parPrefix        = "authserver:par:"
	failLoginIP      = "authserver:fail:login:ip:"
	failLoginUser    = "authserver:fail:login:user:"
)

// loginSettings are the end-user login settings; nil when no client has
// the authorization_code grant.
type loginSettings struct {
	users       *users.Set  // nil: federation only
	fed         *federation // nil: users file only
	sessionLife time.Duration
	refreshLife time.Duration
	failUser    int
	requirePAR  bool
	secure      bool // https issuer: __Host- cookies with Secure
}

func newLoginSettings(as *config.AuthorizationServer, s *settings, cfg *config.Config, baseDir string) (*loginSettings, error) {
	enabled := slices.ContainsFunc(s.clientsSorted, func(c *client) bool { return slices.Contains(c.grants, config.GrantAuthorizationCode) })
	if !enabled {
		if as.UsersFile != "" {
			return nil, configError(cfg, "users_file", "no client has the authorization_code grant: nobody would log in")
		}
		if as.Login.Federation != nil {
			return nil, configError(cfg, "login.federation", "no client has the authorization_code grant: nobody would log in")
		}
		return nil, nil
	}
	if as.UsersFile == "" && as.Login.Federation == nil {
		return nil, configError(cfg, "users_file", "required when a client has the authorization_code grant (or login.federation)")
	}
	var set *users.Set
	if as.UsersFile != "" {
		var err error
		if set, err = users.Load(resolve(baseDir, as.UsersFile)); err != nil {
			return nil, configError(cfg, "users_file", "%v", err)
		}
	}
	var fed *federation
	if f := as.Login.Federation; f != nil {
		fed = newFederation(f, s.issuer, s.prefix)
		switch fed.callbackPath {
		case s.prefix + PathAuthorize, s.prefix + PathLogin, s.prefix + PathPAR, s.prefix + PathUserinfo, s.prefix + PathLogout,
			s.prefix + PathToken, s.prefix + PathIntrospect, s.prefix + PathRevoke, s.prefix + PathJWKS, s.prefix + PathOIDC:
			return nil, configError(cfg, "login.federation.redirect_path", "%q is another endpoint of the authorization server", f.RedirectPath)
		}
	}
	for _, c := range s.clientsSorted {
		if slices.Contains(c.grants, config.GrantAuthorizationCode) && len(c.redirects) == 0 {
			return nil, configError(cfg, "clients", "client %q has the authorization_code grant but no redirect_uris", c.id)
		}
	}
	return &loginSettings{
		users:       set,
		fed:         fed,
		sessionLife: cmp.Or(as.Login.SessionLifetime.Std(), DefaultSessionLifetime),
		refreshLife: cmp.Or(as.Login.RefreshTokenLifetime.Std(), DefaultRefreshTokenLifetime),
		failUser:    cmp.Or(as.Login.FailuresPerUser, DefaultFailuresPerUser),
		requirePAR:  as.Login.RequirePAR,
		secure:      strings.HasPrefix(s.issuer, "https://"),
	}, nil
}

// Cookie names. With an https issuer they carry the __Host- prefix (the
// browser then insists on Secure, Path=/ and no Domain, so that no other
// host or path can set them).
func (l *loginSettings) cookieName(base string) string {
	if l.secure {
		return "__Host-" + base
	}
	return base
}

const (
	sessionCookie = "gh_as_session"
	browserCookie = "gh_as_browser"
)

func (l *loginSettings) setCookie(w http.ResponseWriter, base, value string, life time.Duration) {
	c := &http.Cookie{Name: l.cookieName(base), Value: value, Path: "/", HttpOnly: true, Secure: l.secure, SameSite: http.SameSiteLaxMode}
	if life > 0 {
		c.MaxAge = int(life / time.Second)
	} else if life < 0 {
		c.MaxAge = -1
	}
	http.SetCookie(w, c)
}

func (l *loginSettings) cookie(r *http.Request, base string) string {
	c, err := r.Cookie(l.cookieName(base))
	if err != nil || len(c.Value) > 128 {
		return ""
	}
	return c.Value
}

// randomToken is 32 random bytes, base64url: codes, session cookies,
// refresh tokens, CSRF tokens.
func randomToken() string {
	b := make([]byte, 32)
	rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}

// hashKey is the store key suffix of a bearer secret: the store never
// holds a code, session cookie or refresh token that could be replayed
// by whoever reads it.
func hashKey(secret string) string {
	sum := sha256.Sum256([]byte(secret))
	return base64.RawURLEncoding.EncodeToString(sum[:])
}

// session is an end user's login at the AS, kept in the store under the
// hash of its cookie.
type session struct {
	SID      string   `json:"sid"`
	Sub      string   `json:"sub"`
	Username string   `json:"username"`
	AuthTime int64    `json:"auth_time"`
	AMR      []string `json:"amr,omitempty"`
	ACR      string   `json:"acr,omitempty"`
	Exp      int64    `json:"exp"`
	// Fed is a federated user's claims; nil for a user of the users file.
	Fed *fedUser `json:"fed,omitempty"`
}

// currentSession returns the request's live session, or nil.
func (srv *Server) currentSession(ctx context.Context, r *http.Request) (*session, string, error) {
	l := srv.s.login
	id := l.cookie(r, sessionCookie)
	if id == "" {
		return nil, "", nil
	}
	raw, err := srv.st.Get(ctx, sessionPrefix+hashKey(id))
	if errors.Is(err, store.ErrNotFound) {
		return nil, "", nil
	}
	if err != nil {
		return nil, "", err
	}
	var s session
	if json.Unmarshal(raw, &s) != nil || !srv.now().Before(time.Unix(s.Exp, 0)) {
		return nil, "", nil
	}
	// A user removed from the users file, or disabled, since the login
	// has no session any more.
	if u, ok := l.users.BySub(s.Sub); s.Fed == nil && (!ok || u.Disabled) {
		return nil, "", nil
	}
	return &s, id, nil
}

// loginTx is a pending authorization request waiting for the user to log
// in: the request and the CSRF token of its form, bound to the browser
// that started it (the browser cookie).
type loginTx struct {
	Req     authzRequest `json:"req"`
	CSRF    string       `json:"csrf"`
	Browser string       `json:"browser"`
}

//go:embed login.html
var loginFS embed.FS

var pageTemplates = template.Must(template.ParseFS(loginFS, "login.html"))

// pageData is what the login, logout and error pages show.
type pageData struct {
	Title     string
	Error     string
	Message   string
	Action    string
	TxID      string
	CSRF      string
	ClientID  string
	Username  string
	Logout    bool
	LoginPage bool
	Hidden    map[string]string // further hidden fields of the logout form
	Password  bool              // the login page has the password form
	FedLabel  string            // the federation button's label; "": none
}

// renderPage writes an HTML page with a strict Content-Security-Policy:
// no script at all, styles only from the AS itself, forms posting only to
// the AS (and, for the login form, the origin the client's redirect URI
// is on: Chrome applies form-action to the redirect that follows a
// submission), never framed.
func (srv *Server) renderPage(w http.ResponseWriter, status int, d pageData, formOrigin string) {
	h := w.Header()
	formAction := "'self'"
	if formOrigin != "" {
		formAction += " " + formOrigin
	}
	h.Set("Content-Security-Policy", "default-src 'none'; style-src 'self'; img-src 'self'; form-action "+formAction+"; frame-ancestors 'none'; base-uri 'none'")
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("X-Frame-Options", "DENY")
	h.Set("Referrer-Policy", "no-referrer")
	w.WriteHeader(status)
	if err := pageTemplates.ExecuteTemplate(w, "page", d); err != nil {
		srv.log.Error("rendering a page", "err", err)
	}
}

// errorPage shows an error that cannot be sent to the client's redirect
// URI (RFC 6749 §4.1.2.1: an unknown client or redirect URI must not be
// redirected to).
func (srv *Server) errorPage(w http.ResponseWriter, r *http.Request, status int, code, msg string) {
	srv.log.Info("authorization request refused", "endpoint", r.URL.Path, "error", code, "detail", msg, "client_ip", srv.clientIP(r).String())
	srv.renderPage(w, status, pageData{Title: "Sign-in error", Error: msg, Message: "Error code: " + code}, "")
}

// showLogin renders the login form for a transaction.
func (srv *Server) showLogin(w http.ResponseWriter, status int, txID string, tx *loginTx, username, errMsg string) {
	srv.renderPage(w, status, pageData{
		Title: "Sign in", LoginPage: true, Action: srv.s.issuer + PathLogin, TxID: txID, CSRF: tx.CSRF,
		ClientID: tx.Req.ClientID, Username: username, Error: errMsg,
		Password: srv.s.login.users != nil, FedLabel: srv.fedLabel(),
	}, strings.TrimSpace(originOf(tx.Req.RedirectURI)+" "+srv.fedOrigin()))
}

func originOf(u string) string {
	p, err := url.Parse(u)
	if err != nil || p.Host == "" {
		return ""
	}
	return p.Scheme + "://" + p.Host
}

// startLogin stores a login transaction for req and shows the form.
func (srv *Server) startLogin(w http.ResponseWriter, r *http.Request, req authzRequest) {
	l := srv.s.login
	browser := l.cookie(r, browserCookie)
	if browser == "" {
		browser = randomToken()
	}
	// Refreshed on every login page, so that it outlives the transaction.
	l.setCookie(w, browserCookie, browser, loginTxLifetime+time.Minute)
	tx := &loginTx{Req: req, CSRF: randomToken(), Browser: hashKey(browser)}
	txID := randomToken()
	if err := srv.st.Set(r.Context(), loginTxPrefix+txID, mustJSON(tx), loginTxLifetime); err != nil {
		srv.errorPage(w, r, http.StatusServiceUnavailable, "temporarily_unavailable", "The sign-in service is unavailable; try again later.")
		return
	}
	if l.users == nil {
		// Federation is the only way in: no page to click through.
		srv.startFederation(w, r, txID, tx)
		return
	}
	srv.showLogin(w, http.StatusOK, txID, tx, "", "")
}

func (srv *Server) fedLabel() string {
	if srv.s.login.fed == nil {
		return ""
	}
	return srv.s.login.fed.label
}

// login serves the login form's POST: CSRF token and browser binding,
// failure budgets per address and per username, the password check, then
// a new session and the authorization response.
func (srv *Server) login(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", "POST")
		srv.errorPage(w, r, http.StatusMethodNotAllowed, "invalid_request", "Use the sign-in form.")
		return
	}
	l := srv.s.login
	ctx := r.Context()
	r.Body = http.MaxBytesReader(w, r.Body, 8<<10)
	if err := r.ParseForm(); err != nil {
		srv.errorPage(w, r, http.StatusBadRequest, "invalid_request", "The form does not parse.")
		return
	}
	f := r.PostForm
	txID := f.Get("tx")
	if txID == "" || len(txID) > 64 {
		srv.errorPage(w, r, http.StatusBadRequest, "invalid_request", "The sign-in form is incomplete; start again from the application.")
		return
	}
	raw, err := srv.st.Get(ctx, loginTxPrefix+txID)
	if errors.Is(err, store.ErrNotFound) {
		srv.errorPage(w, r, http.StatusBadRequest, "invalid_request", "The sign-in page has expired; start again from the application.")
		return
	} else if err != nil {
		srv.errorPage(w, r, http.StatusServiceUnavailable, "temporarily_unavailable", "The sign-in service is unavailable; try again later.")
		return
	}
	var tx loginTx
	if json.Unmarshal(raw, &tx) != nil {
		srv.errorPage(w, r, http.StatusBadRequest, "invalid_request", "The sign-in page has expired; start again from the application.")
		return
	}
	browser := l.cookie(r, browserCookie)
	csrfOK := subtle.ConstantTimeCompare([]byte(f.Get("csrf")), []byte(tx.CSRF)) == 1
	browserOK := browser != "" && subtle.ConstantTimeCompare([]byte(hashKey(browser)), []byte(tx.Browser)) == 1
	if !csrfOK || !browserOK {
		// A form posted from another site, or another browser's form:
		// login CSRF (logging the victim in as the attacker).
		srv.audit.Record(audit.Event{Kind: audit.AuthFailure, ClientIP: srv.clientIP(r), ClientID: tx.Req.ClientID,
			Policy: "authorization_server", Code: "csrf", Status: http.StatusForbidden, Detail: "login form: CSRF token or browser binding mismatch"})
		srv.errorPage(w, r, http.StatusForbidden, "access_denied", "The sign-in form was not submitted from this browser's sign-in page. Start again from the application.")
		return
	}
	if f.Get("method") == "federation" && l.fed != nil {
		srv.startFederation(w, r, txID, &tx)
		return
	}
	if l.users == nil {
		srv.errorPage(w, r, http.StatusBadRequest, "invalid_request", "Sign in with the identity provider.")
		return
	}
	username := strings.TrimSpace(f.Get("username"))
	password := f.Get("password")
	if username == "" || password == "" || len(username) > 128 || len(password) > 1024 {
		srv.showLogin(w, http.StatusBadRequest, txID, &tx, username, "Enter your username and password.")
		return
	}
	ip := srv.clientIP(r).String()
	budgets := []budget{
		{failLoginIP + ip, store.Limit{Rate: srv.s.failuresIP, Period: time.Minute}},
		{failLoginUser + username, store.Limit{Rate: l.failUser, Period: time.Minute}},
	}
	for _, b := range budgets {
		d, err := srv.st.Allow(ctx, b.key, []store.Limit{b.limit}, 0)
		if err != nil {
			srv.errorPage(w, r, http.StatusServiceUnavailable, "temporarily_unavailable", "The sign-in service is unavailable; try again later.")
			return
		}
		if !d.Allowed || d.Remaining < 1 {
			retry := max(d.RetryAfter, b.limit.Interval())
			w.Header().Set("Retry-After", fmt.Sprint(int((retry+time.Second-1)/time.Second)))
			srv.log.Info("login refused: failure budget spent", "username", username, "client_ip", ip)
			srv.showLogin(w, http.StatusTooManyRequests, txID, &tx, username, "Too many failed sign-ins. Wait a minute and try again.")
			return
		}
	}
	u, ok := l.users.Authenticate(username, password)
	if !ok {
		for _, b := range budgets {
			srv.st.Allow(ctx, b.key, []store.Limit{b.limit}, 1)
		}
		srv.log.Info("login failed", "username", username, "client_ip", ip, "client_id", tx.Req.ClientID)
		srv.audit.Record(audit.Event{Kind: audit.AuthFailure, ClientIP: srv.clientIP(r), ClientID: tx.Req.ClientID, Principal: username,
			Policy: "authorization_server", Code: "login_failed", Status: http.StatusUnauthorized, Detail: "wrong username or password"})
		srv.showLogin(w, http.StatusUnauthorized, txID, &tx, username, "Wrong username or password.")
		return
	}
	// The transaction is spent: a second post of the same form (a double
	// click, a back button) starts again rather than logging in twice.
	srv.st.Delete(ctx, loginTxPrefix+txID)
	now := srv.now()
	sess := &session{SID: randomToken()[:22], Sub: u.Sub(), Username: u.Username, AuthTime: now.Unix(), AMR: []string{"pwd"},
		Exp: now.Add(l.sessionLife).Unix()}
	srv.establishSession(w, r, tx, sess)
}

// establishSession stores a new session for a login, sets its cookie and
// answers the authorization request with a code.
func (srv *Server) establishSession(w http.ResponseWriter, r *http.Request, tx loginTx, sess *session) {
	l := srv.s.login
	ctx := r.Context()
	ip := srv.clientIP(r).String()
	// A new session id on every login: a session cookie planted before
	// the login (session fixation) is never adopted.
	if old := l.cookie(r, sessionCookie); old != "" {
		srv.st.Delete(ctx, sessionPrefix+hashKey(old))
	}
	cookie := randomToken()
	if err := srv.st.Set(ctx, sessionPrefix+hashKey(cookie), mustJSON(sess), l.sessionLife); err != nil {
		srv.errorPage(w, r, http.StatusServiceUnavailable, "temporarily_unavailable", "The sign-in service is unavailable; try again later.")
		return
	}
	l.setCookie(w, sessionCookie, cookie, l.sessionLife)
	srv.log.Info("user logged in", "sub", sess.Sub, "sid", sess.SID, "client_id", tx.Req.ClientID, "client_ip", ip)
	srv.respondWithCode(w, r, tx.Req, sess)
}
