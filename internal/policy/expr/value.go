package expr

import (
	"context"
	"fmt"
	"strings"
	"time"

	"cel.dev/cel-go/cel"
	"cel.dev/cel-go/common/types"

	"github.com/gatehouse/gatehouse/internal/config"
	"github.com/gatehouse/gatehouse/internal/policy"
)

// Value is a compiled CEL expression of type string or int over the same
// variables as the expr policy (principal, request, now), for other units
// that compute something per request: the key of a rate limit, the cost
// of a request. It is immutable and safe for concurrent use.
type Value struct {
	prg     cel.Program
	adapter types.Adapter
	now     func() time.Time
}

// CompileString compiles src, which must be of type string, with
// DefaultMaxCost. Problems are config errors at field of cfg. now is the
// clock behind `now` (nil: time.Now).
func CompileString(cfg *config.Node, field, src string, now func() time.Time) (*Value, error) {
	return compileValue(cfg, field, src, cel.StringType, now)
}

// CompileInt is CompileString for an expression of type int.
func CompileInt(cfg *config.Node, field, src string, now func() time.Time) (*Value, error) {
	return compileValue(cfg, field, src, cel.IntType, now)
}

func compileValue(cfg *config.Node, field, src string, want *cel.Type, now func() time.Time) (*Value, error) {
	if strings.TrimSpace(src) == "" {
		return nil, cfg.Errorf(field, "expr: empty expression")
	}
	if len(src) > maxExprLen {
		return nil, cfg.Errorf(field, "expr: expression is %d bytes, more than %d", len(src), maxExprLen)
	}
	env, err := baseEnv()
	if err != nil {
		return nil, fmt.Errorf("expr: building the CEL environment: %w", err)
	}
	checked, iss := env.Compile(src)
	if iss.Err() != nil {
		return nil, cfg.Errorf(field, "expr: %s", issues(iss))
	}
	if t := checked.OutputType(); !t.IsExactType(want) {
		return nil, cfg.Errorf(field, "expr: expression must be of type %s, not %s", want, t)
	}
	if err := checkConstants(checked.NativeRep()); err != nil {
		return nil, cfg.Errorf(field, "expr: %v", err)
	}
	est, err := env.EstimateCost(checked, estimator{})
	if err != nil {
		return nil, cfg.Errorf(field, "expr: estimating cost: %v", err)
	}
	if est.Max > DefaultMaxCost {
		return nil, cfg.Errorf(field, "expr: worst-case estimated cost %s exceeds %d", costString(est.Max), DefaultMaxCost)
	}
	prg, err := env.Program(checked,
		cel.EvalOptions(cel.OptOptimize),
		cel.CostLimit(DefaultMaxCost),
		cel.InterruptCheckFrequency(interruptEvery),
		cel.CustomDecoratorV2(constantDecorator),
	)
	if err != nil {
		return nil, cfg.Errorf(field, "expr: %v", err)
	}
	if now == nil {
		now = time.Now
	}
	return &Value{prg: prg, adapter: env.CELTypeAdapter(), now: now}, nil
}

func (v *Value) eval(ctx context.Context, ex *policy.Exchange) (any, error) {
	a := getActivation(ex, v.now, v.adapter)
	defer a.release()
	out, _, err := v.prg.ContextEval(ctx, a)
	if err != nil {
		return nil, fmt.Errorf("expr: %w", err)
	}
	return out.Value(), nil
}

// String evaluates a CompileString expression for ex. An evaluation
// error (a missing claim, the cost limit) is returned as is.
func (v *Value) String(ctx context.Context, ex *policy.Exchange) (string, error) {
	out, err := v.eval(ctx, ex)
	if err != nil {
		return "", err
	}
	s, ok := out.(string)
	if !ok {
		return "", fmt.Errorf("expr: expression gave %T, not a string", out)
	}
	return s, nil
}

// Int evaluates a CompileInt expression for ex.
func (v *Value) Int(ctx context.Context, ex *policy.Exchange) (int64, error) {
	out, err := v.eval(ctx, ex)
	if err != nil {
		return 0, err
	}
	n, ok := out.(int64)
	if !ok {
		return 0, fmt.Errorf("expr: expression gave %T, not an int", out)
	}
	return n, nil
}
