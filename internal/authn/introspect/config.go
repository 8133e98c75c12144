package introspect

import (
	"crypto/x509"
	"encoding/base64"
	"net"
	"net/url"
	"os"
	"time"

	"github.com/gatehouse/gatehouse/internal/authn/bound"
	"github.com/gatehouse/gatehouse/internal/config"
)

// Config is the introspect authenticator's settings.
//
//	introspect:
//	  endpoint: https://idp.example/oauth2/introspect
//	  client_id: gateway
//	  client_secret: {env: GW_INTROSPECT_SECRET}
//	  auth_method: client_secret_basic
//	  ca_file: idp-ca.pem
//	  timeout: 2s
//	  cache: {ttl: 60s, negative_ttl: 10s, size: 10000}
//	  audiences: [https://api.example]
//	  issuer: https://idp.example
//	  token_type_hint: access_token
//	  scope_field: scope
//	  leeway: 0s
type Config struct {
	// Endpoint is the RFC 7662 introspection endpoint. Required; https,
	// or http to a loopback address, or http anywhere with AllowHTTP.
	Endpoint string `yaml:"endpoint"`
	// AllowHTTP permits a plain http endpoint that is not on loopback (a
	// sidecar or a service mesh that encrypts for us). Tokens and the
	// client secret cross the network in clear text otherwise.
	AllowHTTP bool `yaml:"allow_http"`
	// ClientID and ClientSecret authenticate the gateway to the endpoint.
	// Both required.
	ClientID     string        `yaml:"client_id"`
	ClientSecret config.Secret `yaml:"client_secret"`
	// AuthMethod is how the client authenticates (RFC 6749 §2.3.1):
	// client_secret_basic (the default; HTTP Basic) or client_secret_post
	// (form fields).
	AuthMethod string `yaml:"auth_method"`
	// CAFile holds PEM CA certificates the endpoint's certificate must
	// chain to. Empty: the system roots. A relative path is relative to the
	// config file's directory.
	CAFile string `yaml:"ca_file"`
	// Timeout bounds one introspection, connection included. Default 2s.
	Timeout config.Duration `yaml:"timeout"`
	// Cache holds the answers for repeated tokens.
	Cache CacheConfig `yaml:"cache"`
	// Audiences, when not empty, are the accepted audiences: the response's
	// aud (a string or a list) must contain one.
	Audiences []string `yaml:"audiences"`
	// Issuer, when set, must equal the response's iss.
	Issuer string `yaml:"issuer"`
	// TokenTypeHint is sent as token_type_hint. Default "access_token".
	TokenTypeHint string `yaml:"token_type_hint"`
	// ScopeField names the response member holding the scopes: a
	// space-separated string (RFC 7662) or a list of strings. Default
	// "scope".
	ScopeField string `yaml:"scope_field"`
	// Leeway is the clock skew allowed with the authorization server when
	// checking exp and nbf. Default 0; at most 5m.
	Leeway config.Duration `yaml:"leeway"`
	// UnsafeIgnoreTokenBinding stops checking the proof of a bound token
	// (an answer's cnf.jkt: a DPoP proof by that key; cnf["x5t#S256"]:
	// that client certificate). Default false: a bound token without its
	// proof is refused. Only for a route whose binding policy checks it.
	UnsafeIgnoreTokenBinding bool `yaml:"unsafe_ignore_token_binding"`
	// DPoPPublicOrigin is the scheme://host[:port] clients use when the
	// gateway is behind a proxy, for the DPoP proofs' htu. Default: the
	// forwarded headers of a trusted proxy, else the request's own URL.
	DPoPPublicOrigin string `yaml:"dpop_public_origin"`
}

// CacheConfig is the introspection cache's settings.
type CacheConfig struct {
	// TTL bounds how long an active token's answer is reused; it is also
	// never reused past the token's exp. Default 60s. It is the longest a
	// token revoked at the authorization server is still accepted.
	TTL config.Duration `yaml:"ttl"`
	// NegativeTTL is how long an inactive or refused token's answer is
	// reused. Default 10s.
	NegativeTTL config.Duration `yaml:"negative_ttl"`
	// Size bounds the number of tokens each of the positive and negative
	// caches holds. Default 10000.
	Size int `yaml:"size"`
	// Disabled turns caching off: every request is introspected.
	Disabled bool `yaml:"disabled"`
}

const (
	defaultTimeout     = 2 * time.Second
	defaultTTL         = 60 * time.Second
	defaultNegativeTTL = 10 * time.Second
	defaultSize        = 10000
	maxLeeway          = 5 * time.Minute
	methodBasic        = "client_secret_basic"
	methodPost         = "client_secret_post"
)

// parsed is a validated Config.
type parsed struct {
	ignoreBinding bool
	dpopOrigin    string
	endpoint      string
	clientID      string
	secret        string
	basic         string // the Authorization header for client_secret_basic; "" for post
	roots         *x509.CertPool
	timeout       time.Duration
	ttl, negTTL   time.Duration
	size          int
	noCache       bool
	audiences     []string
	issuer        string
	hint          string
	scopeField    string
	leeway        time.Duration
}

