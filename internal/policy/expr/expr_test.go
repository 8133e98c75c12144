package expr

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"cel.dev/cel-go/cel"
	"cel.dev/cel-go/interpreter"

	"github.com/gatehouse/gatehouse/internal/policy"
	"github.com/gatehouse/gatehouse/internal/policy/policytest"
	"github.com/gatehouse/gatehouse/internal/router"
)

func newExpr(t testing.TB, yaml string) *Expr {
	t.Helper()
	p, err := New(policytest.Node(t, yaml), policytest.Env())
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return p.(*Expr)
}

// allow is the YAML of one allow expression, quoted for YAML.
func allow(src string) string {
	return "allow: '" + strings.ReplaceAll(src, "'", "''") + "'\n"
}

// testExchange is a GET /products/42?page=2&tag=a&tag=b from 192.0.2.1
// by alice, with JSON-typed claims as a JWT's decode to.
func testExchange() *policy.Exchange {
	r := httptest.NewRequest("GET", "http://api.example/products/42?page=2&tag=a&tag=b&q=caf%C3%A9+au+lait", nil)
	r.Header.Set("X-Api-Version", "2")
	r.Header.Add("Accept", "application/json")
	r.Header.Add("Accept", "text/plain")
	ex := policytest.Exchange(r)
	ex.Principal = &policy.Principal{
		Subject: "alice", ClientID: "shop", Consumer: "shop-app", Method: "jwt",
		Scopes: []string{"openid", "products:read"},
		Claims: map[string]any{
			"sub":            "42",
			"level":          3.0, // JSON numbers decode to float64
			"ratio":          0.5,
			"email_verified": true,
			"roles":          []any{"reader", "admin"},
			"address":        map[string]any{"country": "DE", "zip": "10115"},
			"groups":         []any{map[string]any{"name": "ops"}},
			"nothing":        nil,
		},
	}
	ex.Params = []router.Param{{Key: "id", Value: "42"}, {Key: "slug", Value: "chair"}}
	return ex
}

