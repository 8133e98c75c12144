package waf

import (
	"fmt"
	"io/fs"
	"math"
	"net"
	"net/http"
	"net/http/httptest"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"unicode"

	"github.com/corazawaf/coraza/v3/collection"
	"github.com/corazawaf/coraza/v3/experimental/plugins/plugintypes"
	"github.com/corazawaf/coraza/v3/types"
	"github.com/corazawaf/coraza/v3/types/variables"
	"github.com/corazawaf/libinjection-go"
	"rsc.io/binaryregexp"
)

// The quiet path: a request that provably does what a benign calibration
// request does is allowed without running the rules.
//
// When a WAF is built, one bodiless request C (GET /calibrate with a Host,
// a User-Agent and an Accept, from a documentation address) is run through
// the rules of phases 1, 2 and 5, and must leave nothing the policy would
// log or act on: no rule with a message matched, no interruption. Before a
// bodiless request X is run, WAF.tryQuiet tries to prove that every rule
// would behave on X exactly as it did on C; if so X's outcome is C's, and
// the policy allows X without evaluating a single rule (Apply skips the
// phases). A request the proof does not cover runs the rules as before.
//
// Why X's outcome is then C's, by induction over the rules in Coraza's
// order (phase 1, phase 2, phase 5; each in load order). Suppose every rule
// before R behaved on X as on C: the same rules matched, with the same
// effects. Then the TX collection, the flow state (skipAfter, skip, the
// rules removed by ctl) and the variables Coraza derives from the request
// during the phases (REQBODY_PROCESSOR, REQUEST_BODY, MATCHED_*) are the
// same at R, since they are functions of the request's own variables,
// which X and C feed alike (no body is fed to either), and of the rules'
// effects. R then behaves alike when one of these holds (quietRule):
//
//  1. R reads nothing of the request: its targets, chained rules and
//     macros only name TX, MATCHED_* (set by R itself) or RULE. Most
//     bookkeeping rules; no work per request.
//  2. R is not evaluated on C: it lies between a rule that matched on C
//     with skipAfter:M and the marker M. By induction it is skipped on X
//     too. (The sampling rules that read UNIQUE_ID.)
//  3. Every request variable R reads (as Coraza's GetField reads it, or
//     a superset) holds the same key and value pairs on X as on C: R sees
//     the same input.
//  4. R did not match on C, and the gate's pre-filter (gate.go) shows
//     that its operator cannot match any value of X it reads.
//  5. R, or the first rule of its chain when R did not match on C, is one
//     this file can evaluate exactly (qLink.eval): the operator is @rx,
//     @streq, @within, @contains, @beginsWith, @endsWith, a numeric
//     comparison, @validateByteRange, @detectSQLi or @detectXSS, its
//     macros are TX values the fold walk (fold.go) knows at R, and every
//     transformation leaves the ASCII value as it is, lowers it, or
//     measures it. Evaluated on X, it gives C's outcome. A first rule
//     that does not match makes its chain not match; a rule that matched
//     on C must match on X on exactly its targets (no exclusions, no
//     regular-expression keys) and its actions must not depend on what
//     it matched.
//  6. R is shaped as CRS 920450 and 920451, restricted headers: its first
//     rule matches every header name and records it in TX
//     (header_name_920450_NAME); its
//     chained rule matches when one recorded /name/ is in the restricted
//     list. R did not match on C, and no header name of X, lowered and
//     slashed, is in the list the fold walk knows. The names it records
//     in TX differ from C's, which is why, when it is used, no other rule
//     may read TX names with its prefix, and no rule may read TX as a
//     whole or the capture TX:0-9 it did not capture itself. Likewise a
//     rule shaped as CRS 920440, restricted extensions: its first rule
//     captures from one value and sets a TX variable from the capture,
//     which its chained rule looks up in a list; proof 6 computes that
//     value from X and looks it up, and no other rule may read the
//     variable.
//  7. R did not match on C, is of phase 1 or 2, reads only request
//     variables nothing changes during a bodiless request's phases, and no
//     rule of its chain reads TX: Coraza runs it (with the other rules
//     that need proof 7, and no rule else) on X's transaction, and it does
//     not match. Alone it reads what it reads in the full run, or more
//     (the targets other rules' ctl would have taken away), so it would not
//     match there either. The transaction is then used up: the full run,
//     when needed, gets a new one.
//
// One exception to "every rule before R behaved alike": a rule that
// matched on C and whose only effect is to take targets away from other
// rules (ctl:ruleRemoveTargetById/ByTag, CRS 941010) may not match on X,
// as proof 5 shows. The rules it trims then read more on X than on C, and
// for them proof 3 is not used; the others hold on the untrimmed targets.
//
// Directives that change rules after they are added (the gate's and the
// fold's off switches) turn the quiet path off, as does a calibration run
// that logs or interrupts (higher paranoia levels flag a request this
// plain). TestQuietMatchesRules runs the CRS regression suite and the
// corpora through both paths: wherever the proof holds, the rules must
// neither log nor interrupt.

// quietStatic is what a compiled rule set says about the quiet path,
// before calibration: the rules of phases 1, 2 and 5 in order, parsed.
type quietStatic struct {
	rules []*qRule
	// cand are the pre-filters of every candidate rule (gate.go), by id.
	cand  *gateSet
	candR map[int]*gateRule
	// folded are the rules the fold walk proved false on every request
	// (fold.go): never evaluated, they need no proof.
	folded map[int]bool
}

// qRule is one rule (its chain included) as the quiet path reads it.
type qRule struct {
	id      int
	phase   types.RulePhase
	secMark string
	links   []*qLink
	// inputs are the request variables the rule reads (targets and
	// macros), as keys of quietSet.keys once calibrated.
	inputs []qKey
	// readsRequest: proof 1 does not apply.
	readsRequest bool
	// plain: every link's targets are exactly what Coraza reads (no
	// exclusions, no regular-expression keys).
	plain bool
	// pure: no action depends on what the rule matched (no macro but
	// %{tx.*} in setvar and ctl, no capture).
	pure      bool
	skipAfter string
	skip      bool
	allow     bool
	// shape is the form proof 6 knows the rule has (shapeNone: none);
	// txName and template, for shapeCaptureWithin, the TX variable its
	// first link sets and reads back, and the value it sets.
	shape    int
	txName   string
	template string
	// opaque: the rule could not be parsed; no proof applies.
	opaque bool
	// raw is the first statement's text, lowered (for tags).
	raw string
	// ctls are the arguments of its ctl actions.
	ctls []string
	// actions are the names of its actions, every link's.
	actions []string
}

// trimOnly reports whether the rule's only effect when it matches is to
// take targets away from other rules (ctl:ruleRemoveTargetById or
// ByTag): no variables set, no flow, no severity, nothing logged.
func (r *qRule) trimOnly() bool {
	if len(r.links) != 1 || len(r.ctls) == 0 {
		return false
	}
	for _, a := range r.actions {
		switch a {
		case "id", "phase", "pass", "nolog", "noauditlog", "tag", "ver", "rev", "msg", "t", "maturity", "accuracy", "ctl":
		default:
			return false
		}
	}
	for _, c := range r.ctls {
		name, _, _ := strings.Cut(c, "=")
		switch strings.ToLower(strings.TrimSpace(name)) {
		case "ruleremovetargetbyid", "ruleremovetargetbytag":
		default:
			return false
		}
	}
	return true
}

