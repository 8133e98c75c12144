// Package builtin lists the policy types Gatehouse ships, in one explicit,
// ordered list: adding a policy type means adding a line here.
package builtin

import (
	"github.com/gatehouse/gatehouse/internal/authn"
	"github.com/gatehouse/gatehouse/internal/authn/apikey"
	"github.com/gatehouse/gatehouse/internal/authn/introspect"
	"github.com/gatehouse/gatehouse/internal/authn/jwt"
	"github.com/gatehouse/gatehouse/internal/authn/mtls"
	"github.com/gatehouse/gatehouse/internal/authn/session"
	"github.com/gatehouse/gatehouse/internal/policy"
	"github.com/gatehouse/gatehouse/internal/policy/authenticate"
	"github.com/gatehouse/gatehouse/internal/policy/binding"
	"github.com/gatehouse/gatehouse/internal/policy/dlp"
	"github.com/gatehouse/gatehouse/internal/policy/expr"
	"github.com/gatehouse/gatehouse/internal/policy/headers"
	"github.com/gatehouse/gatehouse/internal/policy/identity"
	"github.com/gatehouse/gatehouse/internal/policy/ipfilter"
	"github.com/gatehouse/gatehouse/internal/policy/jsonlimits"
	"github.com/gatehouse/gatehouse/internal/policy/openapi"
	"github.com/gatehouse/gatehouse/internal/policy/quota"
	"github.com/gatehouse/gatehouse/internal/policy/ratelimit"
	"github.com/gatehouse/gatehouse/internal/policy/saml"
	"github.com/gatehouse/gatehouse/internal/policy/scopes"
	"github.com/gatehouse/gatehouse/internal/policy/sizelimit"
	"github.com/gatehouse/gatehouse/internal/policy/throttle"
	"github.com/gatehouse/gatehouse/internal/policy/waf"
	"github.com/gatehouse/gatehouse/internal/policy/wssecurity"
	"github.com/gatehouse/gatehouse/internal/policy/xmlguard"
)

// Authenticators returns the authenticator types the `authenticate`
// policy can compose.
func Authenticators() *authn.Registry {
	return authn.NewRegistry(
		jwt.Unit,
		apikey.Unit,
		introspect.Unit,
		mtls.Unit,
		session.Unit,
	)
}

// Units returns the built-in policy units.
func Units() []policy.Unit {
	return []policy.Unit{
		ipfilter.Unit,
		sizelimit.Unit,
		headers.Unit,
		xmlguard.Unit,
		wssecurity.Unit,
		saml.Unit(wssecurity.Unit.New),
		authenticate.Unit(Authenticators()),
		binding.Unit,
		waf.Unit,
		jsonlimits.Unit,
		openapi.Unit,
		dlp.Unit,
		ratelimit.Unit,
		quota.Unit,
		throttle.Unit,
		scopes.Unit,
		expr.Unit,
		identity.Unit,
	}
}

// Registry returns a registry of the built-in units.
func Registry() *policy.Registry { return policy.NewRegistry(Units()...) }
