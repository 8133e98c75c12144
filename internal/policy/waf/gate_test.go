package waf

import (
	"fmt"
	"maps"
	"math/rand/v2"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/corazawaf/coraza/v3"
	"github.com/corazawaf/coraza/v3/experimental/plugins"
	"github.com/corazawaf/coraza/v3/experimental/plugins/plugintypes"

	"github.com/gatehouse/gatehouse/internal/policy/policytest"
)

// matchedIDs runs r through the engine as Apply does and returns the ids
// of the rules that matched, sorted.
func matchedIDs(t testing.TB, w *WAF, r *http.Request) []int {
	t.Helper()
	tx := w.engine.NewTransaction()
	defer tx.Close()
	if _, err := w.feed(policytest.Exchange(r), tx, false); err != nil {
		t.Fatal(err)
	}
	var ids []int
	for _, m := range tx.MatchedRules() {
		if id := m.Rule().ID(); id != gatePhase1ID && id != gatePhase2ID {
			ids = append(ids, id)
		}
	}
	slices.Sort(ids)
	return ids
}

// ungated returns the waf policy built from yaml with the gate off: the
// same rules and pre-filtered operators, every rule evaluated.
func ungated(t testing.TB, yaml string) *WAF {
	t.Helper()
	w := oursWAF(t, yaml)
	eng, err := newEngine(directives(w.s), engineOpts{fast: true, extra: w.s.directives})
	if err != nil {
		t.Fatal(err)
	}
	return &WAF{engine: eng, release: func() error { return nil }, s: w.s, log: discard}
}

// corpusRequests are every corpus request: attacks in the query, a JSON
// body, a cookie and a header, and the benign requests.
func corpusRequests(t testing.TB) map[string]func() *http.Request {
	out := map[string]func() *http.Request{}
	for i, a := range readJSONL[attack](t, "testdata/attacks.jsonl") {
		out[fmt.Sprintf("attack %d in %s", i, a.In)] = a.request
		for _, in := range []string{"cookie", "header"} {
			b := a
			b.In = in
			if b.fits() {
				out[fmt.Sprintf("attack %d in %s", i, in)] = b.request
			}
		}
	}
	for _, b := range readJSONL[benign](t, "testdata/benign.jsonl") {
		out[b.Name] = b.request
	}
	return out
}

// The gate may only remove rules that cannot match: on every corpus
// request, the gated and the ungated engine match the same rules. And it
// must remove some, or this test proves nothing.
func TestGateNeverSkipsAMatch(t *testing.T) {
	gated, plain := oursWAF(t, ""), ungated(t, "")
	reqs := corpusRequests(t)
	if len(reqs) < 900 {
		t.Fatalf("got %d corpus requests, want at least 900", len(reqs))
	}
	g := gateOf(t, gated)
	before := g.removed.Load()
	for name, req := range reqs {
		got, want := matchedIDs(t, gated, req()), matchedIDs(t, plain, req())
		if !slices.Equal(got, want) {
			t.Errorf("%s: gated matched %v, ungated %v", name, got, want)
		}
	}
	removed := g.removed.Load() - before
	t.Logf("%d requests; the gate removed %d rule evaluations (%.0f per request)", len(reqs), removed, float64(removed)/float64(len(reqs)))
	if removed < uint64(len(reqs))*50 {
		t.Errorf("the gate removed %d rule evaluations over %d requests, want at least 50 per request", removed, len(reqs))
	}
}

// gateOf returns the gate of w's rule set.
func gateOf(t testing.TB, w *WAF) *gateSet {
	t.Helper()
	if w.gate == nil {
		t.Fatal("no gate")
	}
	return w.gate
}

// Directives that widen rules after the observer saw them turn the gate
// off; exclusions keep it.
func TestGateOffForWideningDirectives(t *testing.T) {
	for _, c := range []struct {
		directive string
		off       bool
	}{
		{`SecRuleUpdateTargetById 942100 "!ARGS:password"`, false},
		{`SecRuleUpdateTargetById 942100 "REQUEST_HEADERS:X-Foo"`, true},
		{`SecRuleUpdateTargetByTag attack-sqli "REQUEST_HEADERS:X-Foo"`, true},
		{`SecRuleUpdateActionById 942100 "t:none"`, true},
		{`SecDefaultAction "phase:2,log,pass,t:urlDecodeUni"`, true},
		{`SecRule ARGS "@rx x" "id:10001,phase:2,pass,nolog"`, false},
	} {
		t.Run(c.directive, func(t *testing.T) {
			g := &gateSet{}
			g.build([]string{c.directive})
			if g.off != c.off {
				t.Errorf("got off %v, want %v", g.off, c.off)
			}
		})
	}
}

