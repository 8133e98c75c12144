package waf

import (
	"regexp"
	"regexp/syntax"
	"slices"
	"strings"
	"unicode/utf8"
)

// A prefilter is a necessary condition for a regular expression to match:
// every match contains, for each of its sets, at least one of the set's
// strings (compared ASCII-case-insensitively). When an input lacks them all
// for one set, the expression cannot match it and is not run. The filter
// never decides a match: it only skips expressions that cannot match, so a
// weak filter costs speed, never a detection.
//
// CRS's expensive expressions are big (?i) keyword alternations (command
// names, SQL functions, URL schemes) that Go's regexp runs as an NFA with
// case folding on every rune; against benign API values, which hold none of
// the keywords, a scan for the keywords is an order of magnitude cheaper.
type prefilter struct {
	minLen int
	sets   []litSet
	// For inputs without special bytes (see stripSpecial): plainNever
	// means no such input matches; else plainMinLen and plainSets are
	// the stronger conditions that hold for them.
	plainNever  bool
	plainMinLen int
	plainSets   []litSet
	// plainRe, when set, is the plain-bytes reduction compiled: on an
	// input without special bytes it matches exactly when the expression
	// does (see stripSpecial), and it is much smaller (no fillers), so a
	// plain input that passes the literal checks is tried with it first.
	// It only answers "no match"; a match reruns the expression itself,
	// whose captures the rule may need.
	plainRe *regexp.Regexp
}

// litSet matches when the folded input contains one of its strings.
//
// It is kept compact because the CRS gives a few hundred of them (up to
// six per expression, one per @pm rule), all resident for the process's
// life: a first-byte index into one slice rather than 256 slice headers
// per set (which made every set 6.7 KB, 3.6 MB over the CRS).
type litSet struct {
	strs []string
	// single has the bits of the bytes that are strings of length one.
	single [4]uint64
	// long holds the strings of length two or more sorted by first byte;
	// those starting with byte c are long[at[c]:at[c+1]].
	long []string
	at   [257]uint32
}

// Limits that keep the analysis and the filters small; past them a node
// requires nothing (which is always safe).
const (
	maxSetStrings = 512
	maxClassRunes = 12
	maxFilterSets = 3
)

// newPrefilter analyses expr (as compiled, flags included) and returns its
// filter, or nil when the expression requires nothing usable.
func newPrefilter(expr string) *prefilter {
	re, err := syntax.Parse(expr, syntax.Perl)
	if err != nil {
		return nil
	}
	re = re.Simplify()
	p := &prefilter{minLen: minLen(re), sets: requirements(re)}
	// CRS writes evasion-proof keyword lists: between the letters of
	// "busybox" it allows quotes, backslashes and "$@" fillers, so that
	// b"u"sy\box still matches. Then no letter sequence is required and
	// the plain filter above is weak. On an input without any of those
	// special bytes, though, every filler can only match empty: the
	// expression behaves as its plain-bytes reduction, whose keywords
	// are required again.
	if plain := stripSpecial(re); plain == nil {
		p.plainNever = true
	} else {
		p.plainMinLen = max(p.minLen, minLen(plain))
		p.plainSets = requirements(plain)
		// Worth a second expression only when the reduction is much
		// smaller: CRS's evasion-proof command lists shrink 3-10x.
		if s := plain.String(); len(s) < len(expr)/2 {
			if pre, err := regexp.Compile(s); err == nil {
				p.plainRe = pre
			}
		}
	}
	if len(p.sets) == 0 && p.minLen == 0 && !p.plainNever && len(p.plainSets) == 0 && p.plainMinLen == 0 {
		return nil
	}
	return p
}

// requirements returns up to maxFilterSets necessary conditions of re,
// strongest first.
func requirements(re *syntax.Regexp) []litSet {
	var reqs [][]string
	if re.Op == syntax.OpConcat {
		// A match of a concatenation holds a match of every part: each
		// part's requirement is a separate necessary condition.
		for _, sub := range re.Sub {
			if r, ok := required(sub); ok {
				reqs = append(reqs, r)
			}
		}
	} else if r, ok := required(re); ok {
		reqs = append(reqs, r)
	}
	slices.SortStableFunc(reqs, func(a, b []string) int { return score(b) - score(a) })
	if len(reqs) > maxFilterSets {
		reqs = reqs[:maxFilterSets]
	}
	var sets []litSet
	for _, r := range reqs {
		sets = append(sets, newLitSet(r))
	}
	return sets
}

// special are the bytes of attack syntax that benign API values rarely
// hold: quotes, brackets, shell and SQL operators, escapes and control
// bytes. isSpecial is its table.
const special = "\"'`()[]{}<>\\$|&;^*!~%#="

