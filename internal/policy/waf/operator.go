package waf

import (
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"unicode/utf8"

	"github.com/corazawaf/coraza/v3/experimental/plugins"
	"github.com/corazawaf/coraza/v3/experimental/plugins/plugintypes"
	"rsc.io/binaryregexp"
	binsyntax "rsc.io/binaryregexp/syntax"
)

// operatorName is the SecLang operator that our rule sets use in place of
// @rx: the CRS files are rewritten at load (see crsFS) so that stock @rx
// stays untouched for anyone else in the process, and so the benchmark can
// compare both in one run.
const operatorName = "ghrx"

var registerOnce sync.Once

// register adds the ghrx and ghpmf operators to Coraza's process-wide
// operator table.
func register() {
	registerOnce.Do(func() {
		plugins.RegisterOperator(operatorName, newRx)
		plugins.RegisterOperator(pmfOperatorName, newPMF)
		registerCtl()
	})
}

// rx is @rx with a literal pre-filter and an automaton: the same
// expression, compiled with the same (?sm) flags as Coraza's @rx, the same
// capturing, but skipped when the input lacks what every match needs (see
// prefilter) or when the automaton (dfa.go) finds no match; the regexp
// itself runs only to capture what a match captures, or when the automaton
// is full.
type rx struct {
	re   *regexp.Regexp
	pre  *prefilter
	expr string
	// dfa answers for the regexp in linear time (dfa.go); built when a
	// first value passes the pre-filter, so that expressions that only
	// see values the pre-filter rejects keep none.
	dfa atomic.Pointer[dfa]
	// whole: the expression is wholeExpr.
	whole bool
}

// wholeExpr matches every string whole: its leftmost match starts at 0
// (^ holds at the start of text), where the greedy .* (any rune, '\n'
// too under s) takes the whole value, after which $ holds at the end of
// text; it has no groups. CRS 920450 captures each request header name
// with it, so Evaluate captures the value without running the regexp.
const wholeExpr = "(?sm)^.*$"

// binRx is @rx for expressions that match arbitrary bytes, as in Coraza.
type binRx struct{ re *binaryregexp.Regexp }

// compiled memoizes compilations by expression: CRS repeats expressions
// across rules, and every WAF built in the process (routes, reloads)
// shares them.
var compiled sync.Map // string -> *rx

var foldBufs = sync.Pool{New: func() any { b := make([]byte, 0, 256); return &b }}

func newRx(opts plugintypes.OperatorOptions) (plugintypes.Operator, error) {
	// Coraza's default @rx mode (build tag coraza.rule.no_regex_multiline
	// unset): dot matches newline, ^ and $ match at lines.
	expr := "(?sm)" + opts.Arguments
	if matchesBytes(expr) {
		re, err := binaryregexp.Compile(opts.Arguments)
		if err != nil {
			return nil, fmt.Errorf("waf: @rx %q: %w", opts.Arguments, err)
		}
		return &binRx{re: re}, nil
	}
	if v, ok := compiled.Load(expr); ok {
		return v.(*rx), nil
	}
	re, err := regexp.Compile(expr)
	if err != nil {
		return nil, fmt.Errorf("waf: @rx %q: %w", opts.Arguments, err)
	}
	v, _ := compiled.LoadOrStore(expr, &rx{re: re, pre: newPrefilter(expr), expr: expr, whole: expr == wholeExpr})
	return v.(*rx), nil
}

func (o *rx) Evaluate(tx plugintypes.TransactionState, value string) bool {
	if o.whole {
		if tx.Capturing() {
			tx.CaptureField(0, value)
		}
		return true
	}
	// Until a value passes the pre-filter the expression has no
	// automaton; after, the automaton decides alone (it is exact, and
	// cheaper than the pre-filter's scan).
	d := o.dfa.Load()
	if d == nil {
		if !o.mayMatch(value) {
			return false
		}
		d = o.lazyDFA()
	}
	if m, ok := d.match(value); ok && !m {
		return false
	} else if ok && !tx.Capturing() {
		return true
	} else if !ok && !o.mayMatch(value) {
		return false
	}
	if !tx.Capturing() {
		return o.re.MatchString(value)
	}
	m := o.re.FindStringSubmatchIndex(value)
	if m == nil {
		return false
	}
	for i := 0; i < len(m)/2 && i < 9; i++ {
		if m[2*i] >= 0 {
			tx.CaptureField(i, value[m[2*i]:m[2*i+1]])
		} else {
			tx.CaptureField(i, "")
		}
	}
	return true
}

