package config

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"regexp"
	"strconv"

	"go.yaml.in/yaml/v3"
)

// maxAliasNodes bounds how many nodes aliases may add to a document when
// expanded. A real config reuses a few anchors a few times; a "billion
// laughs" document of a few hundred bytes expands to billions of nodes.
const maxAliasNodes = 100_000

func newDoc(file string, lookupEnv func(string) (string, bool)) *doc {
	if lookupEnv == nil {
		lookupEnv = func(string) (string, bool) { return "", false }
	}
	dir := "."
	if file != "" {
		dir = filepath.Dir(file)
	}
	return &doc{file: file, dir: dir, lookupEnv: lookupEnv,
		bad: make(map[*yaml.Node]bool), expanded: make(map[*yaml.Node]bool)}
}

// parseDocument parses data as exactly one YAML document and returns its
// top node, checked against alias bombs and cycles, and whether it holds
// aliases (for expandTree). With allowEmpty, an empty document gives a null
// node instead of an error. A nil node means the problems in errs are
// fatal.
func parseDocument(file string, data []byte, allowEmpty bool) (*yaml.Node, bool, Errors) {
	d, err := decodeDocument(data)
	var extra *multipleDocuments
	if errors.As(err, &extra) {
		err = nil // reported below, after an empty first document
	}
	empty := errors.Is(err, io.EOF) ||
		err == nil && (len(d.Content) == 0 || isNull(d.Content[0]))
	switch {
	case err != nil && !errors.Is(err, io.EOF):
		return nil, false, Errors{yamlError(file, err, data)}
	case empty && !allowEmpty:
		return nil, false, Errors{{File: file, Msg: "empty config"}}
	}
	root := &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!null", Line: 1, Column: 1}
	if err == nil && len(d.Content) > 0 {
		root = d.Content[0]
	}
	if extra != nil {
		return nil, false, Errors{{File: file, Line: extra.Line, Column: extra.Column,
			Msg: "multiple YAML documents in one file are not supported"}}
	}
	// Only a '*' in the text makes an alias: most documents have none,
	// and are spared a walk of the whole tree looking for one. Only
	// aliases can expand a document or loop.
	aliased := bytes.IndexByte(data, '*') >= 0 && hasAlias(root)
	if aliased {
		if e := checkSize(root); e != nil {
			e.File = file
			return nil, false, Errors{e}
		}
	}
	return root, aliased, nil
}

// multipleDocuments is decodeDocument's error for a second document, at
// its start.
type multipleDocuments struct{ Line, Column int }

func (m *multipleDocuments) Error() string { return "multiple documents" }

// decodeDocument parses the first YAML document of data (io.EOF when there
// is none) and refuses a second one; a large document is parsed in pieces
// (splitDecode).
func decodeDocument(data []byte) (yaml.Node, error) {
	if d, ok := splitDecode(data); ok {
		return d, nil
	}
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var d yaml.Node
	if err := dec.Decode(&d); err != nil {
		return d, err
	}
	var extra yaml.Node
	switch err := dec.Decode(&extra); {
	case err == nil:
		return d, &multipleDocuments{extra.Line, extra.Column}
	case !errors.Is(err, io.EOF):
		return d, err
	}
	return d, nil
}

var yamlLineRe = regexp.MustCompile(`^yaml: line (\d+): (?:column (\d+): )?`)

// yamlError turns a yaml.v3 syntax error, "yaml: line 3: did not find
// expected key", into an *Error at the fault's line and column as
// syntaxFault finds them in data, else at yaml.v3's line.
func yamlError(file string, err error, data []byte) *Error {
	if line, col, msg, ok := syntaxFault(data); ok {
		return &Error{File: file, Line: line, Column: col, Msg: "invalid YAML: " + msg, cause: err}
	}
	msg := err.Error()
	e := &Error{File: file, cause: err}
	if m := yamlLineRe.FindStringSubmatch(msg); m != nil {
		e.Line, _ = strconv.Atoi(m[1])
		if m[2] != "" {
			e.Column, _ = strconv.Atoi(m[2])
		}
		msg = msg[len(m[0]):]
	} else if len(msg) > 6 && msg[:6] == "yaml: " {
		msg = msg[6:]
	}
	e.Msg = "invalid YAML: " + msg
	return e
}

// checkSize computes the alias-expanded node count of the document with
// memoization, so it runs in time linear in the unexpanded document, and
// fails at the first (innermost) node whose expansion exceeds the
// document's own node count plus maxAliasNodes. It also refuses an alias
// inside the node it refers to, which yaml.v3 accepts and which would make
// every walk loop forever. Only a document with aliases needs it.
func checkSize(root *yaml.Node) *Error {
	limit := maxAliasNodes + countNodes(root)
	size := make(map[*yaml.Node]int)
	const inProgress = -1
	var walk func(n *yaml.Node) (int, *Error)
	walk = func(n *yaml.Node) (int, *Error) {
		if s, ok := size[n]; ok && s != inProgress {
			return s, nil
		}
		size[n] = inProgress
		total := 1
		if n.Kind == yaml.AliasNode {
			if n.Alias == nil {
				return 0, &Error{Line: n.Line, Column: n.Column, Msg: "alias without an anchor"}
			}
			if size[n.Alias] == inProgress {
				return 0, &Error{Line: n.Line, Column: n.Column,
					Msg: fmt.Sprintf("alias *%s refers to a node containing it", n.Value)}
			}
			s, err := walk(n.Alias)
			if err != nil {
				return 0, err
			}
			total = s
		}
		for _, c := range n.Content {
			s, err := walk(c)
			if err != nil {
				return 0, err
			}
			total += s
			if total > limit {
				break
			}
		}
		if total > limit {
			return 0, &Error{Line: n.Line, Column: n.Column,
				Msg: fmt.Sprintf("aliases expand the document by more than %d nodes", maxAliasNodes)}
		}
		size[n] = total
		return total, nil
	}
	_, err := walk(root)
	return err
}

