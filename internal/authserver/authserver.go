// Package authserver is Gatehouse's embedded OAuth 2.0 authorization
// server for machine-to-machine clients: client_credentials (RFC 6749
// §4.4) and token exchange (RFC 8693, of our own JWTs and of SAML 2.0
// assertions from a trusted STS), clients authenticated by
// client_secret_basic, client_secret_post, private_key_jwt (RFC 7523) or
// tls_client_auth (RFC 8705), access tokens as JWTs per RFC 9068 (bound to
// a DPoP key, RFC 9449, or to the client certificate when proven), metadata
// (RFC 8414, OpenID discovery), JWKS, introspection (RFC 7662) and
// revocation (RFC 7009).
//
// The signing keys and revocations live in the gateway's state store: the
// keys sealed with a key-encryption key, rotated on a schedule or on
// command with the previous key published until its tokens expire;
// revocations kept until the token's expiry and published to every
// instance, which feed them to the gateway's revocation list.
//
// The protocol layer is written here rather than taken from
// github.com/zitadel/oidc/v3/pkg/op: see docs/authorization-server.md,
// "Why not zitadel/oidc", for the precise reasons.
package authserver

import (
	"cmp"
	"context"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/netip"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/gatehouse/gatehouse/internal/audit"
	"github.com/gatehouse/gatehouse/internal/authn/dpop"
	"github.com/gatehouse/gatehouse/internal/clientip"
	"github.com/gatehouse/gatehouse/internal/config"
	"github.com/gatehouse/gatehouse/internal/revocation"
	"github.com/gatehouse/gatehouse/internal/saml2/lifecycle"
	"github.com/gatehouse/gatehouse/internal/store"
	"github.com/gatehouse/gatehouse/internal/telemetry"
)

// Endpoint paths, below the issuer's path.
const (
	PathToken      = "/oauth2/token"
	PathIntrospect = "/oauth2/introspect"
	PathRevoke     = "/oauth2/revoke"
	PathJWKS       = "/oauth2/jwks"
	PathOIDC       = "/.well-known/openid-configuration"
	PathRFC8414    = "/.well-known/oauth-authorization-server"
)

// Deps are what a Server needs besides its config.
type Deps struct {
	// Store holds the signing keys, revocations, replay caches and
	// failure budgets. Required.
	Store store.Store
	// Revocations is the gateway's list of revoked token ids: revocations
	// made here, on other instances (through the store's channel) and
	// found in the store at start are added to it. Nil: a private list.
	Revocations *revocation.List
	// Now is the clock. Nil: time.Now.
	Now func() time.Time
	// Logger is the operational log. Nil: slog.Default().
	Logger *slog.Logger
	// Config places errors (file, line, field); may be nil.
	Config *config.Config
	// BaseDir resolves relative files (client JWKS, SAML certificates).
	BaseDir string
	// TrustedProxies are the peers whose forwarding headers name the
	// client address, for the per-address failure limit.
	TrustedProxies []netip.Prefix
	// ClientIPHeader is the one header trusted proxies name the client
	// address in (clientip.Source.Header); empty: X-Forwarded-For.
	ClientIPHeader string
	// RefreshInterval is how often the keys are re-read from the store
	// (rotations by other instances) and the rotation schedule checked.
	// Zero: 10s.
	RefreshInterval time.Duration
	// Audit records token issues and revocations, client authentication
	// failures and key rotations. Nil: discard.
	Audit *audit.Log
	// SAMLIssuers are further issuers whose assertions the token exchange
	// accepts, beside the configured saml_issuers: the gateway passes its
	// own STS here, so that one login at the STS serves REST routes too.
	// An issuer named in both is an error.
	SAMLIssuers []SAMLIssuer
	// Metrics counts tokens issued, client authentication failures,
	// exchanges, introspections and key rotations (metrics.go). Nil:
	// nothing is counted.
	Metrics *telemetry.Metrics
}

// Server is the authorization server. It is safe for concurrent use.
type Server struct {
	s       *settings
	st      store.Store
	revs    *revocation.List
	now     func() time.Time
	log     *slog.Logger
	trusted clientip.Source
	audit   *audit.Log
	metrics *telemetry.Metrics
	ring    *keyring
	dpop    *dpop.Verifier
	meta    []byte
	mux     *http.ServeMux

	cancel context.CancelFunc
	wg     sync.WaitGroup
	once   sync.Once
}