// trims reports whether src's ctl actions take targets away from r.
func (src *qRule) trims(r *qRule) bool {
	for _, c := range src.ctls {
		name, arg, _ := strings.Cut(c, "=")
		what, _, _ := strings.Cut(arg, ";")
		what = strings.ToLower(strings.TrimSpace(what))
		switch strings.ToLower(strings.TrimSpace(name)) {
		case "ruleremovetargetbyid":
			if lo, hi, isRange := strings.Cut(what, "-"); isRange {
				a, _ := strconv.Atoi(lo)
				b, _ := strconv.Atoi(hi)
				if r.id >= a && r.id <= b {
					return true
				}
			} else if strconv.Itoa(r.id) == what {
				return true
			}
		case "ruleremovetargetbytag":
			// tag:'t', tag:"t" or tag:t, up to the next action.
			for _, form := range []string{"tag:'" + what + "'", `tag:"` + what + `"`, "tag:" + what + ",", "tag:" + what + `"`} {
				if strings.Contains(r.raw, form) {
					return true
				}
			}
		}
	}
	return false
}

// qLink is one SecRule (or SecAction) of a chain.
type qLink struct {
	targets []qTarget
	partial bool
	op      *qOp // nil: not evaluable (proof 5)
	opName  string
	negated bool
	rawArg  string
	chain   []string
	multi   bool
	capture bool
	sets    []string // setvar arguments
	// txRx are the regular-expression keys of its TX targets.
	txRx []string
	// chainID numbers its chain of transformations among the rule set's.
	chainID int
}

// qTarget is one variable of a rule.
type qTarget struct {
	v     variables.RuleVariable
	key   string // exact key, "" for the whole collection
	count bool
}

// qKey is a request input: a variable and an exact key ("" whole).
type qKey struct {
	v   variables.RuleVariable
	key string
}

// qOp is an operator proof 5 can evaluate.
type qOp struct {
	kind    string
	arg     string
	re      interface{ MatchString(string) bool }
	vbr     [256]bool
	subnets []net.IPNet
}

// staticVars are the request variables proof 5 may read before the
// phases: nothing changes them during a bodiless request's phases.
// bodyVars are the variables only a request body fills: empty for the
// whole of a bodiless request's phases, on X as on C.
var bodyVars = map[variables.RuleVariable]bool{
	variables.ArgsPost: true, variables.ArgsPostNames: true, variables.RequestBody: true,
	variables.Files: true, variables.FilesNames: true, variables.FilesSizes: true,
	variables.FilesTmpNames: true, variables.FilesTmpContent: true, variables.FilesCombinedSize: true,
	variables.XML: true, variables.MultipartPartHeaders: true, variables.MultipartFilename: true,
	variables.MultipartName: true,
}

var staticVars = map[variables.RuleVariable]bool{
	variables.Args: true, variables.ArgsGet: true, variables.ArgsNames: true, variables.ArgsGetNames: true,
	variables.RequestHeaders: true, variables.RequestHeadersNames: true,
	variables.RequestCookies: true, variables.RequestCookiesNames: true,
	variables.RequestURI: true, variables.RequestURIRaw: true,
	variables.RequestFilename: true, variables.RequestBasename: true,
	variables.QueryString: true, variables.RequestLine: true,
	variables.RequestMethod: true, variables.RequestProtocol: true,
	variables.RemoteAddr: true,
}

// derivedVars are read from the rule's own match (MATCHED_*) or its own
// metadata (RULE): the same on X and C when its inputs are.
var derivedVars = map[variables.RuleVariable]bool{
	variables.MatchedVar: true, variables.MatchedVarName: true,
	variables.MatchedVars: true, variables.MatchedVarsNames: true,
	variables.Rule: true,
}

// newQuietStatic parses the rule set. get, when the fold walk reached a
// rule, gives the TX state there (see foldWalk); nil means the quiet path
// is off for this rule set.
func newQuietStatic(observed []observedRule, seclang string, root fs.FS, extra []string) (*quietStatic, func(o observedRule, get func(string) tvState)) {
	q, visit, why := buildQuietStatic(observed, seclang, root, extra)
	quietWhy.Store(&why)
	return q, visit
}

// quietWhy is the last reason a rule set was not covered, for tests.
var quietWhy atomic.Pointer[string]

func buildQuietStatic(observed []observedRule, seclang string, root fs.FS, extra []string) (*quietStatic, func(o observedRule, get func(string) tvState), string) {
	sts, ok := statements(seclang, root)
	if !ok {
		return nil, nil, "statements"
	}
	ft := readText(sts)
	if ft.off {
		return nil, nil, "readText off"
	}
	chains, ok := chainTexts(sts)
	if !ok {
		return nil, nil, "chainTexts"
	}
	q := &quietStatic{candR: map[int]*gateRule{}}
	for _, o := range observed {
		if o.secMark != "" {
			q.rules = append(q.rules, &qRule{secMark: o.secMark})
			continue
		}
		if o.phase != types.PhaseRequestHeaders && o.phase != types.PhaseRequestBody && o.phase != types.PhaseLogging {
			if o.phase < types.PhaseRequestHeaders || o.phase > types.PhaseLogging {
				return nil, nil, "rule of every phase" // a rule of every phase: not modelled
			}
			continue // response phases: the policy never runs them
		}
		if o.id == gatePhase1ID || o.id == gatePhase2ID {
			continue // the gate removes only rules that cannot match
		}
		texts := chains[o.id]
		if len(texts) == 0 || o.id <= 0 {
			return nil, nil, fmt.Sprintf("no text for rule %d", o.id)
		}
		r, ok := parseQRule(o, texts)
		if !ok {
			// A rule the proof cannot read: fine as long as it is never
			// evaluated (folded, or skipped on C); see calibrate.
			r = &qRule{id: o.id, phase: o.phase, opaque: true, readsRequest: true}
		}
		if ft.opaque(o.id, o.raw) {
			// Removed or retargeted by a directive: what it reads may be
			// less than its text says.
			r.plain = false
		}
		r.raw = strings.ToLower(o.raw)
		q.rules = append(q.rules, r)
	}
	chainIDs := map[string]int{}
	for _, r := range q.rules {
		for _, l := range r.links {
			k := strings.Join(l.chain, ",")
			id, ok := chainIDs[k]
			if !ok {
				id = len(chainIDs)
				chainIDs[k] = id
			}
			l.chainID = id
		}
	}
	if !q.checkTX() {
		return nil, nil, "checkTX"
	}
	// The candidates' pre-filters, all of them (not only those the gate
	// may remove in place: proof 4 removes nothing).
	g := &gateSet{observed: observed, all: true}
	g.build(extra)
	if g.off {
		return nil, nil, "gate off"
	}
	for p := 1; p <= 2; p++ {
		for i := range g.phase[p] {
			q.candR[g.phase[p][i].id] = &g.phase[p][i]
		}
	}
	q.cand = g
	byID := map[int]*qRule{}
	for _, r := range q.rules {
		if r.id > 0 {
			byID[r.id] = r
		}
	}
	visit := func(o observedRule, get func(string) tvState) {
		r := byID[o.id]
		if r == nil {
			return
		}
		written := map[string]bool{}
		for _, l := range r.links {
			l.op = nil
			if l.opName != "" {
				arg, known := expand(l.rawArg, get)
				for name := range macroNames(l.rawArg) {
					if written[name] || ft.dynamic(name) {
						known = false
					}
				}
				if known {
					l.op = newQOp(l.opName, arg)
				}
			}
			for _, s := range l.sets {
				name, _, _ := strings.Cut(strings.TrimPrefix(s, "!"), "=")
				col, v, _ := strings.Cut(name, ".")
				if strings.EqualFold(col, "tx") {
					written[strings.ToLower(v)] = true
				}
			}
		}
	}
	return q, visit, ""
}

