package waf

import (
	"math/rand/v2"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"unicode/utf8"

	"github.com/corazawaf/coraza/v3/experimental/plugins"
	"github.com/corazawaf/coraza/v3/experimental/plugins/plugintypes"
)

// dfaCheck is a ghrx operator that, besides evaluating, compares the
// automaton's answer with the regexp's on every value it is given.
type dfaCheck struct {
	o *rx
	c *dfaCheckLog
}

type dfaCheckLog struct {
	mu               sync.Mutex
	t                *testing.T
	decided, checked int
	wrong            int
}

func (d dfaCheck) Evaluate(tx plugintypes.TransactionState, value string) bool {
	d.c.check(d.o, value)
	return d.o.Evaluate(tx, value)
}

func (c *dfaCheckLog) check(o *rx, value string) {
	want := o.re.MatchString(value)
	got, ok := o.lazyDFA().match(value)
	c.mu.Lock()
	defer c.mu.Unlock()
	c.checked++
	if !ok {
		return
	}
	c.decided++
	if got != want {
		c.wrong++
		if c.wrong <= 10 {
			c.t.Errorf("%q on %q: automaton %v, regexp %v", o.expr, value, got, want)
		}
	}
}

// TestDFAMatchesRegexp runs the CRS regression suite through the CRS
// (ungated: every rule sees every value) with an operator that checks, on
// every value an @rx rule is given, that the automaton (dfa.go) answers
// as the regexp does; then every CRS expression on random inputs built
// from its own literals, special bytes and non-ASCII runes.
func TestDFAMatchesRegexp(t *testing.T) {
	register()
	c := &dfaCheckLog{t: t}
	plugins.RegisterOperator(operatorName, func(opts plugintypes.OperatorOptions) (plugintypes.Operator, error) {
		op, err := newRx(opts)
		if o, ok := op.(*rx); ok {
			return dfaCheck{o: o, c: c}, nil
		}
		return op, err
	})
	t.Cleanup(func() { plugins.RegisterOperator(operatorName, newRx) })
	eng, err := newEngine(StockDirectives, engineOpts{fast: true})
	if err != nil {
		t.Fatal(err)
	}
	cases := crsRegression(t)
	step := 1
	if raceEnabled {
		step = 10
	}
	for i := 0; i < len(cases); i += step {
		cases[i].run(eng)
	}
	t.Logf("CRS suite: %d values checked, %d decided by the automaton", c.checked, c.decided)
	if c.checked < 10000 || c.decided*10 < c.checked*9 {
		t.Errorf("the automaton decided %d of %d values: the comparison is too thin", c.decided, c.checked)
	}

	// Random inputs, per expression.
	rng := rand.New(rand.NewPCG(1, 2))
	n := 300
	if raceEnabled {
		n = 30
	}
	exprs := 0
	c.checked, c.decided = 0, 0
	compiled.Range(func(_, v any) bool {
		o := v.(*rx)
		exprs++
		alphabet := dfaAlphabet(o)
		for range n {
			c.check(o, randomInput(rng, alphabet))
		}
		return true
	})
	t.Logf("random: %d expressions, %d values checked, %d decided", exprs, c.checked, c.decided)
	if exprs < 50 || c.decided*10 < c.checked*9 {
		t.Errorf("random: %d expressions, %d of %d decided", exprs, c.decided, c.checked)
	}
}

// dfaAlphabet are the pieces random inputs for o are made of: the
// expression's literals (both cases), single bytes that the CRS's
// expressions treat specially, and runes that case folding or UTF-8
// decoding treat specially.
func dfaAlphabet(o *rx) []string {
	out := []string{
		"\n", "\r", "\t", " ", "\x0b", "\x00", "'", "\"", "`", "(", ")", "[", "]", "{", "}", "<", ">",
		"\\", "/", "$", "|", "&", ";", ":", "=", "%", "+", "-", "*", "?", "!", "#", "@", ".", ",", "^", "~",
		"a", "Z", "0", "9", "_", "é", "\u212a", "\u017f", "\xff", "\xc3", "日本", "\u2028", "%2f", "%00", "&#x3c;",
	}
	if o.pre != nil {
		for _, ls := range append(o.pre.sets, o.pre.plainSets...) {
			for _, s := range ls.strs {
				out = append(out, s, strings.ToUpper(s))
			}
		}
	}
	// Literal runs of the expression itself.
	for _, w := range regexp.MustCompile(`[A-Za-z]{2,}`).FindAllString(o.expr, 200) {
		out = append(out, w, strings.ToUpper(w))
	}
	return out
}

