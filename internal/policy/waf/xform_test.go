package waf

import (
	"fmt"
	"math/rand/v2"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/corazawaf/coraza/v3"
	"github.com/corazawaf/coraza/v3/experimental/plugins"
	"github.com/corazawaf/coraza/v3/experimental/plugins/plugintypes"
	"rsc.io/binaryregexp"
)

// exactTransforms claims exact(lower(v)) == lower(coraza(v)) for every
// ASCII v. Checked against Coraza's own implementations on random values
// (mixed case, biased to the bytes the transformations act on) and on
// edge cases: one rule per transformation records what it sees.
func TestExactTransforms(t *testing.T) {
	recordOnce.Do(func() {
		plugins.RegisterOperator("ghrecord", func(o plugintypes.OperatorOptions) (plugintypes.Operator, error) {
			return recordOp{name: o.Arguments}, nil
		})
	})
	names := slices.Sorted(func(yield func(string) bool) {
		for n := range exactTransforms {
			if !yield(n) {
				return
			}
		}
	})
	var rules strings.Builder
	for i, n := range names {
		fmt.Fprintf(&rules, "SecRule ARGS_GET \"@ghrecord x%s\" \"id:%d,phase:1,pass,nolog,t:none,t:%s\"\n", n, 300+i, n)
	}
	eng, err := coraza.NewWAF(coraza.NewWAFConfig().WithDirectives("SecRuleEngine On\n" + rules.String()))
	if err != nil {
		t.Fatal(err)
	}
	const alphabet = "aZbY09 ./\\:.. /;,\"'^()\t\n\r\v\f\x00-_%%%++uU4Af7*#<!>--"
	rng := rand.New(rand.NewPCG(7, 8))
	values := []string{"%41", "%4a%4A", "%", "%4", "%zz", "a%u", "%u004", "%u0041", "%U0041x", "%u%41", "%%41", "+", "a+b", "%2b", "%80", "%7f", "%25", "%2525", "%e9", ".", "..", "...", "/", "./", "a/..", "/a/b/", "C:", "c:\\x", "a:b", "a/b:c/d:e", "x.", "x ", "a. /b", " ", "  ", "a,;b", "a /b", "a (b", "A\\\"B", "//a//", "a/./b/", "a/*b*/c", "<!--x-->", "a--b", "a---b", "<!-->", "x#y", "*/*", "/*/"}
	for range 5000 {
		b := make([]byte, 1+rng.IntN(14))
		for i := range b {
			b[i] = alphabet[rng.IntN(len(alphabet))]
		}
		values = append(values, string(b))
	}
	changed, stopped := map[string]int{}, map[string]int{}
	for _, v := range values {
		rec := recordRun(eng, v)
		for _, n := range names {
			got := rec["x"+n]
			if len(got) != 1 {
				t.Fatalf("%s on %q: recorded %q, want one value", n, v, got)
			}
			want := strings.ToLower(got[0])
			ours := exactTransforms[n](strings.ToLower(v))
			if !ascii(ours) {
				// Not restated (urlDecodeUni past ASCII, %uXXXX): the
				// walk stops there, whatever Coraza makes of it.
				if n != "urldecodeuni" {
					t.Errorf("%s(%q): ours %q is not ASCII", n, v, ours)
				}
				stopped[n]++
				continue
			}
			if ours != want {
				t.Errorf("%s(%q): ours %q, Coraza's lowered %q", n, v, ours, want)
			}
			if want != strings.ToLower(v) {
				changed[n]++
			}
		}
	}
	// Values that the transformation changes: the interesting ones.
	for _, n := range names {
		if changed[n] < 100 {
			t.Errorf("%s changed only %d values", n, changed[n])
		}
	}
	if stopped["urldecodeuni"] > len(values)/2 {
		t.Errorf("urlDecodeUni is restated on only %d of %d values", len(values)-stopped["urldecodeuni"], len(values))
	}
}

