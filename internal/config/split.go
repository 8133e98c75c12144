package config

import (
	"bytes"
	"errors"
	"io"
	"runtime"
	"sync"

	"go.yaml.in/yaml/v3"
)

// Parsing a large config in pieces.
//
// yaml.v3 parses about 12 MB/s on one core, and a config of 10,000 routes
// (3 MB) spends most of its load time there. Such a config is almost all
// one top-level block sequence (routes:), whose items are independent
// documents as far as the YAML grammar goes: an item ends where the next
// line at the item's indentation starts with "- ". splitDecode cuts that
// sequence between items, parses the pieces and the rest of the document
// at once on several cores, and joins the trees into the one a single
// parse gives.
//
// Why the joined tree is the single parse's:
//   - The cut is made only where the text leaves no doubt. The section
//     starts at a line "key:" at column 0 with nothing after the colon
//     but a comment, and every line of it up to the next line at column
//     0 is blank, a comment, indented deeper than the items, or an item
//     start ("- " at the items' indentation, spaces only). Anything else
//     (a shallower line, a tab in the indentation, a directive or a
//     document marker anywhere) and the document is parsed whole.
//   - A construct the cut splits (a quoted or flow scalar spanning an
//     item start, an alias to an anchor in another piece, an anchor used
//     after its section) makes a piece fail to parse: any error, or a
//     piece that is not exactly one block sequence, and the document is
//     parsed whole, so errors are always those of the single parse.
//   - Lines keep their numbers: the section's lines are blanked, not
//     removed, in the rest of the document, and each piece's nodes are
//     moved down by the lines before it. Columns are unchanged because
//     the cuts are at line starts.
//   - Comments, which the config does not read, may attach to other
//     nodes than in a single parse.
//
// TestSplitDecodeMatchesWhole and FuzzSplitDecode compare the two trees.

// splitMinSection is the smallest sequence worth parsing in pieces:
// below it the goroutines cost more than they save.
const splitMinSection = 256 << 10

// splitDecode parses data as splitDecode's comment describes and returns
// the document node, or ok false when data is not worth splitting or does
// not split cleanly; the caller then parses it whole.
func splitDecode(data []byte) (doc yaml.Node, ok bool) {
	return splitInto(data, min(runtime.GOMAXPROCS(0), 8), splitMinSection)
}

// splitInto is splitDecode with the number of pieces and the least
// section size as arguments, for the tests.
func splitInto(data []byte, pieces, minSection int) (doc yaml.Node, ok bool) {
	if pieces < 2 || len(data) < minSection {
		return doc, false
	}
	s, ok := findSection(data)
	if !ok || s.end-s.items[0] < minSection || len(s.items) < pieces {
		return doc, false
	}
	// Cut at the item starts nearest to equal shares of the section.
	cuts := []int{0}
	share := (s.end - s.items[0]) / pieces
	for i, next := 1, s.items[0]+share; i < len(s.items) && len(cuts) < pieces; i++ {
		if s.items[i] >= next {
			cuts = append(cuts, i)
			next = s.items[i] + share
		}
	}
	rest := make([]byte, 0, len(data)-(s.end-s.items[0]))
	rest = append(rest, data[:s.items[0]]...)
	for _, c := range data[s.items[0]:s.end] {
		if c == '\n' {
			rest = append(rest, '\n')
		}
	}
	rest = append(rest, data[s.end:]...)

	type result struct {
		node yaml.Node
		err  error
	}
	results := make([]result, len(cuts)+1)
	var wg sync.WaitGroup
	for i := range cuts {
		from := s.items[cuts[i]]
		to := s.end
		if i+1 < len(cuts) {
			to = s.items[cuts[i+1]]
		}
		wg.Go(func() {
			results[i].node, results[i].err = decodeOnly(data[from:to])
			if results[i].err == nil {
				moveDown(&results[i].node, bytes.Count(data[:from], []byte{'\n'}))
			}
		})
	}
	last := &results[len(cuts)]
	last.node, last.err = decodeOnly(rest)
	wg.Wait()
	for _, r := range results {
		if r.err != nil {
			return doc, false
		}
	}
	// The rest's "key:" now has a null value on the key's own line.
	root := last.node.Content[0]
	if root.Kind != yaml.MappingNode {
		return doc, false
	}
	var slot **yaml.Node
	for i := 0; i+1 < len(root.Content); i += 2 {
		k, v := root.Content[i], root.Content[i+1]
		if k.Kind == yaml.ScalarNode && k.Line == s.keyLine && k.Column == 1 {
			if v.Kind != yaml.ScalarNode || v.Tag != "!!null" || v.Value != "" {
				return doc, false
			}
			slot = &root.Content[i+1]
		}
	}
	if slot == nil {
		return doc, false
	}
	seq := &yaml.Node{Kind: yaml.SequenceNode, Tag: "!!seq", Line: s.firstLine, Column: s.indent + 1}
	for _, r := range results[:len(cuts)] {
		p := r.node.Content[0]
		if p.Kind != yaml.SequenceNode || p.Style != 0 || p.Tag != "!!seq" || p.Anchor != "" {
			return doc, false
		}
		seq.Content = append(seq.Content, p.Content...)
	}
	*slot = seq
	return last.node, true
}

