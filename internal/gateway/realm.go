package gateway

import (
	"github.com/gatehouse/gatehouse/internal/config"
	"github.com/gatehouse/gatehouse/internal/policy"
)

// routeRealm returns the one realm a route's WWW-Authenticate challenges
// name, on its 401s and its 403s alike (authenticate, scopes, binding,
// an expr refusing with insufficient_scope): the `realm` its policies set
// (usually once, on authenticate), or policy.DefaultRealm when none does.
// Policies that set one must agree: two realms on one route would send a
// client that got a token for one protection space to another. The
// error names the second realm's file, line and field.
func routeRealm(rc config.Route) (string, error) {
	realm, first := "", config.PolicySpec{}
	for _, spec := range rc.Policies {
		if !spec.Config.MayHaveKey("realm") {
			continue // decoding it would find no realm either (issue 23: a tenth of a load's CPU)
		}
		var m map[string]any
		if spec.Config.Decode(&m) != nil {
			continue // not a mapping: it has no realm (its factory says what is wrong)
		}
		r, ok := m["realm"].(string)
		if !ok || r == "" {
			continue
		}
		if realm == "" {
			realm, first = r, spec
			continue
		}
		if r != realm {
			return "", spec.Config.Errorf("realm", "the route's realm is already %q (%s at line %d): a route names one realm; set it once, on its authenticate policy, and the others use it",
				realm, first.Type, first.Config.Line())
		}
	}
	if realm == "" {
		realm = policy.DefaultRealm
	}
	return realm, nil
}
