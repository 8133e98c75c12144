package identity

import (
	"cmp"
	"errors"
	"maps"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/gatehouse/gatehouse/internal/config"
	"github.com/gatehouse/gatehouse/internal/keys"
)

// Config is the identity policy's settings. Headers, Strip and JWT are each
// optional; at least one is required.
//
//	identity:
//	  headers:
//	    subject: X-Auth-Subject
//	    scopes: X-Auth-Scopes
//	    claims: {email: X-Auth-Email}
//	  strip: [X-User, X-Roles]
//	  jwt:
//	    issuer: https://gatehouse.internal
//	    audience: products-api
//	    key_file: identity.pem
type Config struct {
	// Headers names the request headers set from the principal.
	Headers HeadersConfig `yaml:"headers"`
	// Strip lists more headers removed from every incoming request.
	Strip []string `yaml:"strip"`
	// JWT, when given, mints a signed token for the upstream.
	JWT *JWTConfig `yaml:"jwt"`
}

// HeadersConfig maps principal fields to request header names. An empty
// name means the field is not sent.
type HeadersConfig struct {
	// Subject receives Principal.Subject.
	Subject string `yaml:"subject"`
	// ClientID receives Principal.ClientID.
	ClientID string `yaml:"client_id"`
	// Consumer receives Principal.Consumer.
	Consumer string `yaml:"consumer"`
	// Scopes receives Principal.Scopes, space-separated.
	Scopes string `yaml:"scopes"`
	// Method receives Principal.Method ("jwt", "apikey", "mtls", ...).
	Method string `yaml:"method"`
	// Claims maps a claim name to a header name. Strings, numbers and
	// booleans are sent as text, a list of them joined by ",".
	Claims map[string]string `yaml:"claims"`
}

// JWTConfig configures the token minted for the upstream.
type JWTConfig struct {
	// Header carries the token. Default X-Gatehouse-Identity.
	// "Authorization" sends "Bearer <jwt>" in place of the client's
	// credential, and removes the client's DPoP header.
	Header string `yaml:"header"`
	// Issuer is the "iss" claim. Required.
	Issuer string `yaml:"issuer"`
	// Audience is the "aud" claim: the upstream. Required.
	Audience string `yaml:"audience"`
	// TTL is the token lifetime, whole seconds. Default 60s, at most 1h.
	TTL config.Duration `yaml:"ttl"`
	// Algorithm is the signing algorithm (see keys.Algorithms). Default:
	// the JWK's "alg", else from the key: ES256/384/512 by curve, EdDSA,
	// RS256 for RSA.
	Algorithm string `yaml:"algorithm"`
	// KeyFile is the private key, PEM or JWK; a relative path is relative
	// to the config file's directory. Required.
	KeyFile string `yaml:"key_file"`
	// KID is the key id. Default: the JWK's "kid", else its RFC 7638
	// thumbprint.
	KID string `yaml:"kid"`
	// Claims lists principal claims copied into the token.
	Claims []string `yaml:"claims"`
	// CacheSize bounds the number of tokens kept for reuse. Default 10000.
	CacheSize int `yaml:"cache_size"`
}

// Defaults and limits.
const (
	DefaultJWTHeader = "X-Gatehouse-Identity"
	DefaultTTL       = 60 * time.Second
	MaxTTL           = time.Hour
	DefaultCacheSize = 10000
	// MaxCacheSize keeps a typo from reserving gigabytes.
	MaxCacheSize = 1_000_000
)

// MethodClaim is the claim of the minted token that says how the caller
// was authenticated (Principal.Method: "jwt", "apikey", "mtls", ...).
const MethodClaim = "auth_method"

// reservedClaims are set by the policy itself; copying a principal claim
// over one would let a token issuer upstream of us (or an API key's
// metadata) choose the gateway token's issuer, audience or expiry.
var reservedClaims = []string{"iss", "sub", "aud", "exp", "nbf", "iat", "jti", "client_id", "scope", MethodClaim, "cnf"}

// field is a principal field a header is set from.
type field uint8

const (
	fSubject field = iota
	fClientID
	fConsumer
	fScopes
	fMethod
	fClaim
)

// setter sets one header from one principal field.
type setter struct {
	key   string // canonical header name
	field field
	claim string // for fClaim
	at    string // config path, for logs
}

// jwtSettings is a validated JWTConfig.
type jwtSettings struct {
	header    string // canonical
	bearer    bool
	issuer    string
	audience  string
	ttl       time.Duration
	key       *keys.Key
	claims    []string
	cacheSize int
}

// compiled is a validated Config.
type compiled struct {
	set     []setter
	protect []string // canonical names removed from every request
	jwt     *jwtSettings
}

