package saml

import (
	"cmp"
	"crypto/x509"
	"net/url"
	"strings"
	"time"

	"github.com/gatehouse/gatehouse/internal/config"
	"github.com/gatehouse/gatehouse/internal/pemfile"
)

// Config is the saml policy's settings.
//
//	saml:
//	  audience: urn:gatehouse:products
//	  sts: true                       # trust the embedded STS
//	  issuers:
//	    - {issuer: https://idp.example, certificate_file: idp.pem}
//	  confirmations: [bearer, holder-of-key]
//	  authorize:
//	    - {operation: "{urn:example:products}DeleteProduct", roles: [admin]}
//	    - {operation: "*", roles: [reader, admin]}
//	  validate_with_sts: {url: "https://sts.example/sts", cache: 30s}
//	  wssecurity:                     # messages without an assertion
//	    username_token: {users: [...]}
//
// See docs/policies/saml.md for every field.
type Config struct {
	// Audience is this relying party's name: every AudienceRestriction of
	// an assertion must include it. Required.
	Audience string `yaml:"audience"`
	// STS trusts the embedded STS: its issuer name and certificate as it
	// publishes them in the state store, and its cancellations.
	STS bool `yaml:"sts"`
	// Issuers are further trusted issuers with their signing certificates.
	Issuers []IssuerConfig `yaml:"issuers"`
	// Confirmations are the accepted subject confirmation methods:
	// bearer, holder-of-key, sender-vouches. Default [bearer,
	// holder-of-key].
	Confirmations []string `yaml:"confirmations"`
	// BearerRequiresTLS refuses bearer assertions on connections without
	// TLS. Default true.
	BearerRequiresTLS *bool `yaml:"bearer_requires_tls"`
	// Senders are PEM certificate files of the senders trusted to vouch
	// for subjects (sender-vouches): the message's signer must be one.
	Senders []string `yaml:"senders"`
	// ClockSkew is allowed on assertion times. Default 30s, at most 5m.
	ClockSkew *config.Duration `yaml:"clock_skew"`
	// MaxAge bounds the message Timestamp's age. Default 300s.
	MaxAge config.Duration `yaml:"max_age"`
	// RolesAttribute names the attribute holding the roles. Default
	// "roles".
	RolesAttribute string `yaml:"roles_attribute"`
	// Authorize are per-operation rules, first match wins; an operation
	// no rule matches is refused. Empty: every operation is allowed.
	Authorize []RuleConfig `yaml:"authorize"`
	// ValidateWithSTS also asks an STS (Validate binding) about each
	// assertion, with a short cache.
	ValidateWithSTS *RemoteConfig `yaml:"validate_with_sts"`
	// WSSecurity, when set, checks messages whose Security header holds
	// no SAML assertion: the settings of a wssecurity policy. Absent:
	// such messages are refused.
	WSSecurity *config.Node `yaml:"wssecurity"`
	// KeepSecurityHeader forwards the Security header upstream. Default
	// false.
	KeepSecurityHeader bool `yaml:"keep_security_header"`
	// MaxBodyBytes refuses larger messages. Default 1MiB.
	MaxBodyBytes config.ByteSize `yaml:"max_body_bytes"`
	// Recipients are this endpoint's absolute URLs as clients know them
	// (behind a proxy): a SubjectConfirmationData Recipient must be one.
	// Empty: the URL the request reached the gateway at.
	Recipients []string `yaml:"recipients"`
	// Decryption accepts saml2:EncryptedAssertion addressed to the
	// gateway (see DecryptionConfig). Absent: one is refused.
	Decryption *DecryptionConfig `yaml:"decryption"`
}

// IssuerConfig is one trusted issuer.
type IssuerConfig struct {
	// Issuer is the assertion's saml2:Issuer exactly. Required.
	Issuer string `yaml:"issuer"`
	// CertificateFile holds its PEM signing certificate(s), relative to
	// the config file. Required.
	CertificateFile string `yaml:"certificate_file"`
}

// RuleConfig is one authorization rule.
type RuleConfig struct {
	// Operation is the Body element's QName in Clark notation
	// ("{urn:example}GetProduct"), or "*" for any.
	Operation string `yaml:"operation"`
	// Roles: the caller must have one of them. Empty: any authenticated
	// caller.
	Roles []string `yaml:"roles"`
}

