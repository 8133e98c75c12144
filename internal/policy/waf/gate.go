package waf

import (
	"fmt"
	"io/fs"
	"math"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/corazawaf/coraza/v3/collection"
	"github.com/corazawaf/coraza/v3/experimental/plugins"
	"github.com/corazawaf/coraza/v3/experimental/plugins/plugintypes"
	"github.com/corazawaf/coraza/v3/types"
	"github.com/corazawaf/coraza/v3/types/variables"
	"github.com/corazawaf/libinjection-go"
)

// The gate is a combined pre-filter run once per phase, before the CRS
// rules of that phase. For each @ghrx rule it can reason about, it reads
// the very values the rule will read (the same collections, selected the
// same way) and removes the rule from the transaction when, for every
// value, the rule's literal pre-filter proves that the regular expression
// cannot match the value as the rule's transformations leave it. A removed
// rule then costs nothing: Coraza does not collect its variables, does not
// transform them and does not call its operator.
//
// Why a skip cannot change a rule's outcome:
//
//  1. Values. The gate reads tx.Collection(v) with the same FindString or
//     FindAll as Coraza's GetField, minus the rule's exceptions (!ARGS:x,
//     ctl:ruleRemoveTargetById, SecRuleUpdateTargetById "!..."), so it sees
//     a superset of the values the rule sees. Regular-expression keys and
//     XML read the whole collection, again a superset. Collections that
//     rules can change during a phase (TX, MATCHED_*) are never used: a rule
//     reading one is not a candidate.
//  2. Transformations. For each transformation the gate knows the bytes
//     without which it returns its input unchanged, or lowercased (see
//     transformTriggers, read from Coraza 3.8.1's implementations). A value
//     that is ASCII and holds none of the triggers of the rule's chain
//     reaches the operator as itself or its ASCII lowering, every
//     intermediate value too (multiMatch); lowering keeps the triggers
//     away, so the argument goes through the whole chain. The fold that the
//     pre-filter compares is the same for a value and its lowering. An
//     ASCII value that holds triggers is walked through the chain instead
//     (gateScratch.transformed): steps whose triggers it lacks leave it
//     (lowered), steps with an exact restatement (exactTransforms:
//     removeWhitespace, cmdLine, normalizePath, ...) are computed, and the
//     pre-filter is tested on the result; a step that would act on the
//     value without an exact restatement (urlDecodeUni's %uXXXX, or bytes
//     past ASCII that it decodes) and non-ASCII values make the rule run.
//     A multiMatch operator also sees v and every value a step changed:
//     their lowerings are v's and the walk's results after each computed
//     step (gateScratch.intermediates), each tested as a walked value.
//  3. Operator. The pre-filter is the one @ghrx itself checks (prefilter,
//     literals.go): a necessary condition for a match. For @pm and
//     @pmFromFile it is the keyword list itself, read as Coraza reads it
//     (pmPrefilter): on ASCII values, the operator matches exactly when
//     the fold holds a keyword. Negated operators (!@rx) are never
//     candidates. An @ghrx value that passes the pre-filter is put to the
//     expression's automaton (dfa.go), which decides exactly whether the
//     expression matches a given string. The rule is silent on an
//     unwalked value when neither the value nor its lowering matches (the
//     operator sees one of them); on a walked value (the lowering of what
//     the operator sees, whose letters' case is unknown) only when the
//     automaton is case-symmetric (every rune instruction treats an ASCII
//     letter as its other case, so all ASCII values with one lowering
//     answer alike) and the walk's result does not match. An automaton
//     past its state bound decides nothing: the rule runs. An expression
//     without a pre-filter gets an empty one (every value passes it) and
//     its automaton decides alone.
//  4. Flow. A rule that does not match has no effect besides Coraza's
//     per-rule RULE variables, which the next evaluated rule overwrites.
//     skip:N counts rules that are neither removed nor of another phase,
//     so removing a rule after a skip could shift what the skip skips: no
//     rule between a skip:N rule and the next SecMarker is a candidate.
//     skipAfter jumps to markers, which are never removed.
//  5. Rule set. Candidates are read from the rules as Coraza added them
//     (the rule observer). Directives that could widen a rule after that
//     (SecRuleUpdateTargetById without "!", SecRuleUpdateAction*) turn the
//     gate off for the whole rule set; SecDefaultAction carrying
//     transformations does too.
//
// TestGateNeverSkipsAMatch checks this on the corpora: with and without
// the gate, the same rules match.

// gateActionName is the SecLang action that runs the gate; its argument
// names the rule set (see gates).
const gateActionName = "ghgate"

// Trigger classes: what makes a transformation change its input beyond
// ASCII lowering.
const (
	trigPct         uint16 = 1 << iota // % or +: URL decoding
	trigAmp                            // &: HTML entities
	trigBackslash                      // \: JS, CSS, escape sequences, cmdLine
	trigNUL                            // NUL bytes
	trigHigh                           // bytes >= 0x80: Unicode lowering, utf8toUnicode, NBSP, U+0085
	trigSpace                          // ' ': removeWhitespace
	trigCtlSpace                       // \t \n \v \f \r
	trigDoubleSpace                    // two spaces in a row: compressWhitespace, cmdLine
	trigCmd                            // " ' ^ , ;: cmdLine
	trigSpaceBefore                    // " /" or " (": cmdLine
	trigSlash                          // '/' or the value ".": normalizePath
	trigComment                        // "/*": replaceComments
	trigColon                          // ':': normalizePathWin (NTFS streams, drive letters)
	trigTrail                          // ends with '.' or ' ': normalizePathWin
	trigRemComment                     // "*/", "--" or '#': removeCommentsChar
)

