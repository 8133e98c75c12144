package jsonlimits

import (
	"strconv"
	"strings"
	"unicode/utf8"
)

// Limits bound a JSON document. A zero field means no limit.
type Limits struct {
	Depth  int // nesting of objects and arrays; the top-level value is depth 1
	Keys   int // members of one object
	Array  int // elements of one array
	String int // bytes of one string or key as written, between its quotes
	Number int // bytes of one number literal
	Tokens int // keys and values in the whole document
}

// Violation kinds.
const (
	kindMalformed = iota
	kindLimit
	kindDuplicate
)

// A violation is why a document was refused.
type violation struct {
	kind   int
	limit  string // the limit exceeded: "max_depth", ...
	offset int
	path   string // where: "body.items[3].name"
	msg    string
}

// frame is one open object or array.
type frame struct {
	obj  bool
	n    int    // members or elements so far
	key  []byte // object: the current member's decoded key
	keys [][]byte
	set  map[string]struct{}
}

// checker checks documents against limits. It keeps its stack between
// uses; it is not safe for concurrent use (pool it).
type checker struct {
	lim   Limits
	stack []frame
	// keyBuf holds decoded escaped keys of the document being checked.
	keyBuf []byte
}

// dupMapAt is the member count from which an object's keys are kept in a
// map; below it a linear search is cheaper.
const dupMapAt = 16

// check reports nil when b is one valid JSON value (RFC 8259, UTF-8, no
// lone surrogates) within the limits and without duplicate keys in any
// object; otherwise why not. Keys are compared after unescaping: "a" and
// "\u0061" are the same key.
func (c *checker) check(b []byte) *violation {
	c.stack = c.stack[:0]
	c.keyBuf = c.keyBuf[:0]
	tokens := 0
	i := skipWS(b, 0)
	// expect: 0 a value, 1 a value or ']' (after '['), 2 a key or '}'
	// (after '{'), 3 a key (after ',' in an object).
	expect := 0
	for {
		if i >= len(b) {
			return c.malformed(i, "unexpected end of input")
		}
		ch := b[i]
		if expect == 2 || expect == 3 {
			if ch == '}' && expect == 2 {
				c.stack = c.stack[:len(c.stack)-1]
				i++
				goto after
			}
			if ch != '"' {
				return c.malformed(i, "want an object key")
			}
			top := &c.stack[len(c.stack)-1]
			top.key = nil
			top.n++
			if c.lim.Keys > 0 && top.n > c.lim.Keys {
				return c.limit(i, "max_keys")
			}
			tokens++
			if c.lim.Tokens > 0 && tokens > c.lim.Tokens {
				return c.limit(i, "max_tokens")
			}
			start := i
			end, key, v := c.str(b, i, true)
			if v != nil {
				return v
			}
			top.key = key
			if c.dup(top, key) {
				return &violation{kind: kindDuplicate, offset: start, path: c.path(), msg: "duplicate key"}
			}
			i = skipWS(b, end)
			if i >= len(b) || b[i] != ':' {
				return c.malformed(i, "want ':'")
			}
			i = skipWS(b, i+1)
			expect = 0
			continue
		}
		if ch == ']' && expect == 1 {
			c.stack = c.stack[:len(c.stack)-1]
			i++
			goto after
		}
		// A value.
		if len(c.stack) > 0 {
			if top := &c.stack[len(c.stack)-1]; !top.obj {
				top.n++
				if c.lim.Array > 0 && top.n > c.lim.Array {
					return c.limit(i, "max_array")
				}
			}
		}
		tokens++
		if c.lim.Tokens > 0 && tokens > c.lim.Tokens {
			return c.limit(i, "max_tokens")
		}
		switch {
		case ch == '{' || ch == '[':
			if c.lim.Depth > 0 && len(c.stack)+1 > c.lim.Depth {
				return c.limit(i, "max_depth")
			}
			c.push(ch == '{')
			i = skipWS(b, i+1)
			if ch == '{' {
				expect = 2
			} else {
				expect = 1
			}
			continue
		case ch == '"':
			end, _, v := c.str(b, i, false)
			if v != nil {
				return v
			}
			i = end
		case ch == '-' || (ch >= '0' && ch <= '9'):
			end, ok := number(b, i)
			if !ok {
				return c.malformed(i, "invalid number")
			}
			if c.lim.Number > 0 && end-i > c.lim.Number {
				return c.limit(i, "max_number")
			}
			i = end
		case ch == 't':
			if !strings.HasPrefix(string(b[i:min(len(b), i+4)]), "true") {
				return c.malformed(i, "invalid literal")
			}
			i += 4
		case ch == 'f':
			if !strings.HasPrefix(string(b[i:min(len(b), i+5)]), "false") {
				return c.malformed(i, "invalid literal")
			}
			i += 5
		case ch == 'n':
			if !strings.HasPrefix(string(b[i:min(len(b), i+4)]), "null") {
				return c.malformed(i, "invalid literal")
			}
			i += 4
		default:
			return c.malformed(i, "want a value")
		}
	after:
		// After a value: close containers, or move to the next element.
		i = skipWS(b, i)
		if len(c.stack) == 0 {
			if i != len(b) {
				return c.malformed(i, "data after the top-level value")
			}
			return nil
		}
		if i >= len(b) {
			return c.malformed(i, "unexpected end of input")
		}
		top := &c.stack[len(c.stack)-1]
		switch b[i] {
		case ',':
			i = skipWS(b, i+1)
			if top.obj {
				expect = 3
			} else {
				expect = 0
			}
		case '}':
			if !top.obj {
				return c.malformed(i, "want ',' or ']'")
			}
			c.stack = c.stack[:len(c.stack)-1]
			i++
			goto after
		case ']':
			if top.obj {
				return c.malformed(i, "want ',' or '}'")
			}
			c.stack = c.stack[:len(c.stack)-1]
			i++
			goto after
		default:
			if top.obj {
				return c.malformed(i, "want ',' or '}'")
			}
			return c.malformed(i, "want ',' or ']'")
		}
	}
}

