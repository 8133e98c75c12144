package expr

import (
	"cmp"
	"fmt"
	"strconv"
	"strings"

	"cel.dev/cel-go/cel"
	"cel.dev/cel-go/common/ast"

	"github.com/gatehouse/gatehouse/internal/config"
)

// Config is the expr policy's settings: one expression, or named rules.
//
//	expr:
//	  allow: 'request.method == "GET" || "products:write" in principal.scopes'
//
//	expr:
//	  rules:
//	    - name: owner-only
//	      allow: 'principal.claims.sub == request.params.id'
//	      code: not_owner
//	      message: you may only read your own record
//	  max_cost: 1000
type Config struct {
	// Allow is a CEL expression of type bool; the request passes when it
	// is true. Shorthand for one rule named "allow".
	Allow string `yaml:"allow"`
	// Rules are evaluated in order; all must allow, and the first that
	// does not decides the refusal.
	Rules []Rule `yaml:"rules"`
	// MaxCost bounds each rule's cost, in CEL cost units: a rule whose
	// worst-case estimate exceeds it is refused at load, and an
	// evaluation that reaches it is stopped and denied. 0 or absent:
	// DefaultMaxCost.
	MaxCost uint64 `yaml:"max_cost"`
	// Code and Message are the denial's for Allow (see Rule).
	Code    string `yaml:"code"`
	Message string `yaml:"message"`
}

// Rule is one named expression.
type Rule struct {
	// Name identifies the rule in logs; required and unique.
	Name string `yaml:"name"`
	// Allow is a CEL expression of type bool.
	Allow string `yaml:"allow"`
	// Code is the stable denial code shown to the client: lower case
	// letters, digits and '_' (or a "wsse:" QName for SOAP routes).
	// Default DefaultCode.
	Code string `yaml:"code"`
	// Message is the public detail of the denial. Default DefaultMessage.
	Message string `yaml:"message"`
}

// Defaults.
const (
	DefaultCode    = "access_denied"
	DefaultMessage = "access denied by policy"
	// DefaultMaxCost allows a few dozen comparisons, membership tests on
	// scope lists and header lookups, and rules out comprehensions nested
	// over request data.
	DefaultMaxCost = 10000
	// maxExprLen bounds the source of one expression.
	maxExprLen = 4096
	maxMessage = 200
)

// compiledRule is one rule ready to run.
type compiledRule struct {
	name, code, message string
	prg                 cel.Program
	cost                uint64 // estimated worst case, for docs and tests
}

// decode builds the rules of cfg: strict decoding, validate, provision.
func decode(cfg *config.Node) ([]compiledRule, error) {
	var c Config
	if err := cfg.Decode(&c); err != nil {
		return nil, err
	}
	if err := c.validate(cfg); err != nil {
		return nil, err
	}
	return c.provision(cfg)
}

// ruleList returns the rules c gives, the shorthand allow as one rule
// named "allow", and the path prefix of rule i's fields.
func (c *Config) ruleList() ([]Rule, func(i int) string) {
	if c.Allow != "" && len(c.Rules) == 0 {
		return []Rule{{Name: "allow", Allow: c.Allow, Code: c.Code, Message: c.Message}}, func(int) string { return "" }
	}
	return c.Rules, func(i int) string { return config.Index("rules", i) + "." }
}

// validate checks c without compiling anything, reporting every
// independent problem at its place.
func (c *Config) validate(cfg *config.Node) error {
	var p config.Problems
	switch {
	case c.Allow != "" && len(c.Rules) > 0:
		p.Errorf(cfg, "rules", "expr: give allow or rules, not both")
	case c.Allow == "" && len(c.Rules) == 0:
		p.Errorf(cfg, "", "expr: needs allow or rules")
	case len(c.Rules) > 0 && c.Code != "":
		p.Errorf(cfg, "code", "expr: with rules, code and message belong to each rule")
	case len(c.Rules) > 0 && c.Message != "":
		p.Errorf(cfg, "message", "expr: with rules, code and message belong to each rule")
	}
	rules, at := c.ruleList()
	seen := map[string]bool{}
	for i, r := range rules {
		switch {
		case r.Name == "":
			p.Errorf(cfg, at(i)+"name", "expr: rule needs a name")
		case seen[r.Name]:
			p.Errorf(cfg, at(i)+"name", "expr: duplicate rule name %q", r.Name)
		}
		seen[r.Name] = true
		if r.Code != "" && !validCode(r.Code) {
			p.Errorf(cfg, at(i)+"code", "expr: code %q must be lower-case letters, digits and '_' (or a wsse: QName)", r.Code)
		}
		if msg := checkMessage(r.Message); r.Message != "" && msg != "" {
			p.Errorf(cfg, at(i)+"message", "expr: message %s", msg)
		}
		if strings.TrimSpace(r.Allow) == "" {
			p.Errorf(cfg, at(i)+"allow", "expr: rule %q needs an allow expression", r.Name)
		} else if len(r.Allow) > maxExprLen {
			p.Errorf(cfg, at(i)+"allow", "expr: expression is %d bytes, more than %d", len(r.Allow), maxExprLen)
		}
	}
	return p.Err()
}

