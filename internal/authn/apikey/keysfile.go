package apikey

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"os"
	"strconv"

	"github.com/gatehouse/gatehouse/internal/config"
)

// A keys_file is read as a stream, one entry at a time, so that a file of a
// million keys never exists as a million YAML nodes (a whole-document parse
// of such a file costs seconds and gigabytes, nearly all of it garbage).
//
// The reader recognizes the shape every keys file has — a top-level `keys:`
// and a block sequence under it — and cuts the sequence into its items by
// indentation. An item made of simple `key: value` lines (plain or quoted
// scalars without escapes, scopes as a one-line flow sequence), which is
// what `gatehouse apikey create` prints and what generated files hold, is
// read directly. Any other item (metadata, block scopes, ${VAR}, anchors,
// escapes, non-ASCII text, an error) is parsed as YAML on its own, with its
// lines and paths placed in the file. A file of any other shape (flow style
// at the top, other top-level keys, several documents, aliases across
// items) is parsed whole, as before. Either way the result, and every
// error's file:line and path, are those of a whole-document parse.

// errNotStreamable says the file must be parsed whole.
var errNotStreamable = errors.New("apikey: keys file not streamable")

// readKeysFile reads a keys_file into b; its errors name that file.
func readKeysFile(b *keySetBuilder, cfg *config.Node, name string) error {
	path := cfg.ResolvePath(name)
	f, err := os.Open(path)
	if err != nil {
		return cfg.Errorf("keys_file", "%v", err)
	}
	defer f.Close()
	src := b.addSource(path, "keys")
	m := b.mark()
	ks := &keysStream{b: b, src: src, file: path, lr: lineReader{r: bufio.NewReaderSize(f, 64<<10)}}
	err = ks.run()
	if !errors.Is(err, errNotStreamable) {
		if err != nil {
			return cfg.Errorf("keys_file", "%v", err)
		}
		return nil
	}
	b.truncate(m)
	data, err := os.ReadFile(path)
	if err != nil {
		return cfg.Errorf("keys_file", "%v", err)
	}
	return readWhole(b, src, path, data)
}

// readWhole parses a keys file as one YAML document.
func readWhole(b *keySetBuilder, src uint8, path string, data []byte) error {
	n, err := config.ParseNode(path, data, os.LookupEnv)
	if err != nil {
		return err
	}
	var f keysFile
	if err := n.Decode(&f); err != nil {
		return err
	}
	for i := range f.Keys {
		e, err := checkEntry(n, "keys["+strconv.Itoa(i)+"]", &f.Keys[i])
		if err != nil {
			b.fail(err)
			continue
		}
		b.add(src, i, &e)
	}
	return nil
}

// keysStream is the streaming reader of one keys file.
type keysStream struct {
	b    *keySetBuilder
	src  uint8
	file string
	lr   lineReader

	item      []byte // the current item's lines, each ending in '\n'
	itemLine  int    // line number of its first line
	itemLines int
	index     int // index of the current item in keys
}

func (ks *keysStream) run() error {
	// Before the list: blank lines, comments and `keys:`.
	for {
		line, err := ks.lr.next()
		if err == io.EOF {
			return errNotStreamable
		}
		if err != nil {
			return err
		}
		if ks.lr.n == 1 {
			line = trimBOM(line)
		}
		if otherBreak(line) {
			return errNotStreamable
		}
		if blankOrComment(line) {
			continue
		}
		if !isKeysLine(line) {
			return errNotStreamable
		}
		break
	}
	indent := -1
	for {
		line, err := ks.lr.next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return err
		}
		if otherBreak(line) {
			return errNotStreamable
		}
		if blankOrComment(line) {
			if ks.itemLines > 0 {
				ks.appendLine(line)
			}
			continue
		}
		ind := leadingSpaces(line)
		if line[ind] == '\t' {
			return errNotStreamable
		}
		dash := isDash(line, ind)
		switch {
		case indent < 0 && dash:
			indent = ind
			ks.start(line)
		case indent < 0:
			return errNotStreamable
		case ind == indent && dash:
			if err := ks.flush(indent); err != nil {
				return err
			}
			ks.start(line)
		case ind > indent:
			ks.appendLine(line)
		default:
			// Something after the list (another top-level key, a
			// document marker): let the YAML parser judge it.
			return errNotStreamable
		}
	}
	if indent < 0 {
		return errNotStreamable // `keys:` with no list: null, an error
	}
	return ks.flush(indent)
}

