package gateway

import (
	"net/http"
	"path"
	"strings"
	"unicode"
	"unicode/utf8"

	"golang.org/x/text/unicode/norm"

	"github.com/gatehouse/gatehouse/internal/policy"
	"github.com/gatehouse/gatehouse/internal/router"
)

// Paths: the gateway routes one path and forwards one path, and every
// common upstream stack (servlet containers and Spring, Express, nginx,
// Go's ServeMux) must resolve the forwarded path to the resource the
// routed one names. cleanPath refuses what the stacks read differently
// and resolves what they all resolve the same way; the handler then
// forwards the cleaned path in its one canonical encoding (RawPath
// cleared), so the upstream never sees the client's spelling. The rules,
// stack by stack, are the table "Paths" of docs/architecture.md.

// cleanPath returns the path to route and the path to forward, or ok
// false for a path refused with 400 invalid_path. The two differ only
// with matrix (config paths.matrix_params): then route is forward with
// each segment's ";" parameters removed, as a servlet container reads it.
//
// Refused, in the decoded path: a path not starting with "/"; "%2F" (an
// encoded slash the decoded path cannot tell from a real one), a
// backslash, raw or encoded (Windows stacks, Tomcat's ALLOW_BACKSLASH,
// Spring's firewall read it as "/"); any control byte (NUL, tab, CR, LF,
// DEL); "%" (double encoding: "%252e" is "%2e" after one decoding and "."
// after two); "?" and "#" (a stack that decodes then re-parses cuts the
// path there); ";" (a path parameter to servlet stacks, a literal to the
// others: "/public/..;/admin" is "/admin" to Tomcat), unless matrix; a
// segment ending in "." or " " other than "." and ".." (Windows and IIS
// strip them, "/admin." is "/admin"); invalid UTF-8 (overlong "%c0%ae"),
// and characters a Unicode-normalizing stack turns into ASCII (fullwidth
// "／" and "．", "ａ", "K" KELVIN SIGN), spaces and format characters.
//
// Resolved: "." and ".." segments (raw or encoded) and empty segments
// ("//", a leading "//" included), as RFC 3986 §5.2.4, keeping a trailing
// slash. It allocates only when the path needs resolving.
func cleanPath(r *http.Request, matrix bool) (route, forward string, ok bool) {
	p := r.URL.Path
	if p == "" || p[0] != '/' {
		return "", "", false
	}
	if raw := r.URL.RawPath; raw != "" && containsFoldEscapedSlash(raw) {
		return "", "", false
	}
	dirty, params, nonASCII := false, false, false
	for i := 0; i < len(p); i++ {
		switch c := p[i]; {
		case c < 0x20 || c == 0x7f:
			return "", "", false
		case c == '\\' || c == '%' || c == '?' || c == '#':
			return "", "", false
		case c == ';':
			if !matrix {
				return "", "", false
			}
			params = true
		case c >= utf8.RuneSelf:
			nonASCII = true
		case c == '/':
			if i+1 < len(p) && (p[i+1] == '/' || p[i+1] == '.') {
				dirty = true
			}
		}
	}
	if nonASCII && !safeUnicode(p) {
		return "", "", false
	}
	for rest := p[1:]; ; {
		seg, tail, more := strings.Cut(rest, "/")
		if !segmentOK(seg) {
			return "", "", false
		}
		if !more {
			break
		}
		rest = tail
	}
	forward = p
	if dirty {
		forward = path.Clean(p)
		if strings.HasSuffix(p, "/") && forward != "/" {
			forward += "/"
		}
	}
	if !params {
		return forward, forward, true
	}
	return stripParams(forward), forward, true
}

// segmentOK reports whether one decoded segment may be routed and
// forwarded: "." and ".." are resolved later; a name (the segment before
// any ";") ending in "." or " " is refused, and so is a segment with
// parameters whose name is empty, "." or ".." (Tomcat reads "..;x" as
// "..": "/public/..;/admin" is "/admin").
func segmentOK(seg string) bool {
	if seg == "." || seg == ".." {
		return true
	}
	name, _, hasParams := strings.Cut(seg, ";")
	if hasParams && (name == "" || name == "." || name == "..") {
		return false
	}
	if name == "" {
		return true // "//" or a trailing slash
	}
	last := name[len(name)-1]
	return last != '.' && last != ' '
}