// macroNames returns the TX names of the %{tx.name} macros of s.
func macroNames(s string) map[string]bool {
	out := map[string]bool{}
	for _, m := range macroRx.FindAllString(s, -1) {
		col, name, _ := strings.Cut(m[2:len(m)-1], ".")
		if strings.EqualFold(col, "tx") {
			out[strings.ToLower(name)] = true
		}
	}
	return out
}

// chainTexts returns, by the id of each rule, its statement and those of
// the rules chained to it.
func chainTexts(sts []string) (map[int][]string, bool) {
	out := map[int][]string{}
	head := 0
	inChain := false
	for _, st := range sts {
		name, rest, _ := strings.Cut(st, " ")
		rest = strings.TrimSpace(rest)
		var actions string
		switch strings.ToLower(name) {
		case "secrule":
			_, _, a, ok := splitRule(rest)
			if !ok {
				return nil, false
			}
			actions = a
		case "secaction":
			actions = strings.Trim(rest, `"`)
		default:
			continue
		}
		chainHead := false
		id := 0
		for _, a := range splitActions(actions) {
			an, arg, _ := strings.Cut(strings.TrimSpace(a), ":")
			switch strings.ToLower(strings.TrimSpace(an)) {
			case "id":
				id, _ = strconv.Atoi(strings.Trim(strings.TrimSpace(arg), "'"))
			case "chain":
				chainHead = true
			}
		}
		if inChain {
			if head <= 0 {
				return nil, false
			}
			out[head] = append(out[head], st)
		} else {
			if id <= 0 {
				return nil, false
			}
			if _, dup := out[id]; dup {
				return nil, false
			}
			head = id
			out[id] = []string{st}
		}
		inChain = chainHead
	}
	return out, true
}

// parseQRule reads a rule and its chain.
func parseQRule(o observedRule, texts []string) (*qRule, bool) {
	r := &qRule{id: o.id, phase: o.phase, plain: true, pure: true}
	inputs := map[qKey]bool{}
	for i, st := range texts {
		dir, rest, _ := strings.Cut(st, " ")
		rest = strings.TrimSpace(rest)
		l := &qLink{}
		var vars, op, actions string
		if strings.EqualFold(dir, "SecAction") {
			actions = strings.Trim(rest, `"`)
		} else {
			var ok bool
			vars, op, actions, ok = splitRule(rest)
			if !ok {
				return nil, false
			}
		}
		if vars != "" {
			for _, tok := range splitVars(vars) {
				if tok == "" {
					return nil, false
				}
				if tok[0] == '!' {
					l.partial = true
					continue
				}
				count := tok[0] == '&'
				name, key, _ := strings.Cut(strings.TrimPrefix(tok, "&"), ":")
				v, err := variables.Parse(name)
				if err != nil {
					return nil, false
				}
				key = strings.Trim(key, "'")
				rxKey := strings.HasPrefix(key, "/")
				if rxKey || v == variables.XML {
					if rxKey && v == variables.TX {
						l.txRx = append(l.txRx, strings.TrimSuffix(strings.TrimPrefix(key, "/"), "/"))
					}
					l.partial = true
					key = ""
				}
				if v == variables.TX {
					if key == "" && !rxKey {
						return nil, false // all of TX: proof 6's conditions
					}
				} else if derivedVars[v] {
					if i == 0 && v != variables.Rule {
						return nil, false // another rule's match
					}
				} else {
					inputs[qKey{v, key}] = true
				}
				l.targets = append(l.targets, qTarget{v: v, key: key, count: count})
			}
			neg := strings.HasPrefix(op, "!")
			name, arg, _ := strings.Cut(strings.TrimPrefix(op, "!"), " ")
			if !strings.HasPrefix(name, "@") {
				// An operator-less argument is @rx.
				name, arg = "@rx", strings.TrimPrefix(op, "!")
			}
			l.opName, l.negated, l.rawArg = strings.ToLower(strings.TrimPrefix(name, "@")), neg, arg
		}
		for _, a := range splitActions(actions) {
			an, arg, _ := strings.Cut(strings.TrimSpace(a), ":")
			arg = strings.Trim(strings.TrimSpace(arg), "'")
			r.actions = append(r.actions, strings.ToLower(strings.TrimSpace(an)))
			switch strings.ToLower(strings.TrimSpace(an)) {
			case "t":
				t := strings.ToLower(arg)
				if t == "none" {
					l.chain = l.chain[:0]
				} else {
					l.chain = append(l.chain, t)
				}
			case "multimatch":
				l.multi = true
			case "capture":
				l.capture = true
			case "setvar":
				l.sets = append(l.sets, arg)
				if strings.Contains(arg, "%{") && macroOutsideTX(arg) {
					r.pure = false
				}
			case "ctl":
				if strings.Contains(arg, "%{") {
					r.pure = false
				}
				r.ctls = append(r.ctls, arg)
			case "skipafter":
				r.skipAfter = arg
			case "skip":
				r.skip = true
			case "allow":
				r.allow = true
			case "exec", "expirevar", "deprecatevar", "initcol", "setuid", "setsid", "setenv":
				return nil, false
			}
		}
		if l.capture {
			r.pure = false
		}
		// Macros anywhere in the statement: request variables are inputs.
		for _, m := range macroRx.FindAllString(st, -1) {
			col, key, _ := strings.Cut(m[2:len(m)-1], ".")
			v, err := variables.Parse(col)
			if err != nil {
				return nil, false
			}
			if v == variables.TX || derivedVars[v] {
				continue
			}
			inputs[qKey{v, key}] = true
		}
		r.plain = r.plain && !l.partial
		r.links = append(r.links, l)
	}
	for k := range inputs {
		r.inputs = append(r.inputs, k)
	}
	slices.SortFunc(r.inputs, func(a, b qKey) int {
		if a.v != b.v {
			return int(a.v) - int(b.v)
		}
		return strings.Compare(a.key, b.key)
	})
	r.readsRequest = len(r.inputs) > 0
	return r, true
}

// requestOnly reports whether every input is a variable nothing changes
// during a bodiless request's phases: what proof 7 reads in a run without
// the other rules is then what the full run reads.
func requestOnly(keys []qKey) bool {
	for _, k := range keys {
		if !staticVars[k.v] && !bodyVars[k.v] {
			return false
		}
	}
	return true
}

// readsRequestOnly reports whether the link reads only request variables
// nothing changes during a bodiless request's phases (and at least one).
func (l *qLink) readsRequestOnly() bool {
	for _, t := range l.targets {
		if !staticVars[t.v] && !(bodyVars[t.v] && !t.count) {
			return false
		}
	}
	return len(l.targets) > 0
}

// readsTX reports whether a rule of r's chain reads TX: a target, or a
// macro in its operator.
func (r *qRule) readsTX() bool {
	for _, l := range r.links {
		if len(macroNames(l.rawArg)) > 0 || len(l.txRx) > 0 {
			return true
		}
		for _, t := range l.targets {
			if t.v == variables.TX {
				return true
			}
		}
	}
	return false
}

// macroOutsideTX reports whether s has a macro naming anything but TX.
func macroOutsideTX(s string) bool {
	for _, m := range macroRx.FindAllString(s, -1) {
		col, _, _ := strings.Cut(m[2:len(m)-1], ".")
		if !strings.EqualFold(col, "tx") {
			return true
		}
	}
	return false
}

// restrictedHeaders matches the setvar of the first rule of CRS 920450
// and 920451 (proof 6).
var restrictedHeaders = regexp.MustCompile(`^tx\.([a-z0-9_]+_)%\{tx\.0\}=/%\{tx\.0\}/$`)