var isSpecial = func() (t [256]bool) {
	for i := 0; i < len(special); i++ {
		t[special[i]] = true
	}
	for c := 0; c < 0x20; c++ {
		t[c] = true
	}
	t[0x7f] = true
	return t
}()

// stripSpecial returns re restricted to inputs without special bytes:
// literals holding one and classes of only special bytes cannot match;
// other classes lose their special bytes. On such an input re and the
// result match the same strings at the same places (a match consumes only
// the input's bytes, none special). nil means it cannot match such an
// input at all.
func stripSpecial(re *syntax.Regexp) *syntax.Regexp {
	switch re.Op {
	case syntax.OpNoMatch:
		return nil
	case syntax.OpLiteral:
		for _, r := range re.Rune {
			if r < utf8.RuneSelf && isSpecial[r] {
				return nil
			}
		}
		return re
	case syntax.OpCharClass:
		var out []rune
		for i := 0; i < len(re.Rune); i += 2 {
			lo, hi := re.Rune[i], re.Rune[i+1]
			// The ASCII part, rune by rune, without special bytes.
			for r := lo; r <= hi && r < utf8.RuneSelf; r++ {
				if isSpecial[r] {
					continue
				}
				if n := len(out); n > 0 && out[n-1] == r-1 {
					out[n-1] = r
				} else {
					out = append(out, r, r)
				}
			}
			// The rest, kept whole.
			if hi >= utf8.RuneSelf {
				out = append(out, max(lo, utf8.RuneSelf), hi)
			}
		}
		if len(out) == 0 {
			return nil
		}
		c := *re
		c.Rune = out
		return &c
	case syntax.OpCapture, syntax.OpPlus, syntax.OpStar, syntax.OpQuest, syntax.OpRepeat:
		sub := stripSpecial(re.Sub[0])
		if sub == nil {
			if re.Op == syntax.OpStar || re.Op == syntax.OpQuest || (re.Op == syntax.OpRepeat && re.Min == 0) {
				return &syntax.Regexp{Op: syntax.OpEmptyMatch}
			}
			return nil
		}
		c := *re
		c.Sub = []*syntax.Regexp{sub}
		return &c
	case syntax.OpConcat, syntax.OpAlternate:
		var subs []*syntax.Regexp
		for _, s := range re.Sub {
			t := stripSpecial(s)
			if t == nil {
				if re.Op == syntax.OpConcat {
					return nil
				}
				continue
			}
			subs = append(subs, t)
		}
		if len(subs) == 0 {
			return nil
		}
		c := *re
		c.Sub = subs
		return &c
	default:
		// Any-char and empty-width operators: unchanged.
		return re
	}
}

// score ranks a requirement: longer shortest strings and fewer strings
// reject more inputs.
func score(set []string) int {
	short := 1 << 20
	for _, s := range set {
		short = min(short, len(s))
	}
	return short*1000 - len(set)
}

// required returns the set of strings of which every match of re contains
// at least one, lowercased (ASCII), or ok false when re requires nothing
// that can be checked safely.
func required(re *syntax.Regexp) (set []string, ok bool) {
	switch re.Op {
	case syntax.OpLiteral:
		s := string(re.Rune)
		if !ascii(s) {
			// Non-ASCII case folding is not ASCII lowering; skip.
			return nil, false
		}
		// (?i)k also matches U+212A KELVIN SIGN and (?i)s U+017F LONG S:
		// fold maps those to k and s, so the lowered literal stays a
		// necessary condition.
		return []string{strings.ToLower(s)}, true
	case syntax.OpCharClass:
		return classStrings(re.Rune)
	case syntax.OpCapture, syntax.OpPlus:
		return required(re.Sub[0])
	case syntax.OpRepeat:
		if re.Min >= 1 {
			return required(re.Sub[0])
		}
		return nil, false
	case syntax.OpConcat:
		// Any part's requirement holds for the whole; so do the whole's
		// prefixes, which for CRS's factored keyword lists ("a(?:ddgroup
		// |nsible)") are the keywords themselves.
		best, found := prefixes(re)
		for _, sub := range re.Sub {
			if r, ok := required(sub); ok && (!found || score(r) > score(best)) {
				best, found = r, true
			}
		}
		return best, found
	case syntax.OpAlternate:
		union, ok := unionOf(re.Sub, required)
		if !ok {
			return nil, false
		}
		return dedupe(union), true
	default:
		// Empty-width assertions, any-char, star, quest: no requirement.
		return nil, false
	}
}

