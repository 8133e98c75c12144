package config

import (
	"fmt"
	"os"
	"reflect"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"
)

// Node is a raw YAML value with its place in a file, decoded later by its
// owner (a policy's factory) with Decode, which is as strict as Load.
//
// A nil *Node, and a Node holding YAML null (`- size_limit:`), are empty:
// Decode leaves its target unchanged and Errorf still works (with the
// position of the nearest known place).
//
// A Node is read-only and safe for concurrent use: factories may decode
// their settings in parallel.
type Node struct {
	y    *yaml.Node // the value; nil for "no value at all"
	key  *yaml.Node // the mapping key y is the value of, if any, for positions
	path string     // dotted path from the document root
	d    *doc
	// released marks a Node of a config whose trees were dropped after
	// building (Config.Released): it decodes as empty.
	released bool
}

// doc is what every Node of one loaded document shares.
type doc struct {
	file      string
	dir       string // base for relative secret file paths
	lookupEnv func(string) (string, bool)
	// bad holds nodes whose environment expansion failed. They were
	// reported once already; decoding skips them instead of piling a type
	// error on top.
	bad map[*yaml.Node]bool
	// expanded holds the scalars whose value came (in part) from the
	// environment. Such a value is taken as written where a string is
	// expected: `name: ${NAME}` with NAME=yes or NAME=true is a string.
	expanded map[*yaml.Node]bool
	// source is the document's text, kept by load so that a released
	// config (Config.Released) can show its policies' settings again;
	// nothing else holds it (Load's own, or LoadBytes' copy).
	source []byte
	// released marks the doc of a released config; sourceZ is then the
	// deflated source.
	released bool
	sourceZ  []byte
}

func osDoc() *doc { return newDoc("", os.LookupEnv) }

// ParseNode parses a single YAML document into a Node, the way Load parses
// a config file: aliases bounded, ${VAR} expanded with lookupEnv (nil means
// no variable is set), multi-document input refused. An empty document
// gives an empty Node. file names the source in errors and anchors relative
// secret file paths; it is not read. It exists so that policy packages can
// test their factories from YAML strings.
func ParseNode(file string, data []byte, lookupEnv func(string) (string, bool)) (*Node, error) {
	d := newDoc(file, lookupEnv)
	root, aliased, errs := parseDocument(file, data, true)
	if root == nil {
		return nil, errs.err()
	}
	errs = append(errs, expandTree(root, d, aliased)...)
	if err := errs.err(); err != nil {
		return nil, err
	}
	return &Node{y: root, d: d}, nil
}

// Decode decodes n strictly into out, which must be a non-nil pointer.
//
// Mapping keys must match a field's `yaml:"name"` tag exactly; unknown and
// duplicate keys, wrong types (a mapping for a string, "abc" for an int,
// `yes` for a bool), out-of-range numbers and bad durations, sizes or secrets
// are errors. Every problem found is returned as Errors, each with the file,
// line, column and full path ("routes[0].policies[1].ipfilter.allow[2]").
//
// Keys absent from the YAML leave out's fields as they were, so a factory
// may fill in defaults before calling Decode; a slice or map given in the
// YAML replaces the old one as a whole. An empty n leaves out unchanged.
// Fields of type Node or *Node receive the raw sub-node.
func (n *Node) Decode(out any) error {
	rv := reflect.ValueOf(out)
	if rv.Kind() != reflect.Pointer || rv.IsNil() {
		return fmt.Errorf("config: decode %s: need a non-nil pointer, got %T", n.Path(), out)
	}
	if n == nil || n.y == nil {
		return nil
	}
	dc := &decoder{d: n.doc()}
	dc.value(n.y, n.key, n.path, rv.Elem())
	return dc.errs.err()
}

// Errorf returns a *Error at field, a path relative to n: "" is n itself,
// "allow[2]" or "hsts.max_age" a place inside it. The position is that of
// the sub-node when it exists in the file, else that of its nearest
// existing ancestor (a missing required field is reported at the mapping
// that lacks it). The message is fmt.Sprintf(format, args...); when an
// argument is an error, it becomes the *Error's cause for errors.Is.
func (n *Node) Errorf(field, format string, args ...any) error {
	e := &Error{Path: joinPath(n.Path(), field), Msg: fmt.Sprintf(format, args...), cause: errorArg(args)}
	if n == nil {
		return e
	}
	if n.d != nil {
		e.File = n.d.file
	}
	if n.y != nil {
		e.Line, e.Column = lookupPos(n.y, n.key, field)
	} else if n.key != nil {
		e.Line, e.Column = n.key.Line, n.key.Column
	}
	return e
}

// Path returns n's dotted path from the document root, like
// "routes[0].policies[1].ipfilter"; "" for the root or a nil n.
func (n *Node) Path() string {
	if n == nil {
		return ""
	}
	return n.path
}

// File returns the name of the file n was read from; "" if unknown.
func (n *Node) File() string {
	if n == nil || n.d == nil {
		return ""
	}
	return n.d.file
}

// Line returns n's 1-based line in its file; 0 if unknown. For a mapping
// value that is a block collection or null, it is the line of its key.
func (n *Node) Line() int {
	l, _ := n.pos()
	return l
}

// Column returns n's 1-based column, like Line.
func (n *Node) Column() int {
	_, c := n.pos()
	return c
}

// IsZero reports whether n is nil or holds YAML null, that is whether the
// config gave no settings at all.
func (n *Node) IsZero() bool {
	if n == nil || n.y == nil {
		return true
	}
	return isNull(resolveAlias(n.y))
}