func (ks *keysStream) start(line []byte) {
	ks.item = ks.item[:0]
	ks.itemLines = 0
	ks.itemLine = ks.lr.n
	ks.appendLine(line)
}

func (ks *keysStream) appendLine(line []byte) {
	ks.item = append(ks.item, line...)
	ks.item = append(ks.item, '\n')
	ks.itemLines++
}

// flush reads the current item, directly when it is simple, else as YAML.
func (ks *keysStream) flush(indent int) error {
	i := ks.index
	ks.index++
	if k, cp, hp, ok := parseSimpleItem(ks.item, indent, ks.itemLine); ok {
		if e, err := checkEntry(nil, "", &k); err == nil {
			e.consPos, e.hashPos = cp, hp
			ks.b.add(ks.src, i, &e)
			return nil
		}
		// Invalid: parsed again as YAML below, for the errors' places.
	}
	// The item as a block mapping at the same columns: its dash becomes a
	// space.
	ks.item[indent] = ' '
	at := "keys[" + strconv.Itoa(i) + "]"
	n, err := config.ParseFragment(ks.file, ks.item, ks.itemLine, at, os.LookupEnv)
	if err != nil || n.IsZero() {
		// Alone the item does not parse: it may refer to an anchor in
		// another item. Or it is empty (`-` alone: null), whose place
		// only the whole document knows. The whole document decides.
		return errNotStreamable
	}
	var k KeyConfig
	if err := n.Decode(&k); err != nil {
		ks.b.fail(err)
		return nil
	}
	e, err := checkEntry(n, "", &k)
	if err != nil {
		ks.b.fail(err)
		return nil
	}
	ks.b.add(ks.src, i, &e)
	return nil
}

// lineReader returns a stream's lines one by one.
type lineReader struct {
	r   *bufio.Reader
	n   int // number of the last line returned
	buf []byte
}

// next returns the next line without its line break; the slice is valid
// until the next call.
func (lr *lineReader) next() ([]byte, error) {
	lr.buf = lr.buf[:0]
	for {
		s, err := lr.r.ReadSlice('\n')
		lr.buf = append(lr.buf, s...)
		if err == bufio.ErrBufferFull {
			continue
		}
		if err == io.EOF {
			if len(lr.buf) == 0 {
				return nil, io.EOF
			}
		} else if err != nil {
			return nil, err
		}
		break
	}
	lr.n++
	l := lr.buf
	if len(l) > 0 && l[len(l)-1] == '\n' {
		l = l[:len(l)-1]
	}
	if len(l) > 0 && l[len(l)-1] == '\r' {
		l = l[:len(l)-1]
	}
	return l, nil
}

// otherBreak reports whether l holds a line break other than the '\n'
// (or "\r\n") the reader splits at: a lone CR, or NEL, LS or PS, which
// the YAML parser also reads as breaks. Such a file is parsed whole, so
// that entries are cut where YAML cuts them.
func otherBreak(l []byte) bool {
	if bytes.IndexByte(l, '\r') >= 0 {
		return true
	}
	// NEL, LS and PS are multi-byte: ASCII lines (nearly all) need no
	// further look.
	i := 0
	for ; i+8 <= len(l); i += 8 {
		if binary.LittleEndian.Uint64(l[i:])&0x8080808080808080 != 0 {
			break
		}
	}
	for ; i < len(l); i++ {
		if l[i] >= 0x80 {
			return bytes.Contains(l, []byte("\u0085")) || bytes.Contains(l, []byte("\u2028")) || bytes.Contains(l, []byte("\u2029"))
		}
	}
	return false
}

