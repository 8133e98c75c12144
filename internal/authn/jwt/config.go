package jwt

import (
	"cmp"
	"crypto/sha256"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/gatehouse/gatehouse/internal/authn/bound"
	"github.com/gatehouse/gatehouse/internal/config"
)

// Config is the jwt authenticator's settings.
//
//	jwt:
//	  issuer: https://idp.example.com
//	  audiences: [api://products]
//	  algorithms: [ES256, RS256]
//	  oidc_discovery: true
//
// See docs/policies/jwt.md for every field.
type Config struct {
	// Issuer is the exact `iss` every token must carry. Required.
	Issuer string `yaml:"issuer"`
	// Audiences lists the accepted audiences: a token's `aud` (a string or
	// an array) must contain at least one of them. Required.
	Audiences []string `yaml:"audiences"`
	// Algorithms is the allow-list of JWS algorithms (RS256/384/512,
	// PS256/384/512, ES256/384/512, EdDSA, Ed25519). Required; "none" and
	// the HMAC algorithms are refused at load.
	Algorithms []string `yaml:"algorithms"`
	// JWKSURL is where the issuer publishes its keys (a JWK Set). Exactly
	// one of JWKSURL, OIDCDiscovery and Keys is required.
	JWKSURL string `yaml:"jwks_url"`
	// OIDCDiscovery fetches {issuer}/.well-known/openid-configuration
	// (in the background from load on), checks that its issuer is Issuer
	// exactly and uses its jwks_uri.
	OIDCDiscovery bool `yaml:"oidc_discovery"`
	// Keys are local key files: PEM public keys or certificates, JWKs or
	// JWK Sets, read at every load. They are never refreshed.
	Keys []KeyConfig `yaml:"keys"`
	// CAFile holds PEM CA certificates the key server's certificate must
	// chain to. Empty: the system roots. Relative to the config file.
	CAFile string `yaml:"ca_file"`
	// AllowHTTP permits plain http key and discovery URLs that are not on
	// loopback. Whoever can change the keys in transit can mint tokens, so
	// use it only where the network path is otherwise protected.
	AllowHTTP bool `yaml:"allow_http"`
	// JWKSRefresh is the interval of the background key refresh, and so
	// the bound on how long a key the issuer withdrew from its JWKS (and
	// every token verified with it, cached or not) is still trusted:
	// jwks_refresh plus at most fetch_timeout. Default 5m, at least 1s.
	JWKSRefresh config.Duration `yaml:"jwks_refresh"`
	// JWKSMaxStale bounds how long the last good key set is trusted while
	// fetches fail (the issuer down or unreachable, so a withdrawal
	// cannot be seen): that long after the last successful fetch its
	// keys are dropped, and tokens refused with 503 jwks_unavailable
	// until a fetch succeeds. Default 1h, or twice jwks_refresh when that
	// is longer; more than jwks_refresh.
	JWKSMaxStale config.Duration `yaml:"jwks_max_stale"`
	// UnknownKIDRefetch is the minimum interval between two key fetches
	// triggered by tokens naming a kid the key set lacks. Default 30s, at
	// least 1s.
	UnknownKIDRefetch config.Duration `yaml:"unknown_kid_refetch"`
	// FetchTimeout bounds one fetch of the discovery document or the key
	// set. Default 5s.
	FetchTimeout config.Duration `yaml:"fetch_timeout"`
	// Leeway is the clock skew allowed on exp, nbf and iat. Absent means
	// 30s; an explicit 0s means none. At most 5m.
	Leeway *config.Duration `yaml:"leeway"`
	// MaxAge, when set, refuses tokens whose iat is older than this (and
	// tokens without iat). Zero means no limit.
	MaxAge config.Duration `yaml:"max_age"`
	// RequiredClaims must be present (and not null) in every token.
	RequiredClaims []string `yaml:"required_claims"`
	// Typ, when set, is the required JOSE `typ` header, compared
	// case-insensitively and with an optional "application/" prefix, so
	// "at+jwt" also accepts "application/at+jwt" (RFC 9068).
	Typ string `yaml:"typ"`
	// MaxTokenBytes refuses larger tokens before any parsing. Default
	// 8KiB, between 256B and 1MiB.
	MaxTokenBytes config.ByteSize `yaml:"max_token_bytes"`
	// From says where the token is read. Absent: the Authorization header,
	// Bearer or DPoP scheme.
	From *FromConfig `yaml:"from"`
	// ScopeClaim names the claim holding the scopes: a space-separated
	// string or an array of strings. Default "scope" ("scp" for Entra ID).
	ScopeClaim string `yaml:"scope_claim"`
	// SubjectClaim names the claim that becomes the principal's subject.
	// Default "sub".
	SubjectClaim string `yaml:"subject_claim"`
	// Cache is the verified-token cache.
	Cache CacheConfig `yaml:"cache"`
	// JWE accepts nested JWTs encrypted to the gateway (see JWEConfig).
	// Absent: an encrypted token is not this authenticator's.
	JWE *JWEConfig `yaml:"jwe"`
	// UnsafeIgnoreTokenBinding stops checking the proof of a bound token
	// (cnf.jkt: a DPoP proof by that key; cnf["x5t#S256"]: that client
	// certificate). Default false: a bound token without its proof is
	// refused. Only for a route whose binding policy checks it instead.
	UnsafeIgnoreTokenBinding bool `yaml:"unsafe_ignore_token_binding"`
	// DPoPPublicOrigin is the scheme://host[:port] clients use when the
	// gateway is behind a proxy, for the DPoP proofs' htu. Default: the
	// forwarded headers of a trusted proxy, else the request's own URL.
	DPoPPublicOrigin string `yaml:"dpop_public_origin"`
}

