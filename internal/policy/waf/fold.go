package waf

import (
	"io/fs"
	"regexp"
	"strconv"
	"strings"

	"github.com/corazawaf/coraza/v3/types"
)

// Constant folding of the CRS's bookkeeping rules.
//
// About a fifth of the rules a benign request runs at paranoia level 1
// only read TX variables whose value the configuration fixes: the
// paranoia guards of every file (TX:DETECTION_PARANOIA_LEVEL "@lt 1"), the
// initialisation rules that set a default unless the setup did
// (&TX:blocking_paranoia_level "@eq 0"), the blocking evaluation's rules
// of higher paranoia levels (TX:BLOCKING_PARANOIA_LEVEL "@ge 2"). foldWalk
// finds, at build time, the rules whose condition is false on every
// request; the gate action removes them (ctl-style, RemoveRuleByID) at the
// start of each phase, before they would run.
//
// Why a folded rule cannot change an outcome:
//
//  1. Values. The rules of phases 1 and 2 are walked in Coraza's order
//     (phase 1 in load order, then phase 2), over an abstract state: each
//     TX variable is unset, known (one string), or unknown. A rule whose
//     condition is true on every request and that surely runs applies its
//     setvars; a rule that may or may not run or match joins what it
//     writes into the state (a variable stays known only if the write
//     gives the same value). So at each rule the state describes every
//     state a request can reach there.
//  2. Writers. Every rule is a writer the walk sees, except chained rules
//     past the first (the rule observer shows only the chain's head): the
//     TX variables they set, read from the directives' text, are always
//     unknown, and so is every variable a setvar with a macro in its name
//     could reach. capture (TX:0-9) is never folded on.
//  3. Running. A rule may not run although it comes: when removed or
//     retargeted by a directive (SecRuleRemoveBy*, SecRuleUpdateTargetBy*:
//     such rules are treated as unknown), by an earlier rule's ctl at run
//     time (ctl:ruleRemove*), after an allow or ctl:ruleEngine, or inside a
//     skipAfter's reach. Such rules only join their writes.
//  4. Conditions. Only a SecRule with one variable, TX:name or &TX:name,
//     no transformation but t:none (and no SecDefaultAction giving any),
//     and a numeric @eq/@lt/@le/@gt/@ge whose argument is a number or a
//     known %{tx.name}, is evaluated, as Coraza 3.8.1 does (strconv.Atoi,
//     0 on error; an unset variable has no value and does not match).
//  5. Effects. A rule that does not match does nothing: Coraza runs
//     actions only on a match (its RULE variables are overwritten by the
//     next rule). Removing a chain's head removes the chain. skip:N counts
//     rules, so no rule between a skip:N and the next SecMarker is folded.
//  6. Directives that could add actions to rules (SecRuleUpdateActionBy*,
//     SecRuleRemoveByMsg, ctl by message, SecDefaultAction with setvar, ctl,
//     skip or transformations) turn folding off.
//
// TestCRSRegressionGatedMatchesStock checks the result on the CRS's own
// regression suite at every paranoia level.

// tvState is the abstract value of a TX variable.
type tvState struct {
	known bool // false: unknown
	set   bool // with known: the variable exists
	val   string
}

// foldText is what the directives' text says about the rule set.
type foldText struct {
	off bool
	// opaqueIDs/opaqueTags: rules removed or retargeted by directives.
	opaqueIDs    map[int]bool
	opaqueRanges [][2]int
	opaqueTags   []string
	// poisoned TX names (lowercased) and name patterns, always unknown.
	poisoned map[string]bool
	patterns []*regexp.Regexp
	// chainCtl are the ctl actions of chained rules (not observed), by
	// the id of their chain's head, where the walk applies them.
	chainCtl map[int][]string
}

// ctlRemovals are the rules some ctl may remove at run time.
type ctlRemovals struct {
	all    bool
	ids    map[int]bool
	ranges [][2]int
	tags   []string
}