// transformTriggers maps each transformation (lowercased name) that the
// gate understands to the trigger classes without which, on an ASCII
// value, it returns the value unchanged or ASCII-lowercased. Derived from
// Coraza 3.8.1 internal/transformations:
//   - urlDecode(Uni): returns data unchanged unless it holds '%' or '+'.
//   - htmlEntityDecode: html.UnescapeString, identity without '&'.
//   - jsDecode, cssDecode, escapeSeqDecode: identity without '\'.
//   - removeNulls: strings.ReplaceAll(s, "\x00", "").
//   - utf8toUnicode: identity on ASCII.
//   - lowercase: strings.ToLower, ASCII lowering on ASCII.
//   - removeWhitespace: drops unicode.IsSpace runes (ASCII: ' ', \t-\r).
//   - compressWhitespace: only runs of whitespace, or whitespace other
//     than ' ', change.
//   - cmdLine: deletes " ' \ ^, turns , ; \t \r \n into a space, collapses
//     repeated spaces, drops a space before '/' or '(', lowers A-Z.
//   - replaceComments: changes only at "/*".
//   - normalizePath: filepath.Clean, identity on a value without '/'
//     except ".".
//   - normalizePathWin: '\' to '/', normalizePath, then cuts at ':' and
//     trims trailing dots and spaces of components: identity without
//     '/', '\', ':', a final '.' or ' ', or the value ".".
//   - removeCommentsChar: deletes "/*", "*/", "<!--", "-->", "--" and
//     '#': identity without "/*", "*/", "--" and '#'.
//
// Others (base64Decode, hexDecode, length, sha1, normalizePathWin,
// removeCommentsChar, ...) are not listed: rules using them always run.
var transformTriggers = map[string]uint16{
	"none":               0,
	"lowercase":          0,
	"urldecode":          trigPct,
	"urldecodeuni":       trigPct,
	"htmlentitydecode":   trigAmp,
	"jsdecode":           trigBackslash,
	"cssdecode":          trigBackslash,
	"escapeseqdecode":    trigBackslash,
	"removenulls":        trigNUL,
	"utf8tounicode":      0,
	"removewhitespace":   trigSpace | trigCtlSpace,
	"compresswhitespace": trigCtlSpace | trigDoubleSpace,
	"cmdline":            trigCmd | trigBackslash | trigCtlSpace | trigDoubleSpace | trigSpaceBefore,
	"replacecomments":    trigComment,
	"normalizepath":      trigSlash,
	"normalisepath":      trigSlash,
	"normalizepathwin":   trigSlash | trigBackslash | trigColon | trigTrail,
	"removecommentschar": trigComment | trigRemComment,
}

// gateCollections are the collections a candidate may read: request data
// that no rule changes during a phase.
var gateCollections = map[variables.RuleVariable]bool{
	variables.Args: true, variables.ArgsGet: true, variables.ArgsPost: true,
	variables.ArgsNames: true, variables.ArgsGetNames: true, variables.ArgsPostNames: true,
	variables.RequestHeaders: true, variables.RequestHeadersNames: true,
	variables.RequestCookies: true, variables.RequestCookiesNames: true,
	variables.RequestURI: true, variables.RequestURIRaw: true,
	variables.RequestFilename: true, variables.RequestBasename: true,
	variables.QueryString: true, variables.RequestLine: true,
	variables.RequestBody: true, variables.XML: true,
	variables.Files: true, variables.FilesNames: true,
	variables.RequestMethod: true, variables.RequestProtocol: true,
}

// gateTarget is one variable of a candidate rule.
type gateTarget struct {
	v variables.RuleVariable
	// key selects by exact key as Coraza's FindString does; "" reads the
	// whole collection.
	key string
}

// chainStep is one transformation of a chain: its triggers, and its exact
// restatement on lowered ASCII values, nil when the gate has none.
type chainStep struct {
	trig  uint16
	exact func(string) string
}

// gateRule is a rule the gate may remove, with its pre-filter restated
// over the matcher's set ids.
type gateRule struct {
	id int
	// idx numbers the rule within its gate set (both phases), for the
	// decisions a value remembers (gateValue.dec).
	idx int32
	// removable: the gate may remove the rule (not after a skip:N, not
	// above the paranoia level); the others' pre-filters serve the quiet
	// path only.
	removable bool
	targets   int // index in gateSet.targets
	trig      uint16
	// chain indexes gateSet.chains: the rule's transformations, walked
	// on values that hold some of trig (see gateScratch.transformed).
	chain int32
	// multi: multiMatch, the operator also sees every intermediate
	// value (see gateScratch.intermediates).
	multi bool
	// The prefilter's conditions (see prefilter.mayMatch).
	minLen, plainMinLen int
	plainNever          bool
	sets, plainSets     []int32
	// rx is the rule's @ghrx operator, whose automaton decides what
	// the pre-filter lets through; nil for @pm.
	rx *rx
	// match, when set, is the rule's operator itself (@detectSQLi,
	// @detectXSS: the libinjection calls Coraza makes;
	// @validateByteRange), asked about values the chain leaves unchanged
	// or lowered (see decide); the pre-filter is then empty.
	match func(string) bool
}