// A rule right after a skip:N rule is never removed (removing it would
// shift what the skip skips); the next SecMarker ends that. Its
// pre-filter is still kept, for the quiet path.
func TestGateSkipNeighbours(t *testing.T) {
	w := oursWAF(t, "")
	cand := map[int]bool{}
	kept := map[int]bool{}
	for _, p := range w.gate.phase {
		for _, r := range p {
			if r.removable {
				cand[r.id] = true
			} else {
				kept[r.id] = true
			}
		}
	}
	// CRS 920539 (skip:1) precedes 920540 (@rx (?i)\x5cu[0-9a-f]{4}).
	if cand[920540] {
		t.Error("920540 follows a skip:1 rule and is removable")
	}
	if !kept[920540] {
		t.Error("920540's pre-filter is not kept for the quiet path")
	}
	// 99 at paranoia level 1 (CRS 4.25, default platforms).
	if len(cand) < 90 {
		t.Errorf("got %d candidates, want at least 90", len(cand))
	}
}

// recorded holds, by transformation, the values a rule saw after it.
var (
	recordedMu sync.Mutex
	recorded   = map[string][]string{}
	recordOnce sync.Once
)

// recordRun runs v as the argument a of a GET through eng's phase 1 and
// returns what each ghrecord operator saw, by name.
func recordRun(eng coraza.WAF, v string) map[string][]string {
	recordedMu.Lock()
	clear(recorded)
	recordedMu.Unlock()
	tx := eng.NewTransaction()
	tx.ProcessURI("/?a="+url.QueryEscape(v), "GET", "HTTP/1.1")
	tx.ProcessRequestHeaders()
	tx.Close()
	recordedMu.Lock()
	defer recordedMu.Unlock()
	return maps.Clone(recorded)
}

type recordOp struct{ name string }

func (o recordOp) Evaluate(_ plugintypes.TransactionState, v string) bool {
	recordedMu.Lock()
	recorded[o.name] = append(recorded[o.name], v)
	recordedMu.Unlock()
	return false
}

// transformTriggers claims that each transformation leaves an ASCII value
// without its triggers unchanged or lowercased. Checked against Coraza's
// own implementations: one rule per transformation records what it sees.
func TestTransformTriggers(t *testing.T) {
	recordOnce.Do(func() {
		plugins.RegisterOperator("ghrecord", func(o plugintypes.OperatorOptions) (plugintypes.Operator, error) {
			return recordOp{name: o.Arguments}, nil
		})
	})
	var rules strings.Builder
	names := slices.Sorted(func(yield func(string) bool) {
		for n := range transformTriggers {
			if !yield(n) {
				return
			}
		}
	})
	for i, n := range names {
		fmt.Fprintf(&rules, "SecRule ARGS_GET \"@ghrecord %s\" \"id:%d,phase:1,pass,nolog,t:none,t:%s\"\n", n, 100+i, n)
	}
	eng, err := coraza.NewWAF(coraza.NewWAFConfig().WithDirectives("SecRuleEngine On\n" + rules.String()))
	if err != nil {
		t.Fatal(err)
	}
	// Random ASCII values, biased to the bytes triggers are about.
	const alphabet = "aZ09 .-_:@/*()%+&\\\"';,^\t\n\x00=<>$|?!#~"
	rng := rand.New(rand.NewPCG(1, 2))
	var values []string
	for range 3000 {
		b := make([]byte, 1+rng.IntN(12))
		for i := range b {
			b[i] = alphabet[rng.IntN(len(alphabet))]
		}
		values = append(values, string(b))
	}
	values = append(values, ".", "..", "./a", "a/./b", "a//b", "/*x*/", "a  b", "A B", "x (", "x /")
	checked := map[string]int{}
	for _, v := range values {
		rec := recordRun(eng, v)
		tv := triggers(v)
		for _, n := range names {
			got := rec[n]
			if len(got) != 1 {
				t.Fatalf("%s on %q: recorded %q, want one value", n, v, got)
			}
			if tv&(transformTriggers[n]|trigHigh) != 0 {
				continue
			}
			checked[n]++
			if got[0] != v && got[0] != strings.ToLower(v) {
				t.Errorf("%s(%q) = %q: not the value nor its lowering, yet no trigger", n, v, got[0])
			}
		}
	}
	for _, n := range names {
		if checked[n] < 100 {
			t.Errorf("%s: only %d trigger-free values checked", n, checked[n])
		}
	}
}