// decodeOnly parses data as exactly one non-empty YAML document.
func decodeOnly(data []byte) (yaml.Node, error) {
	var n, extra yaml.Node
	dec := yaml.NewDecoder(bytes.NewReader(data))
	if err := dec.Decode(&n); err != nil {
		return n, err
	}
	if err := dec.Decode(&extra); !errors.Is(err, io.EOF) {
		return n, errors.New("not one document")
	}
	if len(n.Content) != 1 {
		return n, errors.New("empty document")
	}
	return n, nil
}

// moveDown adds lines to the line of every node under n.
func moveDown(n *yaml.Node, lines int) {
	n.Line += lines
	for _, c := range n.Content {
		moveDown(c, lines)
	}
}

// section is a top-level block sequence of a document: the "key:" line,
// the byte offsets of its item starts and of its end (the start of the
// next line at column 0 that is not a comment, or the end of data), the
// items' indentation and the first item's line.
type section struct {
	keyLine, firstLine int
	indent             int
	items              []int
	end                int
}

// findSection returns the largest top-level block sequence of data that
// can be cut between items, as splitDecode's comment says.
func findSection(data []byte) (best section, ok bool) {
	var cur *section
	closeSection := func(end int) {
		if cur != nil && len(cur.items) > 0 {
			cur.end = end
			if !ok || cur.end-cur.items[0] > best.end-best.items[0] {
				best, ok = *cur, true
			}
		}
		cur = nil
	}
	line := 0
	for off := 0; off < len(data); {
		line++
		eol := bytes.IndexByte(data[off:], '\n')
		next := len(data)
		if eol >= 0 {
			next = off + eol + 1
		}
		l := bytes.TrimRight(data[off:next], "\r\n")
		switch {
		case len(l) > 0 && (l[0] == '%' || bytes.HasPrefix(l, []byte("---")) || bytes.HasPrefix(l, []byte("..."))):
			return best, false // directives and document markers: parse whole
		}
		k := 0
		for k < len(l) && l[k] == ' ' {
			k++
		}
		blank := k == len(l)
		switch {
		case blank, l[k] == '#':
			// Blank lines and comments belong to no item.
		case k < len(l) && l[k] == '\t':
			if cur != nil || k == 0 {
				return best, false
			}
		case cur != nil && cur.items == nil:
			// The first line of a section sets the items' indentation.
			if l[k] != '-' || k+1 < len(l) && l[k+1] != ' ' {
				cur = nil
				if k == 0 {
					cur = keyLine(l, line)
				}
				break
			}
			cur.indent, cur.firstLine, cur.items = k, line, []int{off}
		case cur != nil && k > cur.indent:
			// Inside an item.
		case cur != nil && k == cur.indent && l[k] == '-' && (k+1 == len(l) || l[k+1] == ' '):
			cur.items = append(cur.items, off)
		case k == 0:
			closeSection(off)
			cur = keyLine(l, line)
		default:
			// A line between column 0 and the items' indentation, or at
			// it but not an item: the section is not a clean list.
			if cur != nil {
				return best, false
			}
		}
		off = next
	}
	closeSection(len(data))
	return best, ok
}

// keyLine returns a new section when l is "key:" at column 0 with a plain
// key and nothing after the colon but blanks and a comment.
func keyLine(l []byte, line int) *section {
	i := 0
	for i < len(l) && (l[i] >= 'a' && l[i] <= 'z' || l[i] >= 'A' && l[i] <= 'Z' || l[i] == '_' ||
		i > 0 && (l[i] >= '0' && l[i] <= '9' || l[i] == '-')) {
		i++
	}
	if i == 0 || i == len(l) || l[i] != ':' {
		return nil
	}
	rest := bytes.TrimLeft(l[i+1:], " \t")
	if len(rest) > 0 && (rest[0] != '#' || len(rest) == len(l[i+1:])) {
		return nil // a value, or "key:#x" (not a comment)
	}
	return &section{keyLine: line}
}