func decode(cfg *config.Node) (*parsed, error) {
	c := Config{
		AuthMethod:    methodBasic,
		Timeout:       config.Duration(defaultTimeout),
		Cache:         CacheConfig{TTL: config.Duration(defaultTTL), NegativeTTL: config.Duration(defaultNegativeTTL), Size: defaultSize},
		TokenTypeHint: "access_token",
		ScopeField:    "scope",
	}
	if err := cfg.Decode(&c); err != nil {
		return nil, err
	}
	if err := c.validate(cfg); err != nil {
		return nil, err
	}
	return c.provision(cfg)
}

// validate checks a defaulted c, reporting every independent problem at
// its place. It does not read the CA file.
func (c *Config) validate(cfg *config.Node) error {
	var p config.Problems
	if c.Endpoint == "" {
		p.Errorf(cfg, "", "endpoint is required")
	} else if u, err := url.Parse(c.Endpoint); err != nil || u.Host == "" || (u.Scheme != "https" && u.Scheme != "http") {
		p.Errorf(cfg, "endpoint", "%q is not an http(s) URL", c.Endpoint)
	} else if u.User != nil {
		p.Errorf(cfg, "endpoint", "credentials in the URL are not allowed: use client_id and client_secret")
	} else if u.Fragment != "" {
		p.Errorf(cfg, "endpoint", "an endpoint has no fragment")
	} else if u.Scheme == "http" && !c.AllowHTTP && !isLoopback(u.Hostname()) {
		p.Errorf(cfg, "endpoint", "http would send tokens and the client secret in clear text: use https, or allow_http: true if the network path is otherwise protected")
	}
	if c.ClientID == "" {
		p.Errorf(cfg, "", "client_id is required: the introspection endpoint authenticates its callers (RFC 7662 §2.1)")
	}
	if c.ClientSecret.Value() == "" {
		p.Errorf(cfg, "", "client_secret is required")
	}
	if c.DPoPPublicOrigin != "" {
		if err := bound.CheckOrigin(c.DPoPPublicOrigin); err != nil {
			p.Errorf(cfg, "dpop_public_origin", "%v", err)
		}
	}
	switch c.AuthMethod {
	case methodBasic, methodPost:
	default:
		p.Errorf(cfg, "auth_method", "unknown auth_method %q (want %s or %s)", c.AuthMethod, methodBasic, methodPost)
	}
	if c.Timeout <= 0 {
		p.Errorf(cfg, "timeout", "must be more than 0")
	}
	if !c.Cache.Disabled {
		if c.Cache.TTL <= 0 {
			p.Errorf(cfg, "cache.ttl", "must be more than 0 (to turn caching off, set cache.disabled)")
		}
		if c.Cache.NegativeTTL <= 0 {
			p.Errorf(cfg, "cache.negative_ttl", "must be more than 0 (to turn caching off, set cache.disabled)")
		}
		if c.Cache.Size <= 0 {
			p.Errorf(cfg, "cache.size", "must be more than 0 (to turn caching off, set cache.disabled)")
		}
	}
	for i, a := range c.Audiences {
		if a == "" {
			p.Errorf(cfg, config.Index("audiences", i), "an audience is not empty")
		}
	}
	if c.TokenTypeHint == "" {
		p.Errorf(cfg, "token_type_hint", "must not be empty")
	}
	if c.ScopeField == "" {
		p.Errorf(cfg, "scope_field", "must not be empty")
	}
	if c.Leeway.Std() > maxLeeway {
		p.Errorf(cfg, "leeway", "at most %v: a larger skew means a broken clock", maxLeeway)
	}
	return p.Err()
}

// provision builds the settings of a validated c and reads the CA file
// (relative to cfg's file).
func (c *Config) provision(cfg *config.Node) (*parsed, error) {
	u, _ := url.Parse(c.Endpoint) // validated
	p := &parsed{
		ignoreBinding: c.UnsafeIgnoreTokenBinding,
		dpopOrigin:    c.DPoPPublicOrigin,
		endpoint:      u.String(),
		clientID:      c.ClientID,
		secret:        c.ClientSecret.Value(),
		timeout:       c.Timeout.Std(),
		ttl:           c.Cache.TTL.Std(),
		negTTL:        c.Cache.NegativeTTL.Std(),
		size:          c.Cache.Size,
		noCache:       c.Cache.Disabled,
		audiences:     c.Audiences,
		issuer:        c.Issuer,
		hint:          c.TokenTypeHint,
		scopeField:    c.ScopeField,
		leeway:        c.Leeway.Std(),
	}
	if c.AuthMethod == methodBasic {
		// RFC 6749 §2.3.1: id and secret are form-urlencoded before they
		// are joined, so a ':' in either cannot shift the split.
		p.basic = "Basic " + base64.StdEncoding.EncodeToString(
			[]byte(url.QueryEscape(c.ClientID)+":"+url.QueryEscape(p.secret)))
	}
	if c.CAFile != "" {
		path := cfg.ResolvePath(c.CAFile)
		pem, err := os.ReadFile(path)
		if err != nil {
			return nil, cfg.Errorf("ca_file", "%v", err)
		}
		p.roots = x509.NewCertPool()
		if !p.roots.AppendCertsFromPEM(pem) {
			return nil, cfg.Errorf("ca_file", "no PEM certificate found in %s", path)
		}
	}
	return p, nil
}

func isLoopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}
