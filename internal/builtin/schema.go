package builtin

import (
	"reflect"

	"github.com/gatehouse/gatehouse/internal/authn/apikey"
	"github.com/gatehouse/gatehouse/internal/authn/introspect"
	"github.com/gatehouse/gatehouse/internal/authn/jwt"
	"github.com/gatehouse/gatehouse/internal/authn/mtls"
	"github.com/gatehouse/gatehouse/internal/authn/session"
	"github.com/gatehouse/gatehouse/internal/config"
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

// PolicyConfigs returns the Go type each built-in unit decodes its
// settings into, for the config's JSON Schema (`gatehouse config schema`).
// TestPolicyConfigsCoverUnits checks that every unit of Units and
// Authenticators has its entry, and that the schema and each factory agree
// on good and bad settings.
func PolicyConfigs() config.SchemaUnits {
	t := func(v any) reflect.Type { return reflect.TypeOf(v) }
	return config.SchemaUnits{
		Policies: map[string]reflect.Type{
			"ipfilter":     t(ipfilter.Config{}),
			"size_limit":   t(sizelimit.Config{}),
			"headers":      t(headers.Config{}),
			"xmlguard":     t(xmlguard.Config{}),
			"wssecurity":   t(wssecurity.Config{}),
			"saml":         t(saml.Config{}),
			"authenticate": t(authenticate.Config{}),
			"binding":      t(binding.Config{}),
			"waf":          t(waf.Config{}),
			"json_limits":  t(jsonlimits.Config{}),
			"openapi":      t(openapi.Config{}),
			"dlp":          t(dlp.Config{}),
			"rate_limit":   t(ratelimit.Config{}),
			"quota":        t(quota.Config{}),
			"throttle":     t(throttle.Config{}),
			"scopes":       t(scopes.Config{}),
			"expr":         t(expr.Config{}),
			"identity":     t(identity.Config{}),
		},
		Authenticators: map[string]reflect.Type{
			"jwt":        t(jwt.Config{}),
			"apikey":     t(apikey.Config{}),
			"introspect": t(introspect.Config{}),
			"mtls":       t(mtls.Config{}),
			"session":    t(session.Config{}),
		},
		AuthenticatorFields: map[string]bool{"authenticate.Config.With": true},
	}
}
