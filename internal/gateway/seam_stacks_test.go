package gateway_test

// The path resolution of four common upstream stacks, written from their
// documentation (and, where the documentation is thin, their source), as
// the seam tests of path_seam_test.go need them: what resource a stack
// serves for a request-target it receives. Each resolver returns the path
// the stack compares with its routes, already folded the way it compares
// (lower case for Express, without a trailing slash where the stack
// ignores it), or ok false when the stack refuses the request (400).

import (
	"net/url"
	"path"
	"strings"
	"unicode/utf8"
)

// stack is one upstream stack's reading of a request-target.
type stack struct {
	name    string
	resolve func(target string) (string, bool)
}

var stacks = []stack{
	{"tomcat-spring", resolveTomcatSpring},
	{"express", resolveExpress},
	{"nginx", resolveNginx},
	{"go-servemux", resolveServeMux},
}

// pathOf is the path of a request-target: origin-form up to "?", the path
// of an absolute-form target (RFC 9112 §3.2.2).
func pathOf(target string) string {
	if i := strings.Index(target, "://"); i > 0 && !strings.Contains(target[:i], "/") {
		rest := target[i+3:]
		j := strings.IndexAny(rest, "/?")
		if j < 0 || rest[j] == '?' {
			return "/"
		}
		target = rest[j:]
	}
	if i := strings.IndexAny(target, "?#"); i >= 0 {
		target = target[:i]
	}
	return target
}

func containsFold(s, sub string) bool {
	return strings.Contains(strings.ToLower(s), strings.ToLower(sub))
}

// removeDots resolves "." and ".." segments and merges empty ones as a
// normalizing server does; a trailing "/", "." or ".." leaves a trailing
// slash (RFC 3986 §5.2.4). ok is false when ".." climbs above the root,
// which Tomcat and nginx refuse.
func removeDots(p string) (string, bool) {
	var out []string
	segs := strings.Split(p[1:], "/")
	trailing := false
	for i, s := range segs {
		last := i == len(segs)-1
		switch s {
		case "", ".":
			trailing = last
		case "..":
			if len(out) == 0 {
				return "", false
			}
			out = out[:len(out)-1]
			trailing = last
		default:
			out = append(out, s)
			trailing = false
		}
	}
	r := "/" + strings.Join(out, "/")
	if trailing && r != "/" {
		r += "/"
	}
	return r, true
}

func trimSlash(p string) string {
	if len(p) > 1 {
		return strings.TrimSuffix(p, "/")
	}
	return p
}

// resolveTomcatSpring: Tomcat 10's CoyoteAdapter.postParseRequest, then
// Spring MVC 5.3's defaults.
//
//   - path parameters are removed from the undecoded path first
//     (parsePathParameters: from each ";" to the next "/"), so "..;" is
//     "..", "/admin;x/" is "/admin/", and an encoded "%3B" is not one;
//   - an encoded "/" is refused (encodedSolidusHandling=reject), and so
//     are a backslash (ALLOW_BACKSLASH=false), "%5C" and "%00";
//   - the path is %-decoded as UTF-8, malformed input refused;
//   - normalize(): "//" merged, "." and ".." resolved, ".." above the root
//     refused;
//   - Spring MVC matches case-sensitively and, with
//     setUseTrailingSlashMatch (true before 6.0), "/a/" as "/a".
func resolveTomcatSpring(target string) (string, bool) {
	p := pathOf(target)
	if !strings.HasPrefix(p, "/") {
		return "", false
	}
	var b strings.Builder
	for i := 0; i < len(p); {
		j := strings.IndexByte(p[i:], ';')
		if j < 0 {
			b.WriteString(p[i:])
			break
		}
		b.WriteString(p[i : i+j])
		i += j
		k := strings.IndexByte(p[i:], '/')
		if k < 0 {
			break
		}
		i += k
	}
	p = b.String()
	if containsFold(p, "%2f") || containsFold(p, "%5c") || containsFold(p, "%00") || strings.ContainsAny(p, "\\\x00") {
		return "", false
	}
	d, err := url.PathUnescape(p)
	if err != nil || !utf8.ValidString(d) {
		return "", false
	}
	d, ok := removeDots(d)
	if !ok {
		return "", false
	}
	return trimSlash(d), true
}

// resolveExpress: Express 4 on Node's http server. Node passes the
// request-target as sent; Express routes on req.path (parseurl's
// pathname: not %-decoded, no dot segments resolved), with path-to-regexp
// patterns that are case-insensitive (caseSensitive: false) and take an
// optional trailing slash (strict: false). A ";" is a literal. Only
// parameters are decoded, after matching.
func resolveExpress(target string) (string, bool) {
	p := pathOf(target)
	if !strings.HasPrefix(p, "/") {
		return "", false
	}
	return trimSlash(strings.ToLower(p)), true
}

// resolveNginx: nginx's ngx_http_parse_complex_uri with merge_slashes on
// (the default), on Linux: "%XX" decoded in the same pass (an encoded "/"
// becomes a separator, an encoded "." a dot), a malformed escape or a
// decoded NUL refused, "//" merged, "." and ".." resolved, ".." above the
// root refused. A backslash and ";" are literals; locations compare
// case-sensitively and "/a/" is not "/a".
func resolveNginx(target string) (string, bool) {
	p := pathOf(target)
	if !strings.HasPrefix(p, "/") {
		return "", false
	}
	d, err := url.PathUnescape(p)
	if err != nil || strings.IndexByte(d, 0) >= 0 {
		return "", false
	}
	return removeDots(d)
}

// resolveServeMux: Go's net/http server and ServeMux (Go 1.22 patterns).
// The server refuses a target url.ParseRequestURI refuses (a malformed
// escape, a control byte). The mux redirects a path that is not clean
// (path.Clean, keeping a trailing slash) to the clean one, so the
// resource served is the clean path's; it matches each segment in its
// escaped form decoded, so "%2F" stays inside one segment. Case-sensitive,
// "/a/" is not "/a".
func resolveServeMux(target string) (string, bool) {
	u, err := url.ParseRequestURI(target)
	if err != nil {
		return "", false
	}
	ep := u.EscapedPath()
	if !strings.HasPrefix(ep, "/") {
		return "", false
	}
	segs := strings.Split(ep, "/")
	for i, s := range segs {
		d, err := url.PathUnescape(s)
		if err != nil {
			return "", false
		}
		segs[i] = strings.ReplaceAll(d, "/", "%2F")
	}
	p := strings.Join(segs, "/")
	c := path.Clean(p)
	if strings.HasSuffix(p, "/") && c != "/" {
		c += "/"
	}
	return c, true
}