// checkTX applies the conditions on TX reads (see proof 6): no rule
// reads the capture TX:0-9 it did not capture, and the names a
// restricted-headers rule records are read by its own chained rule only.
// It marks such rules special; other rules need not be.
func (q *quietStatic) checkTX() bool {
	for _, r := range q.rules {
		if r.id == 0 {
			continue
		}
		captures := false
		for _, l := range r.links {
			captures = captures || l.capture
		}
		for _, l := range r.links {
			reads := macroNames(l.rawArg)
			for _, s := range l.sets {
				_, val, _ := strings.Cut(s, "=")
				for n := range macroNames(val) {
					reads[n] = true
				}
				name, _, _ := strings.Cut(s, "=")
				for n := range macroNames(name) {
					reads[n] = true
				}
			}
			for _, t := range l.targets {
				if t.v == variables.TX && t.key != "" {
					reads[strings.ToLower(t.key)] = true
				}
			}
			for n := range reads {
				if _, err := strconv.Atoi(n); err == nil && !captures {
					return false
				}
			}
		}
	}
	// 920450's shape.
	for _, r := range q.rules {
		if r.id == 0 || len(r.links) != 2 {
			continue
		}
		h, c := r.links[0], r.links[1]
		if len(h.targets) != 1 || h.targets[0].v != variables.RequestHeadersNames || h.targets[0].count ||
			h.partial || h.negated || h.opName != operatorName || h.rawArg != "^.*$" ||
			!slices.Equal(h.chain, []string{"lowercase"}) || !h.capture || h.multi || len(h.sets) != 1 {
			continue
		}
		m := restrictedHeaders.FindStringSubmatch(strings.ToLower(h.sets[0]))
		if m == nil {
			continue
		}
		prefix := m[1]
		if len(c.targets) != 1 || c.targets[0].v != variables.TX || c.targets[0].count || c.negated ||
			c.opName != "within" || len(macroNames(c.rawArg)) != 1 || c.multi || c.capture ||
			!slices.Equal(c.txRx, []string{"^" + prefix}) || len(c.chain) > 0 {
			continue
		}
		if !q.onlyReader(prefix, r) {
			continue
		}
		r.shape = shapeHeaderNames
	}
	// 920440's shape.
	for _, r := range q.rules {
		if r.id == 0 || len(r.links) != 2 || r.shape != shapeNone {
			continue
		}
		h, c := r.links[0], r.links[1]
		if len(h.targets) != 1 || !singleVars[h.targets[0].v] || h.targets[0].count || h.partial || h.negated ||
			h.opName != operatorName || !h.capture || h.multi || len(h.sets) != 1 {
			continue
		}
		m := captureSet.FindStringSubmatch(h.sets[0])
		if m == nil {
			continue
		}
		name, template := strings.ToLower(m[1]), m[2]
		if len(c.targets) != 1 || c.targets[0].v != variables.TX || !strings.EqualFold(c.targets[0].key, name) ||
			c.targets[0].count || c.negated || c.opName != "within" || len(macroNames(c.rawArg)) != 1 ||
			c.multi || c.capture || len(c.txRx) > 0 || !(len(c.chain) == 0 || slices.Equal(c.chain, []string{"lowercase"})) {
			continue
		}
		if !q.onlyReaderExact(name, r) {
			continue
		}
		r.shape, r.txName, r.template = shapeCaptureWithin, name, template
	}
	return true
}

// Shapes of proof 6.
const (
	shapeNone          = iota
	shapeHeaderNames   // 920450, 920451: every header name, lowered, in TX; listed?
	shapeCaptureWithin // 920440: a capture of one value, in TX; listed?
)

// singleVars are request variables with one value.
var singleVars = map[variables.RuleVariable]bool{
	variables.RequestBasename: true, variables.RequestFilename: true, variables.RequestURI: true,
	variables.RequestURIRaw: true, variables.QueryString: true, variables.RequestLine: true,
	variables.RequestMethod: true, variables.RequestProtocol: true,
}

// captureSet matches a setvar of one TX variable to literal text and
// capture groups (%{tx.N}).
var captureSet = regexp.MustCompile(`^(?i:tx)\.([A-Za-z0-9_]+)=((?:[^%]|%\{(?i:tx)\.[0-9]\})*)$`)

// onlyReaderExact reports whether no rule but r reads the TX variable
// name (a target, a macro, or a regular-expression key it matches).
func (q *quietStatic) onlyReaderExact(name string, r *qRule) bool {
	for _, o := range q.rules {
		if o == r || o.id == 0 {
			continue
		}
		for _, l := range o.links {
			for _, t := range l.targets {
				if t.v == variables.TX && strings.EqualFold(t.key, name) {
					return false
				}
			}
			reads := macroNames(l.rawArg)
			for _, st := range l.sets {
				for n := range macroNames(st) {
					reads[n] = true
				}
			}
			if reads[name] {
				return false
			}
			for _, k := range l.txRx {
				re, err := regexp.Compile(k)
				if err != nil || re.MatchString(name) {
					return false
				}
			}
		}
	}
	return true
}

// onlyReader reports whether no rule but r reads TX names starting with
// prefix.
func (q *quietStatic) onlyReader(prefix string, r *qRule) bool {
	probe := prefix + "x"
	for _, o := range q.rules {
		if o == r || o.id == 0 {
			continue
		}
		for _, l := range o.links {
			for _, t := range l.targets {
				if t.v != variables.TX {
					continue
				}
				k := strings.ToLower(t.key)
				if strings.HasPrefix(k, prefix) {
					return false
				}
			}
			for n := range macroNames(l.rawArg) {
				if strings.HasPrefix(n, prefix) {
					return false
				}
			}
			for _, s := range l.sets {
				for n := range macroNames(s) {
					if strings.HasPrefix(n, prefix) {
						return false
					}
				}
			}
		}
		// TX targets with regular-expression keys were parsed as partial
		// whole-collection reads; check them against the prefix.
		for _, l := range o.links {
			if !l.partial {
				continue
			}
			for _, k := range l.txRx {
				re, err := regexp.Compile(k)
				if err != nil || re.MatchString(probe) || re.MatchString(prefix) {
					return false
				}
			}
		}
	}
	return true
}

// newQOp returns the evaluable operator name(arg), or nil.
func newQOp(name, arg string) *qOp {
	o := &qOp{kind: name, arg: arg}
	switch name {
	case operatorName, "rx":
		expr := "(?sm)" + arg
		if matchesBytes(expr) {
			// As newRx: the byte-oriented matcher, without the flags.
			re, err := binaryregexp.Compile(arg)
			if err != nil {
				return nil
			}
			o.re, o.kind = re, "rx"
			return o
		}
		if v, ok := compiled.Load(expr); ok {
			o.re = v.(*rx) // with its pre-filter: the same answers, faster
		} else {
			re, err := regexp.Compile(expr)
			if err != nil {
				return nil
			}
			o.re = re
		}
		o.kind = "rx"
	case "streq", "within", "contains", "beginswith", "endswith", "detectsqli", "detectxss":
	case "eq", "gt", "lt", "ge", "le":
	case "ipmatch":
		// As Coraza's newIPMatch: bare addresses are /32 or /128, and
		// entries that do not parse are left out.
		for _, sb := range strings.Split(arg, ",") {
			sb = strings.TrimSpace(sb)
			if sb == "" {
				continue
			}
			if strings.Contains(sb, ":") && !strings.Contains(sb, "/") {
				sb += "/128"
			} else if strings.Contains(sb, ".") && !strings.Contains(sb, "/") {
				sb += "/32"
			}
			if _, subnet, err := net.ParseCIDR(sb); err == nil {
				o.subnets = append(o.subnets, *subnet)
			}
		}
	case "validatebyterange":
		if arg == "" {
			return nil
		}
		for _, br := range strings.Split(arg, ",") {
			br = strings.TrimSpace(br)
			start, end, isRange := strings.Cut(br, "-")
			s, err := strconv.Atoi(start)
			if err != nil || s < 0 || s > 255 {
				return nil
			}
			e := s
			if isRange {
				if e, err = strconv.Atoi(end); err != nil || e < 0 || e > 255 {
					return nil
				}
			}
			for i := s; i <= e; i++ {
				o.vbr[i] = true
			}
		}
	default:
		return nil
	}
	return o
}