// SAMLIssuer is an issuer of SAML assertions trusted by the token exchange
// (RFC 8693, subject_token_type urn:ietf:params:oauth:token-type:saml2).
type SAMLIssuer struct {
	// Issuer is the assertions' Issuer.
	Issuer string
	// Certificates verify their signatures.
	Certificates []*x509.Certificate
	// Audience is the audience the assertions must name; "" means this
	// server's issuer URL.
	Audience string
}

// New builds the server from cfg: it checks the clients, reads their
// files, loads the signing keys from the store (making them on first
// start, rotating them if due), loads the stored revocations and starts the
// background refresh. Config problems are config errors naming the field.
func New(cfg config.AuthorizationServer, deps Deps) (*Server, error) {
	if deps.Store == nil {
		return nil, errors.New("authserver: no state store")
	}
	s, err := newSettings(&cfg, deps.Config, deps.BaseDir)
	if err != nil {
		return nil, err
	}
	for _, si := range deps.SAMLIssuers {
		if _, dup := s.samlIssuers[si.Issuer]; dup || si.Issuer == "" || len(si.Certificates) == 0 {
			return nil, configError(deps.Config, "saml_issuers", "SAML issuer %q is configured here and is also the gateway's own STS (or has no certificate): name it once", si.Issuer)
		}
		s.samlIssuers[si.Issuer] = &samlIssuer{issuer: si.Issuer, certs: si.Certificates, audience: cmp.Or(si.Audience, s.issuer)}
	}
	srv := &Server{
		s:       s,
		st:      deps.Store,
		revs:    deps.Revocations,
		now:     deps.Now,
		log:     deps.Logger,
		trusted: clientip.Source{Trusted: deps.TrustedProxies, Header: deps.ClientIPHeader},
		audit:   deps.Audit,
		metrics: deps.Metrics,
	}
	if srv.now == nil {
		srv.now = time.Now
	}
	if srv.log == nil {
		srv.log = slog.Default()
	}
	srv.log = srv.log.With("component", "authserver")
	if srv.revs == nil {
		srv.revs = revocation.New(srv.now)
	}
	srv.ring = &keyring{
		st:       deps.Store,
		kek:      s.kek,
		alg:      s.alg,
		rotation: s.rotation,
		// A retired key verifies the tokens it signed until they expire,
		// plus a minute for clock skew at relying parties.
		keep: s.maxLifetime + time.Minute,
		now:  srv.now,
		// Counts the rotations this instance makes (metrics.go).
		rotated: deps.Metrics.KeyRotated,
	}
	srv.dpop = dpop.NewVerifier(dpop.Options{
		Now:         srv.now,
		ReplayCache: storeReplay{deps.Store, srv.now},
		// The proof's htu is the token endpoint's public URL, whatever
		// host name the request came in on.
		PublicURL: func(*http.Request) string { return s.issuer + PathToken },
		Realm:     "gatehouse",
	})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := srv.ring.ensure(ctx); err != nil {
		return nil, err
	}
	bg, stop := context.WithCancel(context.Background())
	srv.cancel = stop
	// Subscribe before the scan, so that a revocation made in between is
	// not missed.
	revCh, err := deps.Store.Subscribe(bg, RevocationChannel)
	if err != nil {
		stop()
		return nil, fmt.Errorf("authserver: subscribing to revocations: %w", err)
	}
	cancelCh, err := deps.Store.Subscribe(bg, lifecycle.CancelChannel)
	if err != nil {
		stop()
		return nil, fmt.Errorf("authserver: subscribing to assertion cancellations: %w", err)
	}
	if err := srv.loadRevocations(ctx); err != nil {
		stop()
		return nil, err
	}
	srv.meta = srv.metadata()
	srv.initMetrics()
	srv.mux = http.NewServeMux()
	p := s.prefix
	srv.mux.HandleFunc(p+PathToken, srv.token)
	srv.mux.HandleFunc(p+PathIntrospect, srv.introspect)
	srv.mux.HandleFunc(p+PathRevoke, srv.revoke)
	srv.mux.HandleFunc(p+PathJWKS, srv.jwks)
	srv.mux.HandleFunc(p+PathOIDC, srv.discovery)
	if s.login != nil {
		srv.mux.HandleFunc(p+PathAuthorize, srv.authorize)
		srv.mux.HandleFunc(p+PathLogin, srv.login)
		srv.mux.HandleFunc(p+PathPAR, srv.par)
		srv.mux.HandleFunc(p+PathUserinfo, srv.userinfo)
		srv.mux.HandleFunc(p+PathLogout, srv.logout)
		if s.login.fed != nil {
			srv.mux.HandleFunc(s.login.fed.callbackPath, srv.federationCallback)
		}
	}
	// RFC 8414 §3: the well-known segment goes before the issuer's path;
	// the form after it is what many clients try first, so serve both.
	srv.mux.HandleFunc(PathRFC8414+p, srv.discovery)
	if p != "" {
		srv.mux.HandleFunc(p+PathRFC8414, srv.discovery)
	}

	interval := deps.RefreshInterval
	if interval <= 0 {
		interval = 10 * time.Second
	}
	srv.wg.Go(func() { srv.refreshLoop(bg, interval) })
	srv.wg.Go(func() { srv.watchRevocations(bg, revCh) })
	srv.wg.Go(func() { srv.watchCancellations(bg, cancelCh) })
	for _, c := range s.clientsSorted {
		if c.demo {
			srv.log.Warn("DEMO-ONLY client registered; its secret is public, never use it in production", "client_id", c.id)
		}
	}
	if s.kek == nil {
		srv.log.Warn("signing keys are stored unencrypted (insecure_plaintext_keys)")
	}
	return srv, nil
}