func TestDecisions(t *testing.T) {
	tests := []struct {
		name  string
		src   string
		allow bool
	}{
		// principal
		{"scope held", `"products:read" in principal.scopes`, true},
		{"scope lacking", `"products:write" in principal.scopes`, false},
		{"method or scope", `request.method == "GET" || "products:write" in principal.scopes`, true},
		{"scope count", `principal.scopes.size() == 2`, true},
		{"scope prefix", `principal.scopes.exists(s, s.startsWith("products:"))`, true},
		{"subject", `principal.subject == "alice"`, true},
		{"client and consumer", `principal.client_id == "shop" && principal.consumer == "shop-app"`, true},
		{"proof method", `principal.method == "jwt"`, true},
		{"authenticated", `principal.authenticated`, true},
		// claims of JSON types
		{"string claim vs param", `principal.claims.sub == request.params.id`, true},
		{"number claim vs int", `principal.claims.level == 3`, true},
		{"number claim vs double", `principal.claims.level >= 3.0`, true},
		{"number claim ordering with int", `principal.claims.level > 2 && principal.claims.level < 4`, true},
		{"fraction", `principal.claims.ratio < 1`, true},
		{"number is double", `type(principal.claims.level) == double`, true},
		{"bool claim", `principal.claims.email_verified == true`, true},
		{"list claim", `"admin" in principal.claims.roles`, true},
		{"list claim miss", `"root" in principal.claims.roles`, false},
		{"list claim exists", `principal.claims.roles.exists(r, r == "reader")`, true},
		{"nested map claim", `principal.claims.address.country == "DE"`, true},
		{"list of maps", `principal.claims.groups.exists(g, g.name == "ops")`, true},
		{"null claim", `principal.claims.nothing == null`, true},
		{"has claim", `has(principal.claims.sub) && !has(principal.claims.dept)`, true},
		{"in claims", `"sub" in principal.claims`, true},
		{"optional claim", `principal.claims.?dept.orValue("none") == "none"`, true},
		{"optional nested", `principal.claims.?address.?country.orValue("") == "DE"`, true},
		// request
		{"method", `request.method == "GET"`, true},
		{"path", `request.path == "/products/42"`, true},
		{"path regex", `request.path.matches("^/products/[0-9]+$")`, true},
		{"host", `request.host == "api.example"`, true},
		{"scheme", `request.scheme == "http"`, true},
		{"header by lower-case name", `request.headers["x-api-version"] == "2"`, true},
		{"header any spelling", `request.headers["X-API-VERSION"] == "2"`, true},
		{"header values joined", `request.headers["accept"] == "application/json, text/plain"`, true},
		{"header present", `"accept" in request.headers`, true},
		{"header absent", `"x-debug" in request.headers`, false},
		{"header optional", `request.headers[?"x-debug"].orValue("off") == "off"`, true},
		{"header names are lower case", `request.headers.exists(k, k == "x-api-version")`, true},
		{"header map size", `request.headers.size() == 2`, true},
		{"query first value", `request.query.tag == "a"`, true},
		{"query by index", `request.query["page"] == "2"`, true},
		{"query decoded", `request.query.q == "café au lait"`, true},
		{"query absent", `has(request.query.sort)`, false},
		{"query size", `request.query.size() == 3`, true},
		{"params", `request.params.id == "42" && request.params.slug == "chair"`, true},
		{"params size", `request.params.size() == 2`, true},
		{"client ip", `request.client_ip == "192.0.2.1"`, true},
		{"ip_in constant", `ip_in(request.client_ip, "192.0.2.0/24")`, true},
		{"ip_in constant miss", `ip_in(request.client_ip, "10.0.0.0/8")`, false},
		{"ip_in single address", `ip_in(request.client_ip, "192.0.2.1")`, true},
		{"ip_in from a header", `ip_in(request.client_ip, request.headers["x-api-version"] + "")`, false},
		// now (policytest clock: 2025-01-02 03:04:05 UTC, a Thursday)
		{"now hours utc", `now.getHours() == 3`, true},
		{"now in a zone", `now.getHours("Europe/Berlin") == 4`, true},
		{"now offset zone", `now.getHours("-05:00") == 22 && now.getDayOfWeek("-05:00") == 3`, true},
		{"now offset with minutes", `now.getMinutes("+05:30") == 34`, true},
		{"office hours", `now.getDayOfWeek("Europe/Berlin") in [1, 2, 3, 4, 5] && now.getHours("Europe/Berlin") >= 8 && now.getHours("Europe/Berlin") < 18`, false},
		{"now compared", `now > timestamp("2025-01-01T00:00:00Z") && now - timestamp("2025-01-02T03:00:00Z") == duration("4m5s")`, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newExpr(t, allow(tt.src))
			checkVerdict(t, e.Apply(context.Background(), testExchange()), tt.allow, DefaultCode, DefaultMessage)
		})
	}
}

func checkVerdict(t *testing.T, err error, allowed bool, code, message string) *policy.Denial {
	t.Helper()
	if allowed {
		if err != nil {
			t.Fatalf("Apply = %v, want allowed", err)
		}
		return nil
	}
	d, ok := policy.AsDenial(err)
	if !ok {
		t.Fatalf("Apply = %v, want a Denial", err)
	}
	if d.StatusCode() != http.StatusForbidden || d.Code != code || d.Detail != message {
		t.Errorf("Denial = %d %q %q, want 403 %q %q", d.StatusCode(), d.Code, d.Detail, code, message)
	}
	if d.Err == nil || !strings.HasPrefix(d.Err.Error(), "expr: rule ") {
		t.Errorf("Denial.Err = %v, want the rule's cause for the log", d.Err)
	}
	return d
}