// gateSet is the gate of one compiled rule set. Built once, right after
// the WAF is compiled and before its first transaction; read-only after.
type gateSet struct {
	off     bool
	nrules  int           // rules in phase, both phases (gateRule.idx)
	targets [][]int       // distinct target lists, as indexes in keys
	keys    []gateTarget  // distinct targets
	phase   [3][]gateRule // by phase (1, 2)
	chains  [][]chainStep // distinct transformation chains
	ac      *acMatcher
	// removed counts the rules the gate removed, for tests and figures.
	removed atomic.Uint64
	// maxPL, when set, is the paranoia level the rule set runs at: rules
	// tagged for a higher level are not candidates (see build).
	maxPL int
	// onRemove, when set (tests only, before the first transaction),
	// receives the id of each rule the gate removes.
	onRemove func(id int)
	// folded are the rules, by phase, whose condition is false on every
	// request (fold.go); removed at the start of their phase.
	folded [3][]int
	// observed are the rules in load order, while compiling.
	observed []observedRule
	// quiet is the rule set as the quiet path reads it (quiet.go); nil
	// when it does not cover the rule set.
	quiet *quietStatic
	// removeFolded: the folded rules are in the compiled rule set, and
	// the gate removes them from each transaction; else foldedAtBuild:
	// they were removed from the set while compiling (foldAtBuild).
	removeFolded, foldedAtBuild bool
	// text is the SecLang being compiled, for foldAtBuild.
	text string
}

// analyse reads the observed rule set: the quiet path's view of it and
// the folded rules.
func (g *gateSet) analyse(seclang string, root fs.FS) {
	var visit func(observedRule, func(string) tvState)
	g.quiet, visit = newQuietStatic(g.observed, seclang, root)
	g.folded = foldWalk(g.observed, seclang, root, visit)
}

// observedRule is what the rule observer saw of one rule.
type observedRule struct {
	id      int
	phase   types.RulePhase
	raw     string
	secMark string
	file    string
}

var (
	gates      sync.Map // token -> *gateSet, while compiling
	gateTokens atomic.Int64
	gateOnce   sync.Once
)

// newGateSet returns an empty gate and the token its SecActions name.
func newGateSet() (*gateSet, string) {
	gateOnce.Do(func() { plugins.RegisterAction(gateActionName, func() plugintypes.Action { return &gateAction{} }) })
	g := &gateSet{}
	token := strconv.FormatInt(gateTokens.Add(1), 10)
	gates.Store(token, g)
	return g, token
}

// The ids of the gate's SecActions.
const (
	gatePhase1ID = 200010
	gatePhase2ID = 200011
)

// gateDirectives are the two SecActions that run the gate first in phases
// 1 and 2.
func gateDirectives(token string) string {
	return fmt.Sprintf(`SecAction "id:%d,phase:1,pass,nolog,t:none,%s:%s"`+"\n"+
		`SecAction "id:%d,phase:2,pass,nolog,t:none,%s:%s"`+"\n",
		gatePhase1ID, gateActionName, token, gatePhase2ID, gateActionName, token)
}

func (g *gateSet) observe(r types.RuleMetadata) {
	g.observed = append(g.observed, observedRule{id: r.ID(), phase: r.Phase(), raw: r.Raw(), secMark: r.SecMark(), file: r.File()})
}