// ghrxSamples are the expressions of the CRS rule set with a pre-filter.
// Paranoia level 4 compiles all of them: a lower level leaves the higher
// levels' rules out, and what other tests compiled before must not decide
// what this one sees.
func ghrxSamples(t testing.TB) []*rx {
	t.Helper()
	oursWAF(t, "{platform: [all], paranoia_level: 4}")
	var out []*rx
	compiled.Range(func(_, v any) bool {
		if r := v.(*rx); r.pre != nil {
			out = append(out, r)
		}
		return true
	})
	if len(out) < 150 {
		t.Fatalf("got %d pre-filtered expressions, want at least 150", len(out))
	}
	return out
}

// checkGhrx fails when some expression matches s but its pre-filter
// would have skipped it: @ghrx would then answer differently from @rx.
func checkGhrx(t testing.TB, exprs []*rx, s string) {
	folded, plain := fold(s, nil)
	for _, r := range exprs {
		if r.re.MatchString(s) && (len(s) < r.pre.minLen || !r.pre.mayMatch(folded, plain)) {
			t.Errorf("%q matches %s but the pre-filter skips it", s, r.re)
		}
	}
}

// corpusStrings are the attack payloads and the benign requests' values,
// plus their decodings, as rules see them after their transformations.
func corpusStrings(t testing.TB) []string {
	var out []string
	for _, a := range readJSONL[attack](t, "testdata/attacks.jsonl") {
		out = append(out, a.Payload, strings.ToLower(a.Payload))
		if d, err := url.QueryUnescape(a.Payload); err == nil {
			out = append(out, d)
		}
	}
	for _, b := range readJSONL[benign](t, "testdata/benign.jsonl") {
		out = append(out, b.Body)
		for _, v := range b.Query {
			out = append(out, v)
		}
		for _, v := range b.Form {
			out = append(out, v)
		}
	}
	return out
}

// @ghrx == @rx on the corpus and on random mutations of it: the
// pre-filter never skips an expression that matches.
func TestGhrxMatchesRx(t *testing.T) {
	exprs := ghrxSamples(t)
	inputs := corpusStrings(t)
	rng := rand.New(rand.NewPCG(3, 4))
	n := len(inputs)
	for i := range 400 {
		s := []byte(inputs[i%n])
		// Mutations: case flips, inserted specials, splices.
		for range 1 + rng.IntN(4) {
			if len(s) == 0 {
				break
			}
			j := rng.IntN(len(s))
			switch rng.IntN(4) {
			case 0:
				s[j] ^= 0x20
			case 1:
				s = slices.Insert(s, j, special[rng.IntN(len(special))])
			case 2:
				s = append(s[:j], inputs[rng.IntN(n)]...)
			case 3:
				s = slices.Insert(s, j, []byte("\u212a\u017f")...)
			}
		}
		inputs = append(inputs, string(s))
	}
	for _, s := range inputs {
		checkGhrx(t, exprs, s)
	}
	t.Logf("%d expressions x %d inputs", len(exprs), len(inputs))
}

// FuzzGhrxMatchesRx is TestGhrxMatchesRx on fuzzed inputs:
//
//	go test -run XXX -fuzz FuzzGhrxMatchesRx -fuzztime 60s ./internal/policy/waf/
func FuzzGhrxMatchesRx(f *testing.F) {
	for _, s := range corpusStrings(f) {
		f.Add(s)
	}
	exprs := ghrxSamples(f)
	f.Fuzz(func(t *testing.T, s string) { checkGhrx(t, exprs, s) })
}