// RemoteConfig is an STS asked with the Validate binding.
type RemoteConfig struct {
	// URL is the STS endpoint. Required; https unless on loopback.
	URL string `yaml:"url"`
	// Cache is how long an answer is kept, by assertion, at most 5m and
	// never past the assertion's expiry. Absent: "invalid" answers are kept
	// 30s and "valid" ones not at all, so that a cancellation at the STS
	// is seen at once (an invalid assertion never becomes valid again).
	// Set, it keeps both, and a cancellation may take that long to reach
	// this route; 0s keeps none.
	Cache *config.Duration `yaml:"cache"`
	// Timeout bounds one call. Default 2s.
	Timeout config.Duration `yaml:"timeout"`
}

type settings struct {
	audience      string
	sts           bool
	issuers       map[string][]*x509.Certificate
	bearer        bool
	hok           bool
	sv            bool
	bearerTLS     bool
	senders       []*x509.Certificate
	skew          time.Duration
	maxAge        time.Duration
	rolesAttr     string
	rules         []rule
	remote        *remote
	keepHeader    bool
	maxBodyBytes  int64
	wssecurityCfg *config.Node
	recipients    []string
	dec           *decryption
}

type rule struct {
	space, local string // local "*" for any
	roles        []string
}

type remote struct {
	url               string
	cache, invalidFor time.Duration // how long valid and invalid answers are kept
	timeout           time.Duration
}

// decode builds the policy's settings from cfg: strict decoding,
// validate, provision.
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

// confirmations returns the accepted confirmation methods, defaulted.
func (c *Config) confirmations() []string {
	if c.Confirmations == nil {
		return []string{"bearer", "holder-of-key"}
	}
	return c.Confirmations
}

// parseOperation splits an authorize rule's operation: "*" or
// {namespace}Name.
func parseOperation(op string) (space, local string, ok bool) {
	if op == "*" {
		return "", "*", true
	}
	if !strings.HasPrefix(op, "{") {
		return "", "", false
	}
	space, local, ok = strings.Cut(op[1:], "}")
	if !ok || local == "" || strings.ContainsAny(local, "{}: ") {
		return "", "", false
	}
	return space, local, true
}

// validate checks c without reading any file, reporting every
// independent problem at its place in cfg.
func (c *Config) validate(cfg *config.Node) error {
	var p config.Problems
	if c.Audience == "" {
		p.Errorf(cfg, "audience", "saml: audience is required (this relying party's name)")
	}
	if c.ClockSkew != nil && (c.ClockSkew.Std() < 0 || c.ClockSkew.Std() > 5*time.Minute) {
		p.Errorf(cfg, "clock_skew", "saml: clock_skew must be between 0s and 5m")
	}
	if c.MaxAge != 0 && (c.MaxAge.Std() < time.Second || c.MaxAge.Std() > time.Hour) {
		p.Errorf(cfg, "max_age", "saml: max_age must be between 1s and 1h")
	}
	if c.MaxBodyBytes != 0 && (c.MaxBodyBytes < 1024 || c.MaxBodyBytes > 64<<20) {
		p.Errorf(cfg, "max_body_bytes", "saml: max_body_bytes must be between 1KiB and 64MiB")
	}
	seen := map[string]bool{}
	for i, ic := range c.Issuers {
		f := config.Index("issuers", i)
		switch {
		case ic.Issuer == "":
			p.Errorf(cfg, f+".issuer", "saml: issuer is required")
		case seen[ic.Issuer]:
			p.Errorf(cfg, f+".issuer", "saml: issuer %q is listed twice", ic.Issuer)
		}
		seen[ic.Issuer] = true
		if ic.CertificateFile == "" {
			p.Errorf(cfg, f+".certificate_file", "saml: certificate_file is required")
		}
	}
	if !c.STS && len(c.Issuers) == 0 {
		p.Errorf(cfg, "", "saml: trust some issuer: sts: true, issuers, or both")
	}
	var sv bool
	for i, m := range c.confirmations() {
		switch m {
		case "bearer", "holder-of-key":
		case "sender-vouches":
			sv = true
		default:
			p.Errorf(cfg, config.Index("confirmations", i), "saml: confirmation %q (want bearer, holder-of-key or sender-vouches)", m)
		}
	}
	if len(c.confirmations()) == 0 {
		p.Errorf(cfg, "confirmations", "saml: at least one confirmation method is required")
	}
	if sv && len(c.Senders) == 0 {
		p.Errorf(cfg, "senders", "saml: sender-vouches needs the senders' certificates")
	}
	for i, f := range c.Senders {
		if f == "" {
			p.Errorf(cfg, config.Index("senders", i), "saml: a sender is a certificate file name")
		}
	}
	for i, rc := range c.Authorize {
		if _, _, ok := parseOperation(rc.Operation); !ok {
			p.Errorf(cfg, config.Index("authorize", i)+".operation", "saml: operation %q is not {namespace}Name or *", rc.Operation)
		}
	}
	for i, r := range c.Recipients {
		u, err := url.Parse(r)
		if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" || u.RawQuery != "" || u.Fragment != "" {
			p.Errorf(cfg, config.Index("recipients", i), "saml: recipient %q must be an absolute http(s) URL without query", r)
		}
	}
	if rc := c.ValidateWithSTS; rc != nil {
		u, err := url.Parse(rc.URL)
		switch {
		case err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "":
			p.Errorf(cfg, "validate_with_sts.url", "saml: url %q must be an absolute http(s) URL", rc.URL)
		case u.Scheme == "http" && !isLoopback(u.Hostname()):
			p.Errorf(cfg, "validate_with_sts.url", "saml: an http STS URL is allowed only on loopback")
		}
		if rc.Cache != nil && (rc.Cache.Std() < 0 || rc.Cache.Std() > 5*time.Minute) {
			p.Errorf(cfg, "validate_with_sts.cache", "saml: cache must be between 0s and 5m")
		}
		if rc.Timeout != 0 && (rc.Timeout.Std() < 100*time.Millisecond || rc.Timeout.Std() > 30*time.Second) {
			p.Errorf(cfg, "validate_with_sts.timeout", "saml: timeout must be between 100ms and 30s")
		}
	}
	return p.Err()
}

