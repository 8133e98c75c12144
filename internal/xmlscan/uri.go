package xmlscan

// uriReference reports whether s is a URI-reference of RFC 3986 §4.1. A
// namespace name is one (Namespaces in XML 1.0 §2.2), and libxml2 checks:
// a declaration whose name it cannot parse as one (a space, a bare '%', a
// '[' outside a host, a port that is not digits, a non-ASCII character)
// is a namespace error, which lxml, xmlsec1 and PHP's DOM treat as fatal.
// encoding/xml takes any string, so Scan checks it. The check is RFC
// 3986's grammar, stricter than libxml2's parser where that is lenient
// (it takes any character between an IP literal's brackets) and, like
// libxml2, wanting a digit in a port; TestScanAgreesWithLibxml2 holds the
// two together.
func uriReference(s string) bool {
	// A '&' (which the document can only write as &amp; or a character
	// reference) is refused too: libxml2, unless told to replace
	// entities, checks the name with the reference left in, "&#38;",
	// and finds it no URI.
	if containsByte(s, '&') {
		return false
	}
	// scheme ":" hier-part, or a relative reference; both end in
	// [ "?" query ] [ "#" fragment ].
	rest := s
	if i := schemeEnd(s); i > 0 {
		rest = s[i+1:]
	} else if seg, _, _ := cutAny(s, "/?#"); containsByte(seg, ':') {
		// path-noscheme: no colon in the first segment.
		return false
	}
	part, tail, _ := cutAny(rest, "?#")
	if len(part) >= 2 && part[:2] == "//" {
		auth, path, _ := cutAny(part[2:], "/")
		if !authority(auth) || !chars(path, "/:@") {
			return false
		}
	} else if !chars(part, "/:@") {
		return false
	}
	if len(tail) > 0 && tail[0] == '?' {
		q, f, _ := cutAny(tail[1:], "#")
		if !chars(q, "/?:@") {
			return false
		}
		tail = f
	}
	if len(tail) > 0 {
		// tail[0] is '#'.
		return chars(tail[1:], "/?:@")
	}
	return true
}

// schemeEnd returns the index of the ':' ending s's scheme
// (ALPHA *( ALPHA / DIGIT / "+" / "-" / "." )), or -1.
func schemeEnd(s string) int {
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z':
		case i > 0 && ('0' <= c && c <= '9' || c == '+' || c == '-' || c == '.'):
		case i > 0 && c == ':':
			return i
		default:
			return -1
		}
	}
	return -1
}

// authority checks [ userinfo "@" ] host [ ":" port ].
func authority(a string) bool {
	if i := lastByte(a, '@'); i >= 0 {
		if !chars(a[:i], ":") {
			return false
		}
		a = a[i+1:]
	}
	if len(a) > 0 && a[0] == '[' {
		// IP-literal: IPv6 address or IPvFuture, kept to their
		// characters.
		end := lastByte(a, ']')
		if end < 0 {
			return false
		}
		for i := 1; i < end; i++ {
			if c := a[i]; !(isHex(c) || c == ':' || c == '.' || c == 'v' || c == 'V') {
				return false
			}
		}
		a = a[end+1:]
		if a == "" {
			return true
		}
		return a[0] == ':' && port(a[1:])
	}
	host, p, hasPort := cutAny(a, ":")
	if hasPort && !port(p[1:]) {
		return false
	}
	return chars(host, "")
}

// chars reports whether s holds only unreserved characters, sub-delims,
// percent-encoded octets and the bytes in extra.
func chars(s, extra string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		case containsByte("-._~!$&'()*+,;=", c), containsByte(extra, c):
		case c == '%':
			if i+2 >= len(s) || !isHex(s[i+1]) || !isHex(s[i+2]) {
				return false
			}
			i += 2
		default:
			return false
		}
	}
	return true
}

// port reports whether s is a port: digits, at least one (RFC 3986
// allows none; libxml2 does not).
func port(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

func isHex(c byte) bool {
	return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F'
}

func containsByte(s string, c byte) bool {
	for i := 0; i < len(s); i++ {
		if s[i] == c {
			return true
		}
	}
	return false
}

func lastByte(s string, c byte) int {
	for i := len(s) - 1; i >= 0; i-- {
		if s[i] == c {
			return i
		}
	}
	return -1
}

// cutAny splits s before the first byte that is in set: it returns what
// comes before, the rest starting with that byte, and whether there was
// one.
func cutAny(s, set string) (before, rest string, found bool) {
	for i := 0; i < len(s); i++ {
		if containsByte(set, s[i]) {
			return s[:i], s[i:], true
		}
	}
	return s, "", false
}
