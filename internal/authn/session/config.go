package session

import (
	"cmp"
	"crypto/x509"
	"net"
	"net/url"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/gatehouse/gatehouse/internal/config"
)

// Config is the session authenticator's settings.
//
//	session:
//	  issuer: https://idp.example
//	  client_id: gateway
//	  client_secret: {env: GW_OIDC_SECRET}
//	  redirect_url: /oauth2/callback
type Config struct {
	// Issuer is the OpenID provider's issuer URL; its configuration is
	// found by OpenID Connect Discovery at {issuer}/.well-known/openid-configuration.
	// Required; https, or http to a loopback address, or http anywhere
	// with AllowHTTP.
	Issuer string `yaml:"issuer"`
	// AllowHTTP permits a plain http issuer that is not on loopback.
	AllowHTTP bool `yaml:"allow_http"`
	// ClientID and ClientSecret are the gateway's client at the provider
	// (client_secret_basic). ClientID is required; ClientSecret is empty
	// only for a public client (PKCE alone).
	ClientID     string        `yaml:"client_id"`
	ClientSecret config.Secret `yaml:"client_secret"`
	// RedirectURL is the callback registered at the provider: an absolute
	// http(s) URL, or a path, which is then taken on the origin of the
	// request that starts the login (the provider's exact matching of
	// redirect URIs refuses any origin it does not know). Its path is
	// served by the gateway on this route. Default /oauth2/callback.
	RedirectURL string `yaml:"redirect_url"`
	// LoginPath, when set, starts a login on GET with the post-login
	// target in the rd query parameter (same-site paths only). Optional.
	LoginPath string `yaml:"login_path"`
	// LogoutPath ends the session (in the state store: on every instance)
	// and sends the browser to the provider's end_session_endpoint
	// (RP-initiated logout) when it has one. Default /oauth2/logout.
	LogoutPath string `yaml:"logout_path"`
	// PostLogoutRedirectURL is where the provider sends the browser after
	// logout (registered at the provider), or where the gateway does when
	// the provider has no end_session_endpoint. Default: none (the
	// provider's own page; "/" without end_session_endpoint).
	PostLogoutRedirectURL string `yaml:"post_logout_redirect_url"`
	// Scopes are requested at login; openid is always requested. Default
	// [openid, profile, email].
	Scopes []string `yaml:"scopes"`
	// CookieName names the session cookie; over TLS it carries the
	// __Host- prefix. The pre-login cookie is CookieName + "_login".
	// Default gatehouse_session.
	CookieName string `yaml:"cookie_name"`
	// CookieSecret is the HMAC key (at least 32 bytes) that protects the
	// cookies. Default: a random key kept in the state store, shared by
	// every instance that shares the store.
	CookieSecret config.Secret `yaml:"cookie_secret"`
	// SessionTTL is a session's absolute lifetime. Default 12h.
	SessionTTL config.Duration `yaml:"session_ttl"`
	// RefreshBefore: the access token is refreshed with the refresh token
	// this long before it expires. Default 60s.
	RefreshBefore config.Duration `yaml:"refresh_before"`
	// LoginTTL bounds the time from the redirect to the callback. Default 10m.
	LoginTTL config.Duration `yaml:"login_ttl"`
	// Userinfo: at login, the claims of the provider's userinfo endpoint
	// are added to the ID token's (those the ID token has win). Default
	// true; false saves a call per login when the ID token has them all.
	Userinfo *bool `yaml:"userinfo"`
	// ForwardAccessToken sets Authorization: Bearer <access token> on the
	// request to the upstream.
	ForwardAccessToken bool `yaml:"forward_access_token"`
	// Cache keeps recently used sessions in memory, so that a request does
	// not read the state store. An ended session (logout, a refused
	// refresh) is dropped from every instance's cache by a message of the
	// state store's publish/subscribe; TTL bounds how long an entry is
	// used should such a message be lost. Default {ttl: 10s, size: 10000}.
	Cache CacheConfig `yaml:"cache"`
	// CAFile holds PEM CA certificates the provider's certificate must
	// chain to. Empty: the system roots.
	CAFile string `yaml:"ca_file"`
	// Timeout bounds each call to the provider. Default 5s.
	Timeout config.Duration `yaml:"timeout"`
}