func trimBOM(l []byte) []byte {
	if len(l) >= 3 && l[0] == 0xEF && l[1] == 0xBB && l[2] == 0xBF {
		return l[3:]
	}
	return l
}

func leadingSpaces(l []byte) int {
	i := 0
	for i < len(l) && l[i] == ' ' {
		i++
	}
	return i
}

// blankOrComment reports whether l holds only spaces and maybe a comment.
func blankOrComment(l []byte) bool {
	i := leadingSpaces(l)
	return i == len(l) || l[i] == '#'
}

// isDash reports whether l has a block sequence entry indicator at ind.
func isDash(l []byte, ind int) bool {
	return ind < len(l) && l[ind] == '-' && (ind+1 == len(l) || l[ind+1] == ' ')
}

// isKeysLine reports whether l is exactly `keys:`, maybe with a comment.
func isKeysLine(l []byte) bool {
	const k = "keys:"
	if len(l) < len(k) || string(l[:len(k)]) != k {
		return false
	}
	rest := l[len(k):]
	return len(rest) == 0 || rest[0] == ' ' && blankOrComment(rest)
}

// parseSimpleItem reads an item made only of `key: value` lines of the
// known keys with simple values, as YAML would read it; ok is false for
// any other item, which is then parsed as YAML. It never accepts what YAML
// would read differently: anything it does not fully understand makes it
// give up.
func parseSimpleItem(item []byte, indent, firstLine int) (k KeyConfig, consPos, hashPos pos, ok bool) {
	for _, c := range item {
		// Escapes, tabs, non-ASCII text and ${VAR} are YAML's to read.
		if c < 0x20 && c != '\n' || c >= 0x7f || c == '$' {
			return k, consPos, hashPos, false
		}
	}
	var seen [4]bool
	col := -1 // the mapping's column, 0-based
	lineNo := firstLine - 1
	for len(item) > 0 {
		nl := 0
		for item[nl] != '\n' {
			nl++
		}
		line := item[:nl]
		item = item[nl+1:]
		lineNo++
		start := 0
		if lineNo == firstLine {
			start = indent + 1 // past the dash
			sp := leadingSpaces(line[start:])
			if start+sp == len(line) || line[start+sp] == '#' {
				continue // the mapping starts on a later line
			}
			if sp == 0 {
				return k, consPos, hashPos, false
			}
			start += sp
			col = start
		} else {
			if blankOrComment(line) {
				continue
			}
			start = leadingSpaces(line)
			if col < 0 {
				if start <= indent {
					return k, consPos, hashPos, false
				}
				col = start
			}
			if start != col {
				return k, consPos, hashPos, false
			}
		}
		kv := line[start:]
		colon := 0
		for colon < len(kv) && kv[colon] >= 'a' && kv[colon] <= 'z' {
			colon++
		}
		if colon == len(kv) || kv[colon] != ':' || colon+1 == len(kv) || kv[colon+1] != ' ' {
			return k, consPos, hashPos, false
		}
		field := fieldIndex(string(kv[:colon]))
		if field < 0 || seen[field] {
			return k, consPos, hashPos, false
		}
		seen[field] = true
		v := kv[colon+1:]
		sp := leadingSpaces(v)
		v = v[sp:]
		vpos := pos{uint32(lineNo), uint32(start + colon + 1 + sp + 1)}
		if field == fieldScopes {
			scopes, ok := parseFlowSeq(v)
			if !ok {
				return k, consPos, hashPos, false
			}
			k.Scopes = scopes
			continue
		}
		s, rest, ok := parseScalar(v, false)
		if !ok || !endOfLine(rest) {
			return k, consPos, hashPos, false
		}
		switch field {
		case fieldConsumer:
			k.Consumer, consPos = s, vpos
		case fieldHash:
			k.Hash, hashPos = s, vpos
		case fieldTier:
			k.Tier = s
		}
	}
	return k, consPos, hashPos, col >= 0
}

