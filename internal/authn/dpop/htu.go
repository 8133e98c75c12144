package dpop

import (
	"net"
	"net/http"
	"net/url"
	"strings"
)

// RequestURL returns the URL the client used for r as the gateway sees it:
// "https" when r came over TLS, else "http", then r.Host and r's path,
// without the query. It is the default of Options.PublicURL and is right
// when clients talk to the gateway directly; behind a TLS-terminating
// proxy or one that rewrites Host, the URL the client used differs and
// PublicURL must say so.
func RequestURL(r *http.Request) string {
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	return scheme + "://" + r.Host + r.URL.EscapedPath()
}

// normalizeURL reduces an absolute http(s) URL to the form in which two
// URLs for the same resource compare equal, per RFC 9449 §4.3, which asks
// for the syntax- and scheme-based normalisation of RFC 3986 §6.2.2-6.2.3:
// scheme and host lowercased, the scheme's default port dropped, percent
// encodings of unreserved characters decoded and the others uppercased,
// dot segments removed, an empty path made "/". The query and fragment
// are dropped (§4.3: they are not compared). ok is false for anything but
// an absolute http or https URL with a host and no user info.
func normalizeURL(s string) (string, bool) {
	u, err := url.Parse(s)
	if err != nil || u.Opaque != "" || u.User != nil || u.Host == "" {
		return "", false
	}
	scheme := strings.ToLower(u.Scheme)
	if scheme != "http" && scheme != "https" {
		return "", false
	}
	host := strings.ToLower(u.Hostname())
	if host == "" {
		return "", false
	}
	if port := u.Port(); port != "" && !(scheme == "http" && port == "80" || scheme == "https" && port == "443") {
		host = net.JoinHostPort(host, port)
	} else if strings.Contains(host, ":") {
		host = "[" + host + "]"
	}
	p, ok := normalizePath(u.EscapedPath())
	if !ok {
		return "", false
	}
	return scheme + "://" + host + p, true
}

// normalizePath normalises the percent encoding of an escaped path and
// removes its dot segments (RFC 3986 §5.2.4). ok is false for a malformed
// percent encoding.
func normalizePath(p string) (string, bool) {
	if p == "" {
		return "/", true
	}
	var b strings.Builder
	b.Grow(len(p))
	for i := 0; i < len(p); i++ {
		c := p[i]
		if c != '%' {
			b.WriteByte(c)
			continue
		}
		if i+2 >= len(p) || !isHex(p[i+1]) || !isHex(p[i+2]) {
			return "", false
		}
		d := unhex(p[i+1])<<4 | unhex(p[i+2])
		if isUnreserved(d) {
			b.WriteByte(d)
		} else {
			b.WriteByte('%')
			b.WriteByte(upper(p[i+1]))
			b.WriteByte(upper(p[i+2]))
		}
		i += 2
	}
	return removeDotSegments(b.String()), true
}

// removeDotSegments is RFC 3986 §5.2.4 for an absolute path.
func removeDotSegments(p string) string {
	if !strings.Contains(p, ".") {
		return p
	}
	segs := strings.Split(p, "/")
	out := make([]string, 0, len(segs))
	for i, s := range segs {
		last := i == len(segs)-1
		switch s {
		case ".":
			if last {
				out = append(out, "")
			}
		case "..":
			if len(out) > 1 {
				out = out[:len(out)-1]
			}
			if last {
				out = append(out, "")
			}
		default:
			out = append(out, s)
		}
	}
	r := strings.Join(out, "/")
	if !strings.HasPrefix(r, "/") {
		r = "/" + r
	}
	return r
}

func isHex(c byte) bool {
	return c >= '0' && c <= '9' || c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F'
}

func unhex(c byte) byte {
	switch {
	case c >= '0' && c <= '9':
		return c - '0'
	case c >= 'a' && c <= 'f':
		return c - 'a' + 10
	default:
		return c - 'A' + 10
	}
}

func upper(c byte) byte {
	if c >= 'a' && c <= 'f' {
		return c - 'a' + 'A'
	}
	return c
}

func isUnreserved(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' ||
		c == '-' || c == '.' || c == '_' || c == '~'
}
