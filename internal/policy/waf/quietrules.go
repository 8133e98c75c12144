package waf

import (
	"fmt"
	"io/fs"
	"net"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"

	"github.com/corazawaf/coraza/v3/types"
	"github.com/corazawaf/coraza/v3/types/variables"
)

// The rule set as the quiet path reads it (quiet.go): each rule and its
// chain, parsed from the directives' text, and the shapes proof 6 knows.

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
	// tags are its tags, lowered.
	tags []string
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
			if slices.Contains(r.tags, what) {
				return true
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

// bodyVars are the variables only a request body fills: empty for the
// whole of a bodiless request's phases, on X as on C.
var bodyVars = map[variables.RuleVariable]bool{
	variables.ArgsPost: true, variables.ArgsPostNames: true, variables.RequestBody: true,
	variables.Files: true, variables.FilesNames: true, variables.FilesSizes: true,
	variables.FilesTmpNames: true, variables.FilesTmpContent: true, variables.FilesCombinedSize: true,
	variables.XML: true, variables.MultipartPartHeaders: true, variables.MultipartFilename: true,
	variables.MultipartName: true,
}

// staticVars are the request variables proof 5 may read before the
// phases: nothing changes them during a bodiless request's phases.
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
func newQuietStatic(observed []observedRule, seclang string, root fs.FS) (*quietStatic, func(o observedRule, get func(string) tvState)) {
	q, visit, why := buildQuietStatic(observed, seclang, root)
	quietWhy.Store(&why)
	return q, visit
}

// quietWhy is the last reason a rule set was not covered, for tests.
var quietWhy atomic.Pointer[string]

func buildQuietStatic(observed []observedRule, seclang string, root fs.FS) (*quietStatic, func(o observedRule, get func(string) tvState), string) {
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
			q.rules = append(q.rules, &qRule{secMark: strings.Clone(o.secMark)})
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
		r.tags = ruleTags(o.raw)
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

// ruleTags returns the tags of a rule's text (tag:'t', tag:"t" or tag:t),
// lowered.
func ruleTags(raw string) []string {
	_, rest, _ := strings.Cut(raw, " ")
	var actions string
	if _, _, a, ok := splitRule(rest); ok {
		actions = a
	} else {
		actions = strings.Trim(strings.TrimSpace(rest), `"`)
	}
	var tags []string
	for _, a := range splitActions(actions) {
		name, arg, _ := strings.Cut(strings.TrimSpace(a), ":")
		if strings.EqualFold(strings.TrimSpace(name), "tag") {
			tags = append(tags, strings.Clone(strings.ToLower(strings.Trim(strings.TrimSpace(arg), `'"`))))
		}
	}
	return tags
}

// attach gives q the gate's pre-filters, all of them (proof 4), once the
// gate is built; false when the gate is off.
func (q *quietStatic) attach(g *gateSet) bool {
	if g.off {
		return false
	}
	for p := 1; p <= 2; p++ {
		for i := range g.phase[p] {
			q.candR[g.phase[p][i].id] = &g.phase[p][i]
		}
	}
	q.cand = g
	return true
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
						l.txRx = append(l.txRx, strings.Clone(strings.TrimSuffix(strings.TrimPrefix(key, "/"), "/")))
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
					inputs[qKey{v, strings.Clone(key)}] = true
				}
				l.targets = append(l.targets, qTarget{v: v, key: strings.Clone(key), count: count})
			}
			neg := strings.HasPrefix(op, "!")
			name, arg, _ := strings.Cut(strings.TrimPrefix(op, "!"), " ")
			if !strings.HasPrefix(name, "@") {
				// An operator-less argument is @rx.
				name, arg = "@rx", strings.TrimPrefix(op, "!")
			}
			l.opName, l.negated, l.rawArg = strings.Clone(strings.ToLower(strings.TrimPrefix(name, "@"))), neg, strings.Clone(arg)
		}
		for _, a := range splitActions(actions) {
			an, arg, _ := strings.Cut(strings.TrimSpace(a), ":")
			arg = strings.Trim(strings.TrimSpace(arg), "'")
			r.actions = append(r.actions, strings.Clone(actionName(an)))
			switch actionName(an) {
			case "t":
				t := strings.ToLower(arg)
				if t == "none" {
					l.chain = l.chain[:0]
				} else {
					l.chain = append(l.chain, strings.Clone(t))
				}
			case "multimatch":
				l.multi = true
			case "capture":
				l.capture = true
			case "setvar":
				l.sets = append(l.sets, strings.Clone(arg))
				if strings.Contains(arg, "%{") && macroOutsideTX(arg) {
					r.pure = false
				}
			case "ctl":
				if strings.Contains(arg, "%{") {
					r.pure = false
				}
				r.ctls = append(r.ctls, strings.Clone(arg))
			case "skipafter":
				r.skipAfter = strings.Clone(arg)
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
			inputs[qKey{v, strings.Clone(key)}] = true
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
