package waf

import (
	"encoding/binary"
	"regexp/syntax"
	"slices"
	"sync"
	"sync/atomic"
	"unicode/utf8"
)

// A dfa answers "does the expression match anywhere in s" with a lazily
// built deterministic automaton over the expression's compiled program,
// in time linear in s with a small constant, where Go's regexp runs its
// NFA (one thread per live instruction per rune; for CRS's big (?i)
// alternations, hundreds of instructions, each (?i) letter calling
// unicode.SimpleFold). It decides no captures: a match is re-run by the
// regexp itself (rx.Evaluate), so it only replaces the regexp's "no".
//
// Why its answer is the regexp's: a state is the set of program counters
// Go's NFA (regexp's machine) would hold between two runes, before
// following empty-width instructions, plus the class of the rune before
// (start of text, '\n', word rune, other), which with the next rune
// decides every empty-width assertion exactly as syntax.EmptyOpContext
// does for the NFA. A transition on rune r follows Alt, Nop, Capture and
// the empty-width instructions whose conditions hold between the previous
// rune and r (regexp's machine.add), reports a match when it reaches
// InstMatch, and else steps every rune instruction that accepts r
// (machine.step), adding the program's start, as the unanchored NFA adds
// a new thread at every position. At the end of the input the same
// closure with r = end of text decides. Runes are decoded as regexp
// decodes them (invalid UTF-8 as U+FFFD, one byte). The NFA's thread
// priorities only choose between matches; whether one exists is the set's
// reachability, which is what the states track.
//
// ASCII bytes go through a per-state table indexed by byte class (bytes
// that every rune instruction, and the empty-width context, treats alike);
// other runes through a per-state map under the lock. The number of
// states is bounded (maxDFAStates per automaton, dfaBudget for all):
// past it, match reports !ok and the caller runs the regexp, until the
// automaton's cache of states has paid for itself and is rebuilt from
// empty (reset), as RE2 rebuilds its DFA's cache. Without the rebuild,
// values made to visit new states (a client chooses them) would fill
// the bounds once and leave every automaton on the regexp for the
// process's life.
type dfa struct {
	// The program, compacted: one dinst per instruction, and the
	// distinct rune tests of its rune instructions.
	insts    []dinst
	matchers []runeMatcher
	start    uint32
	// caseSymmetric: every rune instruction accepts an ASCII letter
	// exactly when it accepts its other case, so that the automaton
	// answers the same for an ASCII value and its lowering (word
	// characters, and so \b, are symmetric too).
	caseSymmetric bool
	class         [utf8.RuneSelf]uint8 // ASCII byte -> class
	rep           []rune               // a representative byte of each class
	nc            int

	// maxStates is maxDFAStates; tests lower it.
	maxStates int

	// cache holds the states built so far. A walk loads it once and
	// runs on it to its end, so that a state index is only ever looked
	// up in the cache that made it; a reset publishes a new one.
	cache  atomic.Pointer[dcache]
	resets atomic.Int64 // how many times the cache was rebuilt

	mu sync.Mutex // builds states (of any cache of d)
	// scratch, under mu
	seen  []bool
	stack []uint32
	runes []uint32
	next  []uint32
	key   []byte
}

// dcache is one generation of an automaton's states.
type dcache struct {
	// chunks hold the states by index (see dstate.next), written under
	// dfa.mu before their index is published.
	chunks [maxDFAStates/dfaChunk + 1]atomic.Pointer[[dfaChunk]*dstate]
	start  *dstate     // state 0; nil when there was no room for it
	full   atomic.Bool // a bound refused a state: build no more
	n      atomic.Int64
	// walked counts the bytes walks crossed on this cache: with n, it
	// tells whether the cache paid for itself (see dfa.reset).
	walked atomic.Int64

	// Under dfa.mu:
	states  map[string]uint32 // key -> index
	bytes   int64             // charged to dfaBytes, given back by reset
	retired bool              // replaced: grows no more, charges nothing
}

// dstate is one state. Transitions are state indexes plus 2; 0 is not yet
// computed, dfaMatch a match.
type dstate struct {
	key  string // the previous rune's class (ctx+1), then the pcs, 4 bytes each
	next []atomic.Uint32
	wide map[rune]uint32 // non-ASCII transitions, under dfa.mu
	end  atomic.Int32    // 0 unknown, 1 no match at end, 2 match at end
}