// build picks the candidates among the observed rules; extra is the
// user's SecLang, checked for directives that widen rules.
func (g *gateSet) build(extra []string) {
	defer func() { g.observed = nil }()
	for _, d := range extra {
		f := strings.Fields(d)
		if len(f) == 0 {
			continue
		}
		switch strings.ToLower(f[0]) {
		case "secruleupdatetargetbyid", "secruleupdatetargetbytag", "secruleupdatetargetbymsg":
			if len(f) < 3 || !allNegated(strings.Trim(f[2], `"`)) {
				g.off = true
			}
		case "secruleupdateactionbyid", "secdefaultaction":
			g.off = true
		}
	}
	if g.off {
		return
	}
	index := map[string]int{}
	chainIndex := map[string]int32{}
	keyIndex := map[gateTarget]int{}
	setIndex := map[*litSet]int32{}
	var sets [][]string
	ids := func(ls []litSet) []int32 {
		var out []int32
		for i := range ls {
			id, ok := setIndex[&ls[i]]
			if !ok {
				id = int32(len(sets))
				setIndex[&ls[i]] = id
				sets = append(sets, ls[i].strs)
			}
			out = append(out, id)
		}
		return out
	}
	afterSkip := false
	for _, o := range g.observed {
		if o.secMark != "" {
			afterSkip = false
			continue
		}
		r, ok := candidate(o)
		if hasSkip(o.raw) {
			afterSkip = true
		}
		if !ok || (o.phase != 1 && o.phase != 2) {
			continue
		}
		// A rule after a skip:N is never removed (see 4. above), but its
		// pre-filter still serves the quiet path (quiet.go), which
		// removes nothing. CRS skips the rules of higher paranoia levels
		// (skipAfter past them when TX:DETECTION_PARANOIA_LEVEL is
		// lower): removing them would be wasted work; not removing is
		// always safe (the rule is left to Coraza); if a directive raised
		// the level, they simply run ungated.
		removable := !afterSkip && !(g.maxPL > 0 && paranoiaTag(o.raw) > g.maxPL)
		targets, vars, ok := parseTargets(r.vars)
		if !ok {
			continue
		}
		i, seen := index[targets]
		if !seen {
			var list []int
			for _, v := range vars {
				k, ok := keyIndex[v]
				if !ok {
					k = len(g.keys)
					g.keys = append(g.keys, v)
					keyIndex[v] = k
				}
				list = append(list, k)
			}
			i = len(g.targets)
			g.targets = append(g.targets, list)
			index[targets] = i
		}
		chainKey := strings.Join(r.chain, ",")
		chain, seen := chainIndex[chainKey]
		if !seen {
			var steps []chainStep
			for _, t := range r.chain {
				steps = append(steps, chainStep{trig: transformTriggers[t], exact: exactTransforms[t]})
			}
			chain = int32(len(g.chains))
			g.chains = append(g.chains, steps)
			chainIndex[chainKey] = chain
		}
		p := r.pre
		g.phase[o.phase] = append(g.phase[o.phase], gateRule{id: o.id, idx: int32(g.nrules), targets: i, trig: r.trig, chain: chain, multi: r.multiMatch, removable: removable, rx: r.rx, match: r.match,
			minLen: p.minLen, plainMinLen: p.plainMinLen, plainNever: p.plainNever,
			sets: ids(p.sets), plainSets: ids(p.plainSets)})
		g.nrules++
	}
	g.ac = newACMatcher(sets)
}

// paranoiaTag returns N of a rule's tag:'paranoia-level/N', or 0.
func paranoiaTag(raw string) int {
	const tag = "paranoia-level/"
	i := strings.Index(raw, tag)
	if i < 0 || i+len(tag) >= len(raw) {
		return 0
	}
	if c := raw[i+len(tag)]; c >= '1' && c <= '9' {
		return int(c - '0')
	}
	return 0
}

// allNegated reports whether a SecRuleUpdateTarget list only removes
// targets.
func allNegated(list string) bool {
	for _, t := range strings.Split(list, "|") {
		if !strings.HasPrefix(t, "!") {
			return false
		}
	}
	return true
}

// parsedRule is the part of a SecRule the gate needs.
type parsedRule struct {
	vars string
	trig uint16
	pre  *prefilter
	rx   *rx // the @ghrx operator; nil for @pm
	// match is the operator, for @detectSQLi, @detectXSS and
	// @validateByteRange.
	match func(string) bool
	// chain are the rule's transformations (lowercased names) after its
	// last t:none; multiMatch makes the operator see every intermediate.
	chain      []string
	multiMatch bool
}

// candidate reports whether o is a rule the gate can reason about: a
// SecRule with a non-negated @ghrx (whose automaton decides where its
// expression has no pre-filter, which is then empty), or a non-negated
// @pm/@pmFromFile (see pmPrefilter), and only transformations listed in
// transformTriggers.
func candidate(o observedRule) (parsedRule, bool) {
	dir, opts, _ := strings.Cut(o.raw, " ")
	if !strings.EqualFold(dir, "SecRule") || o.id <= 0 {
		return parsedRule{}, false
	}
	vars, op, actions, ok := splitRule(opts)
	if !ok {
		return parsedRule{}, false
	}
	var pre *prefilter
	var re *rx
	var match func(string) bool
	if strings.HasPrefix(op, "@"+operatorName+" ") {
		// The operator argument as Coraza's rule parser hands it to newRx.
		arg := strings.TrimPrefix(op, "@"+operatorName+" ")
		v, found := compiled.Load("(?sm)" + arg)
		switch {
		case found:
			re = v.(*rx)
			if pre = re.pre; pre == nil {
				// Nothing to scan for: the automaton alone decides.
				pre = &prefilter{}
			}
		case matchesBytes("(?sm)"+arg) && bytesNeedHigh(arg):
			// A binRx that no ASCII value matches: a pre-filter that
			// every (ASCII) value fails.
			pre = &prefilter{minLen: math.MaxInt, plainNever: true}
		default:
			return parsedRule{}, false
		}
	} else if m := libinjectionOps[op]; m != nil {
		pre, match = &prefilter{}, m
	} else if arg, isVBR := strings.CutPrefix(op, "@validateByteRange "); isVBR {
		if match = byteRangeOp(arg); match == nil {
			return parsedRule{}, false
		}
		pre = &prefilter{}
	} else if pre, ok = pmPrefilter(op, o.file); !ok {
		return parsedRule{}, false
	}
	for _, ls := range append(slices.Clone(pre.sets), pre.plainSets...) {
		if slices.Contains(ls.strs, "") {
			// Satisfied by any value; not worth a matcher case.
			return parsedRule{}, false
		}
	}
	// Every value must be ASCII: Unicode lowering and the UTF-8 rules
	// are not ASCII lowering.
	trig := trigHigh
	var chain []string
	multiMatch := false
	for _, a := range splitActions(actions) {
		name, arg, _ := strings.Cut(a, ":")
		name = strings.TrimSpace(strings.ToLower(name))
		if name == "multimatch" {
			multiMatch = true
		}
		if name != "t" {
			continue
		}
		t := strings.ToLower(strings.TrimSpace(strings.Trim(arg, "'")))
		m, known := transformTriggers[t]
		if !known {
			return parsedRule{}, false
		}
		if t == "none" {
			trig = trigHigh
			chain = chain[:0]
			continue
		}
		trig |= m
		chain = append(chain, t)
	}
	return parsedRule{vars: vars, trig: trig, pre: pre, rx: re, match: match, chain: chain, multiMatch: multiMatch}, true
}

