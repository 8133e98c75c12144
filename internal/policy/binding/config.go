package binding

import (
	"cmp"
	"net/http"
	"net/url"

	"github.com/gatehouse/gatehouse/internal/authn/bound"
	"github.com/gatehouse/gatehouse/internal/authn/dpop"
	"github.com/gatehouse/gatehouse/internal/config"
	"github.com/gatehouse/gatehouse/internal/policy"
)

// Config is the binding policy's settings.
//
//	binding:
//	  dpop: required
//	  certificate: allowed
//	  realm: api
//	  proof:
//	    algorithms: [ES256, EdDSA]
//	    max_age: 60s
//	    future_skew: 5s
//	    replay_cache_size: 100000
//	    public_origin: https://api.example.com
type Config struct {
	// DPoP is required (only DPoP-bound tokens, used with a valid proof),
	// allowed (bound tokens must come with a valid proof, unbound bearer
	// tokens pass) or forbidden (DPoP-bound tokens and the DPoP scheme
	// are refused). Default allowed.
	DPoP string `yaml:"dpop"`
	// Certificate is required (only tokens bound to the verified client
	// certificate, or callers authenticated by it), allowed (bound tokens
	// must match the certificate, unbound ones pass) or forbidden
	// (certificate-bound tokens are refused). Default allowed.
	Certificate string `yaml:"certificate"`
	// Realm names the protection space in challenges. Default: the
	// route's realm (its authenticate policy's); set here, it must be
	// the same.
	Realm string `yaml:"realm"`
	// Proof tunes DPoP proof checking.
	Proof ProofConfig `yaml:"proof"`
}

// ProofConfig tunes DPoP proof checking (see dpop.Options).
type ProofConfig struct {
	// Algorithms accepted for proofs. Default ES256, EdDSA, RS256, PS256.
	Algorithms []string `yaml:"algorithms"`
	// MaxAge is how long after its iat a proof is accepted. Default 60s.
	MaxAge config.Duration `yaml:"max_age"`
	// FutureSkew is how far in the future a proof's iat may be. Default 5s.
	FutureSkew config.Duration `yaml:"future_skew"`
	// ReplayCacheSize bounds the used-proof cache. Default 100000.
	ReplayCacheSize int `yaml:"replay_cache_size"`
	// PublicOrigin is the scheme and host clients use to reach the
	// gateway (https://api.example.com), when a proxy in front makes the
	// gateway see another; proofs' htu are checked against it plus the
	// request path. Empty: the gateway's own view (TLS or not, Host).
	PublicOrigin string `yaml:"public_origin"`
	// TrustForwarded takes the scheme and host from X-Forwarded-Proto and
	// X-Forwarded-Host when the TCP peer is one of the gateway's
	// trusted_proxies. Exclusive with PublicOrigin.
	TrustForwarded bool `yaml:"trust_forwarded"`
}

// Modes of Config.DPoP and Config.Certificate.
const (
	Required  = "required"
	Allowed   = "allowed"
	Forbidden = "forbidden"
)

// decode decodes cfg strictly into a Config. New then validates it and
// provisions the policy from it.
func decode(cfg *config.Node) (*Config, error) {
	var c Config
	if err := cfg.Decode(&c); err != nil {
		return nil, err
	}
	return &c, nil
}

// validate checks c, reporting every independent problem at its place;
// hasTrusted says whether the gateway trusts any proxy. It does no I/O.
func (c *Config) validate(cfg *config.Node, hasTrusted bool) error {
	var p config.Problems
	for _, m := range []struct{ field, mode string }{{"dpop", c.DPoP}, {"certificate", c.Certificate}} {
		switch m.mode {
		case "", Required, Allowed, Forbidden:
		default:
			p.Errorf(cfg, m.field, "unknown mode %q (known: required, allowed, forbidden)", m.mode)
		}
	}
	pr := &c.Proof
	for i, a := range pr.Algorithms {
		if err := dpop.CheckAlgorithm(a); err != nil {
			p.Errorf(cfg, config.Index("proof.algorithms", i), "%v", err)
		}
	}
	if pr.Algorithms != nil && len(pr.Algorithms) == 0 {
		p.Errorf(cfg, "proof.algorithms", "at least one algorithm is required")
	}
	if pr.MaxAge < 0 {
		p.Errorf(cfg, "proof.max_age", "must not be negative")
	}
	if pr.FutureSkew < 0 {
		p.Errorf(cfg, "proof.future_skew", "must not be negative")
	}
	if pr.ReplayCacheSize < 0 {
		p.Errorf(cfg, "proof.replay_cache_size", "must not be negative")
	}
	if pr.PublicOrigin != "" {
		if pr.TrustForwarded {
			p.Errorf(cfg, "proof.trust_forwarded", "public_origin and trust_forwarded exclude each other")
		}
		if _, ok := origin(pr.PublicOrigin); !ok {
			p.Errorf(cfg, "proof.public_origin", "%q is not an origin like https://api.example.com", pr.PublicOrigin)
		}
	}
	if pr.TrustForwarded && !hasTrusted {
		p.Errorf(cfg, "proof.trust_forwarded", "needs the gateway's trusted_proxies: forwarding headers from other peers are never believed")
	}
	return p.Err()
}

// origin returns s as scheme://host, and whether s is an http(s) origin.
func origin(s string) (string, bool) {
	u, err := url.Parse(s)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" || u.User != nil ||
		(u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.Fragment != "" {
		return "", false
	}
	return u.Scheme + "://" + u.Host, true
}

// setDefaults fills in the defaults of a validated c: the modes, the
// replay cache's size, the public origin in its canonical form and the
// realm, the route's (its authenticate policy's) when c names none.
func (c *Config) setDefaults(routeRealm string) {
	c.DPoP = cmp.Or(c.DPoP, Allowed)
	c.Certificate = cmp.Or(c.Certificate, Allowed)
	c.Realm = cmp.Or(c.Realm, routeRealm)
	c.Proof.ReplayCacheSize = cmp.Or(c.Proof.ReplayCacheSize, dpop.DefaultReplayCacheSize)
	if c.Proof.PublicOrigin != "" {
		c.Proof.PublicOrigin, _ = origin(c.Proof.PublicOrigin)
	}
}

// provision builds the policy from a validated c: its defaults, and the
// DPoP proof verifier on env's clock (with env's trusted proxies for
// proof.trust_forwarded), unless DPoP is forbidden.
func (c *Config) provision(env *policy.Env) *Binding {
	c.setDefaults(env.Realm())
	b := &Binding{dpopMode: c.DPoP, certMode: c.Certificate, realm: c.Realm}
	if c.DPoP == Forbidden {
		return b
	}
	now := env.Clock()
	opts := dpop.Options{
		Algorithms:   c.Proof.Algorithms,
		MaxAge:       c.Proof.MaxAge.Std(),
		FutureSkew:   c.Proof.FutureSkew.Std(),
		Now:          now,
		ReplayCache:  dpop.NewMemoryReplayCache(c.Proof.ReplayCacheSize, now),
		Realm:        c.Realm,
		MaxProofSize: dpop.DefaultMaxProofSize,
	}
	switch {
	case c.Proof.PublicOrigin != "":
		origin := c.Proof.PublicOrigin
		opts.PublicURL = func(r *http.Request) string { return origin + r.URL.EscapedPath() }
	case c.Proof.TrustForwarded:
		trusted := env.TrustedProxies
		opts.PublicURL = func(r *http.Request) string { return bound.ForwardedURL(r, trusted) }
	}
	b.verifier = dpop.NewVerifier(opts)
	return b
}
