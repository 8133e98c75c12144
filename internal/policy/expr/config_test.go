package expr

import (
	"strings"
	"testing"

	"github.com/gatehouse/gatehouse/internal/policy/policytest"
)

func TestConfigErrors(t *testing.T) {
	tests := []struct {
		name string
		yaml string
		line int
		path string
		msg  string
	}{
		{"empty", "", 1, "", "expr: needs allow or rules"},
		{"only max_cost", "max_cost: 100\n", 1, "", "expr: needs allow or rules"},
		{"both", "allow: 'true'\nrules:\n  - {name: a, allow: 'true'}\n", 2, "rules", "allow or rules, not both"},
		{"unknown field", "allow: 'true'\nallw: 'false'\n", 2, "allw", `unknown field "allw"`},
		{"unknown rule field", "rules:\n  - name: a\n    allow: 'true'\n    deny: 'false'\n", 4, "rules[0].deny", `unknown field "deny"`},
		{"max_cost not a number", "allow: 'true'\nmax_cost: lots\n", 2, "max_cost", ""},
		{"max_cost negative", "allow: 'true'\nmax_cost: -1\n", 2, "max_cost", ""},
		{"top-level code with rules", "rules:\n  - {name: a, allow: 'true'}\ncode: nope\n", 3, "code", "belong to each rule"},
		{"top-level message with rules", "rules:\n  - {name: a, allow: 'true'}\nmessage: nope\n", 3, "message", "belong to each rule"},
		{"rule without name", "rules:\n  - allow: 'true'\n", 2, "rules[0].name", "rule needs a name"},
		{"duplicate rule name", "rules:\n  - name: a\n    allow: 'true'\n  - name: a\n    allow: 'false'\n", 4, "rules[1].name", `duplicate rule name "a"`},
		{"rule without allow", "rules:\n  - name: a\n    code: x\n", 2, "rules[0].allow", `rule "a" needs an allow expression`},
		{"blank allow", "rules:\n  - name: a\n    allow: '  '\n", 3, "rules[0].allow", `needs an allow expression`},
		{"bad code", "rules:\n  - name: a\n    allow: 'true'\n    code: Not-Owner\n", 4, "rules[0].code", `code "Not-Owner" must be lower-case`},
		{"bad top-level code", "allow: 'true'\ncode: 'has space'\n", 2, "code", "must be lower-case"},
		{"empty wsse code", "allow: 'true'\ncode: 'wsse:'\n", 2, "code", "must be lower-case"},
		{"message with newline", "allow: 'true'\nmessage: \"a\\nb\"\n", 2, "message", "must not contain control characters"},
		{"message too long", "allow: 'true'\nmessage: " + strings.Repeat("x", 201) + "\n", 2, "message", "longer than 200 bytes"},
		{"syntax error", "allow: 'request.method =='\n", 1, "allow", "column"},
		{"undeclared variable", "allow: 'user.id == \"1\"'\n", 1, "allow", "undeclared reference to 'user'"},
		{"misspelt field", "allow: 'request.mehtod == \"GET\"'\n", 1, "allow", "undefined field 'mehtod'"},
		{"principal field misspelt", "allow: '\"a\" in principal.scope'\n", 1, "allow", "undefined field 'scope'"},
		{"type error", "allow: 'request.method == 1'\n", 1, "allow", "no matching overload"},
		{"not bool", "allow: 'request.method'\n", 1, "allow", "must be of type bool, not string"},
		{"dyn result", "allow: 'principal.claims.admin'\n", 1, "allow", "must be of type bool, not dyn"},
		{"error column", "allow: 'true && nope'\n", 1, "allow", "column 9 of the expression: undeclared reference to 'nope'"},
		{"second rule's error at its line", "rules:\n  - name: a\n    allow: 'true'\n  - name: b\n    allow: 'request.nope'\n", 5, "rules[1].allow", "undefined field 'nope'"},
		{"bad constant cidr", "allow: 'ip_in(request.client_ip, \"10.0.0.300/8\")'\n", 1, "allow", `ip_in: "10.0.0.300/8" is not an IP address or CIDR prefix`},
		{"cidr host bits", "allow: 'ip_in(request.client_ip, \"10.0.0.1/8\")'\n", 1, "allow", "did you mean 10.0.0.0/8?"},
		{"bad constant zone", "allow: 'now.getHours(\"Mars/Olympus\") > 8'\n", 1, "allow", `getHours: unknown time zone "Mars/Olympus"`},
		{"bad zone offset", "allow: 'now.getHours(\"+25:00\") > 8'\n", 1, "allow", `bad time zone offset "+25:00"`},
		{"nested loops over the default max_cost", "allow: 'principal.scopes.exists(s, principal.scopes.exists(t, s + t == \"ab\"))'\n", 1, "allow",
			"exceeds max_cost 10000"},
		{"over a low max_cost", "allow: 'principal.scopes.exists(s, s.startsWith(\"products:\"))'\nmax_cost: 100\n", 1, "allow",
			"worst-case estimated cost 387 exceeds max_cost 100"},
		{"too long", "allow: '" + strings.Repeat("true && ", 600) + "true'\n", 1, "allow", "more than 4096"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := New(policytest.Node(t, tt.yaml), policytest.Env())
			policytest.WantConfigError(t, err, tt.line, tt.path, tt.msg)
		})
	}
}