func (c *ctlRemovals) matches(id int, raw string) bool {
	if c.all || c.ids[id] {
		return true
	}
	for _, r := range c.ranges {
		if id >= r[0] && id <= r[1] {
			return true
		}
	}
	l := strings.ToLower(raw)
	for _, t := range c.tags {
		if strings.Contains(l, t) {
			return true
		}
	}
	return false
}

// add records a ctl action's argument; false when it cannot be modelled.
func (c *ctlRemovals) add(arg string) bool {
	name, val, _ := strings.Cut(arg, "=")
	name = strings.ToLower(strings.TrimSpace(name))
	val = strings.Trim(strings.TrimSpace(val), "'")
	if strings.Contains(val, "%{") {
		return false
	}
	target, _, _ := strings.Cut(val, ";")
	switch name {
	case "ruleremovebyid", "ruleremovetargetbyid":
		return c.addIDs(target)
	case "ruleremovebytag", "ruleremovetargetbytag":
		c.tags = append(c.tags, strings.ToLower(target))
	case "ruleremovebymsg", "ruleremovetargetbymsg":
		return false
	case "ruleengine":
		c.all = true
	}
	return true
}

func (c *ctlRemovals) addIDs(list string) bool {
	if c.ids == nil {
		c.ids = map[int]bool{}
	}
	for _, f := range strings.FieldsFunc(list, func(r rune) bool { return r == ' ' || r == ',' }) {
		lo, hi, isRange := strings.Cut(f, "-")
		a, err := strconv.Atoi(lo)
		if err != nil {
			return false
		}
		if !isRange {
			c.ids[a] = true
			continue
		}
		b, err := strconv.Atoi(hi)
		if err != nil {
			return false
		}
		c.ranges = append(c.ranges, [2]int{a, b})
	}
	return true
}

// statements returns the directives of seclang with Includes expanded
// from root and continuation lines joined.
func statements(seclang string, root fs.FS) ([]string, bool) {
	var out []string
	var cur strings.Builder
	var walk func(text string, depth int) bool
	walk = func(text string, depth int) bool {
		for _, line := range strings.Split(text, "\n") {
			line = strings.TrimRight(line, "\r")
			if strings.HasSuffix(line, "\\") {
				cur.WriteString(strings.TrimLeft(strings.TrimSuffix(line, "\\"), " \t"))
				continue
			}
			cur.WriteString(strings.TrimLeft(line, " \t"))
			st := strings.TrimSpace(cur.String())
			cur.Reset()
			if st == "" || st[0] == '#' {
				continue
			}
			if name, arg, _ := strings.Cut(st, " "); strings.EqualFold(name, "Include") {
				if depth > 4 {
					return false
				}
				arg = strings.Trim(strings.TrimSpace(arg), `"`)
				files, err := fs.Glob(root, arg)
				if err != nil || len(files) == 0 {
					return false
				}
				for _, f := range files {
					b, err := fs.ReadFile(root, f)
					if err != nil || !walk(string(b), depth+1) {
						return false
					}
				}
				continue
			}
			out = append(out, st)
		}
		return true
	}
	ok := walk(seclang, 0)
	return out, ok
}

var macroRx = regexp.MustCompile(`%\{[^}]*\}`)