func randomInput(rng *rand.Rand, alphabet []string) string {
	var b strings.Builder
	for range rng.IntN(24) {
		b.WriteString(alphabet[rng.IntN(len(alphabet))])
	}
	return b.String()
}

// TestDFAKnown checks the automaton on expressions whose answers are
// known, the empty-width assertions and rune decoding among them.
func TestDFAKnown(t *testing.T) {
	for _, c := range []struct {
		expr, in string
		want     bool
	}{
		{`(?sm)^$`, "", true},
		{`(?sm)^$`, "a", false},
		{`(?sm)^$`, "a\n\nb", true},
		{`(?sm)^$`, "a\n", true},
		{`(?sm)\bfoo\b`, "a foo.", true},
		{`(?sm)\bfoo\b`, "afoo", false},
		{`(?sm)\Bfoo`, "afoo", true},
		{`(?sm)\Bfoo`, "foo", false},
		{`(?sm)^a.c$`, "x\na\nc\ny", true},
		{`(?sm)^a.c$`, "xa\ncy", false},
		{`(?sm)\Aab\z`, "ab", true},
		{`(?sm)\Aab\z`, "ab\n", false},
		{`(?i)k`, "\u212a", true},
		{`(?i)s`, "\u017f", true},
		{`\x{FFFD}`, "\xff", true},
		{`a[^b]c`, "a\xffc", true},
		{`a.c`, "a日c", true},
		{`a..c`, "a日c", false},
		{`(?i)select.*from`, "SeLeCt x FROM", true},
		{`(?i)select.*from`, "SeLeCt x FRO", false},
	} {
		o := &rx{re: regexp.MustCompile(c.expr), expr: c.expr}
		got, ok := o.lazyDFA().match(c.in)
		if !ok || got != c.want || o.re.MatchString(c.in) != c.want {
			t.Errorf("%q on %q: automaton %v (decided %v), regexp %v, want %v", c.expr, c.in, got, ok, o.re.MatchString(c.in), c.want)
		}
	}
}