// CacheConfig is the session cache's settings.
type CacheConfig struct {
	TTL      config.Duration `yaml:"ttl"`
	Size     int             `yaml:"size"`
	Disabled bool            `yaml:"disabled"`
}

const (
	defaultCacheTTL  = 10 * time.Second
	defaultCacheSize = 10000
	defaultRedirect  = "/oauth2/callback"
	defaultLogout    = "/oauth2/logout"
	defaultCookie    = "gatehouse_session"
	defaultTTL       = 12 * time.Hour
	defaultRefresh   = 60 * time.Second
	defaultLoginTTL  = 10 * time.Minute
	defaultTimeout   = 5 * time.Second
	minSecret        = 32
)

// settings is a validated Config.
type settings struct {
	issuer        string
	clientID      string
	secret        string
	redirect      string // absolute URL, or a path
	callbackPath  string
	loginPath     string
	logoutPath    string
	postLogout    string
	scopes        []string
	cookie        string
	cookieKey     []byte // nil: kept in the state store
	ttl           time.Duration
	refreshBefore time.Duration
	loginTTL      time.Duration
	forwardToken  bool
	noUserinfo    bool
	noCache       bool
	cacheTTL      time.Duration
	cacheSize     int
	roots         *x509.CertPool
	timeout       time.Duration
}

func decode(cfg *config.Node) (*settings, error) {
	var c Config
	if err := cfg.Decode(&c); err != nil {
		return nil, err
	}
	if err := c.validate(cfg); err != nil {
		return nil, err
	}
	return c.provision(cfg)
}

// validate checks c, reporting every independent problem at its place.
func (c *Config) validate(cfg *config.Node) error {
	var p config.Problems
	if c.Issuer == "" {
		p.Errorf(cfg, "", "issuer is required: the OpenID provider found by discovery")
	} else if u, err := url.Parse(c.Issuer); err != nil || u.Host == "" || (u.Scheme != "https" && u.Scheme != "http") {
		p.Errorf(cfg, "issuer", "%q is not an http(s) URL", c.Issuer)
	} else if u.User != nil || u.RawQuery != "" || u.Fragment != "" {
		p.Errorf(cfg, "issuer", "an issuer has no credentials, query or fragment (OpenID Connect Discovery §2)")
	} else if u.Scheme == "http" && !c.AllowHTTP && !isLoopback(u.Hostname()) {
		p.Errorf(cfg, "issuer", "http would send codes and tokens in clear text: use https, or allow_http: true if the network path is otherwise protected")
	}
	if c.ClientID == "" {
		p.Errorf(cfg, "", "client_id is required: the gateway's client at the provider")
	}
	if c.RedirectURL != "" {
		if _, err := redirectPath(c.RedirectURL); err != nil {
			p.Errorf(cfg, "redirect_url", "%v", err)
		}
	}
	checkPath := func(field, v string) {
		if v != "" && (!safeTarget(v) || strings.ContainsAny(v, "?#")) {
			p.Errorf(cfg, field, "%q is not a plain absolute path", v)
		}
	}
	checkPath("login_path", c.LoginPath)
	checkPath("logout_path", c.LogoutPath)
	if c.PostLogoutRedirectURL != "" {
		if u, err := url.Parse(c.PostLogoutRedirectURL); err != nil || u.Fragment != "" || (!u.IsAbs() && !safeTarget(c.PostLogoutRedirectURL)) || (u.IsAbs() && u.Scheme != "https" && u.Scheme != "http") {
			p.Errorf(cfg, "post_logout_redirect_url", "%q is not an http(s) URL or a same-site path", c.PostLogoutRedirectURL)
		}
	}
	for i, s := range c.Scopes {
		if s == "" || strings.ContainsAny(s, " \t\r\n\"\\") {
			p.Errorf(cfg, config.Index("scopes", i), "%q is not a scope token (RFC 6749 §3.3)", s)
		}
	}
	if c.CookieName != "" && !cookieNameOK(c.CookieName) {
		p.Errorf(cfg, "cookie_name", "%q is not a cookie name (letters, digits, _ and -)", c.CookieName)
	}
	if v := c.CookieSecret.Value(); v != "" && len(v) < minSecret {
		p.Errorf(cfg, "cookie_secret", "at least %d bytes: the HMAC key protecting the cookies", minSecret)
	}
	for _, d := range []struct {
		field string
		v     config.Duration
	}{{"session_ttl", c.SessionTTL}, {"refresh_before", c.RefreshBefore}, {"login_ttl", c.LoginTTL}, {"timeout", c.Timeout}, {"cache.ttl", c.Cache.TTL}} {
		if d.v < 0 {
			p.Errorf(cfg, d.field, "must not be negative")
		}
	}
	if c.Cache.Size < 0 {
		p.Errorf(cfg, "cache.size", "must not be negative")
	}
	return p.Err()
}