// readText scans the statements for what folding must know.
func readText(sts []string) *foldText {
	ft := &foldText{opaqueIDs: map[int]bool{}, poisoned: map[string]bool{}, chainCtl: map[int][]string{}}
	inChain := false
	head := 0 // id of the current chain's head
	for _, st := range sts {
		name, rest, _ := strings.Cut(st, " ")
		rest = strings.TrimSpace(rest)
		switch strings.ToLower(name) {
		case "secdefaultaction":
			l := strings.ToLower(rest)
			if strings.Contains(l, "setvar") || strings.Contains(l, "ctl:") || strings.Contains(l, "skip") || strings.Contains(l, "t:") || strings.Contains(l, "allow") {
				ft.off = true
			}
		case "secruleremovebyid", "secruleupdatetargetbyid":
			var c ctlRemovals
			f := strings.Fields(rest)
			if len(f) == 0 {
				continue
			}
			list := f[0]
			if strings.EqualFold(name, "secruleremovebyid") {
				list = rest
			}
			// "id:chainpos" updates name the chain's head.
			list = strings.Trim(list, `"`)
			if i := strings.IndexByte(list, ':'); i >= 0 && !strings.EqualFold(name, "secruleremovebyid") {
				list = list[:i]
			}
			if !c.addIDs(list) {
				ft.off = true
			}
			for id := range c.ids {
				ft.opaqueIDs[id] = true
			}
			ft.opaqueRanges = append(ft.opaqueRanges, c.ranges...)
		case "secruleremovebytag", "secruleupdatetargetbytag":
			f := strings.Fields(rest)
			if len(f) == 0 {
				continue
			}
			tag := strings.ToLower(strings.Trim(f[0], `"`))
			if strings.ContainsAny(tag, `.*+?[](){}|^$\`) && !regexp.MustCompile(`^[a-z0-9_/-]+$`).MatchString(tag) {
				// A regular expression: cannot tell which rules.
				ft.off = true
			}
			ft.opaqueTags = append(ft.opaqueTags, tag)
		case "secruleremovebymsg", "secruleupdatetargetbymsg", "secruleupdateactionbyid", "secruleupdateactionbytag", "secruleupdateactionbymsg":
			ft.off = true
		case "secrule", "secaction":
			var actions string
			if strings.EqualFold(name, "secrule") {
				_, _, a, ok := splitRule(rest)
				if !ok {
					ft.off = true
					continue
				}
				actions = a
			} else {
				actions = strings.Trim(rest, `"`)
			}
			chainHead := false
			for _, a := range splitActions(actions) {
				an, arg, _ := strings.Cut(strings.TrimSpace(a), ":")
				arg = strings.Trim(strings.TrimSpace(arg), "'")
				switch actionName(an) {
				case "id":
					if !inChain {
						head, _ = strconv.Atoi(arg)
					}
				case "chain":
					chainHead = true
				case "setvar":
					key, _, _ := strings.Cut(strings.TrimPrefix(arg, "!"), "=")
					col, v, _ := strings.Cut(key, ".")
					if !strings.EqualFold(col, "tx") {
						continue
					}
					v = strings.ToLower(v)
					if strings.Contains(v, "%{") {
						rx, err := regexp.Compile(macroPattern(v))
						if err != nil {
							ft.off = true
							continue
						}
						ft.patterns = append(ft.patterns, rx)
					} else if inChain {
						ft.poisoned[v] = true
					}
				case "ctl":
					if inChain {
						if head <= 0 {
							ft.off = true
						}
						ft.chainCtl[head] = append(ft.chainCtl[head], arg)
					}
				case "expirevar", "deprecatevar":
					ft.off = true
				}
			}
			// The statement after a chain head is a chained rule; so is
			// the one after a chained rule that chains on.
			inChain = chainHead
		}
	}
	return ft
}

// macroPattern turns a setvar name holding macros into an anchored
// expression matching every name it can expand to.
func macroPattern(name string) string {
	var b strings.Builder
	b.WriteString("^")
	for {
		i := strings.Index(name, "%{")
		if i < 0 {
			b.WriteString(regexp.QuoteMeta(name))
			break
		}
		b.WriteString(regexp.QuoteMeta(name[:i]))
		b.WriteString(".*")
		j := strings.IndexByte(name[i:], '}')
		if j < 0 {
			break
		}
		name = name[i+j+1:]
	}
	b.WriteString("$")
	return b.String()
}

func (ft *foldText) opaque(id int, raw string) bool {
	if ft.opaqueIDs[id] {
		return true
	}
	for _, r := range ft.opaqueRanges {
		if id >= r[0] && id <= r[1] {
			return true
		}
	}
	l := strings.ToLower(raw)
	for _, t := range ft.opaqueTags {
		if strings.Contains(l, t) {
			return true
		}
	}
	return false
}

func (ft *foldText) dynamic(name string) bool {
	if ft.poisoned[name] {
		return true
	}
	for _, rx := range ft.patterns {
		if rx.MatchString(name) {
			return true
		}
	}
	return false
}

