package waf

import (
	"path/filepath"
	"strings"
)

// exactTransforms are the transformations the gate can compute itself on
// an ASCII value, for values that hold their triggers: rather than letting
// the rule run because a value has a space (removeWhitespace) or a ';'
// (cmdLine), the gate applies the transformation and tests the pre-filter
// on the result. Each function takes and returns the ASCII lowering of a
// value, and is Coraza 3.8.1's transformation (internal/transformations,
// Apache-2.0) restated for that case: for every ASCII v,
//
//	exact(lower(v)) == lower(coraza(v))
//
// which TestExactTransforms checks on random values against Coraza's own
// implementations. That equation is what lets the gate walk a rule's
// chain on lowered values: case never changes what these functions do
// (they look at spaces, punctuation, dots and slashes, never at letters,
// except cmdLine, which lowers them, and urlDecodeUni, which reads hex
// digits and %u in either case alike).
//
// urlDecodeUni's result need not be ASCII (%80 to %ff), and its %uXXXX
// escapes go through a best-fit table not restated here: then it returns
// a non-ASCII string, on which the walk stops (the rule runs).
var exactTransforms = map[string]func(string) string{
	"removewhitespace":   removeWhitespaceASCII,
	"compresswhitespace": compressWhitespaceASCII,
	"cmdline":            cmdLineASCII,
	"removenulls":        func(s string) string { return strings.ReplaceAll(s, "\x00", "") },
	"normalizepath":      normalizePathASCII,
	"normalisepath":      normalizePathASCII,
	"normalizepathwin":   normalizePathWinASCII,
	"urldecodeuni":       urlDecodeUniASCII,
	"removecommentschar": removeCommentsCharASCII,
}

// removeCommentsCharASCII is Coraza's removeCommentsChar: "/*", "*/",
// "<!--", "-->", "--" and '#' deleted, scanning left to right (it never
// looks at letters).
func removeCommentsCharASCII(s string) string {
	if !strings.Contains(s, "/*") && !strings.Contains(s, "*/") && !strings.Contains(s, "--") && strings.IndexByte(s, '#') < 0 {
		return s
	}
	b := make([]byte, 0, len(s))
	for i := 0; i < len(s); {
		switch {
		case s[i] == '/' && i+1 < len(s) && s[i+1] == '*',
			s[i] == '*' && i+1 < len(s) && s[i+1] == '/':
			i += 2
		case strings.HasPrefix(s[i:], "<!--"):
			i += 4
		case strings.HasPrefix(s[i:], "-->"):
			i += 3
		case s[i] == '-' && i+1 < len(s) && s[i+1] == '-':
			i += 2
		case s[i] == '#':
			i++
		default:
			b = append(b, s[i])
			i++
		}
	}
	return string(b)
}

// notRestated is what urlDecodeUniASCII returns where it does not restate
// Coraza: not ASCII, so the walk stops.
const notRestated = "\x80"

// urlDecodeUniASCII is Coraza's urlDecodeUni (inplaceUniDecode), lowered:
// '+' is a space, %XX a byte (hex digits of either case), an invalid or
// truncated % or %u is kept; a valid %uXXXX escape, or a decoded byte past
// ASCII, gives notRestated.
func urlDecodeUniASCII(s string) string {
	if !strings.ContainsAny(s, "%+") {
		return s
	}
	b := make([]byte, 0, len(s))
	for i := 0; i < len(s); {
		c := s[i]
		switch {
		case c == '+':
			b = append(b, ' ')
			i++
		case c != '%':
			b = append(b, c)
			i++
		case i+1 < len(s) && (s[i+1] == 'u' || s[i+1] == 'U'):
			if i+5 < len(s) && hexNibble(s[i+2]) >= 0 && hexNibble(s[i+3]) >= 0 && hexNibble(s[i+4]) >= 0 && hexNibble(s[i+5]) >= 0 {
				return notRestated
			}
			b = append(b, s[i], s[i+1])
			i += 2
		case i+2 < len(s) && hexNibble(s[i+1]) >= 0 && hexNibble(s[i+2]) >= 0:
			d := byte(hexNibble(s[i+1]))<<4 | byte(hexNibble(s[i+2]))
			if d >= 0x80 {
				return notRestated
			}
			b = append(b, d)
			i += 3
		default:
			b = append(b, c)
			i++
		}
	}
	return strings.ToLower(string(b))
}

// hexNibble is the value of hex digit c, or -1.
func hexNibble(c byte) int {
	switch {
	case '0' <= c && c <= '9':
		return int(c - '0')
	case 'a' <= c && c <= 'f':
		return int(c-'a') + 10
	case 'A' <= c && c <= 'F':
		return int(c-'A') + 10
	}
	return -1
}