// MayHaveKey reports whether n may be a mapping holding key, its own or
// merged in: false when it certainly is not (no value, not a mapping, or
// a mapping without merge keys whose keys do not include key). It spares
// a caller that only looks for one key decoding the whole mapping.
func (n *Node) MayHaveKey(key string) bool {
	if n == nil || n.y == nil {
		return false
	}
	y := resolveAlias(n.y)
	if y.Kind != yaml.MappingNode {
		return false
	}
	for i := 0; i+1 < len(y.Content); i += 2 {
		k := resolveAlias(y.Content[i])
		if k.Kind != yaml.ScalarNode || k.Value == key || isMergeKey(k) {
			return true
		}
	}
	return false
}

func (n *Node) pos() (int, int) {
	if n == nil {
		return 0, 0
	}
	if n.y == nil {
		if n.key != nil {
			return n.key.Line, n.key.Column
		}
		return 0, 0
	}
	p := posFor(n.key, n.y)
	return p.Line, p.Column
}

func (n *Node) doc() *doc {
	if n.d == nil {
		return osDoc()
	}
	return n.d
}

func errorArg(args []any) error {
	for _, a := range args {
		if err, ok := a.(error); ok {
			return err
		}
	}
	return nil
}

// posFor is the node whose position best shows a value: the value itself
// when it is a scalar on the page, else the key introducing it (a block
// mapping's own position is that of its first key, on the next line, which
// reads wrong in an error about the mapping as a whole).
func posFor(key, val *yaml.Node) *yaml.Node {
	if key == nil {
		return val
	}
	if val == nil || val.Line == 0 {
		return key
	}
	if val.Kind == yaml.ScalarNode && !isNull(val) {
		return val
	}
	if val.Kind == yaml.AliasNode || val.Style&yaml.FlowStyle != 0 {
		return val
	}
	return key
}

// joinPath appends the relative path rel to base.
func joinPath(base, rel string) string {
	switch {
	case rel == "":
		return base
	case base == "":
		return strings.TrimPrefix(rel, ".")
	case rel[0] == '[':
		return base + rel
	case rel[0] == '.':
		return base + rel
	default:
		return base + "." + rel
	}
}

// keyPath is joinPath(base, KeySeg(k)) in one string allocation: the
// decoder makes one for every value it decodes.
func keyPath(base, k string) string {
	if k == "" || !plainKey(k) {
		return joinPath(base, KeySeg(k))
	}
	if base == "" {
		return k
	}
	return base + "." + k
}

// plainKey reports whether KeySeg writes k as ".k".
func plainKey(k string) bool {
	for i := 0; i < len(k); i++ {
		c := k[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '-') {
			return false
		}
	}
	return true
}

// KeySeg is the path segment of mapping key k: ".k" for plain keys, and
// `["k"]` for keys that would not read back (dots, brackets, spaces).
// Policies use it to name a field under a map key in Errorf, spelled as
// the config package spells paths.
func KeySeg(k string) string {
	if k != "" && strings.IndexFunc(k, func(r rune) bool {
		return !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '_' || r == '-')
	}) < 0 {
		return "." + k
	}
	return "[" + strconv.Quote(k) + "]"
}

func indexSeg(i int) string { return "[" + strconv.Itoa(i) + "]" }

// pathSeg is one step of a path: a mapping key or a sequence index.
type pathSeg struct {
	key   string
	index int // -1 for a key
}

// parsePath splits a path made of keySeg and indexSeg segments. It returns
// the segments parsed before any syntax error, which is what lookupPos
// needs to find the nearest ancestor.
func parsePath(p string) []pathSeg {
	var segs []pathSeg
	for i := 0; i < len(p); {
		switch p[i] {
		case '.':
			i++
		case '[':
			rest := p[i+1:]
			if strings.HasPrefix(rest, `"`) {
				q, err := strconv.QuotedPrefix(rest)
				if err != nil || !strings.HasPrefix(rest[len(q):], "]") {
					return segs
				}
				k, _ := strconv.Unquote(q)
				segs = append(segs, pathSeg{key: k, index: -1})
				i += 1 + len(q) + 1
				continue
			}
			end := strings.IndexByte(rest, ']')
			if end < 0 {
				return segs
			}
			idx, err := strconv.Atoi(rest[:end])
			if err != nil || idx < 0 {
				return segs
			}
			segs = append(segs, pathSeg{index: idx})
			i += 1 + end + 1
		default:
			end := strings.IndexAny(p[i:], ".[")
			if end < 0 {
				end = len(p) - i
			}
			segs = append(segs, pathSeg{key: p[i : i+end], index: -1})
			i += end
		}
	}
	return segs
}

// lookupPos returns the position of the node at the relative path rel
// below val (reached through key), or of its nearest existing ancestor.
func lookupPos(val, key *yaml.Node, rel string) (line, col int) {
	best := posFor(key, val)
	for _, s := range parsePath(rel) {
		n := resolveAlias(val)
		var k, v *yaml.Node
		switch {
		case s.index >= 0 && n.Kind == yaml.SequenceNode && s.index < len(n.Content):
			v = n.Content[s.index]
		case s.index < 0 && n.Kind == yaml.MappingNode:
			for _, p := range mappingPairs(n, nil, "", "") {
				if p.k.Value == s.key {
					k, v = p.k, p.v
					break
				}
			}
		}
		if v == nil {
			break
		}
		val, key = v, k
		best = posFor(k, v)
	}
	return best.Line, best.Column
}