// unionOf is the union of f over the branches of an alternation, or ok
// false when a branch has none or the union outgrows maxSetStrings.
func unionOf(subs []*syntax.Regexp, f func(*syntax.Regexp) ([]string, bool)) ([]string, bool) {
	var union []string
	for _, sub := range subs {
		r, ok := f(sub)
		if !ok {
			return nil, false
		}
		union = append(union, r...)
		if len(union) > maxSetStrings {
			return nil, false
		}
	}
	return union, true
}

// prefixes returns strings one of which every match of re starts with,
// lowercased, or ok false when it cannot tell.
func prefixes(re *syntax.Regexp) ([]string, bool) {
	switch re.Op {
	case syntax.OpCapture, syntax.OpPlus:
		return prefixes(re.Sub[0])
	case syntax.OpRepeat:
		if re.Min >= 1 {
			return prefixes(re.Sub[0])
		}
		return nil, false
	case syntax.OpAlternate:
		union, ok := unionOf(re.Sub, prefixes)
		if !ok {
			return nil, false
		}
		return dedupePrefixes(union), true
	case syntax.OpConcat:
		acc := []string{""}
		for _, sub := range re.Sub {
			switch sub.Op {
			case syntax.OpBeginLine, syntax.OpBeginText, syntax.OpWordBoundary, syntax.OpNoWordBoundary, syntax.OpEmptyMatch:
				// Consumes nothing: the next part starts where this one did.
				continue
			}
			if ex, ok := exact(sub); ok {
				if acc = product(acc, ex); acc == nil {
					return nil, false
				}
				continue
			}
			if p, ok := prefixes(sub); ok {
				acc = product(acc, p)
			}
			break
		}
		if acc == nil || slices.Contains(acc, "") {
			return nil, false
		}
		return dedupePrefixes(acc), true
	default:
		return exact(re)
	}
}

// exact returns the finite set of strings re matches, lowercased, or ok
// false when it is not small and finite.
func exact(re *syntax.Regexp) ([]string, bool) {
	switch re.Op {
	case syntax.OpEmptyMatch:
		return []string{""}, true
	case syntax.OpLiteral:
		s := string(re.Rune)
		if !ascii(s) {
			return nil, false
		}
		return []string{strings.ToLower(s)}, true
	case syntax.OpCharClass:
		return classStrings(re.Rune)
	case syntax.OpCapture:
		return exact(re.Sub[0])
	case syntax.OpAlternate:
		var union []string
		for _, sub := range re.Sub {
			e, ok := exact(sub)
			if !ok {
				return nil, false
			}
			union = append(union, e...)
		}
		if len(union) > maxSetStrings {
			return nil, false
		}
		return union, true
	case syntax.OpConcat:
		acc := []string{""}
		for _, sub := range re.Sub {
			e, ok := exact(sub)
			if !ok {
				return nil, false
			}
			if acc = product(acc, e); acc == nil {
				return nil, false
			}
		}
		return acc, true
	default:
		return nil, false
	}
}

// product returns every a+b, or nil when there would be too many.
func product(as, bs []string) []string {
	if len(as)*len(bs) > maxSetStrings {
		return nil
	}
	out := make([]string, 0, len(as)*len(bs))
	for _, a := range as {
		for _, b := range bs {
			out = append(out, a+b)
		}
	}
	return out
}

// classStrings returns the one-byte strings of a small ASCII class.
func classStrings(ranges []rune) ([]string, bool) {
	n := 0
	for i := 0; i < len(ranges); i += 2 {
		lo, hi := ranges[i], ranges[i+1]
		if hi >= utf8.RuneSelf {
			return nil, false
		}
		n += int(hi-lo) + 1
		if n > maxClassRunes*2 {
			return nil, false
		}
	}
	var out []string
	for i := 0; i < len(ranges); i += 2 {
		for r := ranges[i]; r <= ranges[i+1]; r++ {
			out = append(out, strings.ToLower(string(r)))
		}
	}
	out = dedupe(out)
	if len(out) > maxClassRunes {
		return nil, false
	}
	return out, true
}

// dedupe sorts set and drops duplicates and strings that contain another
// string of the set (containing the shorter one is already enough).
func dedupe(set []string) []string {
	slices.SortFunc(set, func(a, b string) int {
		if len(a) != len(b) {
			return len(a) - len(b)
		}
		return strings.Compare(a, b)
	})
	out := set[:0]
	for _, s := range set {
		keep := true
		for _, t := range out {
			if strings.Contains(s, t) {
				keep = false
				break
			}
		}
		if keep {
			out = append(out, s)
		}
	}
	return out
}