// isASCIISpace is unicode.IsSpace on ASCII.
func isASCIISpace(c byte) bool {
	return c == ' ' || c == '\t' || c == '\n' || c == '\v' || c == '\f' || c == '\r'
}

// removeWhitespaceASCII drops what unicode.IsSpace reports (on ASCII:
// space, \t, \n, \v, \f, \r).
func removeWhitespaceASCII(s string) string {
	var b strings.Builder
	b.Grow(len(s))
	for i := 0; i < len(s); i++ {
		if !isASCIISpace(s[i]) {
			b.WriteByte(s[i])
		}
	}
	return b.String()
}

// compressWhitespaceASCII turns each run of whitespace (Coraza's
// isLatinSpace on ASCII: \t \n \v \f \r and space) into one space.
func compressWhitespaceASCII(s string) string {
	var b strings.Builder
	b.Grow(len(s))
	in := false
	for i := 0; i < len(s); i++ {
		if isASCIISpace(s[i]) {
			if !in {
				b.WriteByte(' ')
				in = true
			}
			continue
		}
		in = false
		b.WriteByte(s[i])
	}
	return b.String()
}

// cmdLineASCII is Coraza's doCMDLine (after ModSecurity's cmd_line.cc):
// deletes \ " ' ^, turns space , ; \t \r \n into one space per run, drops
// a space before '/' or '(', lowers A-Z.
func cmdLineASCII(s string) string {
	ret := make([]byte, 0, len(s))
	space := false
	for i := 0; i < len(s); i++ {
		a := s[i]
		switch a {
		case '"', '\'', '\\', '^':
		case ' ', ',', ';', '\t', '\r', '\n':
			if !space {
				ret = append(ret, ' ')
				space = true
			}
		case '/', '(':
			if space {
				ret = ret[:len(ret)-1]
			}
			space = false
			ret = append(ret, a)
		default:
			if 'A' <= a && a <= 'Z' {
				a += 'a' - 'A'
			}
			ret = append(ret, a)
			space = false
		}
	}
	return string(ret)
}

// normalizePathASCII is Coraza's normalisePath: filepath.Clean, "" for a
// clean ".", a trailing '/' kept.
func normalizePathASCII(s string) string {
	if s == "" {
		return s
	}
	clean := filepath.Clean(s)
	if clean == "." {
		return ""
	}
	if s[len(s)-1] == '/' {
		return clean + "/"
	}
	return clean
}

// normalizePathWinASCII is Coraza's normalisePathWin: backslashes to
// slashes, normalisePath, then the NTFS alternate-stream suffix and the
// trailing dots and spaces of each component removed.
func normalizePathWinASCII(s string) string {
	if s == "" {
		return s
	}
	clean := normalizePathASCII(strings.ReplaceAll(s, `\`, "/"))
	return stripTrailingDotsSpaces(stripADS(clean))
}

// stripADS is Coraza's stripWindowsADS.
func stripADS(data string) string {
	prefix := ""
	if len(data) >= 2 && data[1] == ':' && (data[0] >= 'a' && data[0] <= 'z' || data[0] >= 'A' && data[0] <= 'Z') {
		prefix, data = data[:2], data[2:]
	}
	trailing := ""
	if len(data) > 0 && data[len(data)-1] == '/' {
		trailing, data = "/", data[:len(data)-1]
	}
	if idx := strings.LastIndexByte(data, '/'); idx >= 0 {
		if colon := strings.IndexByte(data[idx+1:], ':'); colon >= 0 {
			data = data[:idx+1+colon]
		}
	} else if colon := strings.IndexByte(data, ':'); colon >= 0 {
		data = data[:colon]
	}
	return prefix + data + trailing
}

// stripTrailingDotsSpaces is Coraza's stripWindowsTrailingDotsAndSpaces
// (with hasTrimmableComponent): components that are not all dots lose
// trailing dots and spaces; components left empty are dropped.
func stripTrailingDotsSpaces(data string) string {
	trimmable := false
	start := 0
	for i := 0; i <= len(data); i++ {
		if i != len(data) && data[i] != '/' {
			continue
		}
		seg := data[start:i]
		if !allDots(seg) {
			if last := seg[len(seg)-1]; last == '.' || last == ' ' {
				trimmable = true
				break
			}
		}
		start = i + 1
	}
	if !trimmable {
		return data
	}
	var b strings.Builder
	b.Grow(len(data))
	start = 0
	wrote := false
	for i := 0; i <= len(data); i++ {
		if i != len(data) && data[i] != '/' {
			continue
		}
		seg := data[start:i]
		start = i + 1
		if !allDots(seg) {
			seg = strings.TrimRight(seg, ". ")
			if seg == "" {
				continue
			}
		}
		if wrote {
			b.WriteByte('/')
		}
		b.WriteString(seg)
		wrote = true
	}
	return b.String()
}

func allDots(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] != '.' {
			return false
		}
	}
	return true
}