// decode builds the policy's settings from cfg: the Config decoded
// strictly, validated, provisioned (the signing key read last, only for a
// valid config).
func decode(cfg *config.Node) (*compiled, error) {
	var c Config
	if err := cfg.Decode(&c); err != nil {
		return nil, err
	}
	// `jwt:` with no value decodes to a nil JWT; it was meant to mint,
	// so it is checked like `jwt: {}` rather than silently ignored.
	var present struct {
		Headers *config.Node `yaml:"headers"`
		Strip   *config.Node `yaml:"strip"`
		JWT     *config.Node `yaml:"jwt"`
	}
	if err := cfg.Decode(&present); err != nil {
		return nil, err
	}
	if c.JWT == nil && present.JWT != nil {
		c.JWT = &JWTConfig{}
	}
	if err := c.validate(cfg); err != nil {
		return nil, err
	}
	return c.provision(cfg)
}

// A headerUse is a header name one setting of a Config claims: a header
// set from the principal, the minted token's header or a stripped one.
type headerUse struct {
	at, name string
	set      bool   // set from the principal (headers.*)
	field    field  // for set
	claim    string // for set and fClaim
}

// uses lists the header names c claims, in the order their clashes are
// told: headers, then jwt.header, then strip.
func (c *Config) uses() []headerUse {
	h := c.Headers
	var us []headerUse
	for _, f := range []struct {
		at    string
		name  string
		field field
	}{
		{"headers.subject", h.Subject, fSubject},
		{"headers.client_id", h.ClientID, fClientID},
		{"headers.consumer", h.Consumer, fConsumer},
		{"headers.scopes", h.Scopes, fScopes},
		{"headers.method", h.Method, fMethod},
	} {
		if f.name != "" {
			us = append(us, headerUse{at: f.at, name: f.name, set: true, field: f.field})
		}
	}
	for _, name := range slices.Sorted(maps.Keys(h.Claims)) {
		us = append(us, headerUse{at: "headers.claims" + config.KeySeg(name), name: h.Claims[name], set: true, field: fClaim, claim: name})
	}
	if c.JWT != nil {
		us = append(us, headerUse{at: "jwt.header", name: cmp.Or(c.JWT.Header, DefaultJWTHeader)})
	}
	for i, name := range c.Strip {
		us = append(us, headerUse{at: config.Index("strip", i), name: name})
	}
	return us
}

// validate checks c, recording every problem at its place: header names,
// a name claimed by two settings (both places named), the jwt settings.
// It does not read the key file.
func (c *Config) validate(cfg *config.Node) error {
	var p config.Problems
	// owner records which setting claimed each canonical name, so a
	// clash names both places.
	owner := map[string]string{}
	for _, u := range c.uses() {
		if u.field == fClaim && u.claim == "" {
			p.Errorf(cfg, u.at, "a claim name must not be empty")
			continue
		}
		key, ok := checkName(&p, cfg, u.at, u.name)
		if !ok {
			continue
		}
		if prev, ok := owner[key]; ok {
			if strings.HasPrefix(u.at, "strip") && !strings.HasPrefix(prev, "strip") {
				p.Errorf(cfg, u.at, "%s is set by %s and so stripped already", key, prev)
			} else {
				p.Errorf(cfg, u.at, "%s is already used by %s", key, prev)
			}
			continue
		}
		owner[key] = u.at
	}
	if c.JWT != nil {
		c.JWT.validate(&p, cfg)
	}
	if p.Len() == 0 && len(owner) == 0 {
		p.Errorf(cfg, "", "identity needs headers, strip or jwt")
	}
	return p.Err()
}

