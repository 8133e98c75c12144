package waf

import (
	"errors"
	"io/fs"
	"os"
	"path"
	"strings"
	"sync"

	"github.com/corazawaf/coraza/v3/experimental/plugins/plugintypes"
)

// pmfOperatorName is the SecLang operator our rule sets use in place of
// @pmFromFile (crsFS renames it in the CRS files, as @rx to @ghrx).
//
// Why: Coraza builds each keyword file into an Aho-Corasick automaton of
// github.com/petar-dambovaliev/aho-corasick, about 900 bytes a keyword; the
// CRS's files at PL1 (lfi-os-files, unix-shell, restricted-files, ...) made
// 2.8 MiB, a third of the rule set's live heap. The same keywords in an
// acMatcher (16 bytes a trie node, 8 an edge) take a few hundred KB.
const pmfOperatorName = "ghpmf"

// pmf is @pmFromFile: true when the value holds one of the file's
// keywords, ASCII letters compared without case; when the rule captures,
// the longest match at each start that has one, in order (at most 10),
// become TX.0 to TX.9, as Coraza 3.8.1's pm does (ahocorasick
// LeftMostLongestMatch with AsciiCaseInsensitive, whose iterator resumes
// one byte after each match's start). Keywords are read as Coraza reads them
// (pmFileKeywords: trimmed, lowered with strings.ToLower, without empty
// lines and '#' comments); values are lowered in ASCII only, so a
// non-ASCII byte only ever equals itself, as in Coraza's automaton.
type pmf struct {
	m      *acMatcher // one set: the keywords
	minLen int
}

// pmfs memoizes automata by resolved file path: every WAF built from
// crsFS reads the same data files.
var pmfs sync.Map // string -> *pmf

func newPMF(opts plugintypes.OperatorOptions) (plugintypes.Operator, error) {
	file, data, err := readDataFile(opts.Arguments, opts.Path, opts.Root)
	if err != nil {
		return nil, err
	}
	if v, ok := pmfs.Load(file); ok {
		return v.(*pmf), nil
	}
	keys := pmFileKeywords(data)
	o := &pmf{m: newACMatcher([][]string{keys}), minLen: minKeywordLen(keys)}
	v, _ := pmfs.LoadOrStore(file, o)
	return v.(*pmf), nil
}

// readDataFile finds a data file as Coraza 3.8.1's loadFromFile does: an
// absolute path as is, else the first of dirs that has it. It returns the
// path read.
func readDataFile(name string, dirs []string, root fs.FS) (string, []byte, error) {
	if path.IsAbs(name) {
		b, err := fs.ReadFile(root, name)
		return name, b, err
	}
	if len(dirs) == 0 {
		return "", nil, errors.New("waf: @" + pmfOperatorName + " " + name + ": no directory to search")
	}
	var err error
	for _, d := range dirs {
		p := path.Join(d, name)
		var b []byte
		if b, err = fs.ReadFile(root, p); err == nil {
			return p, b, nil
		}
		if !os.IsNotExist(err) {
			return "", nil, err
		}
	}
	return "", nil, err
}

// minKeywordLen is Coraza's minPatternLen: the shortest keyword's length,
// 0 when there is an empty one or none.
func minKeywordLen(keys []string) int {
	n := 0
	for _, k := range keys {
		if k == "" {
			return 0
		}
		if n == 0 || len(k) < n {
			n = len(k)
		}
	}
	return n
}

func lowerASCII(c byte) byte {
	if 'A' <= c && c <= 'Z' {
		return c + 'a' - 'A'
	}
	return c
}

func (o *pmf) Evaluate(tx plugintypes.TransactionState, value string) bool {
	if len(value) < o.minLen || len(o.m.nodes) <= 2 {
		// Shorter than every keyword, or no keyword (the trie has only
		// its root and the end marker).
		return false
	}
	if !tx.Capturing() {
		return o.m.containsLower(value)
	}
	// Coraza's iterator resumes the search one byte after the start of
	// each match (not at its end): every start that has a match gives
	// its longest one, overlapping the previous ones.
	n := 0
	for i := 0; i < len(value) && n < 10; i++ {
		if end := o.m.longestAt(value, i); end >= 0 {
			tx.CaptureField(n, value[i:end])
			n++
		}
	}
	return n > 0
}

// containsLower reports whether value, its ASCII letters lowered, holds
// one of the matcher's strings (any set).
func (m *acMatcher) containsLower(value string) bool {
	n := int32(0)
	for i := 0; i < len(value); i++ {
		n = m.next(n, lowerASCII(value[i]))
		if n > 0 && (m.nodes[n].out != m.nodes[n+1].out || m.nodes[n].dict >= 0) {
			return true
		}
	}
	return false
}

// longestAt returns the end of the longest of the matcher's strings that
// value, ASCII letters lowered, holds at start, or -1.
func (m *acMatcher) longestAt(value string, start int) int {
	end := -1
	n := m.root[lowerASCII(value[start])]
	for i := start; n != 0; {
		if m.nodes[n].out != m.nodes[n+1].out {
			end = i + 1
		}
		if i++; i == len(value) {
			break
		}
		n = m.child(n, lowerASCII(value[i]))
	}
	return end
}

// child returns node n's trie child by byte b (no fail links), or 0.
func (m *acMatcher) child(n int32, b byte) int32 {
	es := m.edges[m.nodes[n].edge:m.nodes[n+1].edge]
	lo, hi := 0, len(es)
	for lo < hi {
		mid := (lo + hi) / 2
		if es[mid].b < b {
			lo = mid + 1
		} else {
			hi = mid
		}
	}
	if lo < len(es) && es[lo].b == b {
		return es[lo].to
	}
	return 0
}

// renamePMF renames the @pmFromFile (and @pmf) operators of CRS text to
// ours.
func renamePMF(s string) string {
	for _, op := range []string{"pmFromFile", "pmf"} {
		s = strings.ReplaceAll(s, `"@`+op+` `, `"@`+pmfOperatorName+` `)
		s = strings.ReplaceAll(s, `"!@`+op+` `, `"!@`+pmfOperatorName+` `)
	}
	return s
}