const (
	fieldConsumer = iota
	fieldHash
	fieldScopes
	fieldTier
)

func fieldIndex(s string) int {
	switch s {
	case "consumer":
		return fieldConsumer
	case "hash":
		return fieldHash
	case "scopes":
		return fieldScopes
	case "tier":
		return fieldTier
	}
	return -1
}

// endOfLine reports whether rest, what follows a value, is nothing or a
// comment after a space.
func endOfLine(rest []byte) bool {
	sp := leadingSpaces(rest)
	return sp == len(rest) || sp > 0 && rest[sp] == '#'
}

// parseScalar reads a scalar YAML reads as the same string: double-quoted
// without escapes, single-quoted without a doubled quote, or plain of letters, digits
// and . _ - : @ / + = starting with a letter or '_' (never a number, bool,
// null or timestamp). In a flow sequence a plain scalar also ends at ','
// and ']'.
func parseScalar(v []byte, flow bool) (s string, rest []byte, ok bool) {
	if len(v) == 0 {
		return "", nil, false
	}
	switch q := v[0]; q {
	case '"', '\'':
		for i := 1; i < len(v); i++ {
			switch v[i] {
			case '\\':
				if q == '"' {
					return "", nil, false
				}
			case q:
				if q == '\'' && i+1 < len(v) && v[i+1] == '\'' {
					return "", nil, false
				}
				return string(v[1:i]), v[i+1:], true
			}
		}
		return "", nil, false // a multi-line scalar
	}
	c := v[0]
	if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c == '_') {
		return "", nil, false
	}
	i := 0
	for i < len(v) && plainByte(v[i]) {
		i++
	}
	if i < len(v) && !(v[i] == ' ' || flow && (v[i] == ',' || v[i] == ']')) {
		return "", nil, false // '#' or a quote inside: YAML's to read
	}
	s = string(v[:i])
	if s[len(s)-1] == ':' || special(s) {
		return "", nil, false
	}
	return s, v[i:], true
}

func plainByte(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' ||
		c == '.' || c == '_' || c == '-' || c == ':' || c == '@' || c == '/' || c == '+' || c == '='
}

// special reports whether a plain scalar is one YAML might read as other
// than a string (null, a boolean in YAML 1.1 or 1.2).
func special(s string) bool {
	if len(s) > 5 {
		return false
	}
	switch toLower(s) {
	case "null", "true", "false", "yes", "no", "on", "off", "y", "n":
		return true
	}
	return false
}

func toLower(s string) string {
	b := []byte(s)
	for i, c := range b {
		if c >= 'A' && c <= 'Z' {
			b[i] = c + 'a' - 'A'
		}
	}
	return string(b)
}

// parseFlowSeq reads `[a, "b", c]` on one line, followed by nothing or a
// comment.
func parseFlowSeq(v []byte) ([]string, bool) {
	if len(v) == 0 || v[0] != '[' {
		return nil, false
	}
	v = v[1:]
	var out []string
	for {
		v = v[leadingSpaces(v):]
		if len(v) > 0 && v[0] == ']' && len(out) == 0 {
			return out, endOfLine(v[1:])
		}
		s, rest, ok := parseScalar(v, true)
		if !ok {
			return nil, false
		}
		out = append(out, s)
		rest = rest[leadingSpaces(rest):]
		if len(rest) == 0 {
			return nil, false
		}
		switch rest[0] {
		case ',':
			v = rest[1:]
		case ']':
			return out, endOfLine(rest[1:])
		default:
			return nil, false
		}
	}
}