// TestZoneConstantsMatchCEL holds the zone accessors planned with a
// constant zone to CEL's own, which a non-constant zone still uses.
func TestZoneConstantsMatchCEL(t *testing.T) {
	accessors := []string{"getFullYear", "getMonth", "getDayOfYear", "getDayOfMonth", "getDate",
		"getDayOfWeek", "getHours", "getMinutes", "getSeconds", "getMilliseconds"}
	zones := []string{"UTC", "Europe/Berlin", "America/New_York", "Asia/Kolkata", "+05:30", "-03:00", "-00:30"}
	when := []time.Time{
		time.Date(2025, 1, 1, 0, 30, 0, 123e6, time.UTC),
		time.Date(2024, 12, 31, 23, 59, 59, 999e6, time.UTC),
		time.Date(2024, 3, 31, 1, 30, 0, 0, time.UTC), // Berlin's DST switch
	}
	for _, acc := range accessors {
		for _, z := range zones {
			// The zone comes from the query in the second form, so CEL's
			// own overload runs.
			src := `now.` + acc + `("` + z + `") == now.` + acc + `(request.query.tz)`
			e := newExpr(t, allow(src))
			for _, w := range when {
				e.now = func() time.Time { return w }
				ex := policytest.Exchange(httptest.NewRequest("GET", "/?tz="+strings.ReplaceAll(z, "+", "%2B"), nil))
				if err := e.Apply(context.Background(), ex); err != nil {
					t.Errorf("%s(%q) at %v: constant and CEL differ: %v", acc, z, w, err)
				}
			}
		}
	}
}

// TestIPInConstantsMatch holds ip_in with a constant prefix, planned at
// load, to ip_in with the same prefix computed at run time.
func TestIPInConstantsMatch(t *testing.T) {
	prefixes := []string{"10.0.0.0/8", "192.0.2.7", "2001:db8::/32", "::ffff:192.0.2.0/120", "0.0.0.0/0", "::/0"}
	addrs := []string{"10.1.2.3", "11.0.0.1", "192.0.2.7", "192.0.2.8", "2001:db8::1", "2001:db9::1", "::ffff:10.1.2.3"}
	for _, p := range prefixes {
		constant := newExpr(t, allow(`ip_in(request.client_ip, "`+p+`")`))
		dynamic := newExpr(t, allow(`ip_in(request.client_ip, request.query.p)`))
		for _, a := range addrs {
			ex := policytest.Exchange(httptest.NewRequest("GET", "/?p="+p, nil))
			ex.ClientIP = netip.MustParseAddr(a).Unmap()
			got := constant.Apply(context.Background(), ex) == nil
			want := dynamic.Apply(context.Background(), ex) == nil
			if got != want {
				t.Errorf("ip_in(%s, %s): constant %v, computed %v", a, p, got, want)
			}
		}
	}
	// Spot checks of the semantics themselves.
	for _, tt := range []struct {
		addr, prefix string
		want         bool
	}{
		{"10.1.2.3", "10.0.0.0/8", true},
		{"::ffff:10.1.2.3", "10.0.0.0/8", true},
		{"10.1.2.3", "::/0", false},
		{"2001:db8::1", "2001:db8::/32", true},
	} {
		e := newExpr(t, allow(`ip_in(request.client_ip, "`+tt.prefix+`")`))
		ex := policytest.Exchange(httptest.NewRequest("GET", "/", nil))
		ex.ClientIP = netip.MustParseAddr(tt.addr).Unmap()
		if got := e.Apply(context.Background(), ex) == nil; got != tt.want {
			t.Errorf("ip_in(%s, %s) = %v, want %v", tt.addr, tt.prefix, got, tt.want)
		}
	}
}

func TestUnknownClientIP(t *testing.T) {
	e := newExpr(t, allow(`request.client_ip == "" && !ip_in(request.client_ip, "0.0.0.0/0") && !has(request.client_ip)`))
	ex := testExchange()
	ex.ClientIP = netip.Addr{}
	checkVerdict(t, e.Apply(context.Background(), ex), true, "", "")
}