const (
	dfaMatch = 1
	dfaChunk = 256
	// maxDFAStates bounds each automaton's memory (a state is about
	// 4 bytes per byte class plus 4 per pc).
	maxDFAStates = 4096
	// maxDFABytes bounds all automata together (they live as long as
	// the process's compiled expressions): past it, none grows, and
	// values that would need a new state run the regexp, until an
	// automaton that paid for itself is rebuilt and gives its bytes back.
	maxDFABytes = 32 << 20
	// resetWalk is how many bytes walks must cross per state of a cache
	// before it may be rebuilt (RE2's rule, and its figure): a cache
	// rebuilt more often costs more to build than the regexp it saves.
	// Values made so that every byte needs a new state cannot make an
	// automaton rebuild; the traffic that follows them, walking states
	// already built, does.
	resetWalk = 10
	// dstateOverhead is a state's size besides its key and transitions:
	// the struct, its map entry and chunk slot, allocation slack.
	dstateOverhead = 128
	// maxWideRunes bounds each state's transitions on runes past ASCII,
	// which are kept per rune, not per class: without it, values holding
	// many distinct runes (a client chooses them) would grow every
	// state's map without limit, outside maxDFABytes. Past it, such a
	// rune runs the regexp. wideEntryBytes is what one entry is charged
	// against maxDFABytes.
	maxWideRunes   = 64
	wideEntryBytes = 32
)

// dinst is an instruction of the program: its op, Out and Arg, and for
// rune instructions the index of its test in dfa.matchers.
type dinst struct {
	op       syntax.InstOp
	out, arg uint32
	m        uint32
}

// runeMatcher is a rune instruction's test: its ASCII bytes as a bitset,
// and the instruction itself (Op, Rune, Arg: its fold flag) for other
// runes.
type runeMatcher struct {
	ascii [2]uint64
	in    syntax.Inst
}

// matches reports whether the instruction accepts r, as regexp's
// machine.step decides.
func (m *runeMatcher) matches(r rune) bool {
	if r < utf8.RuneSelf {
		return m.ascii[r>>6]&(1<<(r&63)) != 0
	}
	return runeMatches(&m.in, r)
}

// dfaBytes is the approximate size of all automata's states, and
// dfaBudget its bound (maxDFABytes; tests lower it).
var (
	dfaBytes  atomic.Int64
	dfaBudget atomic.Int64
)

func init() { dfaBudget.Store(maxDFABytes) }

// charge adds n bytes to dfaBytes if they fit in the budget.
func charge(n int64) bool {
	if dfaBytes.Add(n) > dfaBudget.Load() {
		dfaBytes.Add(-n)
		return false
	}
	return true
}

// ctx is the representative of the previous rune's class, -1 at start.
func (s *dstate) ctx() rune { return rune(s.key[0]) - 1 }

// newDFA compiles expr for the automaton; nil (which decides nothing) if
// it does not parse. With no room for its first state it decides nothing
// until there is room (see reset).
func newDFA(expr string) *dfa {
	re, err := syntax.Parse(expr, syntax.Perl)
	if err != nil {
		return nil
	}
	prog, err := syntax.Compile(re.Simplify())
	if err != nil {
		return nil
	}
	d := &dfa{start: uint32(prog.Start), maxStates: maxDFAStates, seen: make([]bool, len(prog.Inst))}
	d.compact(prog)
	d.caseSymmetric = true
	for i := range d.matchers {
		a := &d.matchers[i].ascii
		for c := 'A'; c <= 'Z'; c++ {
			lo := c + 'a' - 'A'
			if (a[c>>6]>>(c&63))&1 != (a[lo>>6]>>(lo&63))&1 {
				d.caseSymmetric = false
			}
		}
	}
	d.classes()
	d.cache.Store(d.newCache())
	return d
}

// newCache returns an empty cache holding the start state, or none when
// the budget has no room for it. Under mu, or before d is shared.
func (d *dfa) newCache() *dcache {
	c := &dcache{states: map[string]uint32{}}
	if d.state(c, []uint32{d.start}, -1) == 2 {
		c.start = c.at(2)
	} else {
		c.full.Store(true)
	}
	return c
}