// TestGateAutomaton checks the gate's use of the automata (gate.go,
// noMatch) on rules whose expressions are case-sensitive or not, with and
// without lowering and walked transformations: gated and ungated engines
// must match the same rules, and the gate must remove the rule that only
// the automaton can prove silent.
func TestGateAutomaton(t *testing.T) {
	rules := strings.Join([]string{
		// Case-sensitive; the operator sees the lowering.
		`SecRule ARGS "@ghrx ab+c" "id:10001,phase:2,pass,log,t:none,t:lowercase"`,
		// Case-sensitive; the operator sees the value itself.
		`SecRule ARGS "@ghrx AB+C" "id:10002,phase:2,pass,log,t:none"`,
		`SecRule ARGS "@ghrx AB+C" "id:10003,phase:2,pass,log,t:none,t:lowercase"`,
		// Walked (two spaces trigger compressWhitespace): the walk's
		// result is lowered; only a case-symmetric automaton decides.
		`SecRule ARGS "@ghrx X Y" "id:10004,phase:2,pass,log,t:none,t:compressWhitespace"`,
		`SecRule ARGS "@ghrx (?i)X Y" "id:10005,phase:2,pass,log,t:none,t:compressWhitespace"`,
		// The literals pass, the expression does not match.
		`SecRule ARGS "@ghrx (?i)select\s+from" "id:10006,phase:2,pass,log,t:none"`,
		// multiMatch: the operator sees the value before the step too.
		`SecRule ARGS "@ghrx (?i)a b" "id:10007,phase:2,pass,log,t:none,t:removeWhitespace,multiMatch"`,
		`SecRule ARGS "@ghrx (?i)ab" "id:10008,phase:2,pass,log,t:none,t:removeWhitespace,multiMatch"`,
		`SecRule ARGS "@ghrx A B" "id:10009,phase:2,pass,log,t:none,t:removeWhitespace,multiMatch"`,
		// No pre-filter at all: the automaton alone.
		`SecRule ARGS "@ghrx ^$" "id:10010,phase:2,pass,log,t:none,t:removeWhitespace"`,
	}, "\n") + "\nSecRuleEngine On\nSecRequestBodyAccess On\n"
	gated, g, err := newEngineGate(rules, engineOpts{fast: true, gate: true})
	if err != nil {
		t.Fatal(err)
	}
	removed := map[int]int{}
	var mu sync.Mutex
	g.onRemove = func(id int) { mu.Lock(); removed[id]++; mu.Unlock() }
	plain, err := newEngine(rules, engineOpts{fast: true})
	if err != nil {
		t.Fatal(err)
	}
	for _, v := range []string{"ABBC", "abbc", "AbBc", "X  Y", "x  y", "X  y", "X Y", "X  Z", "select_from", "SELECT  FROM", "other", "a b", "A B", "a  b", "x y", "", " "} {
		c := crsCase{method: "GET", uri: "/?a=" + url.QueryEscape(v), version: "HTTP/1.1"}
		if got, want := c.run(gated), c.run(plain); !slices.Equal(got, want) {
			t.Errorf("%q: gated matched %v, ungated %v", v, got, want)
		}
	}
	if removed[10006] == 0 {
		t.Error("the gate never removed 10006, which only the automaton proves silent on select_from")
	}
	if removed[10007] == 0 || removed[10008] == 0 {
		t.Error("the gate never removed 10007 or 10008 (multiMatch, walked) on x y")
	}
	if removed[10010] == 0 {
		t.Error("the gate never removed 10010, whose expression has no pre-filter")
	}
	if removed[10005] == 0 {
		t.Error("the gate never removed 10005 (case-symmetric, walked) on X  Z")
	}
}

// TestDFAFull: an automaton that may not grow (its bound reached) decides
// nothing it has not built, and the expression still answers as the
// regexp does.
func TestDFAFull(t *testing.T) {
	expr := `(?sm)(?i)union\s+select`
	o := &rx{re: regexp.MustCompile(expr), pre: newPrefilter(expr), expr: expr}
	d := newDFA(expr)
	d.cache.Load().full.Store(true)
	o.dfa.Store(d)
	undecided := 0
	for _, in := range []string{"", "x", "UNION  SELECT 1", "union select", "unionselect", "a union\tselect b"} {
		if _, ok := d.match(in); !ok {
			undecided++
		}
		if got, want := o.MatchString(in), o.re.MatchString(in); got != want {
			t.Errorf("%q: got %v, want %v", in, got, want)
		}
	}
	if undecided < 4 {
		t.Errorf("a full automaton decided %d of 6 inputs without building states", 6-undecided)
	}
}