// provision compiles the rules of a validated c, reporting every rule
// that does not compile.
func (c *Config) provision(cfg *config.Node) ([]compiledRule, error) {
	env, err := baseEnv()
	if err != nil {
		return nil, fmt.Errorf("expr: building the CEL environment: %w", err)
	}
	rules, at := c.ruleList()
	maxCost := cmp.Or(c.MaxCost, DefaultMaxCost)
	out := make([]compiledRule, 0, len(rules))
	var p config.Problems
	for i, r := range rules {
		cr, err := compile(env, cfg, at(i)+"allow", r.Allow, maxCost)
		if p.Add(err) {
			continue
		}
		cr.name, cr.code, cr.message = r.Name, cmp.Or(r.Code, DefaultCode), cmp.Or(r.Message, DefaultMessage)
		out = append(out, cr)
	}
	if err := p.Err(); err != nil {
		return nil, err
	}
	return out, nil
}

// compile parses, checks, validates and costs one expression, and plans
// its program.
func compile(env *cel.Env, cfg *config.Node, field, src string, maxCost uint64) (compiledRule, error) {
	if len(src) > maxExprLen {
		return compiledRule{}, cfg.Errorf(field, "expr: expression is %d bytes, more than %d", len(src), maxExprLen)
	}
	checked, iss := env.Compile(src)
	if iss.Err() != nil {
		return compiledRule{}, cfg.Errorf(field, "expr: %s", issues(iss))
	}
	if t := checked.OutputType(); !t.IsExactType(cel.BoolType) {
		return compiledRule{}, cfg.Errorf(field, "expr: expression must be of type bool, not %s", t)
	}
	if err := checkConstants(checked.NativeRep()); err != nil {
		return compiledRule{}, cfg.Errorf(field, "expr: %v", err)
	}
	est, err := env.EstimateCost(checked, estimator{})
	if err != nil {
		return compiledRule{}, cfg.Errorf(field, "expr: estimating cost: %v", err)
	}
	if est.Max > maxCost {
		return compiledRule{}, cfg.Errorf(field, "expr: worst-case estimated cost %s exceeds max_cost %d", costString(est.Max), maxCost)
	}
	prg, err := env.Program(checked,
		cel.EvalOptions(cel.OptOptimize),
		cel.CostLimit(maxCost),
		cel.InterruptCheckFrequency(interruptEvery),
		cel.CustomDecoratorV2(constantDecorator),
	)
	if err != nil {
		return compiledRule{}, cfg.Errorf(field, "expr: %v", err)
	}
	return compiledRule{prg: prg, cost: est.Max}, nil
}

// interruptEvery is how many comprehension iterations run between checks
// of the request context.
const interruptEvery = 64

func costString(c uint64) string {
	if c == ^uint64(0) {
		return "unbounded"
	}
	return strconv.FormatUint(c, 10)
}

// issues formats CEL's compile errors on one line each, with the column
// in the expression (the YAML position names the expression).
func issues(iss *cel.Issues) string {
	var b strings.Builder
	for i, e := range iss.Errors() {
		if i > 0 {
			b.WriteString("; ")
		}
		if loc := e.Location; loc != nil && loc.Line() > 0 {
			if loc.Line() > 1 {
				fmt.Fprintf(&b, "line %d ", loc.Line())
			}
			fmt.Fprintf(&b, "column %d of the expression: ", loc.Column()+1)
		}
		b.WriteString(e.Message)
	}
	return b.String()
}

func validCode(c string) bool {
	if name, ok := strings.CutPrefix(c, "wsse:"); ok {
		if name == "" {
			return false
		}
		for i := 0; i < len(name); i++ {
			ch := name[i]
			if !(ch >= 'a' && ch <= 'z' || ch >= 'A' && ch <= 'Z' || ch >= '0' && ch <= '9') {
				return false
			}
		}
		return true
	}
	if c == "" || len(c) > 64 {
		return false
	}
	for i := 0; i < len(c); i++ {
		ch := c[i]
		if !(ch >= 'a' && ch <= 'z' || ch >= '0' && ch <= '9' || ch == '_') {
			return false
		}
	}
	return true
}

// checkMessage returns why msg is unfit as a public detail, or "".
func checkMessage(msg string) string {
	if len(msg) > maxMessage {
		return fmt.Sprintf("is longer than %d bytes", maxMessage)
	}
	for _, r := range msg {
		if r < 0x20 || r == 0x7f {
			return "must not contain control characters"
		}
	}
	return ""
}

// checkConstants validates the constant arguments the functions check
// only at run time: CIDR prefixes of ip_in, time zones of timestamp
// accessors. A typo then fails the load instead of every request.
func checkConstants(a *ast.AST) error {
	var err error
	ast.PostOrderVisit(a.Expr(), ast.NewExprVisitor(func(e ast.Expr) {
		if err != nil || e.Kind() != ast.CallKind {
			return
		}
		call := e.AsCall()
		args := call.Args()
		switch {
		case call.FunctionName() == ipInFunc && len(args) == 2:
			if s, ok := constString(args[1]); ok {
				if _, perr := parsePrefix(s); perr != nil {
					err = fmt.Errorf("ip_in: %w", perr)
				}
			}
		case call.IsMemberFunction() && timestampAccessors[call.FunctionName()] && len(args) == 1:
			if s, ok := constString(args[0]); ok {
				if _, lerr := loadZone(s); lerr != nil {
					err = fmt.Errorf("%s: %w", call.FunctionName(), lerr)
				}
			}
		}
	}))
	return err
}

func constString(e ast.Expr) (string, bool) {
	if e.Kind() != ast.LiteralKind {
		return "", false
	}
	s, ok := e.AsLiteral().Value().(string)
	return s, ok
}