func TestTLSScheme(t *testing.T) {
	e := newExpr(t, allow(`request.scheme == "https"`))
	r := httptest.NewRequest("GET", "https://api.example/", nil)
	r.TLS = &tls.ConnectionState{}
	checkVerdict(t, e.Apply(context.Background(), policytest.Exchange(r)), true, "", "")
}

func TestNoPrincipal(t *testing.T) {
	tests := []struct {
		name    string
		src     string
		allow   bool
		evalErr string // a failing evaluation's error, in Denial.Err
	}{
		{"not authenticated", `!principal.authenticated`, true, ""},
		{"empty fields", `principal.subject == "" && principal.client_id == "" && principal.consumer == "" && principal.method == ""`, true, ""},
		{"no scopes", `"products:read" in principal.scopes`, false, ""},
		{"empty scopes", `principal.scopes.size() == 0 && !has(principal.scopes)`, true, ""},
		{"no claims", `principal.claims.size() == 0`, true, ""},
		{"missing claim", `principal.claims.sub == "42"`, false, "no such key: sub"},
		{"anonymous reads only", `principal.authenticated || request.method == "GET"`, true, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newExpr(t, allow(tt.src))
			ex := testExchange()
			ex.Principal = nil
			d := checkVerdict(t, e.Apply(context.Background(), ex), tt.allow, DefaultCode, DefaultMessage)
			if tt.evalErr != "" && (d == nil || !strings.Contains(d.Err.Error(), tt.evalErr)) {
				t.Errorf("Denial.Err = %v, want it to say %q", d.Err, tt.evalErr)
			}
		})
	}
}

func TestEvaluationErrorsDeny(t *testing.T) {
	tests := []struct {
		name, src, evalErr string
	}{
		{"missing claim", `principal.claims.dept == "ops"`, "no such key: dept"},
		{"missing header", `request.headers["x-tenant"] == "acme"`, "no such key"},
		{"missing param", `request.params.nope == "1"`, "no such key"},
		{"claim of another type", `principal.claims.sub > 3`, "no such overload"},
		{"bad prefix at run time", `ip_in(request.client_ip, request.query.page)`, `"2" is not an IP address or CIDR prefix`},
		{"bad zone at run time", `now.getHours(request.query.page) == 1`, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newExpr(t, "rules:\n  - name: r\n    allow: '"+strings.ReplaceAll(tt.src, "'", "''")+"'\n    code: not_allowed\n    message: no entry\n")
			d := checkVerdict(t, e.Apply(context.Background(), testExchange()), false, "not_allowed", "no entry")
			if !strings.Contains(d.Err.Error(), "evaluation failed") || !strings.Contains(d.Err.Error(), tt.evalErr) {
				t.Errorf("Denial.Err = %v, want an evaluation failure saying %q", d.Err, tt.evalErr)
			}
			if strings.Contains(d.Detail, "no such") || strings.Contains(d.Detail, "overload") {
				t.Errorf("detail %q shows the internal error", d.Detail)
			}
		})
	}
}

func TestRules(t *testing.T) {
	const yaml = `
rules:
  - name: reader
    allow: '"products:read" in principal.scopes'
    code: missing_read
  - name: owner-only
    allow: 'principal.claims.sub == request.params.id'
    code: not_owner
    message: you may only read your own record
  - name: verified
    allow: 'principal.claims.email_verified == true'
    message: verify your email first
`
	tests := []struct {
		name          string
		edit          func(ex *policy.Exchange)
		code, message string // "" allowed
		rule          string
	}{
		{"all pass", func(*policy.Exchange) {}, "", "", ""},
		{"first fails", func(ex *policy.Exchange) { ex.Principal.Scopes = nil }, "missing_read", DefaultMessage, "reader"},
		{"second fails", func(ex *policy.Exchange) { ex.Params[0].Value = "43" }, "not_owner", "you may only read your own record", "owner-only"},
		{"first failing reported", func(ex *policy.Exchange) {
			ex.Params[0].Value = "43"
			ex.Principal.Claims["email_verified"] = false
		}, "not_owner", "you may only read your own record", "owner-only"},
		{"third fails", func(ex *policy.Exchange) { ex.Principal.Claims["email_verified"] = false }, DefaultCode, "verify your email first", "verified"},
		{"third errors", func(ex *policy.Exchange) { delete(ex.Principal.Claims, "email_verified") }, DefaultCode, "verify your email first", "verified"},
	}
	e := newExpr(t, yaml)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ex := testExchange()
			tt.edit(ex)
			d := checkVerdict(t, e.Apply(context.Background(), ex), tt.code == "", tt.code, tt.message)
			if d != nil && !strings.Contains(d.Err.Error(), `rule "`+tt.rule+`"`) {
				t.Errorf("Denial.Err = %v, want it to name rule %q", d.Err, tt.rule)
			}
		})
	}
}