func TestConfigParses(t *testing.T) {
	tests := []struct {
		name, yaml string
		want       []compiledRule // name, code, message
	}{
		{"allow shorthand", "allow: 'true'\n", []compiledRule{{name: "allow", code: DefaultCode, message: DefaultMessage}}},
		{"allow with code", "allow: 'true'\ncode: wsse:FailedAuthentication\nmessage: nope\n",
			[]compiledRule{{name: "allow", code: "wsse:FailedAuthentication", message: "nope"}}},
		{"rules", "rules:\n  - {name: a, allow: 'true', code: not_owner, message: 'you may only read your own record'}\n  - {name: b, allow: 'false'}\n",
			[]compiledRule{
				{name: "a", code: "not_owner", message: "you may only read your own record"},
				{name: "b", code: DefaultCode, message: DefaultMessage},
			}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := decode(policytest.Node(t, tt.yaml))
			if err != nil {
				t.Fatal(err)
			}
			if len(got) != len(tt.want) {
				t.Fatalf("%d rules, want %d", len(got), len(tt.want))
			}
			for i, w := range tt.want {
				g := got[i]
				if g.name != w.name || g.code != w.code || g.message != w.message || g.prg == nil {
					t.Errorf("rule %d = %q %q %q (program %v), want %q %q %q", i, g.name, g.code, g.message, g.prg != nil, w.name, w.code, w.message)
				}
			}
		})
	}
}

// TestCostEstimates pins the estimates of typical expressions, which the
// docs quote, and checks that the estimate grows with the work.
func TestCostEstimates(t *testing.T) {
	tests := []struct {
		src  string
		want uint64
	}{
		{`"products:write" in principal.scopes`, 66},
		{`request.method == "GET" || "products:write" in principal.scopes`, 69},
		{`principal.claims.sub == request.params.id`, 32},
		{`request.headers["x-api-version"] == "2"`, 4},
		{`ip_in(request.client_ip, "10.0.0.0/8")`, 3},
		{`now.getHours("Europe/Berlin") >= 8 && now.getHours("Europe/Berlin") < 18`, 6},
		{`principal.scopes.exists(s, s.startsWith("products:"))`, 387},
		{`"admin" in principal.claims.roles`, 259},
		{`"admin" in principal.claims.?roles.orValue([])`, 269},
		{`request.path.matches("^/products/[0-9]+$")`, 1846},
		{`principal.scopes.exists(s, principal.scopes.exists(t, s == t))`, 1704387},
	}
	env, err := baseEnv()
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range tests {
		t.Run(tt.src, func(t *testing.T) {
			checked, iss := env.Compile(tt.src)
			if iss.Err() != nil {
				t.Fatal(iss.Err())
			}
			est, err := env.EstimateCost(checked, estimator{})
			if err != nil {
				t.Fatal(err)
			}
			if est.Max != tt.want {
				t.Errorf("estimated cost = %d, want %d", est.Max, tt.want)
			}
		})
	}
}

// TestConfigErrorsTogether checks that independent problems are reported
// in one load, each at its place, and that every rule that does not
// compile is reported.
func TestConfigErrorsTogether(t *testing.T) {
	yaml := "rules:\n  - {name: a, allow: 'true', code: Bad}\n  - {name: a, allow: ''}\n"
	_, err := New(policytest.Node(t, yaml), policytest.Env())
	policytest.WantConfigErrors(t, err,
		policytest.ConfigErrorAt{Line: 2, Path: "rules[0].code"},
		policytest.ConfigErrorAt{Line: 3, Path: "rules[1].name"},
		policytest.ConfigErrorAt{Line: 3, Path: "rules[1].allow"},
	)
	_, err = New(policytest.Node(t, "rules:\n  - {name: a, allow: '1'}\n  - {name: b, allow: 'nosuchvar'}\n"), policytest.Env())
	policytest.WantConfigErrors(t, err,
		policytest.ConfigErrorAt{Line: 2, Path: "rules[0].allow"},
		policytest.ConfigErrorAt{Line: 3, Path: "rules[1].allow"},
	)
}
