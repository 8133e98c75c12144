package config

import (
	"fmt"
	"strings"

	"go.yaml.in/yaml/v3"
)

// expandTree replaces ${NAME} references in every scalar value of the
// document, in place, before anything is decoded (so `port: ${PORT}` can
// fill an int). Mapping keys are left alone. Each node is expanded once,
// however many aliases point at it. A plain (unquoted, untagged) scalar is
// re-resolved after expansion, as if its value had been written in the file;
// a quoted one stays a string. Nodes that fail are reported and marked bad.
// aliased says whether the document holds aliases (parseDocument).
func expandTree(root *yaml.Node, d *doc, aliased bool) Errors {
	var errs Errors
	// Only aliases make a node reachable twice: without them (most
	// documents) no node needs remembering.
	var seen map[*yaml.Node]bool
	if aliased {
		seen = make(map[*yaml.Node]bool)
	}
	// The path of the node walked, made into a string only for an error:
	// joining it at every node was a tenth of loading ten thousand routes
	// (issue 23).
	var segs []pathSeg
	path := func() string {
		p := ""
		for _, s := range segs {
			if s.index < 0 {
				p = joinPath(p, KeySeg(s.key))
			} else {
				p += indexSeg(s.index)
			}
		}
		return p
	}
	var walk func(n *yaml.Node)
	walk = func(n *yaml.Node) {
		n = resolveAlias(n)
		if seen != nil {
			if seen[n] {
				return
			}
			seen[n] = true
		}
		switch n.Kind {
		case yaml.MappingNode:
			for i := 0; i+1 < len(n.Content); i += 2 {
				k := resolveAlias(n.Content[i])
				segs = append(segs, pathSeg{key: k.Value, index: -1})
				walk(n.Content[i+1])
				segs = segs[:len(segs)-1]
			}
		case yaml.SequenceNode:
			for i, c := range n.Content {
				segs = append(segs, pathSeg{index: i})
				walk(c)
				segs = segs[:len(segs)-1]
			}
		case yaml.ScalarNode:
			if !strings.Contains(n.Value, "$") {
				return
			}
			v, err := expandEnv(n.Value, d.lookupEnv)
			if err != nil {
				d.bad[n] = true
				errs = append(errs, &Error{File: d.file, Line: n.Line, Column: n.Column,
					Path: strings.TrimPrefix(path(), "."), Msg: err.Error()})
				return
			}
			if v == n.Value {
				return
			}
			n.Value = v
			d.expanded[n] = true
			if n.Style == 0 { // plain: no quotes, no block style, no explicit tag
				n.Tag = ""
				n.Tag = n.ShortTag()
			}
		}
	}
	walk(root)
	return errs
}

// expandEnv expands ${NAME} and ${NAME:-default} in s with lookupEnv; "$$"
// is a literal "$", and a "$" followed by anything else is kept as is (so
// regular expressions such as "^/api$" need no escaping). The default is
// used when NAME is unset or empty and is taken literally up to the first
// "}". An unset NAME without a default is an error.
func expandEnv(s string, lookupEnv func(string) (string, bool)) (string, error) {
	var b strings.Builder
	for {
		i := strings.IndexByte(s, '$')
		if i < 0 || i+1 == len(s) {
			b.WriteString(s)
			return b.String(), nil
		}
		b.WriteString(s[:i])
		switch s[i+1] {
		case '$':
			b.WriteByte('$')
			s = s[i+2:]
			continue
		case '{':
		default:
			b.WriteByte('$')
			s = s[i+1:]
			continue
		}
		end := strings.IndexByte(s[i:], '}')
		if end < 0 {
			return "", fmt.Errorf("unterminated ${ in %q (write $$ for a literal $)", s[i:])
		}
		ref := s[i+2 : i+end]
		s = s[i+end+1:]
		name, def, hasDef := strings.Cut(ref, ":-")
		if !validEnvName(name) {
			return "", fmt.Errorf("invalid environment variable reference ${%s} (want ${NAME} or ${NAME:-default})", ref)
		}
		v, ok := lookupEnv(name)
		switch {
		case hasDef && v == "":
			v = def
		case !ok:
			return "", fmt.Errorf("environment variable %s is not set", name)
		}
		b.WriteString(v)
	}
}

func validEnvName(s string) bool {
	if s == "" {
		return false
	}
	for i, r := range s {
		if !(r == '_' || r >= 'A' && r <= 'Z' || r >= 'a' && r <= 'z' || i > 0 && r >= '0' && r <= '9') {
			return false
		}
	}
	return true
}