// KeyConfig is one local key file.
type KeyConfig struct {
	// File is the path of a PEM (PUBLIC KEY, RSA PUBLIC KEY or
	// CERTIFICATE blocks), JWK or JWK Set file, relative to the config
	// file's directory. Private keys are refused. Required.
	File string `yaml:"file"`
	// KID sets the key id of every key in the file, overriding a JWK's
	// own kid. Empty: the JWK's kid, or none for PEM keys.
	KID string `yaml:"kid"`
}

// FromConfig lists where a token may be found. Each source set is read; a
// request carrying a token in more than one of them is refused.
type FromConfig struct {
	// Header is a request header holding the token, with or without a
	// "Bearer " prefix. "Authorization" means the standard Bearer/DPoP
	// parsing.
	Header string `yaml:"header"`
	// Cookie is a cookie holding the token.
	Cookie string `yaml:"cookie"`
	// Query is a URL query parameter holding the token (RFC 6750 §2.3,
	// which discourages it: URLs end up in logs).
	Query string `yaml:"query"`
}

// CacheConfig sizes the verified-token cache.
type CacheConfig struct {
	// Size is the maximum number of cached tokens. Default 10000.
	Size int `yaml:"size"`
	// Disabled turns the cache off: every request verifies its token's
	// signature.
	Disabled bool `yaml:"disabled"`
}

const (
	defaultRefresh       = 5 * time.Minute
	defaultMaxStale      = time.Hour
	defaultRefetch       = 30 * time.Second
	defaultFetchTimeout  = 5 * time.Second
	defaultLeeway        = 30 * time.Second
	maxLeeway            = 5 * time.Minute
	defaultMaxTokenBytes = 8 << 10
	minTokenBytes        = 256
	maxTokenBytesLimit   = 1 << 20
	defaultCacheSize     = 10000
	maxCacheSize         = 10_000_000
)

// settings is a validated Config with defaults applied.
type settings struct {
	ignoreBinding  bool
	dpopOrigin     string
	issuer         string
	audiences      []string
	algs           algSet
	jwksURL        string
	discovery      bool
	refresh        time.Duration
	maxStale       time.Duration
	refetch        time.Duration
	fetchTimeout   time.Duration
	leeway         time.Duration
	maxAge         time.Duration
	requiredClaims []string
	typ            string
	maxTokenBytes  int
	from           *FromConfig
	authzHeader    bool // read the Authorization header
	scopeClaim     string
	subjectClaim   string
	cacheSize      int // 0: no cache
	roots          *x509.CertPool
	caSum          [32]byte // of the CA file, to share key sets only with equal trust
	allowHTTP      bool
	localKeys      []*rawKey
	jwe            *jweSettings
}

// decode builds the authenticator's settings from cfg: the Config decoded
// strictly, validated, provisioned.
func decode(cfg *config.Node) (*settings, error) {
	c := Config{Cache: CacheConfig{Size: defaultCacheSize}}
	if err := cfg.Decode(&c); err != nil {
		return nil, err
	}
	if err := c.validate(cfg); err != nil {
		return nil, err
	}
	return c.provision(cfg)
}

// The durations of c with their defaults, which validate checks and
// provision uses.
func (c *Config) refresh() time.Duration { return cmp.Or(c.JWKSRefresh.Std(), defaultRefresh) }
func (c *Config) refetch() time.Duration { return cmp.Or(c.UnknownKIDRefetch.Std(), defaultRefetch) }
func (c *Config) fetchTimeout() time.Duration {
	return cmp.Or(c.FetchTimeout.Std(), defaultFetchTimeout)
}

