package waf

import (
	"fmt"
	"math"
	"net/http"
	"net/http/httptest"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"

	"github.com/corazawaf/coraza/v3/collection"
	"github.com/corazawaf/coraza/v3/experimental/plugins/plugintypes"
	"github.com/corazawaf/coraza/v3/types"
)

// The quiet path: a request that provably does what a benign calibration
// request does is allowed without running the rules.
//
// When a WAF is built, one bodiless request C (GET /calibrate with a Host,
// a User-Agent and an Accept, from a documentation address) is run through
// the rules of phases 1, 2 and 5, and must leave nothing the policy would
// log or act on: no rule that logs (a message, and not nolog) matched, no
// interruption. Before a bodiless request X is run, WAF.tryQuiet tries to
// prove that every rule would behave on X exactly as it did on C; if so
// X's outcome is C's, and the policy allows X without evaluating a single
// rule (Apply skips the phases). A request the proof does not cover runs
// the rules as before.
//
// Why X's outcome is then C's, by induction over the rules in Coraza's
// order (phase 1, phase 2, phase 5; each in load order). Suppose every rule
// before R behaved on X as on C: the same rules matched, with the same
// effects. Then the TX collection, the flow state (skipAfter, skip, the
// rules removed by ctl) and the variables Coraza derives from the request
// during the phases (REQBODY_PROCESSOR, REQUEST_BODY, MATCHED_*) are the
// same at R, since they are functions of the request's own variables,
// which X and C feed alike (no body is fed to either), and of the rules'
// effects. R then behaves alike when one of these holds (quietProof):
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

// quietSet is a calibrated quiet path; safe for concurrent use.
type quietSet struct {
	keys  []qKey
	calib [][]kv // C's pairs by key, sorted
	proof []quietProof
	cand  *gateSet
	cache *proofCache
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

// quietProof is what check must show of one rule.
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
		return calibrationFails("no parsed rule set")
	}
	r := calibrationRequest()
	tx := w.engine.NewTransaction()
	defer tx.Close()
	w.feedHeaders(r, "192.0.2.1", tx)
	ts, ok := tx.(plugintypes.TransactionState)
	if !ok {
		return calibrationFails("no transaction state")
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
		return calibrationFails("the calibration request was interrupted in phase 1")
	}
	if it, err := tx.ProcessRequestBody(); it != nil || err != nil {
		return calibrationFails("the calibration request was interrupted in phase 2")
	}
	tx.ProcessLogging()
	if tx.IsInterrupted() {
		return calibrationFails("the calibration request was interrupted")
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
			return calibrationFails("a rule with skip, allow or no parse matched the calibration request")
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
			return calibrationFails("a skipAfter marker not found after its rule")
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
			return calibrationFails("a rule that could not be parsed is evaluated")
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