// match is the operator on one value, as Coraza 3.8.1 evaluates it.
func (o *qOp) match(v string) bool {
	switch o.kind {
	case "rx":
		return o.re.MatchString(v)
	case "streq":
		return o.arg == v
	case "within":
		return strings.Contains(o.arg, v)
	case "contains":
		return strings.Contains(v, o.arg)
	case "beginswith":
		return strings.HasPrefix(v, o.arg)
	case "endswith":
		return strings.HasSuffix(v, o.arg)
	case "detectsqli":
		m, _ := libinjection.IsSQLi(v)
		return m
	case "detectxss":
		return libinjection.IsXSS(v)
	case "ipmatch":
		ip := net.ParseIP(v)
		for _, subnet := range o.subnets {
			if subnet.Contains(ip) {
				return true
			}
		}
		return false
	case "validatebyterange":
		if v == "" {
			return false
		}
		for i := 0; i < len(v); i++ {
			if !o.vbr[v[i]] {
				return true
			}
		}
		return false
	}
	a, _ := strconv.Atoi(v)
	b, _ := strconv.Atoi(o.arg)
	switch o.kind {
	case "eq":
		return a == b
	case "gt":
		return a > b
	case "lt":
		return a < b
	case "ge":
		return a >= b
	case "le":
		return a <= b
	}
	return false
}

// transform applies a link's transformations to v as Coraza 3.8.1 does,
// when each step is one it can compute (proof 5): false when not.
//
// Exact everywhere: lowercase, length, removeNulls and removeWhitespace
// (Coraza calls the same standard library functions), base64Decode
// (base64DecodeStrict). Exact on ASCII: cmdLine (xform.go).
// Other steps in transformTriggers: only when the value holds none of
// their triggers, which leaves it unchanged; on a value with bytes of
// 0x80 and above, only the steps that look at ASCII bytes alone
// (byteSteps). TestQuietTransformsMatchCoraza checks every chain of the
// rule set against Coraza's own.
func transform(chain []string, v string) (string, bool) {
	ascii := asciiOnly(v)
	for _, t := range chain {
		switch t {
		case "lowercase":
			v = strings.ToLower(v)
			continue
		case "length":
			v = strconv.Itoa(len(v))
			ascii = true
			continue
		case "removenulls":
			v = strings.ReplaceAll(v, "\x00", "")
			continue
		case "removewhitespace":
			v = strings.Map(dropSpace, v)
			continue
		case "base64decode":
			v = base64DecodeStrict(v)
			ascii = asciiOnly(v)
			continue
		case "cmdline":
			// Coraza's cmdLine lowers every letter, so its result is its
			// own lowering, which cmdLineASCII computes from the input's
			// (xform.go, TestExactTransforms).
			if !ascii {
				return "", false
			}
			v = cmdLineASCII(strings.ToLower(v))
			continue
		case "removecommentschar":
			// Changes only at /* */ <!-- --> -- and #.
			if strings.Contains(v, "/*") || strings.Contains(v, "*/") || strings.Contains(v, "--") || strings.IndexByte(v, '#') >= 0 {
				return "", false
			}
			continue
		}
		trig, known := transformTriggers[t]
		if !known || !ascii && !byteSteps[t] || triggers(v)&trig&^trigHigh != 0 {
			return "", false
		}
	}
	return v, true
}

// byteSteps are the transformations that, on any bytes, change a value
// only at ASCII bytes of their triggers: urlDecode(Uni) at % and +,
// jsDecode at \, replaceComments at /*.
var byteSteps = map[string]bool{"none": true, "urldecode": true, "urldecodeuni": true, "jsdecode": true, "replacecomments": true}

// dropSpace is Coraza's removeWhitespace mapping.
func dropSpace(r rune) rune {
	if unicode.IsSpace(r) {
		return -1
	}
	return r
}

// base64Dec maps the base64 alphabet to its values, 127 elsewhere.
var base64Dec = func() (t [128]byte) {
	for i := range t {
		t[i] = 127
	}
	for i, c := range "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/" {
		t[c] = byte(i)
	}
	return t
}()

// base64DecodeStrict is Coraza 3.8.1's t:base64Decode (doBase64decode,
// Apache-2.0, restated): \r and \n are skipped, '=' or a space ends the
// input, as does any byte outside the alphabet; a partial last group
// gives its whole bytes.
func base64DecodeStrict(src string) string {
	if src == "" {
		return src
	}
	var n, x int
	var dst strings.Builder
	dst.Grow(len(src))
	for i := 0; i < len(src); i++ {
		c := src[i]
		if c == '\r' || c == '\n' {
			continue
		}
		if c == '=' || c == ' ' || c > 127 || base64Dec[c] == 127 {
			break
		}
		x = x<<6 | int(base64Dec[c]&0x3F)
		n++
		if n == 4 {
			dst.WriteByte(byte(x >> 16))
			dst.WriteByte(byte(x >> 8))
			dst.WriteByte(byte(x))
			n, x = 0, 0
		}
	}
	switch n {
	case 2:
		x <<= 12
		dst.WriteByte(byte(x >> 16))
	case 3:
		x <<= 6
		dst.WriteByte(byte(x >> 16))
		dst.WriteByte(byte(x >> 8))
	}
	return dst.String()
}

// quietSet is a calibrated quiet path; safe for concurrent use.
type quietSet struct {
	keys  []qKey
	calib [][]kv // C's pairs by key, sorted
	proof []quietProof
	cand  *gateSet
	// taken and tried count requests, for tests and figures.
	taken, tried atomic.Uint64
	cache        *proofCache
	// onFail, when set (tests only, before the first request), receives
	// the id of the rule no proof covered.
	onFail func(id int)
	// assume, when set (tests only), is a proof taken to hold without
	// checking: TestQuietEveryProofMatters shows the corpus catches each.
	assume int
}

// The proofs check and alone run, for quietSet.assume.
const (
	proofSame = iota + 1
	proofPrefilter
	proofEval
	proofAlone
	proofRestricted
)

// quietProof is what holds must show of one rule.
type quietProof struct {
	r       *qRule
	keys    []int // inputs, in quietSet.keys
	matched bool  // on C
	cand    *gateRule
	// shape and list: proof 6 applies, with that restricted list;
	// captureRe is a shapeCaptureWithin rule's expression.
	shape     int
	list      string
	captureRe *regexp.Regexp
	// reduced: a rule that matched on C removes some of its targets
	// (ctl:ruleRemoveTarget*), so proof 5 cannot show it matches.
	reduced bool
	// trimmer: the rule matched on C and only trims other rules' targets;
	// affects are the proofs of the rules it trims (proof 3b).
	trimmer bool
	affects []int
	// byValue: valuesHarmless applies (did not match on C; the first
	// link reads only request variables nothing changes).
	byValue bool
	// alone: proof 7 applies. The rule did not match on C, is of phase 1
	// or 2, and no rule of its chain reads TX: run alone on the request
	// (all other rules removed), it matches if it would in the full run,
	// or more often (targets other rules' ctl would have removed are
	// still read), never less.
	alone bool
}

