// Package scopes is the "scopes" policy: it refuses a request whose
// principal lacks the OAuth scopes its route and method need.
//
// It reads ex.Principal, so it runs after the `authenticate` policy.
package scopes

import (
	"context"
	"net/http"
	"slices"
	"strconv"
	"strings"

	"github.com/gatehouse/gatehouse/internal/authn"
	"github.com/gatehouse/gatehouse/internal/config"
	"github.com/gatehouse/gatehouse/internal/policy"
)

// Unit registers the scopes policy.
var Unit = policy.Unit{Name: "scopes", New: New}

// Denial codes.
const (
	// CodeMissingCredentials (401) is the authenticate policy's code for a
	// request without credentials: the same situation seen from here.
	CodeMissingCredentials = "missing_credentials"
	// CodeInsufficientScope (403) is RFC 6750 §3.1's.
	CodeInsufficientScope = "insufficient_scope"
	// CodeMethodNotAllowed (405) refuses a method that methods does not
	// list (and no "*" entry lets through): the router's code for the
	// same situation.
	CodeMethodNotAllowed = "method_not_allowed"
)

// Scopes checks a request's principal against the scopes its method
// needs. It is immutable and safe for concurrent use.
type Scopes struct {
	p *compiled
	// challenge is the 401 challenge for a request without a principal.
	challenge string
}

var _ policy.Policy = (*Scopes)(nil)

// New builds a Scopes from cfg (see Config). Its challenges name the
// route's realm (env.Route) unless cfg sets the same one.
func New(cfg *config.Node, env *policy.Env) (policy.Policy, error) {
	p, err := decode(cfg)
	if err != nil {
		return nil, err
	}
	if p.realm == "" {
		// The route's one realm, as its authenticate policy names it.
		p.realm = env.Realm()
	}
	return &Scopes{p: p, challenge: authn.Challenge("Bearer", p.realm)}, nil
}

// Apply refuses a request without a principal with 401
// missing_credentials, one whose method methods does not name (without a
// "*" entry) with 405 method_not_allowed and an Allow header, and one
// whose principal lacks scopes with 403
// insufficient_scope naming exactly the scopes missing (with any_of: the
// alternatives of each unmet list) in the detail and in the
// WWW-Authenticate challenge's scope attribute (RFC 6750 §3.1). The
// challenge uses the DPoP scheme when the request's Authorization header
// did (RFC 9449 §7.1), Bearer otherwise. A request that passes allocates
// nothing.
func (s *Scopes) Apply(_ context.Context, ex *policy.Exchange) error {
	pr := ex.Principal
	if pr == nil {
		return &policy.Denial{
			Status: http.StatusUnauthorized,
			Code:   CodeMissingCredentials,
			Detail: "this request needs credentials",
			// RFC 6750 §3.1: no error code when no credentials were sent.
			Header: http.Header{"Www-Authenticate": {s.challenge}},
		}
	}
	req := s.p.other
	if r, ok := s.p.methods[ex.Request.Method]; ok {
		req = r
	} else if req == nil {
		// Fail closed: a method no rule names ("delete", PROPFIND,
		// TRACE) gets no scopes of its own, and All alone would let
		// it through with less than any listed method needs.
		return &policy.Denial{
			Status: http.StatusMethodNotAllowed,
			Code:   CodeMethodNotAllowed,
			Detail: "this method is not allowed here",
			Header: http.Header{"Allow": {s.p.allow}},
			Err:    &unlisted{method: ex.Request.Method},
		}
	}
	for i, g := range req.groups {
		if !hasAny(pr.Scopes, g) {
			return s.refuse(ex, pr, req.groups[i:])
		}
	}
	return nil
}

// hasAny reports whether granted holds one of want. Both are short: a
// scan beats building a set per request.
func hasAny(granted, want []string) bool {
	for _, w := range want {
		if slices.Contains(granted, w) {
			return true
		}
	}
	return false
}

// refuse builds the 403 for the unmet groups among groups (the first of
// which is unmet).
func (s *Scopes) refuse(ex *policy.Exchange, pr *policy.Principal, groups [][]string) error {
	var missing []string
	var unmet [][]string
	for _, g := range groups {
		if hasAny(pr.Scopes, g) {
			continue
		}
		unmet = append(unmet, g)
		for _, sc := range g {
			if !slices.Contains(missing, sc) {
				missing = append(missing, sc)
			}
		}
	}
	scheme := "Bearer"
	// The scheme the client spoke, even when the header was not read by
	// the authenticator that let the request in (an API key beside it).
	if sch, _, _ := strings.Cut(ex.Request.Header.Get("Authorization"), " "); strings.EqualFold(sch, "DPoP") {
		scheme = "DPoP"
	}
	d := authn.InsufficientScope(s.p.realm, scheme, missing)
	if s.p.anyOf {
		// The challenge's scope attribute can only list scopes; the
		// detail says which of them are alternatives.
		var b strings.Builder
		b.WriteString("the token lacks the scope this request needs: ")
		for i, g := range unmet {
			if i > 0 {
				b.WriteString(", and ")
			}
			b.WriteString("one of ")
			b.WriteString(strings.Join(g, " "))
		}
		d.Detail = b.String()
	}
	d.Err = &lack{subject: pr.Subject, missing: missing, anyOf: s.p.anyOf}
	return d
}

// lack is the logged cause of a refusal; formatted only when logged.
type lack struct {
	subject string
	missing []string
	anyOf   bool
}

func (l *lack) Error() string {
	what := "lacks scopes "
	if l.anyOf {
		what = "lacks one of the scopes "
	}
	return "scopes: principal " + strconv.Quote(l.subject) + " " + what + strings.Join(l.missing, " ")
}

// unlisted is the logged cause of a refused method.
type unlisted struct{ method string }

func (u *unlisted) Error() string {
	return "scopes: method " + strconv.Quote(u.method) + " is not listed in methods (and no \"*\" entry)"
}