// stripParams removes the ";" parameters of every segment of p, which
// segmentOK has checked.
func stripParams(p string) string {
	var b strings.Builder
	b.Grow(len(p))
	for i := 0; i < len(p); {
		j := strings.IndexByte(p[i:], ';')
		if j < 0 {
			b.WriteString(p[i:])
			break
		}
		b.WriteString(p[i : i+j])
		i += j
		if k := strings.IndexByte(p[i:], '/'); k >= 0 {
			i += k
		} else {
			break
		}
	}
	return b.String()
}

// safeUnicode reports whether the non-ASCII text of p is valid UTF-8 that
// no common normalization or case mapping turns into ASCII (NFKC:
// fullwidth forms, the KELVIN SIGN, "․" ONE DOT LEADER, "ſ" LONG S; case:
// "ı" DOTLESS I upper-cases to "I"), with no spaces and no format
// characters (zero-width, bidi controls, soft hyphen) that some stacks
// drop.
func safeUnicode(p string) bool {
	if !utf8.ValidString(p) {
		return false
	}
	var buf [32]byte
	for _, c := range p {
		if c < utf8.RuneSelf {
			continue
		}
		if unicode.IsSpace(c) || unicode.In(c, unicode.Cf, unicode.Cc, unicode.Zl, unicode.Zp, unicode.Co, unicode.Cs) || c == utf8.RuneError {
			return false
		}
		// Case folding that reaches ASCII: Java's equalsIgnoreCase and
		// toUpperCase read "ı" (dotless i) as "I", "ſ" as "S", the
		// KELVIN SIGN as "k".
		for f := unicode.SimpleFold(c); f != c; f = unicode.SimpleFold(f) {
			if f < utf8.RuneSelf {
				return false
			}
		}
		if unicode.ToUpper(c) < utf8.RuneSelf || unicode.ToLower(c) < utf8.RuneSelf {
			return false
		}
		n := utf8.EncodeRune(buf[:], c)
		for _, b := range norm.NFKC.Append(buf[n:n], buf[:n]...) {
			if b < utf8.RuneSelf {
				return false
			}
		}
	}
	return true
}

// containsFoldEscapedSlash reports whether raw holds "%2F", "%5C" or
// "%00" in any case.
func containsFoldEscapedSlash(raw string) bool {
	for i := 0; i+2 < len(raw); i++ {
		if raw[i] != '%' {
			continue
		}
		h, l := raw[i+1], raw[i+2]|0x20
		if (h == '2' && l == 'f') || (h == '5' && l == 'c') || (h == '0' && l == '0') {
			return true
		}
	}
	return false
}

// refusal is a request refused before its route's chain runs.
type refusal struct {
	status       int
	code, detail string
}

var (
	refuseAmbiguousPath = &refusal{http.StatusBadRequest, "invalid_path", "the request path is ambiguous to the upstream"}
	refuseOverride      = &refusal{http.StatusBadRequest, "invalid_method_override", "the method override is not acceptable here"}
)

// formOverrideLimit bounds the form body of a POST read for its
// "_method": a larger urlencoded form is refused with 413.
const formOverrideLimit = 1 << 20