// lazyDFA returns o's automaton, building it on first use.
func (o *rx) lazyDFA() *dfa {
	if d := o.dfa.Load(); d != nil {
		return d
	}
	dfaBuild.Lock()
	defer dfaBuild.Unlock()
	if d := o.dfa.Load(); d != nil {
		return d
	}
	d := newDFA(o.expr)
	if d == nil {
		d = &dfa{} // decides nothing: the regexp runs
	}
	o.dfa.Store(d)
	return d
}

// dfaBuild serializes building automata.
var dfaBuild sync.Mutex

// mayMatch is the pre-filter: false only when the expression cannot
// match value.
func (o *rx) mayMatch(value string) bool {
	p := o.pre
	if p == nil {
		return true
	}
	if len(value) < p.minLen {
		return false
	}
	bp := foldBufs.Get().(*[]byte)
	var plain bool
	*bp, plain = fold(value, *bp)
	ok := p.mayMatch(*bp, plain)
	foldBufs.Put(bp)
	if !ok {
		return false
	}
	return !plain || p.plainRe == nil || p.plainRe.MatchString(value)
}

// MatchString reports whether the expression matches value, as Evaluate
// does without capturing.
func (o *rx) MatchString(value string) bool {
	d := o.dfa.Load()
	if d == nil {
		if !o.mayMatch(value) {
			return false
		}
		d = o.lazyDFA()
	}
	if m, ok := d.match(value); ok {
		return m
	}
	return o.mayMatch(value) && o.re.MatchString(value)
}

func (o *binRx) Evaluate(tx plugintypes.TransactionState, value string) bool {
	if !tx.Capturing() {
		return o.re.MatchString(value)
	}
	m := o.re.FindStringSubmatch(value)
	if m == nil {
		return false
	}
	for i, c := range m {
		if i == 9 {
			break
		}
		tx.CaptureField(i, c)
	}
	return true
}

// matchesBytes reports whether expr has \xNN escapes that do not decode to
// UTF-8, which Coraza's @rx hands to a byte-oriented matcher; the same
// decision as Coraza's matchesArbitraryBytes (Apache-2.0), kept in step so
// that ghrx matches what @rx matches.
func matchesBytes(expr string) bool {
	decoded := make([]byte, 0, len(expr))
	for i := 0; i < len(expr); i++ {
		c := expr[i]
		if c != '\\' {
			decoded = append(decoded, c)
			continue
		}
		if i+3 >= len(expr) {
			decoded = append(decoded, expr[i:]...)
			break
		}
		if expr[i+1] != 'x' {
			decoded = append(decoded, expr[i])
			continue
		}
		sub := expr[i:]
		advance := 3
		if len(sub) >= 6 && sub[2] == '{' {
			if end := strings.IndexByte(sub, '}'); end != -1 {
				sub = `\x` + sub[3:end]
				advance = end
			}
		}
		v, mb, _, err := strconv.UnquoteChar(sub, 0)
		if err != nil || mb {
			decoded = append(decoded, expr[i])
			continue
		}
		decoded = append(decoded, byte(v))
		i += advance
	}
	return !utf8.Valid(decoded)
}

// bytesNeedHigh reports whether the byte-oriented expression expr (binRx,
// compiled as newRx compiles it) can only match an input holding a byte
// of 0x80 or above: in its program, no path from the start to a match
// steps only on instructions that accept some ASCII byte. Empty-width
// assertions are taken as passable, so a path is only over-approximated:
// "true" is a proof, "false" may be wrong the safe way.
func bytesNeedHigh(expr string) bool {
	re, err := binsyntax.Parse(expr, binsyntax.Perl)
	if err != nil {
		return false
	}
	prog, err := binsyntax.Compile(re.Simplify())
	if err != nil {
		return false
	}
	seen := make([]bool, len(prog.Inst))
	stack := []uint32{uint32(prog.Start)}
	for len(stack) > 0 {
		pc := stack[len(stack)-1]
		stack = stack[:len(stack)-1]
		if seen[pc] {
			continue
		}
		seen[pc] = true
		in := &prog.Inst[pc]
		switch in.Op {
		case binsyntax.InstMatch:
			return false
		case binsyntax.InstFail:
		case binsyntax.InstAlt, binsyntax.InstAltMatch:
			stack = append(stack, in.Out, in.Arg)
		case binsyntax.InstCapture, binsyntax.InstNop, binsyntax.InstEmptyWidth:
			stack = append(stack, in.Out)
		case binsyntax.InstRune, binsyntax.InstRune1, binsyntax.InstRuneAny, binsyntax.InstRuneAnyNotNL:
			for c := rune(0); c < 0x80; c++ {
				if in.MatchRune(c) {
					stack = append(stack, in.Out)
					break
				}
			}
		default:
			return false // an instruction not known here
		}
	}
	return true
}