// tri is a condition's value over every request.
type tri int8

const (
	triUnknown tri = iota
	triTrue
	triFalse
)

// foldWalk returns, by phase (1, 2), the rules among observed whose
// condition is false on every request (see the comment above), nil when
// folding cannot be done for the rule set. On the way it calls visit,
// when not nil, with each rule of phases 1 and 2 as the walk reaches it,
// and the abstract state there (what every request's TX holds at that
// rule): the quiet path's known TX values (quiet.go). A walk that gives
// up visits nothing more.
func foldWalk(observed []observedRule, seclang string, root fs.FS, visit func(o observedRule, get func(string) tvState)) [3][]int {
	var out [3][]int
	sts, ok := statements(seclang, root)
	if !ok {
		return out
	}
	ft := readText(sts)
	if ft.off {
		return out
	}
	state := map[string]tvState{}
	get := func(name string) tvState {
		if ft.dynamic(name) {
			return tvState{}
		}
		if s, ok := state[name]; ok {
			return s
		}
		return tvState{known: true}
	}
	var ctl ctlRemovals
	for _, o := range observed {
		if o.secMark == "" && (o.phase < types.PhaseRequestHeaders || o.phase > types.PhaseLogging) {
			return out // a rule of every phase: not modelled
		}
	}
	// A skipAfter or skip:N left pending at a phase's end is carried into
	// the next (cleared only by the marker): the walk assumes it may be.
	maybeUntil := map[string]bool{} // markers ending a skipAfter's reach
	afterSkip := false
	for phase := types.PhaseRequestHeaders; phase <= types.PhaseRequestBody; phase++ {
		for _, o := range observed {
			if o.secMark != "" {
				delete(maybeUntil, o.secMark)
				afterSkip = false
				continue
			}
			if o.phase != phase {
				continue
			}
			if hasSkip(o.raw) {
				afterSkip = true
			}
			if visit != nil {
				visit(o, get)
			}
			cond, sets, act, ok := foldRule(o, get)
			if !ok {
				return [3][]int{}
			}
			sure := len(maybeUntil) == 0 && !ctl.matches(o.id, o.raw) && !ft.opaque(o.id, o.raw)
			if ft.opaque(o.id, o.raw) {
				cond = triUnknown
			}
			if cond == triFalse {
				if !afterSkip && o.id > 0 {
					out[phase] = append(out[phase], o.id)
				}
				continue
			}
			for name, v := range sets {
				if cond == triTrue && sure {
					state[name] = v
					continue
				}
				if old := get(name); !old.known || !v.known || old != v {
					state[name] = tvState{}
				}
			}
			for _, c := range append(act.ctl, ft.chainCtl[o.id]...) {
				if !ctl.add(c) {
					return [3][]int{}
				}
			}
			if act.allow {
				ctl.all = true
			}
			if act.skipAfter != "" {
				maybeUntil[act.skipAfter] = true
			}
		}
	}
	return out
}

// ruleActs are the actions of a rule that matter to the walk.
type ruleActs struct {
	ctl       []string
	allow     bool
	skipAfter string
}