// validate records the problems of the jwt settings c; the header name is
// checked with the others (Config.validate).
func (c *JWTConfig) validate(p *config.Problems, cfg *config.Node) {
	if c.Issuer == "" {
		p.Errorf(cfg, "jwt", "issuer is required (the iss claim the upstream checks)")
	}
	checkText(p, cfg, "jwt.issuer", c.Issuer)
	if c.Audience == "" {
		p.Errorf(cfg, "jwt", "audience is required (the aud claim naming the upstream)")
	}
	checkText(p, cfg, "jwt.audience", c.Audience)
	switch ttl := c.TTL.Std(); {
	case ttl == 0:
	case ttl%time.Second != 0:
		p.Errorf(cfg, "jwt.ttl", "must be whole seconds (JWT times are in seconds), got %s", ttl)
	case ttl > MaxTTL:
		p.Errorf(cfg, "jwt.ttl", "must be at most %s, got %s", MaxTTL, ttl)
	}
	if c.CacheSize < 0 || c.CacheSize > MaxCacheSize {
		p.Errorf(cfg, "jwt.cache_size", "must be between 1 and %d, got %d", MaxCacheSize, c.CacheSize)
	}
	if c.Algorithm != "" {
		if _, err := keys.ParseAlgorithm(c.Algorithm); err != nil {
			p.Errorf(cfg, "jwt.algorithm", "%v", err)
		}
	}
	checkText(p, cfg, "jwt.kid", c.KID)
	seen := map[string]bool{}
	for i, cl := range c.Claims {
		at := config.Index("jwt.claims", i)
		switch {
		case cl == "":
			p.Errorf(cfg, at, "a claim name must not be empty")
		case slices.Contains(reservedClaims, cl):
			p.Errorf(cfg, at, "%q is set by the gateway and cannot be copied from the principal (reserved: %s)", cl, strings.Join(reservedClaims, ", "))
		case seen[cl]:
			p.Errorf(cfg, at, "%q is listed twice", cl)
		default:
			seen[cl] = true
		}
	}
	if c.KeyFile == "" {
		p.Errorf(cfg, "jwt", "key_file is required (make one with `gatehouse keys generate --alg ES256 --out FILE`)")
	}
}

// provision builds the settings of a validated c: the headers to set and
// to protect (canonical names), the jwt settings with their defaults and
// the signing key, read from its file (relative to cfg's).
func (c *Config) provision(cfg *config.Node) (*compiled, error) {
	var out compiled
	for _, u := range c.uses() {
		key := http.CanonicalHeaderKey(u.name)
		out.protect = append(out.protect, key)
		if u.set {
			out.set = append(out.set, setter{key: key, field: u.field, claim: u.claim, at: u.at})
		}
	}
	if c.JWT == nil {
		return &out, nil
	}
	j, err := c.JWT.provision(cfg)
	if err != nil {
		return nil, err
	}
	out.jwt = j
	if j.bearer && !slices.Contains(out.protect, "Dpop") {
		// The client's DPoP proof is bound to the client's token, which
		// the upstream no longer receives: it means nothing there, and
		// forwarding it would only leak a replayable proof.
		out.protect = append(out.protect, "Dpop")
	}
	return &out, nil
}

// provision returns the settings of validated jwt settings c with their
// defaults, and reads the signing key.
func (c *JWTConfig) provision(cfg *config.Node) (*jwtSettings, error) {
	j := &jwtSettings{
		header:    http.CanonicalHeaderKey(cmp.Or(c.Header, DefaultJWTHeader)),
		issuer:    c.Issuer,
		audience:  c.Audience,
		ttl:       cmp.Or(c.TTL.Std(), DefaultTTL),
		cacheSize: cmp.Or(c.CacheSize, DefaultCacheSize),
		claims:    c.Claims,
	}
	j.bearer = j.header == "Authorization"
	var err error
	if j.key, err = keys.Load(cfg.ResolvePath(c.KeyFile), c.Algorithm, c.KID); err != nil {
		at := "jwt.key_file"
		if errors.Is(err, keys.ErrAlgorithm) {
			at = "jwt.algorithm"
		}
		return nil, cfg.Errorf(at, "%v", err)
	}
	return j, nil
}

// managed reports whether the canonical header key belongs to the gateway:
// framing and hop-by-hop headers (editing them could desynchronise message
// framing), and the forwarding headers and request id the gateway and the
// proxy rebuild themselves.
func managed(key string) bool {
	switch key {
	case "Connection", "Transfer-Encoding", "Content-Length", "Host",
		"Upgrade", "Keep-Alive", "Te", "Trailer",
		"Forwarded", "X-Forwarded-For", "X-Forwarded-Host", "X-Forwarded-Proto",
		"X-Request-Id":
		return true
	}
	return strings.HasPrefix(key, "Proxy-")
}

// checkName records a problem with a header name and returns its
// canonical form, and whether it is acceptable.
func checkName(p *config.Problems, cfg *config.Node, at, name string) (string, bool) {
	if !config.IsToken(name) {
		p.Errorf(cfg, at, "invalid header name %q (want an RFC 9110 token)", name)
		return "", false
	}
	key := http.CanonicalHeaderKey(name)
	if managed(key) {
		p.Errorf(cfg, at, "%s is managed by the gateway and cannot be set or stripped here", key)
		return "", false
	}
	return key, true
}

// checkText records control characters in a configured value that ends
// up in a token or header.
func checkText(p *config.Problems, cfg *config.Node, at, v string) {
	if i := unsafeAt(v); i >= 0 {
		p.Errorf(cfg, at, "contains control character %q at byte %d", v[i], i)
	}
}