// Close stops the background work. It does not close the store.
func (srv *Server) Close() error {
	srv.once.Do(func() {
		srv.cancel()
		srv.wg.Wait()
	})
	return nil
}

// Handler returns the handler of the server's endpoints; requests outside
// them get 404.
func (srv *Server) Handler() http.Handler { return srv.mux }

// ServeHTTP serves the endpoints (see Handler).
func (srv *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) { srv.mux.ServeHTTP(w, r) }

// Owns reports whether path is one of the server's endpoints, so that the
// gateway can send it here before routing.
func (srv *Server) Owns(path string) bool {
	p := srv.s.prefix
	switch path {
	case p + PathToken, p + PathIntrospect, p + PathRevoke, p + PathJWKS, p + PathOIDC, PathRFC8414 + p, p + PathRFC8414:
		return true
	case p + PathAuthorize, p + PathLogin, p + PathPAR, p + PathUserinfo, p + PathLogout:
		return srv.s.login != nil
	}
	if l := srv.s.login; l != nil && l.fed != nil && path == l.fed.callbackPath {
		return true
	}
	return false
}

// Issuer returns the issuer identifier.
func (srv *Server) Issuer() string { return srv.s.issuer }

// Rotate makes the next signing key active now (the previous one stays in
// the JWKS until its tokens have expired). It returns ErrRotating while
// another instance rotates.
func (srv *Server) Rotate(ctx context.Context) error {
	if err := srv.ring.rotate(ctx, false); err != nil {
		return err
	}
	kid := srv.ring.signing().KeyID()
	srv.log.Info("signing key rotated", "kid", kid)
	srv.audit.Record(audit.Event{Kind: audit.KeyRotation, KeyID: kid, Result: "success", Detail: "authorization server signing key"})
	return nil
}

// KeyInfo is one signing key as published, without its private part.
type KeyInfo struct {
	KID       string    `json:"kid"`
	Alg       string    `json:"alg"`
	Created   time.Time `json:"created"`
	Activated time.Time `json:"activated,omitzero"`
	Retired   time.Time `json:"retired,omitzero"`
	Active    bool      `json:"active"`
}

// Keys returns the signing keys in the store's ring (the active one, the
// next one published ahead, retired ones still published) and the public
// JWK Set.
func (srv *Server) Keys() ([]KeyInfo, json.RawMessage) {
	kr := srv.ring
	kr.mu.RLock()
	raw, jwks := kr.raw, kr.jwks
	active := ""
	if kr.active != nil {
		active = kr.active.KeyID()
	}
	kr.mu.RUnlock()
	var r storedRing
	_ = json.Unmarshal(raw, &r)
	out := make([]KeyInfo, 0, len(r.Keys))
	for _, k := range r.Keys {
		out = append(out, KeyInfo{KID: k.KID, Alg: k.Alg, Created: k.Created, Activated: k.Activated, Retired: k.Retired, Active: k.KID == active})
	}
	return out, json.RawMessage(jwks)
}

// RevokeToken revokes one of this server's access tokens, given whole,
// and returns its jti and expiry. A token that is not ours or no longer
// valid is an error.
func (srv *Server) RevokeToken(ctx context.Context, tok string) (string, time.Time, error) {
	v, err := srv.verifyOwn(tok)
	if err != nil {
		return "", time.Time{}, err
	}
	exp := time.Unix(v.claims.Exp, 0)
	if err := srv.RevokeJTI(ctx, v.claims.JTI, exp); err != nil {
		return "", time.Time{}, err
	}
	return v.claims.JTI, exp, nil
}