// provision builds the settings of a validated c and reads the CA file.
func (c *Config) provision(cfg *config.Node) (*settings, error) {
	redirect := cmp.Or(c.RedirectURL, defaultRedirect)
	cb, _ := redirectPath(redirect) // validated
	s := &settings{
		issuer:        strings.TrimSuffix(c.Issuer, "/"),
		clientID:      c.ClientID,
		secret:        c.ClientSecret.Value(),
		redirect:      redirect,
		callbackPath:  cb,
		loginPath:     c.LoginPath,
		logoutPath:    cmp.Or(c.LogoutPath, defaultLogout),
		postLogout:    c.PostLogoutRedirectURL,
		cookie:        cmp.Or(c.CookieName, defaultCookie),
		ttl:           cmp.Or(c.SessionTTL.Std(), defaultTTL),
		refreshBefore: cmp.Or(c.RefreshBefore.Std(), defaultRefresh),
		loginTTL:      cmp.Or(c.LoginTTL.Std(), defaultLoginTTL),
		forwardToken:  c.ForwardAccessToken,
		noUserinfo:    c.Userinfo != nil && !*c.Userinfo,
		noCache:       c.Cache.Disabled,
		cacheTTL:      cmp.Or(c.Cache.TTL.Std(), defaultCacheTTL),
		cacheSize:     cmp.Or(c.Cache.Size, defaultCacheSize),
		timeout:       cmp.Or(c.Timeout.Std(), defaultTimeout),
	}
	if c.Issuer != "" && strings.HasSuffix(c.Issuer, "/") {
		// Discovery compares the document's issuer with the configured one
		// exactly: keep what was written.
		s.issuer = c.Issuer
	}
	s.scopes = append([]string{"openid"}, slices.DeleteFunc(slices.Clone(c.Scopes), func(v string) bool { return v == "openid" })...)
	if len(c.Scopes) == 0 {
		s.scopes = []string{"openid", "profile", "email"}
	}
	if v := c.CookieSecret.Value(); v != "" {
		s.cookieKey = []byte(v)
	}
	for _, path := range []string{s.loginPath, s.logoutPath} {
		if path != "" && path == s.callbackPath {
			return nil, cfg.Errorf("redirect_url", "the callback path %s is also the login or logout path", path)
		}
	}
	if s.loginPath != "" && s.loginPath == s.logoutPath {
		return nil, cfg.Errorf("login_path", "the login path is also the logout path")
	}
	if c.CAFile != "" {
		path := cfg.ResolvePath(c.CAFile)
		pem, err := os.ReadFile(path)
		if err != nil {
			return nil, cfg.Errorf("ca_file", "%v", err)
		}
		s.roots = x509.NewCertPool()
		if !s.roots.AppendCertsFromPEM(pem) {
			return nil, cfg.Errorf("ca_file", "no PEM certificate found in %s", path)
		}
	}
	return s, nil
}

// redirectPath returns the path of a redirect_url: an absolute http(s)
// URL without query or fragment, or an absolute path.
func redirectPath(v string) (string, error) {
	u, err := url.Parse(v)
	if err != nil {
		return "", err
	}
	if u.RawQuery != "" || u.Fragment != "" || u.User != nil {
		return "", errInvalid("%q: a redirect URL has no query, fragment or credentials", v)
	}
	if u.IsAbs() {
		if (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
			return "", errInvalid("%q is not an http(s) URL", v)
		}
		if u.Path == "" || !safeTarget(u.Path) {
			return "", errInvalid("%q needs a path, the callback's", v)
		}
		return u.Path, nil
	}
	if !safeTarget(v) {
		return "", errInvalid("%q is neither an absolute URL nor an absolute path", v)
	}
	return v, nil
}

func cookieNameOK(s string) bool {
	for _, c := range s {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '-') {
			return false
		}
	}
	return len(s) <= 64
}

func isLoopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}