func (c *checker) push(obj bool) {
	if len(c.stack) < cap(c.stack) {
		c.stack = c.stack[:len(c.stack)+1]
		f := &c.stack[len(c.stack)-1]
		keys, set := f.keys[:0], f.set
		clear(set)
		*f = frame{obj: obj, keys: keys, set: set}
		return
	}
	c.stack = append(c.stack, frame{obj: obj})
}

// dup records key in f and reports whether f already had it.
func (c *checker) dup(f *frame, key []byte) bool {
	if f.set != nil && len(f.keys) >= dupMapAt {
		if _, ok := f.set[string(key)]; ok {
			return true
		}
		f.set[string(key)] = struct{}{}
		return false
	}
	for _, k := range f.keys {
		if string(k) == string(key) {
			return true
		}
	}
	f.keys = append(f.keys, key)
	if len(f.keys) == dupMapAt {
		if f.set == nil {
			f.set = make(map[string]struct{}, 2*dupMapAt)
		}
		for _, k := range f.keys {
			f.set[string(k)] = struct{}{}
		}
	}
	return false
}

func skipWS(b []byte, i int) int {
	for i < len(b) {
		switch b[i] {
		case ' ', '\t', '\n', '\r':
			i++
		default:
			return i
		}
	}
	return i
}

// number returns the end of the number literal at b[i:].
func number(b []byte, i int) (int, bool) {
	if b[i] == '-' {
		i++
	}
	switch {
	case i < len(b) && b[i] == '0':
		i++
	case i < len(b) && b[i] >= '1' && b[i] <= '9':
		for i < len(b) && b[i] >= '0' && b[i] <= '9' {
			i++
		}
	default:
		return i, false
	}
	if i < len(b) && b[i] == '.' {
		i++
		s := i
		for i < len(b) && b[i] >= '0' && b[i] <= '9' {
			i++
		}
		if i == s {
			return i, false
		}
	}
	if i < len(b) && (b[i] == 'e' || b[i] == 'E') {
		i++
		if i < len(b) && (b[i] == '+' || b[i] == '-') {
			i++
		}
		s := i
		for i < len(b) && b[i] >= '0' && b[i] <= '9' {
			i++
		}
		if i == s {
			return i, false
		}
	}
	return i, true
}

func hex4(b []byte) (rune, bool) {
	if len(b) < 4 {
		return 0, false
	}
	var r rune
	for _, c := range b[:4] {
		switch {
		case c >= '0' && c <= '9':
			r = r<<4 | rune(c-'0')
		case c >= 'a' && c <= 'f':
			r = r<<4 | rune(c-'a'+10)
		case c >= 'A' && c <= 'F':
			r = r<<4 | rune(c-'A'+10)
		default:
			return 0, false
		}
	}
	return r, true
}