// The gate walks a rule's chain on values holding its triggers: a rule
// with t:removeWhitespace is removed for a value with spaces whose
// whitespace-free form fails its pre-filter, and kept when that form
// holds its literals; a value whose chain meets a step without an exact
// form (here urlDecodeUni, built without its own) makes the rule run.
func TestGateWalksChains(t *testing.T) {
	g := &gateSet{chains: [][]chainStep{
		{{trig: transformTriggers["urldecodeuni"]}, {trig: transformTriggers["removewhitespace"], exact: exactTransforms["removewhitespace"]}},
	}}
	g.ac = newACMatcher([][]string{{"unionselect"}})
	r := &gateRule{id: 1, trig: trigHigh | trigPct | trigSpace | trigCtlSpace, chain: 0, minLen: 11, plainMinLen: 11, sets: []int32{0}, plainSets: []int32{0}}
	for _, c := range []struct {
		value      string
		impossible bool
	}{
		{"Acme Outdoor Shoe", true},       // spaces, no keyword once removed
		{"UNION SELECT 1", false},         // "unionselect1": may match
		{"uni\ton sel ect", false},        // control whitespace too
		{"union%20select", false},         // '%': urlDecodeUni has no exact form
		{"union selec", true},             // too short once spaces are gone
		{"caf\u00e9 union select", false}, // not ASCII
		{"plainvalue", true},              // no triggers: the fast path
	} {
		t.Run(c.value, func(t *testing.T) {
			sc := scratchPool.Get().(*gateScratch)
			defer sc.release()
			sc.reset(g)
			got := sc.impossible(r, sc.value(c.value))
			if got != c.impossible {
				t.Errorf("got impossible %v, want %v", got, c.impossible)
			}
		})
	}
}

// TestGateRemembersDecisions: a scratch keeps its values, and each value
// the gate's decisions, from one run to the next for the same gate set
// (gateScratch.cacheOf), forgets them for another gate set, whose rules
// decide differently, and past its bounds.
func TestGateRemembersDecisions(t *testing.T) {
	newGate := func(lit string) (*gateSet, *gateRule) {
		g := &gateSet{chains: [][]chainStep{{}}, nrules: 1}
		g.ac = newACMatcher([][]string{{lit}})
		g.phase[1] = []gateRule{{id: 1, idx: 0, trig: trigHigh, minLen: len(lit), plainMinLen: len(lit), sets: []int32{0}, plainSets: []int32{0}}}
		return g, &g.phase[1][0]
	}
	g1, r1 := newGate("unionselect")
	g2, r2 := newGate("plainvalue")
	sc := &gateScratch{byValue: map[string]*gateValue{}, walked: map[walkKey]*gateValue{}, inter: map[walkKey][]*gateValue{}}
	run := func(g *gateSet, r *gateRule, value string) (bool, *gateValue) {
		sc.reset(g)
		defer func() { sc.g = nil }()
		v := sc.value(value)
		return sc.impossible(r, v), v
	}
	imp, v := run(g1, r1, "plainvalue")
	if !imp {
		t.Fatal("g1: plainvalue not impossible")
	}
	if v.dec == nil || v.dec[0]&1 == 0 || v.dec[1]&1 == 0 {
		t.Fatalf("decision not remembered: %v", v.dec)
	}
	if imp, w := run(g1, r1, "plainvalue"); !imp || w != v {
		t.Fatalf("second run: impossible %v, same value %v", imp, w == v)
	}
	if imp, _ := run(g2, r2, "plainvalue"); imp {
		t.Fatal("g2 got g1's decision: plainvalue holds g2's literal")
	}
	sc.reset(g2)
	for i := 0; i <= maxCachedValues; i++ {
		sc.value("v" + strconv.Itoa(i))
	}
	sc.g = nil
	sc.reset(g2)
	if n := len(sc.byValue); n != 0 {
		t.Fatalf("%d values kept past the bound of %d", n, maxCachedValues)
	}
}