// foldRule evaluates o's condition over the state get reads, and returns
// the TX writes of its actions (unknown values where they depend on the
// request). ok is false when o has an action folding cannot model.
func foldRule(o observedRule, get func(string) tvState) (cond tri, sets map[string]tvState, act ruleActs, ok bool) {
	dir, rest, _ := strings.Cut(o.raw, " ")
	var vars, op, actions string
	switch {
	case strings.EqualFold(dir, "SecAction"):
		cond = triTrue
		actions = strings.Trim(strings.TrimSpace(rest), `"`)
	case strings.EqualFold(dir, "SecRule"):
		var parsed bool
		vars, op, actions, parsed = splitRule(rest)
		if !parsed {
			return triUnknown, nil, act, false
		}
	default:
		return triUnknown, nil, act, false
	}
	transforms := false
	sets = map[string]tvState{}
	for _, a := range splitActions(actions) {
		name, arg, _ := strings.Cut(strings.TrimSpace(a), ":")
		arg = strings.Trim(strings.TrimSpace(arg), "'")
		switch actionName(name) {
		case "t":
			if !strings.EqualFold(arg, "none") {
				transforms = true
			}
		case "chain":
			// The chain's other rules decide too: never true.
			if cond == triTrue {
				cond = triUnknown
			}
			vars += "\x00chain"
		case "setvar":
			remove := strings.HasPrefix(arg, "!")
			key, val, hasVal := strings.Cut(strings.TrimPrefix(arg, "!"), "=")
			col, v, _ := strings.Cut(key, ".")
			if !strings.EqualFold(col, "tx") {
				continue
			}
			v = strings.ToLower(v)
			if strings.Contains(v, "%{") {
				continue // a dynamic name: always unknown (foldText.dynamic)
			}
			switch {
			case remove:
				sets[v] = tvState{known: true}
			case !hasVal || strings.HasPrefix(val, "+") || strings.HasPrefix(val, "-"):
				sets[v] = tvState{}
			default:
				x, known := expand(val, get)
				sets[v] = tvState{known: known, set: true, val: x}
			}
		case "ctl":
			act.ctl = append(act.ctl, arg)
		case "allow":
			act.allow = true
		case "skipafter":
			act.skipAfter = arg
		case "expirevar", "deprecatevar":
			return triUnknown, nil, act, false
		}
	}
	if strings.HasSuffix(vars, "\x00chain") {
		vars = strings.TrimSuffix(vars, "\x00chain")
		c := evalCond(vars, op, transforms, get)
		if c == triFalse {
			return triFalse, sets, act, true
		}
		return triUnknown, sets, act, true
	}
	if cond == triTrue {
		return cond, sets, act, true
	}
	return evalCond(vars, op, transforms, get), sets, act, true
}

// evalCond evaluates a SecRule's condition when it only reads a TX
// variable the state knows; see the comment above, item 4.
func evalCond(vars, op string, transforms bool, get func(string) tvState) tri {
	if transforms || strings.ContainsAny(vars, "|!") {
		return triUnknown
	}
	count := strings.HasPrefix(vars, "&")
	col, name, ok := strings.Cut(strings.TrimPrefix(vars, "&"), ":")
	if !ok || !strings.EqualFold(col, "TX") || name == "" || strings.ContainsAny(name, "/'\"") {
		return triUnknown
	}
	name = strings.ToLower(name)
	if _, err := strconv.Atoi(name); err == nil {
		return triUnknown // capture groups
	}
	s := get(name)
	if !s.known {
		return triUnknown
	}
	negated := strings.HasPrefix(op, "!")
	opName, arg, _ := strings.Cut(strings.TrimPrefix(op, "!"), " ")
	arg, known := expand(strings.TrimSpace(arg), get)
	if !known {
		return triUnknown
	}
	var value string
	switch {
	case count && s.set:
		value = "1"
	case count:
		value = "0"
	case !s.set:
		return triFalse // no value: the operator does not run
	default:
		value = s.val
	}
	a, _ := strconv.Atoi(value)
	b, _ := strconv.Atoi(arg)
	var m bool
	switch strings.ToLower(opName) {
	case "@eq":
		m = a == b
	case "@lt":
		m = a < b
	case "@le":
		m = a <= b
	case "@gt":
		m = a > b
	case "@ge":
		m = a >= b
	default:
		return triUnknown
	}
	if m != negated {
		return triTrue
	}
	return triFalse
}

// expand replaces the %{tx.name} macros of s from the state; known is
// false when one is not known to be set, or another macro is used.
func expand(s string, get func(string) tvState) (string, bool) {
	known := true
	out := macroRx.ReplaceAllStringFunc(s, func(m string) string {
		col, name, _ := strings.Cut(m[2:len(m)-1], ".")
		if !strings.EqualFold(col, "tx") {
			known = false
			return ""
		}
		v := get(strings.ToLower(name))
		if !v.known || !v.set {
			known = false
		}
		return v.val
	})
	return out, known
}
