package authenticate

import (
	"strings"

	"github.com/gatehouse/gatehouse/internal/authn"
	"github.com/gatehouse/gatehouse/internal/config"
	"github.com/gatehouse/gatehouse/internal/policy"
)

// Config is the policy's settings.
type Config struct {
	// Realm names the route's protection space in WWW-Authenticate
	// challenges: of this policy's 401s and of every other policy's
	// challenges on the route (scopes, binding, expr), which use it
	// unless they set the same. Default "gatehouse".
	Realm string `yaml:"realm"`
	// Optional lets a request without any credential through as anonymous
	// (Principal stays nil). A bad credential is refused all the same, and
	// so is one that no authenticator recognises.
	Optional bool `yaml:"optional"`
	// With lists the authenticators, each a one-key mapping from its type
	// to its settings. The first that recognises the request decides.
	With []config.PolicySpec `yaml:"with"`
}

// decode decodes cfg strictly into a Config.
func decode(cfg *config.Node) (*Config, error) {
	var c Config
	if err := cfg.Decode(&c); err != nil {
		return nil, err
	}
	return &c, nil
}

// validate checks c without building any authenticator, reporting every
// independent problem at its place in cfg: a missing list, a realm that
// cannot be sent in a challenge, each authenticator type that reg does not
// know.
func (c *Config) validate(cfg *config.Node, reg *authn.Registry) error {
	var p config.Problems
	if strings.ContainsFunc(c.Realm, func(r rune) bool { return r < 0x20 || r == 0x7f }) {
		// authn.Challenge would drop them: the realm clients see would
		// not be the one configured.
		p.Errorf(cfg, "realm", "realm %q has control characters", c.Realm)
	}
	if len(c.With) == 0 {
		p.Errorf(cfg, "with", "at least one authenticator is required (known: %v)", reg.Names())
	}
	for _, spec := range c.With {
		if _, err := reg.Lookup(spec.Type); err != nil {
			p.Add(spec.Config.Errorf("", "%v", err))
		}
	}
	return p.Err()
}

// provision builds the authenticators of a validated c, in order. Every
// authenticator's config problems are reported together; on any, the
// ones already built are closed.
func (c *Config) provision(env *policy.Env, reg *authn.Registry) (*Policy, error) {
	realm := c.Realm
	if realm == "" {
		// The route's one realm (policy.Route.Realm), which the
		// gateway reads from this very field when it is set.
		realm = env.Route.ChallengeRealm()
	}
	p := &Policy{realm: realm, optional: c.Optional}
	aenv := &authn.Env{Env: env, Realm: realm}
	var probs config.Problems
	for _, spec := range c.With {
		a, err := reg.Build(spec, aenv)
		if probs.Add(err) {
			continue
		}
		p.auths = append(p.auths, a)
		p.names = append(p.names, spec.Type)
		if ch := a.Challenge(); ch != "" {
			p.challenges = append(p.challenges, ch)
		}
	}
	if err := probs.Err(); err != nil {
		p.Close()
		return nil, err
	}
	return p, nil
}
