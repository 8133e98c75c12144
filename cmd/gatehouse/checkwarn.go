package main

import (
	"regexp"
	"strings"

	"github.com/gatehouse/gatehouse/internal/config"
	"github.com/gatehouse/gatehouse/internal/policy/expr"
)

// principalSetters are the policy types that set a request's principal:
// the authenticators' policy and the SOAP message-level ones.
var principalSetters = map[string]bool{"authenticate": true, "saml": true, "wssecurity": true}

// principalWarnings finds the policies that read the request's principal
// where no earlier policy of their route can set one: a scopes policy
// there refuses every request (401), an expr reading principal sees an
// empty one. Such a config loads (the order may be meant for requests no
// one authenticates), so `check` warns rather than fails. Each warning
// names the file, line and policy.
func principalWarnings(cfg *config.Config) []string {
	var out []string
	for _, rc := range cfg.Routes {
		set := false
		for _, spec := range rc.Policies {
			switch {
			case principalSetters[spec.Type]:
				set = true
			case set:
			case spec.Type == "scopes":
				out = append(out, spec.Config.Errorf("",
					"scopes reads the principal, but no policy before it on route %q sets one (authenticate, saml, wssecurity): it refuses every request with 401; put authenticate before it", rc.Name).Error())
			case spec.Type == "expr" && exprReadsPrincipal(spec.Config):
				out = append(out, spec.Config.Errorf("",
					"expr reads principal, but no policy before it on route %q sets one (authenticate, saml, wssecurity): principal is always empty here; put authenticate before it", rc.Name).Error())
			}
		}
	}
	return out
}

// celStrings matches CEL string literals (quoted, raw, triple-quoted, with
// escapes), which may mention "principal" without reading it.
var celStrings = regexp.MustCompile(`(?s)[rRbB]*('''.*?'''|""".*?"""|'(?:\\.|[^'\\\n])*'|"(?:\\.|[^"\\\n])*")`)

var principalIdent = regexp.MustCompile(`(^|[^A-Za-z0-9_.])principal\b`)

// exprReadsPrincipal reports whether an expr policy's expressions name
// the principal variable (outside string literals).
func exprReadsPrincipal(n *config.Node) bool {
	var c expr.Config
	if n.Decode(&c) != nil {
		return false // the build reports it
	}
	srcs := []string{c.Allow}
	for _, r := range c.Rules {
		srcs = append(srcs, r.Allow)
	}
	for _, s := range srcs {
		if principalIdent.MatchString(celStrings.ReplaceAllString(s, `""`)) {
			return true
		}
	}
	return false
}

// warnPrefix starts every warning line of `check`.
const warnPrefix = "warning: "

func formatWarnings(ws []string) string {
	var b strings.Builder
	for _, w := range ws {
		b.WriteString(warnPrefix)
		b.WriteString(w)
		b.WriteByte('\n')
	}
	return b.String()
}