// byteRangeOp is @validateByteRange with argument arg as Coraza 3.8.1
// parses and evaluates it (it matches a value holding a byte outside the
// ranges); nil for an argument it would refuse or take as "always".
func byteRangeOp(arg string) func(string) bool {
	if arg == "" {
		return nil
	}
	var valid [256]bool
	for _, br := range strings.Split(arg, ",") {
		start, end, isRange := strings.Cut(strings.TrimSpace(br), "-")
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
			valid[i] = true
		}
	}
	return func(v string) bool {
		for i := 0; i < len(v); i++ {
			if !valid[v[i]] {
				return true
			}
		}
		return false
	}
}

// libinjectionOps are the operators the gate calls itself, by their text
// in a rule: what Coraza 3.8.1's detectSQLi and detectXSS return (the
// same libinjection-go functions, on the same value).
var libinjectionOps = map[string]func(string) bool{
	"@detectSQLi": func(s string) bool { m, _ := libinjection.IsSQLi(s); return m },
	"@detectXSS":  libinjection.IsXSS,
}

// hasSkip reports whether a rule's raw text has a skip:N action.
func hasSkip(raw string) bool {
	i := strings.Index(strings.ToLower(raw), "skip:")
	return i > 0 && (raw[i-1] == ',' || raw[i-1] == '"' || raw[i-1] == ' ')
}

// splitRule splits a SecRule's arguments into variables, operator and
// actions the way Coraza 3.8.1's parseActionOperator does.
func splitRule(data string) (vars, op, actions string, ok bool) {
	data = strings.Trim(data, " ")
	vars, rest, found := strings.Cut(data, " ")
	if !found {
		return "", "", "", false
	}
	rest = strings.TrimLeft(rest, " ")
	if len(rest) == 0 || rest[0] != '"' {
		return "", "", "", false
	}
	escapes, end := 0, -1
	for i := 1; i < len(rest); i++ {
		if rest[i] != '"' {
			if rest[i] == '\\' {
				escapes++
			} else {
				escapes = 0
			}
			continue
		}
		if escapes%2 == 1 {
			escapes = 0
			continue
		}
		end = i
		break
	}
	if end < 0 {
		return "", "", "", false
	}
	op = strings.ReplaceAll(rest[1:end], `\"`, `"`)
	actions = strings.Trim(strings.TrimSpace(rest[end+1:]), `"`)
	return vars, op, actions, true
}

// splitActions splits an action list at commas outside single quotes.
func splitActions(s string) []string {
	var out []string
	quoted, start := false, 0
	for i := 0; i < len(s); i++ {
		switch {
		case s[i] == '\\':
			i++
		case s[i] == '\'':
			quoted = !quoted
		case s[i] == ',' && !quoted:
			out = append(out, s[start:i])
			start = i + 1
		}
	}
	return append(out, s[start:])
}

