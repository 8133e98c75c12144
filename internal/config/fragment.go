package config

import (
	"go.yaml.in/yaml/v3"
)

// ParseFragment parses data, a piece of a larger YAML file cut out by a
// streaming reader, the way ParseNode parses a whole document (aliases
// bounded, ${VAR} expanded with lookupEnv, one document only). The piece
// starts at line firstLine (1-based) of file, and its value sits at path
// in that file's document ("keys[41]"): positions and paths in the Node's
// errors, and in the errors returned, are those of the whole file, so a
// reader that parses a large file entry by entry reports file:line just as
// a whole-document parse would.
//
// Columns are kept as they are in data, so a piece should be cut out with
// its indentation (a sequence item's "- " replaced by two spaces is a
// block mapping at the same columns).
func ParseFragment(file string, data []byte, firstLine int, path string, lookupEnv func(string) (string, bool)) (*Node, error) {
	shift := firstLine - 1
	if shift < 0 {
		shift = 0
	}
	d := newDoc(file, lookupEnv)
	root, aliased, errs := parseDocument(file, data, true)
	if root == nil {
		return nil, relocate(errs, shift, path).err()
	}
	shiftLines(root, shift, make(map[*yaml.Node]bool))
	errs = append(errs, relocate(expandTree(root, d, aliased), 0, path)...)
	if err := errs.err(); err != nil {
		return nil, err
	}
	return &Node{y: root, path: path, d: d}, nil
}

// relocate moves errors found in a fragment to their place in the file.
func relocate(errs Errors, shift int, path string) Errors {
	for _, e := range errs {
		if e.Line > 0 {
			e.Line += shift
		}
		e.Path = joinPath(path, e.Path)
	}
	return errs
}

// shiftLines adds shift to the line of every node of the tree, once each.
func shiftLines(n *yaml.Node, shift int, seen map[*yaml.Node]bool) {
	if n == nil || seen[n] {
		return
	}
	seen[n] = true
	if n.Line > 0 {
		n.Line += shift
	}
	for _, c := range n.Content {
		shiftLines(c, shift, seen)
	}
	// An alias's anchor is elsewhere in the same tree and is reached there.
}