// TestNowIsReadAtEvaluation checks that now comes from env.Now on every
// request, not once at load.
func TestNowIsReadAtEvaluation(t *testing.T) {
	var mu sync.Mutex
	clock := time.Date(2025, 1, 6, 7, 59, 0, 0, time.UTC) // a Monday
	env := policytest.Env()
	env.Now = func() time.Time { mu.Lock(); defer mu.Unlock(); return clock }
	p, err := New(policytest.Node(t, allow(`now.getDayOfWeek("UTC") in [1, 2, 3, 4, 5] && now.getHours("UTC") >= 8 && now.getHours("UTC") < 18`)), env)
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		at    time.Time
		allow bool
	}{
		{time.Date(2025, 1, 6, 7, 59, 0, 0, time.UTC), false},
		{time.Date(2025, 1, 6, 8, 0, 0, 0, time.UTC), true},
		{time.Date(2025, 1, 6, 17, 59, 59, 0, time.UTC), true},
		{time.Date(2025, 1, 6, 18, 0, 0, 0, time.UTC), false},
		{time.Date(2025, 1, 4, 12, 0, 0, 0, time.UTC), false}, // Saturday
	} {
		mu.Lock()
		clock = tt.at
		mu.Unlock()
		if got := p.Apply(context.Background(), testExchange()) == nil; got != tt.allow {
			t.Errorf("at %v: allowed = %v, want %v", tt.at, got, tt.allow)
		}
	}
}

func TestCostLimitAtRunTime(t *testing.T) {
	// The estimate assumes at most 64 scopes; a principal with thousands
	// runs into the run-time limit.
	e := newExpr(t, allow(`principal.scopes.exists(s, s == "never")`)+"max_cost: 1000\n")
	ex := testExchange()
	// Few scopes: refused by the expression, not by the limit.
	if d := checkVerdict(t, e.Apply(context.Background(), ex), false, DefaultCode, DefaultMessage); errors.Is(d.Err, ErrCostLimit) {
		t.Fatalf("with 2 scopes: %v, want a plain refusal", d.Err)
	}
	for i := range 5000 {
		ex.Principal.Scopes = append(ex.Principal.Scopes, "s"+strconv.Itoa(i))
	}
	d := checkVerdict(t, e.Apply(context.Background(), ex), false, DefaultCode, DefaultMessage)
	if !errors.Is(d.Err, ErrCostLimit) {
		t.Errorf("Denial.Err = %v, want ErrCostLimit", d.Err)
	}
}