// dedupePrefixes sorts set and drops duplicates and strings that start
// with another string of the set. Unlike dedupe it keeps "2f" beside "f":
// a prefix set is later extended on the left ("%" + "2f"), where "f" does
// not stand for "2f".
func dedupePrefixes(set []string) []string {
	slices.Sort(set)
	out := set[:0]
	for _, s := range set {
		// Sorted: a prefix of s sorts right before its extensions.
		if n := len(out); n > 0 && strings.HasPrefix(s, out[n-1]) {
			continue
		}
		out = append(out, s)
	}
	return out
}

// minLen is the fewest bytes any match of re has; 0 when unsure.
func minLen(re *syntax.Regexp) int {
	switch re.Op {
	case syntax.OpLiteral:
		if re.Flags&syntax.FoldCase != 0 {
			// A folded rune may encode shorter than the literal's
			// (U+212A KELVIN SIGN is 3 bytes, k is 1): count runes.
			return len(re.Rune)
		}
		return len(string(re.Rune))
	case syntax.OpCharClass, syntax.OpAnyChar, syntax.OpAnyCharNotNL:
		return 1
	case syntax.OpCapture, syntax.OpPlus:
		return minLen(re.Sub[0])
	case syntax.OpRepeat:
		return re.Min * minLen(re.Sub[0])
	case syntax.OpConcat:
		n := 0
		for _, sub := range re.Sub {
			n += minLen(sub)
		}
		return n
	case syntax.OpAlternate:
		n := -1
		for _, sub := range re.Sub {
			if m := minLen(sub); n < 0 || m < n {
				n = m
			}
		}
		return max(n, 0)
	default:
		return 0
	}
}

func ascii(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= utf8.RuneSelf {
			return false
		}
	}
	return true
}

func newLitSet(strs []string) litSet {
	ls := litSet{strs: strs}
	var count [256]uint32
	for _, s := range strs {
		if len(s) == 1 {
			ls.single[s[0]>>6] |= 1 << (s[0] & 63)
			continue
		}
		count[s[0]]++
	}
	for c := range 256 {
		ls.at[c+1] = ls.at[c] + count[c]
	}
	ls.long = make([]string, ls.at[256])
	next := ls.at
	for _, s := range strs {
		if len(s) > 1 {
			ls.long[next[s[0]]] = s
			next[s[0]]++
		}
	}
	return ls
}

// contains reports whether folded holds one of the set's strings.
func (ls *litSet) contains(folded []byte) bool {
	for i := 0; i < len(folded); i++ {
		c := folded[i]
		if ls.single[c>>6]&(1<<(c&63)) != 0 {
			return true
		}
		lo, hi := ls.at[c], ls.at[int(c)+1]
		if lo == hi {
			continue
		}
		rest := folded[i:]
		for _, s := range ls.long[lo:hi] {
			if len(rest) >= len(s) && string(rest[:len(s)]) == s {
				return true
			}
		}
	}
	return false
}

// mayMatch reports whether an input whose fold is folded may match;
// plain says the input has no special byte.
func (p *prefilter) mayMatch(folded []byte, plain bool) bool {
	sets := p.sets
	if plain {
		if p.plainNever || len(folded) < p.plainMinLen {
			return false
		}
		sets = p.plainSets
	} else if len(folded) < p.minLen {
		return false
	}
	for i := range sets {
		if !sets[i].contains(folded) {
			return false
		}
	}
	return true
}

// fold appends to buf[:0] s with ASCII letters lowered and the two
// non-ASCII runes that Go's case folding equates with ASCII letters
// (U+212A KELVIN SIGN with k, U+017F LATIN SMALL LETTER LONG S with s)
// replaced by those letters, so that whatever a (?i) literal matches in s,
// its lowered form is found in the fold. Other bytes are kept.
//
// plain reports whether s has no special byte.
func fold(s string, buf []byte) (folded []byte, plain bool) {
	return foldAppend(s, buf[:0])
}

// foldAppend is fold appending to buf.
func foldAppend(s string, buf []byte) (folded []byte, plain bool) {
	plain = true
	for i := 0; i < len(s); i++ {
		c := s[i]
		if isSpecial[c] {
			plain = false
		}
		switch {
		case 'A' <= c && c <= 'Z':
			buf = append(buf, c+'a'-'A')
		case c == 0xE2 && strings.HasPrefix(s[i:], "\u212a"):
			buf = append(buf, 'k')
			i += 2
		case c == 0xC5 && strings.HasPrefix(s[i:], "\u017f"):
			buf = append(buf, 's')
			i++
		default:
			buf = append(buf, c)
		}
	}
	return buf, plain
}