func (c *Config) leeway() time.Duration {
	if c.Leeway == nil {
		return defaultLeeway
	}
	return c.Leeway.Std()
}

// validate checks c, reporting every independent problem at its place in
// cfg. It reads no file (key files, the CA file and the JWE keys are
// provision's) and fetches nothing.
func (c *Config) validate(cfg *config.Node) error {
	var p config.Problems
	if c.DPoPPublicOrigin != "" {
		if err := bound.CheckOrigin(c.DPoPPublicOrigin); err != nil {
			p.Errorf(cfg, "dpop_public_origin", "jwt: %v", err)
		}
	}
	if c.Issuer == "" {
		p.Errorf(cfg, "", "issuer is required")
	}
	if len(c.Audiences) == 0 {
		p.Errorf(cfg, "", "audiences is required: list the audiences this route accepts")
	}
	for i, a := range c.Audiences {
		if a == "" {
			p.Errorf(cfg, config.Index("audiences", i), "empty audience")
		}
	}
	if len(c.Algorithms) == 0 {
		p.Errorf(cfg, "", "algorithms is required: list the algorithms the issuer signs with, e.g. [RS256]")
	}
	for i, name := range c.Algorithms {
		if _, err := parseAlg(name); err != nil {
			p.Errorf(cfg, config.Index("algorithms", i), "%v", err)
		}
	}

	sources := 0
	for _, set := range []bool{c.JWKSURL != "", c.OIDCDiscovery, c.Keys != nil} {
		if set {
			sources++
		}
	}
	if sources != 1 {
		p.Errorf(cfg, "", "exactly one of jwks_url, oidc_discovery and keys is required (got %d)", sources)
	}
	if c.JWKSURL != "" {
		if err := checkFetchURL(c.JWKSURL, c.AllowHTTP); err != nil {
			p.Errorf(cfg, "jwks_url", "%v", err)
		}
	}
	if c.OIDCDiscovery && c.Issuer != "" {
		if err := checkFetchURL(c.Issuer, c.AllowHTTP); err != nil {
			p.Errorf(cfg, "issuer", "oidc_discovery needs an http(s) issuer URL: %v", err)
		}
	}
	if c.CAFile != "" && c.Keys != nil {
		p.Errorf(cfg, "ca_file", "ca_file is for key servers; local keys need none")
	}
	if c.Keys != nil && len(c.Keys) == 0 {
		p.Errorf(cfg, "keys", "keys is empty")
	}
	for i, k := range c.Keys {
		if k.File == "" {
			p.Errorf(cfg, config.Index("keys", i), "file is required")
		}
	}
	c.JWE.validate(&p, cfg)

	refresh := c.refresh()
	if refresh < time.Second {
		p.Errorf(cfg, "jwks_refresh", "must be at least 1s, got %v", refresh)
	} else {
		// The bounds below are relative to jwks_refresh: one that is
		// wrong itself says nothing about them.
		if c.JWKSMaxStale != 0 && c.JWKSMaxStale.Std() <= refresh {
			p.Errorf(cfg, "jwks_max_stale", "must be more than jwks_refresh (%v), got %v", refresh, c.JWKSMaxStale.Std())
		}
	}
	if r := c.refetch(); r < time.Second {
		p.Errorf(cfg, "unknown_kid_refetch", "must be at least 1s, got %v", r)
	}
	switch ft := c.fetchTimeout(); {
	case ft > time.Minute:
		p.Errorf(cfg, "fetch_timeout", "must be at most 1m, got %v", ft)
	case refresh >= time.Second && ft > refresh:
		p.Errorf(cfg, "fetch_timeout", "must not exceed jwks_refresh (%v)", refresh)
	}
	if l := c.leeway(); l > maxLeeway {
		p.Errorf(cfg, "leeway", "must be at most %v, got %v", maxLeeway, l)
	}
	for i, name := range c.RequiredClaims {
		if name == "" {
			p.Errorf(cfg, config.Index("required_claims", i), "empty claim name")
		}
	}
	if n := cmp.Or(int(c.MaxTokenBytes), defaultMaxTokenBytes); n < minTokenBytes || n > maxTokenBytesLimit {
		p.Errorf(cfg, "max_token_bytes", "must be between %v and %v, got %v",
			config.ByteSize(minTokenBytes), config.ByteSize(maxTokenBytesLimit), c.MaxTokenBytes)
	}
	if !c.Cache.Disabled && (c.Cache.Size <= 0 || c.Cache.Size > maxCacheSize) {
		p.Errorf(cfg, "cache.size", "must be between 1 and %d, got %d (to turn caching off, set cache.disabled)", maxCacheSize, c.Cache.Size)
	}
	if f := c.From; f != nil {
		if f.Header == "" && f.Cookie == "" && f.Query == "" {
			p.Errorf(cfg, "from", "from needs at least one of header, cookie and query")
		}
		if f.Header != "" && !config.IsToken(f.Header) {
			p.Errorf(cfg, "from.header", "%q is not a valid header name", f.Header)
		}
		if f.Cookie != "" && !config.IsToken(f.Cookie) {
			p.Errorf(cfg, "from.cookie", "%q is not a valid cookie name", f.Cookie)
		}
		if f.Query != "" && !config.IsToken(f.Query) {
			p.Errorf(cfg, "from.query", "%q is not a valid query parameter name", f.Query)
		}
	}
	return p.Err()
}