// MaxLifetime is the longest lifetime of a token this server issues: a
// revocation by jti alone, whose expiry is unknown, lasts this long.
func (srv *Server) MaxLifetime() time.Duration { return srv.s.maxLifetime }

// ActiveKeyID returns the kid of the key tokens are signed with now.
func (srv *Server) ActiveKeyID() string { return srv.ring.signing().KeyID() }

// ClientInfo describes a registered client, without its credentials.
type ClientInfo struct {
	ID          string
	AuthMethods []string
	Scopes      []string
	Audience    []string
	GrantTypes  []string
	Lifetime    time.Duration
	Demo        bool
}

// Clients lists the clients cfg registers, in config order, checking them
// as New does but without touching a store.
func Clients(cfg config.AuthorizationServer, c *config.Config, baseDir string) ([]ClientInfo, error) {
	s, err := newSettings(&cfg, c, baseDir)
	if err != nil {
		return nil, err
	}
	out := make([]ClientInfo, 0, len(s.clientsSorted))
	for _, cl := range s.clientsSorted {
		out = append(out, ClientInfo{ID: cl.id, AuthMethods: cl.methods, Scopes: cl.scopes, Audience: cl.audience,
			GrantTypes: cl.grants, Lifetime: cl.lifetime, Demo: cl.demo})
	}
	return out, nil
}

func (srv *Server) refreshLoop(ctx context.Context, every time.Duration) {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if err := srv.ring.refresh(ctx); err != nil && ctx.Err() == nil {
			srv.log.Warn("refreshing the signing keys", "err", err)
		}
	}
}

// metadata is the RFC 8414 / OpenID discovery document.
func (srv *Server) metadata() []byte {
	iss := srv.s.issuer
	methods := []string{config.AuthSecretBasic, config.AuthSecretPost, config.AuthPrivateKeyJWT, config.AuthTLSClient}
	m := map[string]any{
		"issuer":                                iss,
		"token_endpoint":                        iss + PathToken,
		"jwks_uri":                              iss + PathJWKS,
		"introspection_endpoint":                iss + PathIntrospect,
		"revocation_endpoint":                   iss + PathRevoke,
		"grant_types_supported":                 []string{config.GrantClientCredentials, config.GrantTokenExchange},
		"token_endpoint_auth_methods_supported": methods,
		"token_endpoint_auth_signing_alg_values_supported":         clientAssertionAlgs,
		"introspection_endpoint_auth_methods_supported":            methods,
		"revocation_endpoint_auth_methods_supported":               methods,
		"dpop_signing_alg_values_supported":                        dpop.DefaultAlgorithms,
		"tls_client_certificate_bound_access_tokens":               true,
		"scopes_supported":                                         srv.allScopes(),
		"introspection_endpoint_auth_signing_alg_values_supported": clientAssertionAlgs,
		// No authorization endpoint: no response type is served.
		"response_types_supported": []string{},
	}
	if srv.s.login != nil {
		srv.loginMetadata(m)
	}
	return mustJSON(m)
}

func (srv *Server) allScopes() []string {
	seen := map[string]bool{}
	var out []string
	for _, c := range srv.s.clientsSorted {
		for _, sc := range c.scopes {
			if !seen[sc] {
				seen[sc] = true
				out = append(out, sc)
			}
		}
	}
	return out
}

func (srv *Server) discovery(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		methodNotAllowed(w, "GET, HEAD")
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "public, max-age=300")
	w.Write(srv.meta)
}

func (srv *Server) jwks(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		methodNotAllowed(w, "GET, HEAD")
		return
	}
	w.Header().Set("Content-Type", "application/jwk-set+json")
	// Short, so that relying parties see the next key well before use.
	w.Header().Set("Cache-Control", "public, max-age=300")
	w.Write(srv.ring.jwksJSON())
}

func methodNotAllowed(w http.ResponseWriter, allow string) {
	w.Header().Set("Allow", allow)
	writeError(w, &oauthError{status: http.StatusMethodNotAllowed, code: "invalid_request", desc: "method not allowed"})
}

// oauthError is an RFC 6749 §5.2 error response. desc is shown to the
// client; cause is logged only.
type oauthError struct {
	status     int
	code       string
	desc       string
	cause      error
	header     http.Header
	retryAfter time.Duration
}

