// Package authenticate is the `authenticate` policy: it runs a route's
// authenticators in order and sets the request's Principal from the first
// that recognises the request.
package authenticate

import (
	"context"
	"errors"
	"net/http"

	"github.com/gatehouse/gatehouse/internal/authn"
	"github.com/gatehouse/gatehouse/internal/config"
	"github.com/gatehouse/gatehouse/internal/policy"
)

// Policy runs authenticators in order.
type Policy struct {
	realm      string
	optional   bool
	auths      []authn.Authenticator
	names      []string
	challenges []string
}

var _ policy.Policy = (*Policy)(nil)
var _ policy.Closer = (*Policy)(nil)

// Unit returns the `authenticate` policy unit over the given authenticator
// types.
func Unit(reg *authn.Registry) policy.Unit {
	return policy.Unit{Name: "authenticate", New: func(cfg *config.Node, env *policy.Env) (policy.Policy, error) {
		return New(cfg, env, reg)
	}}
}

// New builds the policy from its config: decode, validate, provision.
func New(cfg *config.Node, env *policy.Env, reg *authn.Registry) (*Policy, error) {
	c, err := decode(cfg)
	if err != nil {
		return nil, err
	}
	if err := c.validate(cfg, reg); err != nil {
		return nil, err
	}
	return c.provision(env, reg)
}

// Apply authenticates the request: the first authenticator that takes
// its credential decides. A credential that every authenticator declined
// (authn.Declined: present, but of no authenticator's kind) is refused
// with the first decliner's refusal, 401 invalid_token, optional or not:
// only a request without any credential is anonymous or 401
// missing_credentials.
func (p *Policy) Apply(ctx context.Context, ex *policy.Exchange) error {
	var declined *authn.Declined
	for _, a := range p.auths {
		pr, err := a.Authenticate(ctx, ex)
		if errors.Is(err, authn.ErrNoCredentials) {
			if declined == nil {
				errors.As(err, &declined)
			}
			continue
		}
		if err != nil {
			return err
		}
		ex.Principal = pr
		return nil
	}
	if declined != nil {
		return declined.Refusal
	}
	if p.optional {
		return nil
	}
	d := &policy.Denial{
		Status: http.StatusUnauthorized,
		Code:   "missing_credentials",
		Detail: "this request needs credentials",
	}
	if len(p.challenges) > 0 {
		// RFC 6750 §3.1: no error code when the request had no credentials.
		d.Header = http.Header{"Www-Authenticate": p.challenges}
	}
	return d
}

// Close releases the authenticators' resources (key refreshers, caches).
func (p *Policy) Close() error {
	var errs []error
	for _, a := range p.auths {
		if c, ok := a.(policy.Closer); ok {
			errs = append(errs, c.Close())
		}
	}
	return errors.Join(errs...)
}
