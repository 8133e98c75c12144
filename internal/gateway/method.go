package gateway

import (
	"net/http"
	"net/url"
	"strings"
)

// Method override: frameworks let a client that can only send GET and
// POST name the real method in a header (X-HTTP-Method-Override,
// X-HTTP-Method, X-Method-Override) or a "_method" parameter (Rails,
// Laravel, Symfony, Express's method-override). An upstream honoring one
// the gateway did not see would run a DELETE that was authorized as a
// POST. So the fields never reach an upstream: takeOverride removes them
// from every request before routing, and only on a route with
// method_override: true does a POST's override become the request's
// method, before it is routed, authorized and forwarded.

// overrideParam is the query parameter of method override.
const overrideParam = "_method"

// isOverrideField reports whether the header field name k is one of the
// method-override fields, in any case and with "_" for "-"
// (X_HTTP_Method_Override: net/http keeps such a name as sent, and CGI-
// style stacks read it as the dashed one).
func isOverrideField(k string) bool {
	switch len(k) {
	case len("X-HTTP-Method"), len("X-Method-Override"), len("X-HTTP-Method-Override"):
	default:
		return false
	}
	var buf [len("X-HTTP-Method-Override")]byte
	for i := 0; i < len(k); i++ {
		c := k[i]
		switch {
		case 'A' <= c && c <= 'Z':
			c += 'a' - 'A'
		case c == '_':
			c = '-'
		}
		buf[i] = c
	}
	switch string(buf[:len(k)]) {
	case "x-http-method", "x-method-override", "x-http-method-override":
		return true
	}
	return false
}

// takeOverride removes the method-override header fields and the
// "_method" query parameters (its name decoded: "%5Fmethod" too) from r
// and returns their values; present says whether there was any.
func takeOverride(r *http.Request) (values []string, present bool) {
	for k, vs := range r.Header {
		if isOverrideField(k) {
			values = append(values, vs...)
			if len(vs) == 0 {
				values = append(values, "")
			}
			delete(r.Header, k)
			present = true
		}
	}
	if q := r.URL.RawQuery; q != "" && (strings.Contains(q, overrideParam) || strings.IndexByte(q, '%') >= 0) {
		kept, vs, found := dropQueryParam(q, overrideParam)
		if found {
			r.URL.RawQuery = kept
			values = append(values, vs...)
			present = true
		}
	}
	return values, present
}

// dropQueryParam returns q without its name parameters (their name
// compared after decoding) and their decoded values. Pairs are separated
// by "&" or ";" (Rack 2 and old CGI libraries split on both); the other
// pairs are kept byte for byte, in order, with their separators.
func dropQueryParam(q, name string) (kept string, values []string, found bool) {
	var b strings.Builder
	sep := byte(0)
	for rest := q; rest != ""; {
		pair, next := rest, byte(0)
		if i := strings.IndexAny(rest, "&;"); i >= 0 {
			pair, next, rest = rest[:i], rest[i], rest[i+1:]
		} else {
			rest = ""
		}
		k, v, _ := strings.Cut(pair, "=")
		if dk, err := url.QueryUnescape(k); err == nil && dk == name || k == name {
			dv, err := url.QueryUnescape(v)
			if err != nil {
				dv = "\x00" // not a method: refused where it matters
			}
			values = append(values, dv)
			found = true
			continue
		}
		if b.Len() > 0 {
			b.WriteByte(sep)
		}
		b.WriteString(pair)
		if next != 0 {
			sep = next
		}
	}
	return b.String(), values, found
}

// overrideMethod returns the method the override values name and whether
// it is one a POST may become: exactly PUT, PATCH or DELETE (methods are
// case-sensitive), the same in every field that carried one. Not GET,
// HEAD or OPTIONS (a body on a method whose body some upstreams ignore
// desynchronizes the connection), never CONNECT or TRACE.
func overrideMethod(values []string) (string, bool) {
	m := ""
	for _, v := range values {
		switch {
		case v != http.MethodPut && v != http.MethodPatch && v != http.MethodDelete:
			return "", false
		case m != "" && v != m:
			return "", false
		}
		m = v
	}
	return m, m != ""
}
