// Package expr is the "expr" policy: it authorizes requests with CEL
// expressions (https://cel.dev) over the principal, the request and the
// time, compiled, type-checked and cost-bounded at load.
package expr

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"cel.dev/cel-go/common/types"
	"cel.dev/cel-go/interpreter"

	"github.com/gatehouse/gatehouse/internal/authn"
	"github.com/gatehouse/gatehouse/internal/config"
	"github.com/gatehouse/gatehouse/internal/policy"
)

// Unit registers the expr policy.
var Unit = policy.Unit{Name: "expr", New: New}

// Expr evaluates its rules in order and refuses the request at the first
// that does not allow it. It is immutable and safe for concurrent use.
type Expr struct {
	rules   []compiledRule
	now     func() time.Time
	adapter types.Adapter
	// realm is the route's, for the challenge of a refusal whose code
	// is insufficient_scope.
	realm string
}

var _ policy.Policy = (*Expr)(nil)

// New builds an Expr from cfg (see Config). env.Now is the clock behind
// the `now` variable; nil means time.Now.
func New(cfg *config.Node, env *policy.Env) (policy.Policy, error) {
	rules, err := decode(cfg)
	if err != nil {
		return nil, err
	}
	e := &Expr{rules: rules, now: env.Clock(), realm: env.Realm()}
	celEnv, err := baseEnv()
	if err != nil {
		return nil, fmt.Errorf("expr: building the CEL environment: %w", err)
	}
	e.adapter = celEnv.CELTypeAdapter()
	return e, nil
}

// Apply evaluates the rules. A rule that yields false refuses the request
// with 403 and the rule's code and message. So does a rule whose
// evaluation fails (a missing claim, a type mismatch, the cost limit
// reached): the Denial's Err says why, for the log. When ctx ends during
// an evaluation, Apply returns an internal error wrapping ctx's cause
// (the request fails closed).
func (e *Expr) Apply(ctx context.Context, ex *policy.Exchange) error {
	a := getActivation(ex, e.now, e.adapter)
	defer a.release()
	for i := range e.rules {
		r := &e.rules[i]
		out, _, err := r.prg.ContextEval(ctx, a)
		if err != nil {
			if ctx.Err() != nil {
				return fmt.Errorf("expr: rule %q: %w", r.name, err)
			}
			return e.deny(r, ex, &evalError{rule: r.name, err: err})
		}
		if out != types.True {
			return e.deny(r, ex, &refusal{rule: r.name})
		}
	}
	return nil
}

// deny is r's 403. A rule refusing with the code insufficient_scope
// says what RFC 6750 §3.1 says, so it carries that error's challenge,
// naming the route's realm, as the scopes policy's 403 does.
func (e *Expr) deny(r *compiledRule, ex *policy.Exchange, cause error) *policy.Denial {
	d := &policy.Denial{Status: http.StatusForbidden, Code: r.code, Detail: r.message, Err: cause}
	if r.code == "insufficient_scope" {
		scheme := "Bearer"
		if sch, _, _ := strings.Cut(ex.Request.Header.Get("Authorization"), " "); strings.EqualFold(sch, "DPoP") {
			scheme = "DPoP"
		}
		d.Header = http.Header{"Www-Authenticate": {authn.Challenge(scheme, e.realm, "error", "insufficient_scope", "error_description", r.message)}}
	}
	return d
}

// ErrCostLimit is wrapped by the Denial's Err of an evaluation stopped by
// the cost limit.
var ErrCostLimit = errors.New("expr: cost limit exceeded")

// refusal is the logged cause of a rule that yielded false.
type refusal struct{ rule string }

func (r *refusal) Error() string { return "expr: rule " + quote(r.rule) + " refused the request" }

// evalError is the logged cause of a rule whose evaluation failed.
type evalError struct {
	rule string
	err  error
}

func (e *evalError) Error() string {
	return "expr: rule " + quote(e.rule) + ": evaluation failed: " + e.err.Error()
}

func (e *evalError) Unwrap() error { return e.err }

// Is makes errors.Is(err, ErrCostLimit) report a cost-limit stop.
func (e *evalError) Is(target error) bool {
	return target == ErrCostLimit && isCostLimit(e.err)
}

func quote(s string) string { return strconv.Quote(s) }

func isCostLimit(err error) bool {
	var c interpreter.EvalCancelledError
	return errors.As(err, &c) && c.Cause == interpreter.CostLimitExceeded
}