// TestBytesNeedHigh: a byte-oriented expression is a gate candidate that
// no ASCII value matches exactly when every match needs a byte past ASCII
// (CRS 941310), and each such answer agrees with the expression itself on
// ASCII inputs.
func TestBytesNeedHigh(t *testing.T) {
	for _, c := range []struct {
		expr string
		want bool
	}{
		{`\x{bc}[^>\x{be}]*[>\x{be}]|<[^\x{be}]*\x{be}`, true},
		{`[\x{80}-\x{ff}]+`, true},
		{`(?i)x\x{c0}`, true},
		{`\x{bc}|a`, false},
		{`^\x{bc}?$`, false},
		{`<[^\x{be}]*>`, false},
		{`\bfoo\x{ff}?`, false},
	} {
		if got := bytesNeedHigh(c.expr); got != c.want {
			t.Errorf("bytesNeedHigh(%q) = %v, want %v", c.expr, got, c.want)
		}
		if !c.want {
			continue
		}
		re := binaryregexp.MustCompile(c.expr)
		rng := rand.New(rand.NewPCG(3, 4))
		for range 2000 {
			b := make([]byte, rng.IntN(12))
			for i := range b {
				b[i] = byte(rng.IntN(0x80))
			}
			if re.Match(b) {
				t.Fatalf("%q matches ASCII %q", c.expr, b)
			}
		}
	}
}

// TestGateLibinjection: a @detectSQLi or @detectXSS rule is removable on
// values libinjection clears as the operator sees them, and runs on
// values it flags or whose chain's triggers (here '%' for urlDecodeUni)
// the gate does not walk for it.
func TestGateLibinjection(t *testing.T) {
	g := &gateSet{chains: [][]chainStep{{{trig: transformTriggers["urldecodeuni"], exact: exactTransforms["urldecodeuni"]}}}, nrules: 2}
	g.ac = newACMatcher(nil)
	sqli := &gateRule{id: 1, idx: 0, trig: trigHigh | trigPct, multi: true, match: libinjectionOps["@detectSQLi"]}
	xss := &gateRule{id: 2, idx: 1, trig: trigHigh | trigPct, match: libinjectionOps["@detectXSS"]}
	for _, c := range []struct {
		r          *gateRule
		value      string
		impossible bool
	}{
		{sqli, "hello world", true},
		{sqli, "Mozilla/5.0 (X11; Linux x86_64)", true},
		{sqli, "1' or '1'='1", false},
		{sqli, "1%27%20or%20%271%27%3D%271", false}, // '%': not walked
		{sqli, "caf\u00e9", false},                  // not ASCII
		{xss, "plain text", true},
		{xss, "<script>alert(1)</script>", false},
		{xss, "%3Cscript%3Ealert(1)%3C/script%3E", false},
	} {
		sc := scratchPool.Get().(*gateScratch)
		sc.reset(g)
		if got := sc.impossible(c.r, sc.value(c.value)); got != c.impossible {
			t.Errorf("rule %d on %q: impossible %v, want %v", c.r.id, c.value, got, c.impossible)
		}
		sc.release()
	}
}

// TestByteRangeOp: byteRangeOp parses and evaluates @validateByteRange
// as Coraza does, on the CRS's arguments and random values.
func TestByteRangeOp(t *testing.T) {
	args := []string{"1-255", "9,10,13,32-126,128-255", "32-36,38-126", "38,44-46,48-58,61,65-90,95,97-122", " 65-70, 97"}
	var rules strings.Builder
	rules.WriteString("SecRuleEngine DetectionOnly\n")
	for i, a := range args {
		if byteRangeOp(a) == nil {
			t.Fatalf("%q not parsed", a)
		}
		fmt.Fprintf(&rules, "SecRule ARGS_GET:a \"@validateByteRange %s\" \"id:%d,phase:1,pass,log,t:none\"\n", a, 400+i)
	}
	for _, bad := range []string{"", "1-256", "x", "5-", "-1", "65 - 70"} {
		if byteRangeOp(bad) != nil {
			t.Errorf("%q parsed", bad)
		}
	}
	eng, err := coraza.NewWAF(coraza.NewWAFConfig().WithDirectives(rules.String()))
	if err != nil {
		t.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(5, 6))
	values := []string{"", "a", "\x00", "\xff", "%", "ABC", "A-Z&"}
	for range 1000 {
		b := make([]byte, 1+rng.IntN(6))
		for i := range b {
			b[i] = byte(rng.IntN(256))
		}
		values = append(values, string(b))
	}
	for _, v := range values {
		c := &crsCase{method: "GET", uri: "/?a=" + url.QueryEscape(v), version: "HTTP/1.1"}
		got := c.run(eng)
		for i, a := range args {
			if want := byteRangeOp(a)(v); want != slices.Contains(got, 400+i) {
				t.Errorf("%q on %q: ours %v, Coraza matched %v", a, v, want, got)
			}
		}
	}
}