type kv struct{ k, v string }

// calibrationRequest is C.
func calibrationRequest() *http.Request {
	r := httptest.NewRequest(http.MethodGet, "http://gatehouse.invalid/calibrate", nil)
	r.RemoteAddr = "192.0.2.1:40000"
	r.Header.Set("User-Agent", "gatehouse-calibration/1")
	r.Header.Set("Accept", "*/*")
	return r
}

// calibrate runs C through w's rules and returns the quiet path, or nil
// when C is not quiet or the rule set is not one the proof covers.
func (w *WAF) calibrate(q *quietStatic) *quietSet {
	if q == nil {
		return calibrationFails("1")
	}
	r := calibrationRequest()
	tx := w.engine.NewTransaction()
	defer tx.Close()
	w.feedHeaders(r, "192.0.2.1", tx)
	ts, ok := tx.(plugintypes.TransactionState)
	if !ok {
		return calibrationFails("2")
	}
	s := &quietSet{cand: q.cand, cache: &proofCache{m: map[string][]uint64{}}}
	keyIdx := map[qKey]int{}
	for _, rule := range q.rules {
		for _, k := range rule.inputs {
			if _, ok := keyIdx[k]; !ok {
				keyIdx[k] = len(s.keys)
				s.keys = append(s.keys, k)
				s.calib = append(s.calib, readPairs(ts, k))
			}
		}
	}
	if it := tx.ProcessRequestHeaders(); it != nil {
		return calibrationFails("3")
	}
	if it, err := tx.ProcessRequestBody(); it != nil || err != nil {
		return calibrationFails("4")
	}
	tx.ProcessLogging()
	if tx.IsInterrupted() {
		return calibrationFails("5")
	}
	matched := map[int]bool{}
	for _, m := range tx.MatchedRules() {
		if logged(m) {
			return calibrationFails(fmt.Sprint("C matched ", m.Rule().ID(), " ", m.Message())) // C is not quiet
		}
		matched[m.Rule().ID()] = true
	}
	// Proof 2: the rules a skipAfter that matched on C passed over.
	skipped := map[*qRule]bool{}
	for i, rule := range q.rules {
		if !matched[rule.id] {
			continue
		}
		if rule.skip || rule.allow || rule.opaque {
			return calibrationFails("7")
		}
		if rule.skipAfter == "" {
			continue
		}
		found := false
		for _, next := range q.rules[i+1:] {
			if next.secMark == rule.skipAfter {
				found = true
				break
			}
			if next.phase == rule.phase {
				skipped[next] = true
			}
		}
		if !found {
			return calibrationFails("8")
		}
	}
	// The rules that matched on C and take targets away from others.
	var trimmers []*qRule
	for _, rule := range q.rules {
		if !matched[rule.id] || len(rule.ctls) == 0 {
			continue
		}
		for _, c := range rule.ctls {
			if strings.HasPrefix(strings.ToLower(strings.TrimSpace(c)), "ruleremovetargetbymsg") {
				return calibrationFails("ruleRemoveTargetByMsg")
			}
		}
		trimmers = append(trimmers, rule)
	}
	isReduced := func(rule *qRule) bool {
		for _, src := range trimmers {
			if src.trims(rule) {
				return true
			}
		}
		return false
	}
	for _, rule := range q.rules {
		if rule.id == 0 || skipped[rule] || q.folded[rule.id] || !rule.readsRequest {
			continue
		}
		if rule.opaque {
			return calibrationFails("9")
		}
		p := quietProof{r: rule, matched: matched[rule.id], reduced: isReduced(rule)}
		for _, k := range rule.inputs {
			p.keys = append(p.keys, keyIdx[k])
		}
		if c := q.candR[rule.id]; c != nil && !p.matched {
			p.cand = c
		}
		p.alone = !p.matched && rule.phase != types.PhaseLogging && !rule.readsTX() && requestOnly(rule.inputs)
		p.byValue = !p.matched && rule.links[0].readsRequestOnly() && (p.cand != nil || rule.links[0].op != nil)
		if rule.shape != shapeNone && !p.matched && rule.links[1].op != nil && rule.links[1].op.kind == "within" {
			p.shape, p.list = rule.shape, rule.links[1].op.arg
			if rx, ok := rule.links[0].op.re.(*rx); ok && rule.shape == shapeCaptureWithin {
				p.captureRe = rx.re
			}
		}
		s.proof = append(s.proof, p)
	}
	// Proof 3b: a trimmer that matched on C may not match on X, and the
	// rules it trims then read more on X than on C: for those, equal
	// inputs prove nothing, and check uses the other proofs.
	for i := range s.proof {
		p := &s.proof[i]
		if !p.matched || p.reduced || !p.r.trimOnly() || !p.r.plain || !p.r.pure {
			continue
		}
		p.trimmer = true
		for j := range s.proof {
			if p.r.trims(s.proof[j].r) {
				p.affects = append(p.affects, j)
			}
		}
	}
	return s
}

// calibrationFails records why a calibration gave no quiet path.
func calibrationFails(why string) *quietSet {
	quietWhy.Store(&why)
	return nil
}

// readPairs reads k's key and value pairs from tx, sorted: Coraza's
// collections are maps, read in no fixed order.
func readPairs(tx plugintypes.TransactionState, k qKey) []kv {
	col := tx.Collection(k.v)
	if col == nil {
		return nil
	}
	var ms []types.MatchData
	if kc, ok := col.(collection.Keyed); ok && k.key != "" {
		ms = kc.FindString(k.key)
	} else {
		ms = col.FindAll()
	}
	out := make([]kv, len(ms))
	for i, m := range ms {
		out[i] = kv{m.Key(), m.Value()}
	}
	slices.SortFunc(out, func(a, b kv) int {
		if c := strings.Compare(a.k, b.k); c != 0 {
			return c
		}
		return strings.Compare(a.v, b.v)
	})
	return out
}

// quietScratch is one proof's memory.
type quietScratch struct {
	same    []int8 // by key: 0 unknown, 1 same as C, -1 differs
	widened []bool // by proof: a trimmer did not match (proof 3b)
	// vals are the values read by target, xf the transformed values by
	// chain and value: many rules read the same values through the same
	// transformations.
	vals map[qKey][]string
	xf   map[xfKey]xfVal
	// bits are the values' proofCache bits as this request sees them;
	// learned the values it added bits to.
	bits    map[string][]uint64
	learned []string
}

type xfKey struct {
	chain int
	v     string
}

type xfVal struct {
	out string
	ok  bool
}

// values reads a target's values as Coraza's GetField reads them (without
// exceptions), once per request.
func (qs *quietScratch) values(tx plugintypes.TransactionState, t qTarget) []string {
	k := qKey{t.v, t.key}
	if vs, ok := qs.vals[k]; ok {
		return vs
	}
	var vs []string
	if col := tx.Collection(t.v); col != nil {
		var ms []types.MatchData
		if kc, isKeyed := col.(collection.Keyed); isKeyed && t.key != "" {
			ms = kc.FindString(t.key)
		} else {
			ms = col.FindAll()
		}
		vs = make([]string, len(ms))
		for i, m := range ms {
			vs[i] = m.Value()
		}
	}
	qs.vals[k] = vs
	return vs
}

var quietPool = sync.Pool{New: func() any {
	return &quietScratch{vals: map[qKey][]string{}, xf: map[xfKey]xfVal{}, bits: map[string][]uint64{}}
}}