// TestDFAWideBounded: values holding thousands of distinct runes past
// ASCII (chosen by a client) leave each state at most maxWideRunes of
// them, and the answers are the regexp's.
func TestDFAWideBounded(t *testing.T) {
	expr := `(?sm)(?i)union\s+select|é{2}|[\x{4e00}-\x{4e10}]x`
	o := &rx{re: regexp.MustCompile(expr), expr: expr}
	d := newDFA(expr)
	o.dfa.Store(d)
	var b strings.Builder
	for r := rune(0x4e00); r < 0x4e00+5000; r++ {
		b.WriteRune(r)
		if r%7 == 0 {
			b.WriteString("x union  select ")
		}
		in := b.String()[max(0, b.Len()-60):]
		for !utf8.ValidString(in) {
			in = in[1:]
		}
		if got, want := o.MatchString(in), o.re.MatchString(in); got != want {
			t.Fatalf("%q: got %v, want %v", in, got, want)
		}
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	widest := 0
	c := d.cache.Load()
	for _, i := range c.states {
		widest = max(widest, len(c.at(i).wide))
	}
	if widest > maxWideRunes || widest == 0 {
		t.Errorf("a state holds %d transitions on runes past ASCII, want 1 to %d", widest, maxWideRunes)
	}
}

// TestDFAConcurrent: goroutines building and reading one automaton at
// once get the regexp's answers (run it with -race).
func TestDFAConcurrent(t *testing.T) {
	expr := `(?sm)(?i)\b(?:union\s+select|sleep\s*\(|benchmark\s*\()|^\s*drop\s+table|é{2}`
	o := &rx{re: regexp.MustCompile(expr), expr: expr}
	alphabet := dfaAlphabet(o)
	var wg sync.WaitGroup
	for g := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rng := rand.New(rand.NewPCG(uint64(g), 9))
			for range 500 {
				in := randomInput(rng, alphabet)
				if got, ok := o.lazyDFA().match(in); ok && got != o.re.MatchString(in) {
					t.Errorf("%q: automaton %v", in, got)
				}
			}
		}()
	}
	wg.Wait()
}

// TestWholeExpr: wholeExpr's one match is always the whole value, as the
// regexp finds it.
func TestWholeExpr(t *testing.T) {
	re := regexp.MustCompile(wholeExpr)
	o := &rx{re: re, expr: wholeExpr}
	rng := rand.New(rand.NewPCG(5, 6))
	alphabet := dfaAlphabet(o)
	for i := range 3000 {
		in := randomInput(rng, alphabet)
		if i == 0 {
			in = ""
		}
		m := re.FindStringSubmatchIndex(in)
		if len(m) != 2 || m[0] != 0 || m[1] != len(in) {
			t.Fatalf("%q: regexp's match %v, want the whole value", in, m)
		}
	}
	if got, err := newRx(plugintypes.OperatorOptions{Arguments: "^.*$"}); err != nil || !got.(*rx).whole {
		t.Errorf("@ghrx ^.*$ is not marked whole (%v)", err)
	}
}

// TestDFAReset: an automaton whose cache is full rebuilds it from empty
// only once walks have crossed resetWalk bytes per state it holds; the
// old cache's bytes go back to the budget, and the answers stay the
// regexp's throughout.
func TestDFAReset(t *testing.T) {
	expr := `(?sm)(?i)\b(?:union\s+select|sleep\s*\(|benchmark\s*\()|^\s*drop\s+table|é{2}`
	re := regexp.MustCompile(expr)
	base := dfaBytes.Load()
	d := newDFA(expr)
	d.maxStates = 12
	check := func(in string) bool {
		got, ok := d.match(in)
		if ok && got != re.MatchString(in) {
			t.Fatalf("%q: automaton %v, regexp %v", in, got, !got)
		}
		return ok
	}
	// "aaaa" is walked on states built first; then values that each
	// need states the cache lacks fill it.
	const known = "aaaa"
	if !check(known) {
		t.Fatal("an empty cache did not decide aaaa")
	}
	first := d.cache.Load()
	rng := rand.New(rand.NewPCG(1, 2))
	alphabet := dfaAlphabet(&rx{re: re, expr: expr})
	for i := 0; !first.full.Load() && i < 200; i++ {
		check(randomInput(rng, alphabet))
	}
	if !first.full.Load() {
		t.Fatal("the cache of 12 states never filled")
	}
	// Until walks cross 10 bytes per state (120 here), values needing
	// states it lacks leave it as it is.
	for range 50 {
		first.walked.Store(0)
		in := randomInput(rng, alphabet)
		check(in[:min(len(in), 60)])
	}
	if d.cache.Load() != first || d.resets.Load() != 0 {
		t.Fatalf("rebuilt after %d bytes walked on %d states", first.walked.Load(), first.n.Load())
	}
	// Walks over states it holds pay for it; then a value that needs a
	// new state rebuilds it.
	for first.walked.Load() < resetWalk*first.n.Load() {
		if !check(known) {
			t.Fatalf("%q left the states built", known)
		}
	}
	for i := 0; d.cache.Load() == first && i < 1000; i++ {
		check(randomInput(rng, alphabet))
	}
	now := d.cache.Load()
	if now == first || d.resets.Load() == 0 {
		t.Fatalf("a full cache that paid for itself was not rebuilt (walked %d, %d states)", first.walked.Load(), first.n.Load())
	}
	if !first.retired || first.bytes != 0 {
		t.Errorf("the old cache: retired %v, %d bytes charged", first.retired, first.bytes)
	}
	for range 2000 {
		check(randomInput(rng, alphabet))
	}
	d.mu.Lock()
	held := d.cache.Load().bytes
	d.mu.Unlock()
	if got := dfaBytes.Load() - base; got != held {
		t.Errorf("the budget holds %d bytes of this automaton, its cache %d", got, held)
	}
}