// match routes r, whose cleaned path is p: the method-override fields
// are taken off the request first (and honored where the route allows
// them, see method.go), then the router picks the route, and a path that
// a case-insensitive or trailing-slash-lenient upstream would give to
// another route is refused (see ambiguous). ex is r's exchange, whose
// Body reads a form body's "_method" on a method_override route.
func (rt *runtime) match(ex *policy.Exchange, r *http.Request, p string, params []router.Param) (m router.Match[*route], out []router.Param, ref *refusal) {
	over, present := takeOverride(r)
	if r.Method != http.MethodPost {
		m, out = rt.router.Match(r.Host, r.Method, p, params)
		if m.Result == router.Found && rt.ambiguous(r.Host, r.Method, p, m.Value, m.Rank) {
			return router.Match[*route]{}, out[:0], refuseAmbiguousPath
		}
		return m, out, nil
	}
	m, out = rt.router.Match(r.Host, r.Method, p, params)
	postOverride := m.Result == router.Found && m.Value.methodOverride
	form := isForm(r)
	if postOverride && form {
		// Rails, Laravel and Symfony read "_method" from a form body
		// too: on a route that takes overrides it is one more source.
		vs, ref := takeFormOverride(ex)
		if ref != nil {
			return router.Match[*route]{}, out[:0], ref
		}
		if vs != nil {
			over, present = append(over, vs...), true
		}
		form = false // read and cleaned
	}
	if present {
		if ov, valid := overrideMethod(over); valid {
			if mo, po := rt.router.Match(r.Host, ov, p, params); mo.Result == router.Found && mo.Value.methodOverride {
				// The override is the request's method from here on:
				// routed, authorized, logged and forwarded.
				r.Method = ov
				if rt.ambiguous(r.Host, ov, p, mo.Value, mo.Rank) {
					return router.Match[*route]{}, po[:0], refuseAmbiguousPath
				}
				if form {
					if _, ref := takeFormOverride(ex); ref != nil {
						return router.Match[*route]{}, po[:0], ref
					}
				}
				return mo, po, nil
			}
			m, out = rt.router.Match(r.Host, r.Method, p, params)
		}
		if postOverride {
			// This route takes overrides and the client asked for
			// one it cannot have (not PUT, PATCH or DELETE, several
			// different ones, or one no override route takes): a
			// POST is not what it meant.
			return router.Match[*route]{}, out[:0], refuseOverride
		}
	}
	if m.Result != router.Found {
		return m, out, nil
	}
	if rt.ambiguous(r.Host, r.Method, p, m.Value, m.Rank) {
		return router.Match[*route]{}, out[:0], refuseAmbiguousPath
	}
	if form {
		// A route without overrides: the form's "_method" is removed
		// all the same, so that an upstream framework cannot run it.
		if _, ref := takeFormOverride(ex); ref != nil {
			return router.Match[*route]{}, out[:0], ref
		}
	}
	return m, out, nil
}

// takeFormOverride reads the form body of ex's request (formOverrideLimit
// at most, through Exchange.Body, so that policies reuse the bytes) and
// removes its "_method" fields, returning their values.
func takeFormOverride(ex *policy.Exchange) ([]string, *refusal) {
	body, err := ex.Body(formOverrideLimit)
	if err != nil {
		if d, ok := policy.AsDenial(err); ok {
			return nil, &refusal{d.StatusCode(), d.Code, d.Detail}
		}
		return nil, &refusal{http.StatusBadRequest, "invalid_request_body", "the request body could not be read"}
	}
	kept, vs, found := dropQueryParam(string(body), overrideParam)
	if found {
		ex.SetBody([]byte(kept))
	}
	return vs, nil
}

// isForm reports whether r's body is application/x-www-form-urlencoded.
func isForm(r *http.Request) bool {
	ct, _, _ := strings.Cut(r.Header.Get("Content-Type"), ";")
	return strings.EqualFold(strings.TrimSpace(ct), "application/x-www-form-urlencoded")
}

// ambiguous reports whether a stack that matches paths without regard to
// ASCII case (Express by default, Spring with a case-insensitive
// matcher, IIS) or that takes "/a/" for "/a" and the reverse (Express's
// non-strict routing, Spring's trailing slash match) could read p, routed
// to chosen with rank, as a path the router gives to another route (or
// to none of this method: 405) by a pattern at least as specific. The
// upstream would then serve that route's resource under the chosen
// route's policies: "/Admin" or "/admin/" taken by a public "/" prefix
// while "/admin" has its own route. The spelling the specific pattern
// names ("/admin") is not refused: a less specific pattern ("/") that
// also matches its variants does not name them. Patterns are expected in
// lower case; one with upper case is compared as written.
func (rt *runtime) ambiguous(host, method, p string, chosen *route, rank uint32) bool {
	lower := p
	for i := 0; i < len(p); i++ {
		if 'A' <= p[i] && p[i] <= 'Z' {
			lower = strings.ToLower(p)
			break
		}
	}
	other := func(v string) bool {
		// Lookup keeps nothing of v: a short variant is built on the
		// stack.
		m := rt.router.Lookup(host, method, v)
		switch m.Result {
		case router.Found:
			return m.Value != chosen && m.Rank >= rank
		case router.MethodNotAllowed:
			return m.Rank >= rank
		}
		return false
	}
	if lower != p && other(lower) {
		return true
	}
	if len(lower) > 1 {
		if lower[len(lower)-1] == '/' {
			return other(lower[:len(lower)-1]) || lower != p && other(p[:len(p)-1])
		}
		return other(lower+"/") || lower != p && other(p+"/")
	}
	return false
}