// check runs proofs 3 to 6 and returns, with ok, the ids (sorted, added
// to rest) of the rules that proof 7 must still show do not match.
func (s *quietSet) check(tx plugintypes.TransactionState, rest []int) (ok bool, _ []int) {
	s.tried.Add(1)
	qs := quietPool.Get().(*quietScratch)
	defer func() {
		qs.flush(s.cache)
		clear(qs.vals)
		clear(qs.xf)
		clear(qs.bits)
		qs.learned = qs.learned[:0]
		quietPool.Put(qs)
	}()
	qs.same = slices.Grow(qs.same[:0], len(s.keys))[:len(s.keys)]
	clear(qs.same)
	var sc *gateScratch
	defer func() {
		if sc != nil {
			sc.release()
		}
	}()
	qs.widened = slices.Grow(qs.widened[:0], len(s.proof))[:len(s.proof)]
	clear(qs.widened)
	for i := range s.proof {
		p := &s.proof[i]
		if !p.trimmer || s.sameInputs(tx, qs, p.keys) {
			continue
		}
		// Proof 3b: either it matches on X too (proof 5), or it does not
		// and the rules it trims must do without proof 3.
		m, good := p.r.links[0].evalStatic(tx, qs)
		if !good {
			return false, rest
		}
		if !m {
			for _, j := range p.affects {
				qs.widened[j] = true
			}
		}
	}
	for i := range s.proof {
		p := &s.proof[i]
		if p.trimmer {
			continue // above
		}
		if s.assume == proofSame || !qs.widened[i] && s.sameInputs(tx, qs, p.keys) {
			continue // proof 3
		}
		if p.byValue {
			if sc == nil {
				sc = scratchPool.Get().(*gateScratch)
				sc.reset(s.cand)
			}
			switch s.valuesHarmless(tx, qs, sc, i) {
			case harmless:
				continue // proofs 4 and 5, value by value
			case harmful:
				if s.onFail != nil {
					s.onFail(p.r.id)
				}
				return false, rest
			}
		}
		if !p.byValue && p.cand != nil {
			if s.assume == proofPrefilter {
				continue
			}
			if sc == nil {
				sc = scratchPool.Get().(*gateScratch)
				sc.reset(s.cand)
			}
			if s.impossible(tx, sc, p.cand) {
				continue // proof 4
			}
		}
		if p.shape != shapeNone && (s.assume == proofRestricted || s.restricted(tx, qs, p)) {
			continue // proof 6
		}
		same, exact := s.evaluates(tx, qs, p)
		if same {
			continue // proof 5
		}
		if p.alone && !exact {
			if s.assume != proofAlone {
				rest = append(rest, p.r.id)
			}
			continue // proof 7, by the caller
		}
		if s.onFail != nil {
			s.onFail(p.r.id)
		}
		return false, rest
	}
	slices.Sort(rest)
	return true, rest
}

// alone runs the rules of rest, and only those, through tx's request
// phases (proof 7), and reports whether none matched. tx is used up
// either way.
func (s *quietSet) alone(tx types.Transaction, rest []int) bool {
	rm, ok := tx.(interface{ RemoveRuleByIDRange(start, end int) })
	if !ok {
		return false
	}
	// From 0: SecMarkers have id 0, and each one Coraza evaluates sets
	// the MATCHED_* variables; with every skipAfter gone they mark nothing.
	from := 0
	for _, id := range rest {
		if id > from {
			rm.RemoveRuleByIDRange(from, id-1)
		}
		from = id + 1
	}
	rm.RemoveRuleByIDRange(from, math.MaxInt)
	if it := tx.ProcessRequestHeaders(); it != nil {
		return false
	}
	if it, err := tx.ProcessRequestBody(); it != nil || err != nil {
		return false
	}
	return len(tx.MatchedRules()) == 0
}

func (s *quietSet) sameInputs(tx plugintypes.TransactionState, qs *quietScratch, keys []int) bool {
	for _, k := range keys {
		if qs.same[k] == 0 {
			qs.same[k] = -1
			if slices.Equal(readPairs(tx, s.keys[k]), s.calib[k]) {
				qs.same[k] = 1
			}
		}
		if qs.same[k] < 0 {
			return false
		}
	}
	return true
}

// impossible is the gate's pre-filter over every value r reads.
func (s *quietSet) impossible(tx plugintypes.TransactionState, sc *gateScratch, r *gateRule) bool {
	for _, k := range s.cand.targets[r.targets] {
		for _, v := range sc.values(tx, s.cand, k) {
			if !sc.impossible(r, v) {
				return false
			}
		}
	}
	return true
}

// evaluates is proof 5: the rule (or its first link, when it did not match
// on C) evaluated exactly on the request gives C's outcome.
//
// exact, when same is false, means the evaluation was done and differs:
// the rule's first link matches on X where the rule did not match on C
// (and so may match, on a chain), or a rule that matched on C does not.
// Proof 7 cannot help then, and check gives up at once.
func (s *quietSet) evaluates(tx plugintypes.TransactionState, qs *quietScratch, p *quietProof) (same, exact bool) {
	links := p.r.links
	if !p.matched {
		links = links[:1]
	} else if len(links) > 1 || !p.r.plain || !p.r.pure || p.reduced {
		return false, false
	}
	l := links[0]
	if l.op == nil {
		return false, false
	}
	for _, t := range l.targets {
		if !staticVars[t.v] && !(bodyVars[t.v] && !t.count) {
			return false, false
		}
	}
	if s.assume == proofEval {
		return true, false
	}
	m, ok := l.eval(tx, qs)
	if !ok {
		return false, false
	}
	// A first link that matches while others follow says nothing final,
	// nor does a match on values the rule may not read (exclusions,
	// targets a ctl takes away).
	return m == p.matched, p.matched || len(p.r.links) == 1 && !l.partial && !p.reduced
}

// Outcomes of valuesHarmless.
const (
	undecided = iota
	harmless
	harmful
)

// valuesHarmless is proofs 4 and 5 for a rule that did not match on C,
// value by value: the rule's first link reads values, and the rule can
// only match if one of them makes the link's operator match. A value is
// harmless when the gate's pre-filter rules it out, or when the operator,
// evaluated exactly on it, does not match; both depend on the value
// alone, so values seen on earlier requests (a client's token, its
// User-Agent) are remembered as harmless for the rule (proofCache).
// harmful means a value makes a one-link rule match, undecided that a
// value could not be shown harmless.
func (s *quietSet) valuesHarmless(tx plugintypes.TransactionState, qs *quietScratch, sc *gateScratch, i int) int {
	p := &s.proof[i]
	l := p.r.links[0]
	// A value that makes the link match makes the rule match only when
	// the rule is that one link and reads exactly its targets.
	final := len(p.r.links) == 1 && !l.partial && !p.reduced
	result := harmless
	for _, t := range l.targets {
		if t.count {
			if l.op == nil {
				return undecided
			}
			var ok bool
			m := l.test(qs, strconv.Itoa(len(qs.values(tx, t))), &ok)
			switch {
			case !ok:
				return undecided
			case m && final:
				return harmful
			case m:
				return undecided
			}
			continue
		}
		for _, v := range qs.values(tx, t) {
			bits := qs.known(s.cache, v)
			if bits != nil && bits[i>>6]&(1<<(i&63)) != 0 {
				continue
			}
			if p.cand != nil && (s.assume == proofPrefilter || sc.impossible(p.cand, sc.value(v))) {
				qs.learn(s.cache, v, i, len(s.proof))
				continue
			}
			if l.op == nil {
				result = undecided
				continue
			}
			var ok bool
			m := s.assume != proofEval && l.test(qs, v, &ok)
			switch {
			case s.assume == proofEval:
			case !ok:
				result = undecided
				continue
			case m && final:
				return harmful
			case m:
				result = undecided
				continue
			}
			qs.learn(s.cache, v, i, len(s.proof))
		}
	}
	return result
}