// The matcher answers what litSet.contains answers, for every set.
func TestACMatcherMatchesContains(t *testing.T) {
	sets := [][]string{{"select", "union"}, {"a"}, {"he", "she", "his", "hers"}, {"ab", "bab", "abab"}, {";", "|"}}
	m := newACMatcher(sets)
	var ls []litSet
	for _, s := range sets {
		ls = append(ls, newLitSet(s))
	}
	inputs := []string{"", "ushers", "xbabx", "aba", "1 union select", "x;y", "bbb", "hi s", "abab", "hershers", "ababab", "aaaa"}
	rng := rand.New(rand.NewPCG(3, 4))
	for range 2000 {
		b := make([]byte, rng.IntN(16))
		for i := range b {
			b[i] = "abhesriunolct;| "[rng.IntN(16)]
		}
		inputs = append(inputs, string(b))
	}
	// scanMarked shares one marks slice across scans, as the gate does.
	marks := make([]uint32, len(m.nodes))
	for k, in := range inputs {
		hits, marked := make([]uint64, m.words()), make([]uint64, m.words())
		m.scan([]byte(in), hits)
		m.scanMarked([]byte(in), marked, marks, uint32(k+1))
		for i := range sets {
			want := ls[i].contains([]byte(in))
			if got := hits[0]&(1<<i) != 0; got != want {
				t.Errorf("set %v in %q: got %v, want %v", sets[i], in, got, want)
			}
			if got := marked[0]&(1<<i) != 0; got != want {
				t.Errorf("scanMarked: set %v in %q: got %v, want %v", sets[i], in, got, want)
			}
		}
	}
}

// Exclusion by rule id: the rules that block a SQL injection, excluded by
// id, let it through; excluding one of them removes only that one.
func TestExcludeByID(t *testing.T) {
	w := oursWAF(t, "")
	ids := matchedIDs(t, w, sqli())
	var attackIDs []string
	for _, id := range ids {
		if id >= 941000 && id < 949000 {
			attackIDs = append(attackIDs, fmt.Sprint(id))
		}
	}
	if len(attackIDs) == 0 {
		t.Fatalf("no attack rule matched the SQL injection (matched %v)", ids)
	}
	one := oursWAF(t, "exclude: {ids: ["+attackIDs[0]+"]}")
	got := matchedIDs(t, one, sqli())
	if slices.Contains(got, mustAtoi(attackIDs[0])) {
		t.Errorf("excluded %s still matched: %v", attackIDs[0], got)
	}
	if len(got) == 0 {
		t.Errorf("excluding %s removed every match", attackIDs[0])
	}
	all := oursWAF(t, "exclude: {ids: ["+strings.Join(attackIDs, ", ")+"]}")
	if blocked(t, all, sqli()) {
		t.Errorf("blocked with %v excluded", attackIDs)
	}
	if !blocked(t, oursWAF(t, "exclude: {ids: [920350]}"), sqli()) {
		t.Error("excluding an unrelated rule let the SQL injection through")
	}
}

func mustAtoi(s string) int {
	var n int
	fmt.Sscan(s, &n)
	return n
}

// TestParseTargets checks the variable lists the gate reads, XML's XPath
// key and /regex/ keys holding '|' included.
func TestParseTargets(t *testing.T) {
	for _, c := range []struct {
		list, want string
	}{
		{"ARGS|REQUEST_HEADERS:Referer", "ARGS:|REQUEST_HEADERS:Referer"},
		// 932238's list at paranoia level 3: the headers after XML:/*
		// are targets too.
		{"REQUEST_COOKIES|ARGS|XML:/*|REQUEST_HEADERS:Referer|REQUEST_HEADERS:User-Agent",
			"REQUEST_COOKIES:|ARGS:|XML:|REQUEST_HEADERS:Referer|REQUEST_HEADERS:User-Agent"},
		{"ARGS|!XML:/*|REQUEST_HEADERS:Referer", "ARGS:|REQUEST_HEADERS:Referer"},
		{"REQUEST_COOKIES:/^(a|b)$/|ARGS", "REQUEST_COOKIES:|ARGS:"},
	} {
		got, _, ok := parseTargets(c.list)
		if !ok || got != c.want {
			t.Errorf("parseTargets(%q) = %q, %v; want %q", c.list, got, ok, c.want)
		}
	}
}

// TestGateNeverSkipsAMatchAtHigherLevels is TestGateNeverSkipsAMatch at
// paranoia levels 2 to 4, whose rules read more targets (932238 reads
// the Referer after XML:/*, which the gate once dropped).
func TestGateNeverSkipsAMatchAtHigherLevels(t *testing.T) {
	reqs := corpusRequests(t)
	for _, pl := range []string{"2", "3", "4"} {
		yaml := "paranoia_level: " + pl
		gated, plain := oursWAF(t, yaml), ungated(t, yaml)
		for name, req := range reqs {
			got, want := matchedIDs(t, gated, req()), matchedIDs(t, plain, req())
			if !slices.Equal(got, want) {
				t.Errorf("PL%s %s: gated matched %v, ungated %v", pl, name, got, want)
			}
		}
	}
}