// provision builds the settings of a validated c: defaults, the CA file
// and the local key files (relative to cfg's file), the JWE keys.
func (c *Config) provision(cfg *config.Node) (*settings, error) {
	s := &settings{
		ignoreBinding:  c.UnsafeIgnoreTokenBinding,
		dpopOrigin:     c.DPoPPublicOrigin,
		issuer:         c.Issuer,
		audiences:      c.Audiences,
		jwksURL:        c.JWKSURL,
		discovery:      c.OIDCDiscovery,
		refresh:        c.refresh(),
		maxStale:       c.JWKSMaxStale.Std(),
		refetch:        c.refetch(),
		fetchTimeout:   c.fetchTimeout(),
		leeway:         c.leeway(),
		maxAge:         c.MaxAge.Std(),
		requiredClaims: c.RequiredClaims,
		typ:            normalizeTyp(c.Typ),
		maxTokenBytes:  cmp.Or(int(c.MaxTokenBytes), defaultMaxTokenBytes),
		scopeClaim:     cmp.Or(c.ScopeClaim, "scope"),
		subjectClaim:   cmp.Or(c.SubjectClaim, "sub"),
		cacheSize:      c.Cache.Size,
		allowHTTP:      c.AllowHTTP,
	}
	if s.maxStale == 0 {
		s.maxStale = max(defaultMaxStale, 2*s.refresh)
	}
	if c.Cache.Disabled {
		s.cacheSize = 0
	}
	for _, name := range c.Algorithms {
		a, _ := parseAlg(name) // validated
		s.algs |= a
	}
	if c.From == nil {
		s.authzHeader = true
	} else {
		f := *c.From
		if strings.EqualFold(f.Header, "Authorization") {
			s.authzHeader = true
			f.Header = ""
		}
		if f.Header != "" || f.Cookie != "" || f.Query != "" {
			s.from = &f
		}
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
		s.caSum = sha256.Sum256(pem)
	}
	for i, k := range c.Keys {
		field := config.Index("keys", i) + ".file"
		keys, err := loadKeyFile(cfg.ResolvePath(k.File), k)
		if err != nil {
			return nil, cfg.Errorf(field, "%s: %v", k.File, err)
		}
		for _, rk := range keys {
			if rk.algs&s.algs == 0 {
				return nil, cfg.Errorf(field, "%s: a %s key cannot verify any of the allowed algorithms (%s)",
					k.File, keyTypeName(rk.key), strings.Join(algNames(s.algs), ", "))
			}
		}
		s.localKeys = append(s.localKeys, keys...)
	}
	var err error
	if s.jwe, err = c.JWE.provision(cfg); err != nil {
		return nil, err
	}
	return s, nil
}

// normalizeTyp lowercases a media type and drops an "application/" prefix,
// the comparison RFC 7515 §4.1.9 asks for.
func normalizeTyp(t string) string {
	t = strings.ToLower(strings.TrimSpace(t))
	return strings.TrimPrefix(t, "application/")
}

// checkFetchURL accepts absolute https URLs without credentials or
// fragments, and http ones to loopback or with allowHTTP: keys fetched in
// clear text can be replaced by anyone on the path.
func checkFetchURL(raw string, allowHTTP bool) error {
	u, err := url.Parse(raw)
	if err != nil {
		return err
	}
	if u.Scheme != "https" && u.Scheme != "http" {
		return fmt.Errorf("%q is not an http or https URL", raw)
	}
	if u.Host == "" {
		return fmt.Errorf("%q has no host", raw)
	}
	if u.User != nil {
		return fmt.Errorf("%q must not carry credentials", raw)
	}
	if u.Fragment != "" {
		return fmt.Errorf("%q must not have a fragment", raw)
	}
	if u.Scheme == "http" && !allowHTTP && !isLoopback(u.Hostname()) {
		return errors.New("http lets anyone on the network path replace the keys: use https, or allow_http: true if the path is otherwise protected")
	}
	return nil
}

func isLoopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}