func (e *oauthError) Error() string {
	msg := e.code
	if e.desc != "" {
		msg += ": " + e.desc
	}
	if e.cause != nil {
		msg += ": " + e.cause.Error()
	}
	return "authserver: " + msg
}

func (e *oauthError) Unwrap() error { return e.cause }

func badRequest(code, desc string, cause error) *oauthError {
	return &oauthError{status: http.StatusBadRequest, code: code, desc: desc, cause: cause}
}

// invalidClient is 401 with a Basic challenge (RFC 6749 §5.2: required
// when the client tried Basic, harmless otherwise).
func invalidClient(desc string, cause error) *oauthError {
	h := http.Header{}
	h.Set("WWW-Authenticate", `Basic realm="gatehouse", charset="UTF-8"`)
	return &oauthError{status: http.StatusUnauthorized, code: "invalid_client", desc: desc, cause: cause, header: h}
}

func serverError(cause error) *oauthError {
	return &oauthError{status: http.StatusInternalServerError, code: "server_error", desc: "the server could not process the request", cause: cause}
}

func unavailable(cause error) *oauthError {
	return &oauthError{status: http.StatusServiceUnavailable, code: "temporarily_unavailable", desc: "try again later", cause: cause, retryAfter: time.Second}
}

func writeError(w http.ResponseWriter, e *oauthError) {
	h := w.Header()
	for k, v := range e.header {
		h[k] = v
	}
	if e.retryAfter > 0 {
		h.Set("Retry-After", strconv.Itoa(int((e.retryAfter+time.Second-1)/time.Second)))
	}
	h.Set("Content-Type", "application/json")
	h.Set("Cache-Control", "no-store")
	h.Set("Pragma", "no-cache")
	w.WriteHeader(e.status)
	body := map[string]string{"error": e.code}
	if e.desc != "" {
		body["error_description"] = e.desc
	}
	json.NewEncoder(w).Encode(body)
}

func writeJSON(w http.ResponseWriter, v any) {
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Cache-Control", "no-store")
	h.Set("Pragma", "no-cache")
	json.NewEncoder(w).Encode(v)
}

// fail logs an error response (never the secret or token: causes are
// built without them) and writes it.
func (srv *Server) fail(w http.ResponseWriter, r *http.Request, e *oauthError, clientID string) {
	lvl := slog.LevelInfo
	if e.status >= 500 {
		lvl = slog.LevelError
	}
	ip := srv.clientIP(r)
	srv.countFailure(e)
	srv.log.Log(r.Context(), lvl, "oauth request refused", "endpoint", r.URL.Path, "error", e.code,
		"client_id", clientID, "client_ip", ip.String(), "status", e.status, "cause", errString(e.cause))
	if e.status == http.StatusUnauthorized {
		srv.audit.Record(audit.Event{Kind: audit.AuthFailure, RequestID: r.Header.Get("X-Request-Id"), ClientIP: ip,
			ClientID: clientID, Policy: "authorization_server", Code: e.code, Status: e.status, Detail: e.desc})
	}
	writeError(w, e)
}

func errString(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}

func (srv *Server) clientIP(r *http.Request) netip.Addr {
	return srv.trusted.Resolve(r.RemoteAddr, r.Header)
}

// maxForm bounds a request body: token requests carry an assertion of a
// few kilobytes at most.
const maxForm = 64 << 10

// parseForm reads an application/x-www-form-urlencoded POST body. The
// query string is ignored: credentials in URLs end up in logs.
func parseForm(w http.ResponseWriter, r *http.Request) (url.Values, *oauthError) {
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", "POST")
		return nil, &oauthError{status: http.StatusMethodNotAllowed, code: "invalid_request", desc: "use POST"}
	}
	ct := r.Header.Get("Content-Type")
	if mt, _, _ := strings.Cut(ct, ";"); !strings.EqualFold(strings.TrimSpace(mt), "application/x-www-form-urlencoded") {
		return nil, badRequest("invalid_request", "the body must be application/x-www-form-urlencoded", nil)
	}
	r.Body = http.MaxBytesReader(w, r.Body, maxForm)
	if err := r.ParseForm(); err != nil {
		return nil, badRequest("invalid_request", "the form does not parse", err)
	}
	for k, v := range r.PostForm {
		// RFC 6749 §3.1: parameters must not be repeated.
		if len(v) > 1 {
			return nil, badRequest("invalid_request", fmt.Sprintf("parameter %s is repeated", k), nil)
		}
	}
	return r.PostForm, nil
}