// hasAlias reports whether the tree under n holds an alias.
func hasAlias(n *yaml.Node) bool {
	if n.Kind == yaml.AliasNode {
		return true
	}
	for _, c := range n.Content {
		if hasAlias(c) {
			return true
		}
	}
	return false
}

// countNodes counts the nodes of the document as written, aliases counting
// as one.
func countNodes(n *yaml.Node) int {
	c := 1
	for _, k := range n.Content {
		c += countNodes(k)
	}
	return c
}

// resolveAlias follows aliases to the node they name. checkSize has
// refused cycles, so this ends.
func resolveAlias(n *yaml.Node) *yaml.Node {
	for n != nil && n.Kind == yaml.AliasNode && n.Alias != nil {
		n = n.Alias
	}
	return n
}

func isNull(n *yaml.Node) bool {
	return n == nil || n.Kind == 0 || n.Kind == yaml.ScalarNode && n.ShortTag() == "!!null"
}

func isMergeKey(k *yaml.Node) bool {
	return k.Kind == yaml.ScalarNode && k.Value == "<<" && k.ShortTag() == "!!merge"
}

// pair is one key and value of a mapping, aliases resolved in the key.
type pair struct{ k, v *yaml.Node }

// mappingPairs returns the effective entries of mapping n: its own, in
// order, then those merged in with "<<" (YAML merge keys) that it does not
// set itself, earlier merge sources winning. Non-scalar keys, duplicate keys
// and malformed merges are reported to errs when it is non-nil (and the
// offending entries dropped); path is n's path, for those reports.
func mappingPairs(n *yaml.Node, errs *Errors, file, path string) []pair {
	// Problems are reported at the key's path, not the mapping's: a
	// problem at the mapping's path would hide (see LoadBytes) every
	// validation error below it.
	report := func(at *yaml.Node, seg string, format string, args ...any) {
		if errs != nil {
			*errs = append(*errs, &Error{File: file, Line: at.Line, Column: at.Column,
				Path: joinPath(path, seg), Msg: fmt.Sprintf(format, args...)})
		}
	}
	var merged []pair
	own := make([]pair, 0, len(n.Content)/2)
	// The keys seen so far: own's, looked for in own itself while it is
	// short (most mappings of a config have a few keys, and a map for
	// each would cost more than the search).
	var first map[string]*yaml.Node
	seen := func(k string) *yaml.Node {
		if first != nil {
			return first[k]
		}
		for _, p := range own {
			if p.k.Value == k {
				return p.k
			}
		}
		return nil
	}
	add := func(p pair) {
		own = append(own, p)
		switch {
		case first != nil:
			first[p.k.Value] = p.k
		case len(own) > smallMapping:
			first = make(map[string]*yaml.Node, len(n.Content)/2)
			for _, q := range own {
				first[q.k.Value] = q.k
			}
		}
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := resolveAlias(n.Content[i]), n.Content[i+1]
		if isMergeKey(k) {
			merged = append(merged, mergeSources(v, errs, file, path, report)...)
			continue
		}
		if k.Kind != yaml.ScalarNode {
			report(k, indexSeg(i/2), "mapping keys must be scalars, got a %s", kindName(k))
			continue
		}
		if f := seen(k.Value); f != nil {
			report(k, KeySeg(k.Value), "duplicate key %q (first at line %d)", k.Value, f.Line)
			continue
		}
		add(pair{k, v})
	}
	for _, p := range merged {
		if seen(p.k.Value) == nil {
			add(p)
		}
	}
	return own
}

// smallMapping is the most keys mappingPairs finds duplicates among
// without a map.
const smallMapping = 8

func mergeSources(v *yaml.Node, errs *Errors, file, path string, report func(*yaml.Node, string, string, ...any)) []pair {
	src := resolveAlias(v)
	switch src.Kind {
	case yaml.MappingNode:
		return mappingPairs(src, errs, file, path)
	case yaml.SequenceNode:
		var out []pair
		for _, item := range src.Content {
			m := resolveAlias(item)
			if m.Kind != yaml.MappingNode {
				report(item, KeySeg("<<"), "a merge key (<<) takes a mapping or a sequence of mappings")
				continue
			}
			out = append(out, mappingPairs(m, errs, file, path)...)
		}
		return out
	}
	report(v, KeySeg("<<"), "a merge key (<<) takes a mapping or a sequence of mappings")
	return nil
}

// kindName names what n is, for "expected X, got Y" messages.
func kindName(n *yaml.Node) string {
	n = resolveAlias(n)
	switch n.Kind {
	case yaml.MappingNode:
		return "mapping"
	case yaml.SequenceNode:
		return "sequence"
	case yaml.ScalarNode:
		switch n.ShortTag() {
		case "!!str":
			return "string"
		case "!!int":
			return "integer"
		case "!!float":
			return "number"
		case "!!bool":
			return "boolean"
		case "!!null":
			return "null"
		case "!!timestamp":
			return "timestamp"
		case "!!binary":
			return "binary"
		default:
			return "value tagged " + n.Tag
		}
	}
	return "nothing"
}