// proofCache remembers, by value, the rules (proof indexes) the value is
// known not to make match: a bounded map, oldest out first. Shared by the
// requests of every route of a quietSet.
type proofCache struct {
	mu   sync.Mutex
	m    map[string][]uint64
	ring []string
	next int
}

// Bounds of proofCache: values longer than cacheMaxLen are not kept.
const (
	cacheValues = 4096
	cacheMaxLen = 2048
)

// known returns v's bits, from the request's copy or the cache.
func (qs *quietScratch) known(c *proofCache, v string) []uint64 {
	if b, ok := qs.bits[v]; ok {
		return b
	}
	var b []uint64
	if c != nil && len(v) <= cacheMaxLen {
		c.mu.Lock()
		if cb, ok := c.m[v]; ok {
			b = slices.Clone(cb)
		}
		c.mu.Unlock()
	}
	qs.bits[v] = b
	return b
}

// learn records that v cannot make proof i's rule match, for the rest of
// the request (and, by flush, for later ones).
func (qs *quietScratch) learn(c *proofCache, v string, i, n int) {
	b := qs.known(c, v)
	if b == nil {
		b = make([]uint64, (n+63)/64)
	}
	b[i>>6] |= 1 << (i & 63)
	qs.bits[v] = b
	qs.learned = append(qs.learned, v)
}

// flush merges what the request learned into the cache.
func (qs *quietScratch) flush(c *proofCache) {
	if c == nil || len(qs.learned) == 0 {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, v := range qs.learned {
		if len(v) > cacheMaxLen {
			continue
		}
		b := qs.bits[v]
		if cb, ok := c.m[v]; ok {
			for j := range cb {
				cb[j] |= b[j]
			}
			continue
		}
		if len(c.ring) < cacheValues {
			c.ring = append(c.ring, v)
		} else {
			delete(c.m, c.ring[c.next])
			c.ring[c.next] = v
			c.next = (c.next + 1) % cacheValues
		}
		c.m[v] = slices.Clone(b)
	}
}

// evalStatic is eval for a link whose targets are request variables
// nothing changes during the phases; false ok otherwise.
func (l *qLink) evalStatic(tx plugintypes.TransactionState, qs *quietScratch) (matched, ok bool) {
	if l.op == nil || l.partial {
		return false, false
	}
	for _, t := range l.targets {
		if !staticVars[t.v] {
			return false, false
		}
	}
	return l.eval(tx, qs)
}

// eval evaluates the link on tx's values: whether it matches, and false
// ok when a value is not one transform can compute.
func (l *qLink) eval(tx plugintypes.TransactionState, qs *quietScratch) (matched, ok bool) {
	for _, t := range l.targets {
		vs := qs.values(tx, t)
		if t.count {
			if l.test(qs, strconv.Itoa(len(vs)), &ok) {
				return true, true
			}
			if !ok {
				return false, false
			}
			continue
		}
		for _, v := range vs {
			if l.test(qs, v, &ok) {
				return true, true
			}
			if !ok {
				return false, false
			}
		}
	}
	return false, true
}

// test transforms v and runs the operator, negation included; with
// multiMatch, on v and on every value a transformation reported changed,
// as Coraza's executeTransformationsMultimatch does.
func (l *qLink) test(qs *quietScratch, v string, ok *bool) bool {
	if !l.multi {
		k := xfKey{l.chainID, v}
		x, seen := qs.xf[k]
		if !seen {
			x.out, x.ok = transform(l.chain, v)
			qs.xf[k] = x
		}
		*ok = x.ok
		return x.ok && l.op.match(x.out) != l.negated
	}
	vs, good := multiValues(l.chain, v)
	*ok = good
	if !good {
		return false
	}
	for _, x := range vs {
		if l.op.match(x) != l.negated {
			return true
		}
	}
	return false
}

// multiValues are the values a multiMatch operator sees for v: v, then
// each value a transformation reported changed.
func multiValues(chain []string, v string) ([]string, bool) {
	out := []string{v}
	cur := v
	for _, t := range chain {
		next, changed, ok := multiStep(t, cur)
		if !ok {
			return nil, false
		}
		if changed {
			cur = next
			out = append(out, cur)
		}
	}
	return out, true
}

// multiStep is one transformation as multiMatch sees it: the value and
// Coraza's changed flag (which, when false, leaves the previous value in
// place even if the function's result differs: removeWhitespace on
// invalid UTF-8). A step whose flag this cannot tell is refused; a flag
// that says changed on an equal value only repeats an evaluation.
func multiStep(t, v string) (next string, changed, ok bool) {
	switch t {
	case "lowercase":
		next = strings.ToLower(v)
		return next, next != v, true
	case "removenulls":
		next = strings.ReplaceAll(v, "\x00", "")
		return next, len(next) != len(v), true
	case "removewhitespace":
		if strings.IndexFunc(v, unicode.IsSpace) < 0 {
			return v, false, true
		}
		return strings.Map(dropSpace, v), true, true
	case "base64decode":
		return base64DecodeStrict(v), true, true
	case "length":
		return strconv.Itoa(len(v)), true, true
	case "cmdline", "removecommentschar":
		return "", false, false
	}
	// A step that leaves the value as it is.
	next, ok = transform([]string{t}, v)
	return next, false, ok && next == v
}

func asciiOnly(v string) bool {
	for i := 0; i < len(v); i++ {
		if v[i] >= 0x80 {
			return false
		}
	}
	return true
}

// restricted is proof 6: for shapeHeaderNames, no header name of the
// request, lowered and slashed, is in the restricted list; for
// shapeCaptureWithin, the value the first link would set from its
// capture, through the second link's transformations, is not.
func (s *quietSet) restricted(tx plugintypes.TransactionState, qs *quietScratch, p *quietProof) bool {
	if p.list == "" {
		return false
	}
	if p.shape == shapeHeaderNames {
		col := tx.Collection(variables.RequestHeadersNames)
		if col == nil {
			return true
		}
		for _, m := range col.FindAll() {
			name, ok := transform([]string{"lowercase"}, m.Value())
			if !ok || strings.Contains(p.list, "/"+name+"/") {
				return false
			}
		}
		return true
	}
	h, c := p.r.links[0], p.r.links[1]
	if p.captureRe == nil {
		return false
	}
	vs := qs.values(tx, h.targets[0])
	if len(vs) != 1 {
		return len(vs) == 0 // no value: the first link cannot match
	}
	v, ok := transform(h.chain, vs[0])
	if !ok {
		return false
	}
	m := p.captureRe.FindStringSubmatchIndex(v)
	if m == nil {
		return true // the first link does not match
	}
	// As Coraza's capturing @rx: TX.0 to TX.8 are the groups, "" when
	// a group did not take part.
	var groups [9]string
	for i := 0; i < len(m)/2 && i < 9; i++ {
		if m[2*i] >= 0 {
			groups[i] = v[m[2*i]:m[2*i+1]]
		}
	}
	known := true
	set := macroRx.ReplaceAllStringFunc(p.r.template, func(mac string) string {
		_, n, _ := strings.Cut(mac[2:len(mac)-1], ".")
		i, err := strconv.Atoi(n)
		if err != nil || i >= len(m)/2 || i > 8 {
			known = false
			return ""
		}
		return groups[i]
	})
	if !known {
		return false
	}
	lv, ok := transform(c.chain, set)
	return ok && !strings.Contains(p.list, lv)
}