func TestContextCancellation(t *testing.T) {
	e := newExpr(t, allow(`principal.scopes.exists(s, s == "never")`)+"max_cost: 100000000\n")
	ex := testExchange()
	for i := range 10000 {
		ex.Principal.Scopes = append(ex.Principal.Scopes, "s"+strconv.Itoa(i))
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	err := e.Apply(ctx, ex)
	if err == nil {
		t.Fatal("Apply with a cancelled context allowed the request")
	}
	if _, ok := policy.AsDenial(err); ok {
		t.Errorf("Apply = %v, want an internal error, not a Denial", err)
	}
	if !errors.Is(err, context.Canceled) {
		t.Errorf("Apply = %v, want it to wrap context.Canceled", err)
	}
	// The same request with a live context is refused by the rule.
	checkVerdict(t, e.Apply(context.Background(), ex), false, DefaultCode, DefaultMessage)
}

func TestDeadline(t *testing.T) {
	e := newExpr(t, allow(`principal.scopes.all(s, s.matches("^[a-z0-9:]+$"))`)+"max_cost: 100000000\n")
	ex := testExchange()
	for i := range 200000 {
		ex.Principal.Scopes = append(ex.Principal.Scopes, "s"+strconv.Itoa(i))
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Millisecond)
	defer cancel()
	start := time.Now()
	err := e.Apply(ctx, ex)
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Apply = %v, want it to wrap context.DeadlineExceeded", err)
	}
	if el := time.Since(start); el > time.Second {
		t.Errorf("evaluation ran %v past a 1ms deadline", el)
	}
}

func TestConcurrentApply(t *testing.T) {
	e := newExpr(t, allow(`principal.claims.sub == request.params.id && request.headers["x-api-version"] == "2" && request.query.page == "2"`))
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			for i := range 200 {
				ex := testExchange()
				want := (g+i)%2 == 0
				if !want {
					ex.Params[0].Value = "other"
				}
				if got := e.Apply(context.Background(), ex) == nil; got != want {
					t.Errorf("goroutine %d request %d: allowed %v, want %v", g, i, got, want)
					return
				}
			}
		})
	}
	wg.Wait()
}

func TestDenialsAreNotShared(t *testing.T) {
	e := newExpr(t, allow(`false`))
	d1, _ := policy.AsDenial(e.Apply(context.Background(), testExchange()))
	d2, _ := policy.AsDenial(e.Apply(context.Background(), testExchange()))
	d1.WithErr(errors.New("changed"))
	if d2.Err.Error() == "changed" {
		t.Error("two refusals share one Denial")
	}
}

func TestQueryFirst(t *testing.T) {
	tests := []struct {
		raw, key string
		want     string
		found    bool
	}{
		{"a=1&b=2", "b", "2", true},
		{"a=1&a=2", "a", "1", true},
		{"a", "a", "", true},
		{"a=", "a", "", true},
		{"a%20b=c+d", "a b", "c d", true},
		{"bad=%zz&bad=ok", "bad", "ok", true},
		{"x=1;y=2&y=3", "y", "3", true},
		{"", "a", "", false},
		{"&&a=1", "a", "1", true},
		{"ab=1", "a", "", false},
	}
	for _, tt := range tests {
		got, found := queryFirst(tt.raw, tt.key)
		if got != tt.want || found != tt.found {
			t.Errorf("queryFirst(%q, %q) = %q %v, want %q %v", tt.raw, tt.key, got, found, tt.want, tt.found)
		}
	}
}

// TestConstantsPlannedOnce checks that constant prefixes and zones are
// planned into their precomputed forms.
func TestConstantsPlannedOnce(t *testing.T) {
	tests := []struct {
		src  string
		want string
	}{
		{`ip_in(request.client_ip, "10.0.0.0/8")`, "*expr.ipInConst"},
		{`now.getHours("Europe/Berlin") > 8`, "*expr.zoneConst"},
		{`now.getDate("+02:00") > 8`, "*expr.zoneConst"},
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
			var planned []string
			_, err := env.Program(checked, cel.CustomDecoratorV2(func(i interpreter.InterpretableV2) (interpreter.InterpretableV2, error) {
				out, err := constantDecorator(i)
				if out != i {
					planned = append(planned, fmt.Sprintf("%T", out))
				}
				return out, err
			}))
			if err != nil {
				t.Fatal(err)
			}
			if len(planned) != 1 || planned[0] != tt.want {
				t.Errorf("planned %v, want [%s]", planned, tt.want)
			}
		})
	}
}