// str scans the string starting at the quote b[i] and returns its end
// (after the closing quote). For a key (decode) it also returns the
// decoded value: a slice of b when there are no escapes, else of keyBuf.
func (c *checker) str(b []byte, i int, decode bool) (int, []byte, *violation) {
	start := i
	i++
	escaped := false
	for {
		if i >= len(b) {
			return i, nil, c.malformed(i, "unterminated string")
		}
		ch := b[i]
		switch {
		case ch == '"':
			if c.lim.String > 0 && i-start-1 > c.lim.String {
				return i, nil, c.limit(start, "max_string")
			}
			if !decode {
				return i + 1, nil, nil
			}
			if !escaped {
				return i + 1, b[start+1 : i], nil
			}
			return i + 1, c.unescape(b[start+1 : i]), nil
		case ch == '\\':
			escaped = true
			if i+1 >= len(b) {
				return i, nil, c.malformed(i, "unterminated string")
			}
			switch b[i+1] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
				i += 2
			case 'u':
				r, ok := hex4(b[i+2:])
				if !ok {
					return i, nil, c.malformed(i, "invalid \\u escape")
				}
				i += 6
				switch {
				case r >= 0xDC00 && r <= 0xDFFF:
					return i, nil, c.malformed(i-6, "lone surrogate in \\u escape")
				case r >= 0xD800 && r <= 0xDBFF:
					if i+1 >= len(b) || b[i] != '\\' || b[i+1] != 'u' {
						return i, nil, c.malformed(i-6, "lone surrogate in \\u escape")
					}
					r2, ok := hex4(b[i+2:])
					if !ok || r2 < 0xDC00 || r2 > 0xDFFF {
						return i, nil, c.malformed(i-6, "lone surrogate in \\u escape")
					}
					i += 6
				}
			default:
				return i, nil, c.malformed(i, "invalid escape")
			}
		case ch < 0x20:
			return i, nil, c.malformed(i, "control character in string")
		case ch < utf8.RuneSelf:
			i++
		default:
			r, size := utf8.DecodeRune(b[i:])
			if r == utf8.RuneError && size == 1 {
				return i, nil, c.malformed(i, "invalid UTF-8")
			}
			i += size
		}
	}
}

// unescape decodes a validated string body with escapes into keyBuf.
func (c *checker) unescape(s []byte) []byte {
	start := len(c.keyBuf)
	for i := 0; i < len(s); {
		if s[i] != '\\' {
			c.keyBuf = append(c.keyBuf, s[i])
			i++
			continue
		}
		switch s[i+1] {
		case 'b':
			c.keyBuf = append(c.keyBuf, '\b')
		case 'f':
			c.keyBuf = append(c.keyBuf, '\f')
		case 'n':
			c.keyBuf = append(c.keyBuf, '\n')
		case 'r':
			c.keyBuf = append(c.keyBuf, '\r')
		case 't':
			c.keyBuf = append(c.keyBuf, '\t')
		case 'u':
			r, _ := hex4(s[i+2:])
			if r >= 0xD800 && r <= 0xDBFF {
				r2, _ := hex4(s[i+8:])
				r = 0x10000 + (r-0xD800)<<10 + (r2 - 0xDC00)
				i += 6
			}
			c.keyBuf = utf8.AppendRune(c.keyBuf, r)
			i += 6
			continue
		default:
			c.keyBuf = append(c.keyBuf, s[i+1])
		}
		i += 2
	}
	// Clipped: a later key appended to keyBuf may reallocate it, leaving
	// this slice valid in the old array.
	return c.keyBuf[start:len(c.keyBuf):len(c.keyBuf)]
}

func (c *checker) malformed(off int, msg string) *violation {
	return &violation{kind: kindMalformed, offset: off, path: c.path(), msg: msg}
}

func (c *checker) limit(off int, name string) *violation {
	return &violation{kind: kindLimit, limit: name, offset: off, path: c.path()}
}

// maxPathKey bounds each key shown in a path: a path is shown to the
// client, and a huge key is not worth echoing.
const maxPathKey = 32

// path is where the scan is, as body.key[3].key; computed only on failure.
func (c *checker) path() string {
	var sb strings.Builder
	sb.WriteString("body")
	for i := range c.stack {
		f := &c.stack[i]
		if f.obj {
			if f.key == nil {
				continue
			}
			k := f.key
			if len(k) > maxPathKey || !printable(k) {
				sb.WriteString("[…]")
				continue
			}
			sb.WriteByte('.')
			sb.Write(k)
			continue
		}
		if f.n > 0 {
			sb.WriteByte('[')
			sb.WriteString(strconv.Itoa(f.n - 1))
			sb.WriteByte(']')
		}
	}
	return sb.String()
}

func printable(k []byte) bool {
	for _, c := range k {
		if c < 0x20 || c == 0x7f || c == '"' || c == '\\' {
			return false
		}
	}
	return utf8.Valid(k)
}