// provision builds the settings of a validated c: defaults, and the
// certificate files read (relative to cfg's file). Every unreadable file
// is reported, at its place.
func (c *Config) provision(cfg *config.Node) (*settings, error) {
	s := &settings{
		audience:      c.Audience,
		sts:           c.STS,
		issuers:       map[string][]*x509.Certificate{},
		bearerTLS:     c.BearerRequiresTLS == nil || *c.BearerRequiresTLS,
		skew:          30 * time.Second,
		maxAge:        cmp.Or(c.MaxAge.Std(), 300*time.Second),
		rolesAttr:     cmp.Or(c.RolesAttribute, "roles"),
		keepHeader:    c.KeepSecurityHeader,
		maxBodyBytes:  cmp.Or(int64(c.MaxBodyBytes), 1<<20),
		wssecurityCfg: c.WSSecurity,
		recipients:    c.Recipients,
	}
	if c.ClockSkew != nil {
		s.skew = c.ClockSkew.Std()
	}
	var p config.Problems
	for i, ic := range c.Issuers {
		certs, err := pemfile.Certificates(cfg.ResolvePath(ic.CertificateFile))
		if err != nil {
			p.Errorf(cfg, config.Index("issuers", i)+".certificate_file", "%v", err)
		}
		s.issuers[ic.Issuer] = certs
	}
	for _, m := range c.confirmations() {
		switch m {
		case "bearer":
			s.bearer = true
		case "holder-of-key":
			s.hok = true
		case "sender-vouches":
			s.sv = true
		}
	}
	for i, f := range c.Senders {
		certs, err := pemfile.Certificates(cfg.ResolvePath(f))
		if err != nil {
			p.Errorf(cfg, config.Index("senders", i), "%v", err)
		}
		s.senders = append(s.senders, certs...)
	}
	for _, rc := range c.Authorize {
		space, local, _ := parseOperation(rc.Operation) // validated
		s.rules = append(s.rules, rule{space: space, local: local, roles: rc.Roles})
	}
	if rc := c.ValidateWithSTS; rc != nil {
		r := &remote{url: rc.URL, cache: 0, invalidFor: 30 * time.Second, timeout: cmp.Or(rc.Timeout.Std(), 2*time.Second)}
		if rc.Cache != nil {
			r.cache = rc.Cache.Std()
			r.invalidFor = r.cache
		}
		s.remote = r
	}
	if err := p.Err(); err != nil {
		return nil, err
	}
	var err error
	if s.dec, err = decodeDecryption(cfg, c.Decryption, s.maxBodyBytes); err != nil {
		return nil, err
	}
	return s, nil
}

func isLoopback(h string) bool { return h == "localhost" || h == "127.0.0.1" || h == "::1" }
