package waf

import (
	"bufio"
	"bytes"
	"io/fs"
	"path"
	"strings"
)

// pmPrefilter restates a non-negated @pm, @pmFromFile or @pmf operator
// (op as the rule's text has it) as a pre-filter for the gate; file is
// the file the rule was read from, whose directory Coraza searches first
// for the keyword file.
//
// Why it is exact enough to skip on: Coraza 3.8.1's pm lowers its
// argument with strings.ToLower and splits it at single spaces
// (pmFromFile: one keyword a line, trimmed, without empty lines and '#'
// comments, lowered), then matches with an ASCII-case-insensitive
// Aho-Corasick automaton: the operator is true exactly when the value
// holds one of the keywords, ASCII letters compared without case. The
// gate only reasons about ASCII values (trigHigh is always in a rule's
// triggers), whose fold is their ASCII lowering; an ASCII keyword, lowered,
// is in the fold exactly when the automaton finds it in the value. A
// keyword with a byte >= 0x80 can never be found in an ASCII value and is
// left out. A value shorter than every remaining keyword cannot hold one.
// So the one set of ASCII keywords is a necessary condition (and, on
// ASCII values, a sufficient one). An empty keyword (two spaces in a row)
// would match anything: such a rule is not a candidate (see candidate).
//
// ok is false for other operators, keyword files that cannot be read the
// way Coraza read them (absolute paths, files outside the rule's
// directory: Coraza may have found them elsewhere), or no ASCII keyword.
func pmPrefilter(op, file string) (*prefilter, bool) {
	name, arg, _ := strings.Cut(op, " ")
	// As Coraza's RuleParser.ParseOperator.
	name, arg = strings.TrimSpace(name), strings.TrimSpace(arg)
	var dict []string
	switch name {
	case "@pm":
		dict = strings.Split(strings.ToLower(arg), " ")
	case "@pmFromFile", "@pmf", "@" + pmfOperatorName:
		if arg == "" || path.IsAbs(arg) || file == "" {
			return nil, false
		}
		data, err := fs.ReadFile(crsFS{}, path.Join(path.Dir(file), arg))
		if err != nil {
			return nil, false
		}
		dict = pmFileKeywords(data)
	default:
		return nil, false
	}
	var keep []string
	seen := map[string]bool{}
	minLen := 0
	for _, k := range dict {
		if k == "" {
			return nil, false
		}
		if !isASCII(k) || seen[k] {
			continue
		}
		seen[k] = true
		keep = append(keep, k)
		if minLen == 0 || len(k) < minLen {
			minLen = len(k)
		}
	}
	if len(keep) == 0 {
		return nil, false
	}
	p := &prefilter{minLen: minLen, plainMinLen: minLen, sets: []litSet{newLitSet(keep)}}
	// The same set for plain values: no stronger condition is known, and
	// sharing it keeps it one set in the gate's matcher.
	p.plainSets = p.sets
	return p, true
}

// pmFileKeywords parses a keyword file as Coraza 3.8.1's pmFromFile does.
func pmFileKeywords(data []byte) []string {
	var out []string
	sc := bufio.NewScanner(bytes.NewReader(data))
	for sc.Scan() {
		l := strings.TrimSpace(sc.Text())
		if len(l) == 0 || l[0] == '#' {
			continue
		}
		out = append(out, strings.ToLower(l))
	}
	return out
}

func isASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= 0x80 {
			return false
		}
	}
	return true
}