// reset rebuilds d's cache from empty when c, the cache a walk found
// full, is still d's and has paid for itself: walks crossed at least
// resetWalk bytes per state since it was made. Its bytes go back to the
// budget. Walks still running on c keep reading it; they build no more
// states in it. Otherwise nothing changes, and values needing a state c
// lacks run the regexp.
func (d *dfa) reset(c *dcache) {
	if c.walked.Load() < resetWalk*c.n.Load() {
		return
	}
	if c.start == nil && dfaBytes.Load() >= dfaBudget.Load() {
		return // no room for a start state yet: do not take the lock
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.cache.Load() != c {
		return // another walk rebuilt it
	}
	c.retired = true
	dfaBytes.Add(-c.bytes)
	c.bytes = 0
	d.cache.Store(d.newCache())
	d.resets.Add(1)
}

// ctxOf is the representative of r's class as the previous rune.
func ctxOf(r rune) rune {
	switch {
	case r == '\n':
		return '\n'
	case r < utf8.RuneSelf && syntax.IsWordChar(r):
		return 'a'
	default:
		return ' '
	}
}

// compact copies prog's instructions into d.insts and their distinct
// rune tests into d.matchers.
func (d *dfa) compact(prog *syntax.Prog) {
	d.insts = make([]dinst, len(prog.Inst))
	index := map[string]uint32{}
	var key []byte
	for i := range prog.Inst {
		in := &prog.Inst[i]
		d.insts[i] = dinst{op: in.Op, out: in.Out, arg: in.Arg}
		switch in.Op {
		case syntax.InstRune, syntax.InstRune1, syntax.InstRuneAny, syntax.InstRuneAnyNotNL:
		default:
			continue
		}
		key = append(key[:0], byte(in.Op))
		key = binary.LittleEndian.AppendUint32(key, in.Arg)
		for _, r := range in.Rune {
			key = binary.LittleEndian.AppendUint32(key, uint32(r))
		}
		m, ok := index[string(key)]
		if !ok {
			rm := runeMatcher{in: syntax.Inst{Op: in.Op, Arg: in.Arg, Rune: slices.Clip(in.Rune)}}
			for b := range rune(utf8.RuneSelf) {
				if runeMatches(in, b) {
					rm.ascii[b>>6] |= 1 << (b & 63)
				}
			}
			m = uint32(len(d.matchers))
			d.matchers = append(d.matchers, rm)
			index[string(key)] = m
		}
		d.insts[i].m = m
	}
}

// classes partitions the ASCII bytes: two bytes share a class when every
// rune instruction accepts both or neither and they have the same ctxOf.
func (d *dfa) classes() {
	ids := map[string]uint8{}
	sig := make([]byte, 1+(len(d.matchers)+7)/8)
	for b := range rune(utf8.RuneSelf) {
		clear(sig)
		sig[0] = byte(ctxOf(b))
		for i := range d.matchers {
			if d.matchers[i].matches(b) {
				sig[1+i/8] |= 1 << (i % 8)
			}
		}
		id, ok := ids[string(sig)]
		if !ok {
			id = uint8(len(ids))
			ids[string(sig)] = id
			d.rep = append(d.rep, b)
		}
		d.class[b] = id
	}
	d.nc = len(ids)
}

// runeMatches reports whether rune instruction in accepts r, as regexp's
// machine.step decides.
func runeMatches(in *syntax.Inst, r rune) bool {
	switch in.Op {
	case syntax.InstRune:
		return in.MatchRune(r)
	case syntax.InstRune1:
		return r == in.Rune[0]
	case syntax.InstRuneAny:
		return true
	case syntax.InstRuneAnyNotNL:
		return r != '\n'
	}
	return false
}

// at returns the state of transition value t (>= 2).
func (c *dcache) at(t uint32) *dstate {
	i := t - 2
	return c.chunks[i/dfaChunk].Load()[i%dfaChunk]
}

// state returns the transition value of the state of pcs (sorted,
// distinct) after a rune of class ctx in c, creating it; 0 when a bound
// is reached. Under mu, or before the automaton is shared.
func (d *dfa) state(c *dcache, pcs []uint32, ctx rune) uint32 {
	d.key = append(d.key[:0], byte(ctx+1))
	for _, pc := range pcs {
		d.key = binary.LittleEndian.AppendUint32(d.key, pc)
	}
	if t, ok := c.states[string(d.key)]; ok {
		return t
	}
	i := len(c.states)
	size := int64(dstateOverhead + len(d.key) + 4*d.nc)
	if c.retired || i >= d.maxStates || !charge(size) {
		c.full.Store(true)
		return 0
	}
	c.bytes += size
	s := &dstate{key: string(d.key), next: make([]atomic.Uint32, d.nc)}
	ch := c.chunks[i/dfaChunk].Load()
	if ch == nil {
		ch = new([dfaChunk]*dstate)
		c.chunks[i/dfaChunk].Store(ch)
	}
	ch[i%dfaChunk] = s
	t := uint32(i) + 2
	c.states[s.key] = t
	c.n.Store(int64(len(c.states)))
	return t
}

// closure follows s's pcs through the instructions that consume nothing,
// under the empty-width conditions flag, collecting rune instructions in
// d.runes; it reports whether InstMatch is reached. Under mu.
func (d *dfa) closure(s *dstate, flag syntax.EmptyOp) bool {
	d.runes = d.runes[:0]
	stack := d.stack[:0]
	for k := 1; k < len(s.key); k += 4 {
		stack = append(stack, uint32(s.key[k])|uint32(s.key[k+1])<<8|uint32(s.key[k+2])<<16|uint32(s.key[k+3])<<24)
	}
	matched := false
	for len(stack) > 0 {
		pc := stack[len(stack)-1]
		stack = stack[:len(stack)-1]
		if d.seen[pc] {
			continue
		}
		d.seen[pc] = true
		in := &d.insts[pc]
		switch in.op {
		case syntax.InstAlt, syntax.InstAltMatch:
			stack = append(stack, in.arg, in.out)
		case syntax.InstNop, syntax.InstCapture:
			stack = append(stack, in.out)
		case syntax.InstEmptyWidth:
			if syntax.EmptyOp(in.arg)&^flag == 0 {
				stack = append(stack, in.out)
			}
		case syntax.InstMatch:
			matched = true
		case syntax.InstFail:
		default:
			d.runes = append(d.runes, pc)
		}
	}
	d.stack = stack
	clear(d.seen)
	return matched
}

// step computes the transition on r of s, a state of c. Under mu.
func (d *dfa) step(c *dcache, s *dstate, r rune) uint32 {
	if d.closure(s, syntax.EmptyOpContext(s.ctx(), r)) {
		return dfaMatch
	}
	next := append(d.next[:0], d.start)
	for _, pc := range d.runes {
		if in := &d.insts[pc]; d.matchers[in.m].matches(r) {
			next = append(next, in.out)
		}
	}
	slices.Sort(next)
	next = slices.Compact(next)
	d.next = next
	return d.state(c, next, ctxOf(r))
}

// match reports whether the expression matches somewhere in s; ok is
// false when the automaton reached its bound before deciding.
func (d *dfa) match(s string) (matched, ok bool) {
	if d == nil || d.nc == 0 {
		return false, false
	}
	c := d.cache.Load()
	matched, ok, n := d.walk(c, s)
	c.walked.Add(int64(n))
	if !ok {
		d.reset(c)
	}
	return matched, ok
}

// walk runs s through c; n is how many bytes it crossed.
func (d *dfa) walk(c *dcache, s string) (matched, ok bool, n int) {
	st := c.start
	if st == nil {
		return false, false, 0
	}
	for i := 0; i < len(s); {
		ch := s[i]
		var t uint32
		if ch < utf8.RuneSelf {
			cl := d.class[ch]
			if t = st.next[cl].Load(); t == 0 {
				if c.full.Load() {
					return false, false, i
				}
				d.mu.Lock()
				t = d.step(c, st, d.rep[cl])
				d.mu.Unlock()
				if t == 0 {
					return false, false, i
				}
				st.next[cl].Store(t)
			}
			i++
		} else {
			r, w := utf8.DecodeRuneInString(s[i:])
			d.mu.Lock()
			if t = st.wide[r]; t == 0 && len(st.wide) < maxWideRunes && !c.retired && charge(wideEntryBytes) {
				if t = d.step(c, st, r); t != 0 {
					if st.wide == nil {
						st.wide = map[rune]uint32{}
					}
					st.wide[r] = t
					c.bytes += wideEntryBytes
				} else {
					dfaBytes.Add(-wideEntryBytes)
				}
			}
			d.mu.Unlock()
			if t == 0 {
				return false, false, i
			}
			i += w
		}
		if t == dfaMatch {
			return true, true, i
		}
		st = c.at(t)
	}
	switch st.end.Load() {
	case 1:
		return false, true, len(s)
	case 2:
		return true, true, len(s)
	}
	d.mu.Lock()
	m := d.closure(st, syntax.EmptyOpContext(st.ctx(), -1))
	d.mu.Unlock()
	if m {
		st.end.Store(2)
	} else {
		st.end.Store(1)
	}
	return m, true, len(s)
}
