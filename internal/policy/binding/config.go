package binding

import (
	"net/url"

	"github.com/gatehouse/gatehouse/internal/authn/dpop"
	"github.com/gatehouse/gatehouse/internal/config"
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

func checkMode(cfg *config.Node, field string, m *string) error {
	switch *m {
	case "":
		*m = Allowed
	case Required, Allowed, Forbidden:
	default:
		return cfg.Errorf(field, "unknown mode %q (known: required, allowed, forbidden)", *m)
	}
	return nil
}

// decode decodes and validates cfg; hasTrusted says whether the gateway
// trusts any proxy.
func decode(cfg *config.Node, hasTrusted bool) (*Config, error) {
	var c Config
	if err := cfg.Decode(&c); err != nil {
		return nil, err
	}
	if err := checkMode(cfg, "dpop", &c.DPoP); err != nil {
		return nil, err
	}
	if err := checkMode(cfg, "certificate", &c.Certificate); err != nil {
		return nil, err
	}
	p := &c.Proof
	for i, a := range p.Algorithms {
		if err := dpop.CheckAlgorithm(a); err != nil {
			return nil, cfg.Errorf(config.Index("proof.algorithms", i), "%v", err)
		}
	}
	if p.Algorithms != nil && len(p.Algorithms) == 0 {
		return nil, cfg.Errorf("proof.algorithms", "at least one algorithm is required")
	}
	if p.MaxAge < 0 {
		return nil, cfg.Errorf("proof.max_age", "must not be negative")
	}
	if p.FutureSkew < 0 {
		return nil, cfg.Errorf("proof.future_skew", "must not be negative")
	}
	if p.ReplayCacheSize < 0 {
		return nil, cfg.Errorf("proof.replay_cache_size", "must not be negative")
	}
	if p.ReplayCacheSize == 0 {
		p.ReplayCacheSize = dpop.DefaultReplayCacheSize
	}
	if p.PublicOrigin != "" {
		if p.TrustForwarded {
			return nil, cfg.Errorf("proof.trust_forwarded", "public_origin and trust_forwarded exclude each other")
		}
		u, err := url.Parse(p.PublicOrigin)
		if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" || u.User != nil ||
			(u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.Fragment != "" {
			return nil, cfg.Errorf("proof.public_origin", "%q is not an origin like https://api.example.com", p.PublicOrigin)
		}
		p.PublicOrigin = u.Scheme + "://" + u.Host
	}
	if p.TrustForwarded && !hasTrusted {
		return nil, cfg.Errorf("proof.trust_forwarded", "needs the gateway's trusted_proxies: forwarding headers from other peers are never believed")
	}
	return &c, nil
}