// parseTargets parses a rule's variable list into the collections it
// reads, ignoring exclusions (the gate reads a superset). ok is false when
// a variable is counted (&ARGS), unknown, or outside gateCollections.
func parseTargets(list string) (string, []gateTarget, bool) {
	var out []gateTarget
	var keys []string
	for _, tok := range splitVars(list) {
		if tok == "" {
			return "", nil, false
		}
		if tok[0] == '!' {
			continue
		}
		if tok[0] == '&' {
			return "", nil, false
		}
		name, key, _ := strings.Cut(tok, ":")
		v, err := variables.Parse(name)
		if err != nil || !gateCollections[v] {
			return "", nil, false
		}
		key = strings.Trim(key, "'")
		if strings.HasPrefix(key, "/") || v == variables.XML || strings.ContainsAny(key, `"\`) {
			// Regular-expression keys, XPath: the whole collection.
			key = ""
		}
		out = append(out, gateTarget{v: v, key: key})
		keys = append(keys, v.Name()+":"+key)
	}
	if len(out) == 0 {
		return "", nil, false
	}
	return strings.Join(keys, "|"), out, true
}

// splitVars splits a variable list at '|' outside /regex/ keys and quotes.
// XML's key is an XPath ("XML:/*"), not a /regex/: a '/' after "XML:"
// opens nothing (else the targets after it would be swallowed into XML's
// key and never read by the gate).
func splitVars(s string) []string {
	var out []string
	start, inRx, inQ := 0, false, false
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case inRx:
			if c == '\\' {
				i++
			} else if c == '/' {
				inRx = false
			}
		case inQ:
			if c == '\'' {
				inQ = false
			}
		case c == '/' && i > 0 && s[i-1] == ':' && !strings.EqualFold(strings.TrimLeft(s[start:i-1], "!&"), "XML"):
			inRx = true
		case c == '\'':
			inQ = true
		case c == '|':
			out = append(out, s[start:i])
			start = i + 1
		}
	}
	return append(out, s[start:])
}

// gateAction runs a gateSet in a transaction.
type gateAction struct{ g *gateSet }

func (a *gateAction) Init(_ plugintypes.RuleMetadata, data string) error {
	v, ok := gates.Load(data)
	if !ok {
		return fmt.Errorf("waf: unknown gate %q", data)
	}
	a.g = v.(*gateSet)
	return nil
}

func (a *gateAction) Type() plugintypes.ActionType { return plugintypes.ActionTypeNondisruptive }

// ruleRemover is the method of Coraza's transaction behind
// ctl:ruleRemoveById.
type ruleRemover interface{ RemoveRuleByID(id int) }

func (a *gateAction) Evaluate(_ plugintypes.RuleMetadata, tx plugintypes.TransactionState) {
	g := a.g
	phase := tx.LastPhase()
	if g == nil || phase < 1 || phase > 2 {
		return
	}
	rm, ok := tx.(ruleRemover)
	if !ok {
		return
	}
	if g.removeFolded {
		for _, id := range g.folded[phase] {
			rm.RemoveRuleByID(id)
		}
	}
	if g.off || len(g.phase[phase]) == 0 {
		return
	}
	sc := scratchPool.Get().(*gateScratch)
	defer sc.release()
	sc.reset(g)
	removed := 0
	for i := range g.phase[phase] {
		r := &g.phase[phase][i]
		if !r.removable {
			continue
		}
		skip := true
	targets:
		for _, k := range g.targets[r.targets] {
			for _, v := range sc.values(tx, g, k) {
				if !sc.impossible(r, v) {
					skip = false
					break targets
				}
			}
		}
		if skip {
			rm.RemoveRuleByID(r.id)
			removed++
			if g.onRemove != nil {
				g.onRemove(r.id)
			}
		}
	}
	g.removed.Add(uint64(removed))
}

// impossible reports whether r's operator cannot match v after r's
// transformations. Either v is ASCII without r's triggers (so the operator
// sees v or its lowering, whose fold is v's) and v fails the pre-filter;
// or v is ASCII and r's chain, walked on v's lowering (transformed), gives
// a value that fails it.
//
// Past the pre-filter, an @ghrx rule's automaton decides (see 3. above):
// the operator sees v or its lowering, or, walked, a value whose lowering
// is the walk's result.
func (sc *gateScratch) impossible(r *gateRule, v *gateValue) bool {
	// A decision is a function of the rule and the value's string alone
	// (the rule set is read-only), so a value remembers it: the same
	// string met again, in another target, in phase 2 or in a later
	// transaction (the scratch keeps its values, see reset), costs a
	// bit test.
	if int(r.idx) >= sc.g.nrules {
		return sc.decide(r, v) // not built by build (tests)
	}
	w, bit := 2*int(r.idx>>6), uint64(1)<<(r.idx&63)
	if v.dec == nil {
		v.dec = make([]uint64, 2*((sc.g.nrules+63)/64))
	} else if v.dec[w]&bit != 0 {
		return v.dec[w+1]&bit != 0
	}
	imp := sc.decide(r, v)
	v.dec[w] |= bit
	if imp {
		v.dec[w+1] |= bit
	}
	return imp
}

// decide is impossible without the remembered decisions.
func (sc *gateScratch) decide(r *gateRule, v *gateValue) bool {
	if r.match != nil {
		// Without the chain's triggers (bytes past ASCII among them),
		// every step leaves v unchanged or lowered, every intermediate
		// too (multiMatch): the operator sees v or its lowering, and is
		// asked about both.
		if v.trig&r.trig != 0 || r.match(v.value) {
			return false
		}
		l := strings.ToLower(v.value)
		return l == v.value || !r.match(l)
	}
	walked := false
	if v.trig&r.trig != 0 {
		if v.trig&trigHigh != 0 {
			return false
		}
		if r.multi {
			return sc.allImpossible(r, v)
		}
		if v = sc.transformed(r.chain, v); v == nil {
			return false
		}
		walked = true
	}
	if r.fails(v, sc.hits(v)) {
		return true
	}
	return r.rx != nil && noMatch(r.rx, v.value, walked)
}

// allImpossible is impossible for a multiMatch rule and an ASCII value v
// holding some of its triggers: the operator sees v and every value a
// step changed, whose lowerings are the walk's intermediates
// (intermediates); each must fail the pre-filter or, for the automaton,
// as a walked value (its case unknown).
func (sc *gateScratch) allImpossible(r *gateRule, v *gateValue) bool {
	ws := sc.intermediates(r.chain, v)
	if ws == nil {
		return false
	}
	for _, w := range ws {
		if !r.fails(w, sc.hits(w)) && (r.rx == nil || !noMatch(r.rx, w.value, true)) {
			return false
		}
	}
	return true
}

// noMatch reports whether o's automaton proves that o matches no ASCII
// value w with lower(w) == lower(s): w is s or its lowering, or, when
// walked, any value whose lowering is s. On ASCII input a case-symmetric
// automaton answers the same for a value and its lowering; another one
// must be asked about both s and its lowering, and cannot answer for
// every case of a walked value.
func noMatch(o *rx, s string, walked bool) bool {
	d := o.lazyDFA()
	if !d.caseSymmetric {
		if walked {
			return false
		}
		if m, ok := d.match(s); !ok || m {
			return false
		}
		s = strings.ToLower(s)
	}
	m, ok := d.match(s)
	return ok && !m
}

// fails reports whether v's fold fails r's pre-filter, restated from
// prefilter.mayMatch over the matcher's hits.
func (r *gateRule) fails(v *gateValue, hits []uint64) bool {
	sets := r.sets
	if v.plain {
		if r.plainNever || v.n < r.plainMinLen {
			return true
		}
		sets = r.plainSets
	} else if v.n < r.minLen {
		return true
	}
	for _, id := range sets {
		if hits[id>>6]&(1<<(id&63)) == 0 {
			return true
		}
	}
	return false
}

// gateValue is one value as the gate sees it.
type gateValue struct {
	n     int // length of the value (ASCII: of its fold too)
	plain bool
	trig  uint16
	hit   int // offset of its hits in the scratch's bitsets
	value string
	// dec holds, for each rule (gateRule.idx), whether impossible has
	// decided it on this value (even words) and what (odd words); nil
	// before the first decision.
	dec []uint64
}

// gateScratch holds one gate run's values, by target and by string.
type gateScratch struct {
	g       *gateSet
	byKey   [][]*gateValue
	done    []bool
	byValue map[string]*gateValue
	walked  map[walkKey]*gateValue // nil: the chain is stuck on the value
	bits    []uint64
	buf     []byte
	vals    []gateValue
	// inter caches intermediates (nil: stuck).
	inter map[walkKey][]*gateValue
	// marks and mark serve acMatcher.scanMarked; mark is new for each
	// scan.
	marks []uint32
	mark  uint32
	// cacheOf is the gate set whose values byValue, walked, inter and
	// bits hold: they are kept from one run to the next (a value's fold,
	// hits, walks and decisions depend on its string and the rule set
	// only), up to maxCachedValues values or maxCachedBytes bytes of
	// them; cached counts those bytes.
	cacheOf *gateSet
	cached  int
}

// The bounds of what a scratch remembers between runs (see cacheOf).
const (
	maxCachedValues = 4096
	maxCachedBytes  = 1 << 20
)

var scratchPool = sync.Pool{New: func() any {
	return &gateScratch{byValue: map[string]*gateValue{}, walked: map[walkKey]*gateValue{}, inter: map[walkKey][]*gateValue{}}
}}

func (sc *gateScratch) reset(g *gateSet) {
	sc.g = g
	if sc.cacheOf != g || len(sc.byValue) > maxCachedValues || sc.cached > maxCachedBytes {
		clear(sc.byValue)
		clear(sc.walked)
		clear(sc.inter)
		sc.bits = sc.bits[:0]
		sc.cached = 0
		sc.cacheOf = g
	}
	if cap(sc.byKey) < len(g.keys) {
		sc.byKey = make([][]*gateValue, len(g.keys))
		sc.done = make([]bool, len(g.keys))
	}
	sc.byKey = sc.byKey[:len(g.keys)]
	sc.done = sc.done[:len(g.keys)]
}

func (sc *gateScratch) release() {
	for i := range sc.byKey {
		sc.byKey[i] = sc.byKey[i][:0]
		sc.done[i] = false
	}
	sc.vals = sc.vals[:0]
	sc.g = nil
	scratchPool.Put(sc)
}

func (sc *gateScratch) hits(v *gateValue) []uint64 {
	return sc.bits[v.hit : v.hit+sc.g.ac.words()]
}

// values returns the values of target k, read as Coraza's GetField reads
// them (without exceptions).
func (sc *gateScratch) values(tx plugintypes.TransactionState, g *gateSet, k int) []*gateValue {
	if sc.done[k] {
		return sc.byKey[k]
	}
	t := g.keys[k]
	vs := sc.byKey[k][:0]
	if col := tx.Collection(t.v); col != nil {
		var ms []types.MatchData
		if kc, ok := col.(collection.Keyed); ok && t.key != "" {
			ms = kc.FindString(t.key)
		} else {
			ms = col.FindAll()
		}
		for _, m := range ms {
			vs = append(vs, sc.value(m.Value()))
		}
	}
	sc.byKey[k] = vs
	sc.done[k] = true
	return vs
}

func (sc *gateScratch) value(s string) *gateValue {
	if v, ok := sc.byValue[s]; ok {
		return v
	}
	var plain bool
	sc.buf, plain = fold(s, sc.buf)
	w := sc.g.ac.words()
	at := len(sc.bits)
	sc.bits = append(sc.bits, make([]uint64, w)...)
	if len(sc.marks) != len(sc.g.ac.nodes) {
		sc.marks, sc.mark = make([]uint32, len(sc.g.ac.nodes)), 0
	}
	if sc.mark++; sc.mark == 0 {
		clear(sc.marks)
		sc.mark = 1
	}
	sc.g.ac.scanMarked(sc.buf, sc.bits[at:at+w], sc.marks, sc.mark)
	// Values are few per request; allocate each (pointers into a growing
	// slice would move).
	v := &gateValue{n: len(sc.buf), plain: plain, trig: triggers(s), hit: at, value: s}
	sc.byValue[s] = v
	sc.cached += len(s)
	return v
}

// walkKey is a value and a chain.
type walkKey struct {
	chain int32
	v     *gateValue
}

// transformed returns what chain makes of the ASCII value v, lowered, as
// the gate's value of it; nil when some step has triggers in its input
// and no exact restatement (the rule must then run).
//
// Why the result is the operator's input, lowered: by induction over the
// steps, with cur the lowering of the real intermediate value (at first
// v's lowering). Triggers are bytes that are not letters, so cur holds
// the same triggers as the real value. A step without its triggers in
// cur returns the real value unchanged or lowered (transformTriggers):
// its lowering is still cur. A step with them is computed by its exact
// restatement, which gives the lowering of Coraza's result
// (exactTransforms). Every step keeps ASCII ASCII. The operator sees the
// last value; its fold is the lowering, which the pre-filter compares.
func (sc *gateScratch) transformed(chain int32, v *gateValue) *gateValue {
	key := walkKey{chain: chain, v: v}
	if w, ok := sc.walked[key]; ok {
		return w
	}
	var out *gateValue
	if cur, ok := sc.walk(chain, v, nil); ok {
		out = sc.value(cur)
	}
	sc.walked[key] = out
	return out
}

// walk computes chain's steps on v's lowering, calling step (when not
// nil) with the result of each step it computes, and returns the last
// result; ok is false when the walk is stuck: a step with v's triggers
// has no exact restatement, or its result is not ASCII (urlDecodeUni
// decoded bytes past ASCII, or an escape it does not restate).
func (sc *gateScratch) walk(chain int32, v *gateValue, step func(string)) (cur string, ok bool) {
	cur = strings.ToLower(v.value)
	trig := v.trig // ASCII lowering changes no trigger
	for _, st := range sc.g.chains[chain] {
		if trig&st.trig == 0 {
			continue
		}
		if st.exact == nil {
			return "", false
		}
		if next := st.exact(cur); next != cur {
			cur, trig = next, triggers(next)
		}
		if !ascii(cur) {
			return "", false
		}
		if step != nil {
			step(cur)
		}
	}
	return cur, true
}

// intermediates returns the gate's values of the lowerings of what a
// multiMatch operator sees for the ASCII value v: v's lowering, then the
// result of every step the walk computes (a step without its triggers
// returns its input or its lowering: the same lowering); nil when the
// walk is stuck (see transformed).
func (sc *gateScratch) intermediates(chain int32, v *gateValue) []*gateValue {
	key := walkKey{chain: chain, v: v}
	if out, ok := sc.inter[key]; ok {
		return out
	}
	out := sc.walkAll(chain, v)
	sc.inter[key] = out
	return out
}

func (sc *gateScratch) walkAll(chain int32, v *gateValue) []*gateValue {
	out := []*gateValue{sc.value(strings.ToLower(v.value))}
	if _, ok := sc.walk(chain, v, func(cur string) { out = append(out, sc.value(cur)) }); !ok {
		return nil
	}
	return out
}

// triggers returns the trigger classes s holds.
func triggers(s string) uint16 {
	var t uint16
	if s == "." {
		t |= trigSlash
	}
	if n := len(s); n > 0 && (s[n-1] == '.' || s[n-1] == ' ') {
		t |= trigTrail
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c >= 0x80:
			t |= trigHigh
		case c == '%' || c == '+':
			t |= trigPct
		case c == '&':
			t |= trigAmp
		case c == '\\':
			t |= trigBackslash
		case c == 0:
			t |= trigNUL
		case c == ' ':
			t |= trigSpace
			if i+1 < len(s) {
				switch s[i+1] {
				case ' ':
					t |= trigDoubleSpace
				case '/', '(':
					t |= trigSpaceBefore
				}
			}
		case c == '\t' || c == '\n' || c == '\v' || c == '\f' || c == '\r':
			t |= trigCtlSpace
		case c == '"' || c == '\'' || c == '^' || c == ',' || c == ';':
			t |= trigCmd
		case c == '#':
			t |= trigRemComment
		case c == '*':
			if i+1 < len(s) && s[i+1] == '/' {
				t |= trigRemComment
			}
		case c == '-':
			if i+1 < len(s) && s[i+1] == '-' {
				t |= trigRemComment
			}
		case c == ':':
			t |= trigColon
		case c == '/':
			t |= trigSlash
			if i+1 < len(s) && s[i+1] == '*' {
				t |= trigComment
			}
		}
	}
	return t
}