// TestDFAWaitsForRoom: an automaton made when the budget had no room for
// its first state decides nothing (the regexp answers), charges nothing
// for the states it was refused, and builds its states once there is
// room.
func TestDFAWaitsForRoom(t *testing.T) {
	old := dfaBudget.Load()
	t.Cleanup(func() { dfaBudget.Store(old) })
	full := dfaBytes.Load()
	dfaBudget.Store(full)
	expr := `(?i)union\s+select|é{2}`
	o := &rx{re: regexp.MustCompile(expr), expr: expr}
	d := newDFA(expr)
	if d == nil || d.cache.Load().start != nil {
		t.Fatal("want an automaton without states")
	}
	o.dfa.Store(d)
	for _, in := range []string{"union select", "x", "UNION\tSELECT", "éé"} {
		if _, ok := d.match(in); ok {
			t.Errorf("%q: decided without states", in)
		}
		if got, want := o.MatchString(in), o.re.MatchString(in); got != want {
			t.Errorf("%q: got %v, want %v", in, got, want)
		}
	}
	if got := dfaBytes.Load(); got != full {
		t.Errorf("refused states left %d bytes charged", got-full)
	}
	dfaBudget.Store(old)
	d.match("x") // finds room: the cache is made
	if m, ok := d.match("a union select"); !ok || !m {
		t.Errorf("with room: match %v, decided %v", m, ok)
	}
}

// TestDFAConcurrentResets: goroutines walking, filling and rebuilding one
// small automaton at once get the regexp's answers (run it with -race).
func TestDFAConcurrentResets(t *testing.T) {
	expr := `(?sm)(?i)\b(?:union\s+select|sleep\s*\(|benchmark\s*\()|^\s*drop\s+table|é{2}`
	re := regexp.MustCompile(expr)
	d := newDFA(expr)
	d.maxStates = 10
	alphabet := dfaAlphabet(&rx{re: re, expr: expr})
	var wg sync.WaitGroup
	for g := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rng := rand.New(rand.NewPCG(uint64(g), 11))
			for i := range 3000 {
				in := randomInput(rng, alphabet)
				if i%2 == 0 {
					in = "aaaa" // walks built states: pays for rebuilds
				}
				if got, ok := d.match(in); ok && got != re.MatchString(in) {
					t.Errorf("%q: automaton %v", in, got)
				}
			}
		}()
	}
	wg.Wait()
	if d.resets.Load() == 0 {
		t.Error("no rebuild happened")
	}
}

// BenchmarkDFAMatch: one automaton's walks over the corpus's values,
// its states built, from every core at once.
func BenchmarkDFAMatch(b *testing.B) {
	expr := `(?sm)(?i)\b(?:union\s+select|sleep\s*\(|benchmark\s*\()|^\s*drop\s+table|é{2}`
	d := newDFA(expr)
	values := corpusStrings(b)
	for _, v := range values {
		d.match(v)
	}
	var n int64
	for _, v := range values {
		n += int64(len(v))
	}
	b.SetBytes(n / int64(len(values)))
	b.RunParallel(func(pb *testing.PB) {
		i := 0
		for pb.Next() {
			d.match(values[i%len(values)])
			i++
		}
	})
}
