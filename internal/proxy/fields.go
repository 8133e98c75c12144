package proxy

import (
	"errors"
	"net/http"

	"golang.org/x/net/http/httpguts"
)

// Field names are compared as the upstreams that read them compare them:
// ASCII case ignored and '_' taken for '-'. net/http canonicalizes the
// case of a name but keeps its underscores, so X_Forwarded_For reaches
// the gateway as a field of its own; nginx (underscores_in_headers),
// PHP, WSGI and every CGI-style stack read it as X-Forwarded-For.

// SameField reports whether the field names a and b are the same for an
// upstream: equal up to ASCII case, with '_' taken for '-'.
func SameField(a, b string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := 0; i < len(a); i++ {
		if foldField(a[i]) != foldField(b[i]) {
			return false
		}
	}
	return true
}

// foldField maps a name byte to the form names are compared in.
func foldField(c byte) byte {
	switch {
	case c == '_':
		return '-'
	case 'A' <= c && c <= 'Z':
		return c + 'a' - 'A'
	}
	return c
}

// hasFieldPrefix reports whether name begins with prefix, compared as
// SameField compares.
func hasFieldPrefix(name, prefix string) bool {
	return len(name) >= len(prefix) && SameField(name[:len(prefix)], prefix)
}

// inFields reports whether name is one of names, compared as SameField
// compares. Most names differ in length, which is looked at first: a
// lookup allocates nothing and costs little on the request path.
func inFields(name string, names []string) bool {
	for _, n := range names {
		if SameField(name, n) {
			return true
		}
	}
	return false
}

// forwardingNames are the single-address and path-override fields of
// ForwardingField; every X-Forwarded-* is one too.
var forwardingNames = []string{
	"forwarded", "x-real-ip", "true-client-ip", "x-client-ip",
	"x-cluster-client-ip", "client-ip", "cf-connecting-ip",
	"cf-connecting-ipv6", "fastly-client-ip", "x-original-forwarded-for",
	"x-originating-ip", "x-remote-ip", "x-remote-addr",
	"x-original-url", "x-rewrite-url",
}

// ForwardingField reports whether name (in any case, '_' for '-') is one
// of the fields proxies use to tell an upstream who the client is and how
// it reached them: Forwarded (RFC 7239), every X-Forwarded-* (Envoy's
// X-Forwarded-Client-Cert among them), and the single-address fields of
// common proxies and CDNs (X-Real-IP, True-Client-IP, X-Client-IP,
// X-Cluster-Client-IP, Client-IP, CF-Connecting-IP, Fastly-Client-IP,
// X-Original-Forwarded-For, X-Originating-IP, X-Remote-IP,
// X-Remote-Addr), and the path overrides some stacks honour from a front
// proxy (X-Original-URL, X-Rewrite-URL). Only a trusted proxy may send
// them; the gateway drops them from any other peer. Via is not among
// them: it names protocols, not clients.
func ForwardingField(name string) bool {
	return hasFieldPrefix(name, "x-forwarded-") || inFields(name, forwardingNames)
}

// hopNames are the fields of HopByHopField.
var hopNames = []string{
	"connection", "proxy-connection", "keep-alive", "proxy-authenticate",
	"proxy-authorization", "te", "trailer", "transfer-encoding", "upgrade",
	"http2-settings", "content-length", "host",
}

// HopByHopField reports whether name (in any case, '_' for '-') is a
// field that concerns one connection only and is never passed on by a
// proxy (RFC 9110 §7.6.1), HTTP2-Settings (RFC 7540 §3.2) included, or a
// field of the message's framing (Content-Length, Transfer-Encoding,
// Host, Trailer).
func HopByHopField(name string) bool {
	return inFields(name, hopNames)
}

// RequestIDField is the field carrying the gateway's request id.
const RequestIDField = "X-Request-Id"

// notTrailerNames and notTrailerPrefixes are the fields TrailerAllowed
// refuses besides the hop-by-hop and forwarding ones.
var (
	notTrailerNames = []string{
		// routing and request modifiers
		"expect", "max-forwards", "range", "cache-control", "pragma",
		"x-http-method-override", "x-http-method", "x-method-override",
		// authentication
		"authorization", "www-authenticate", "authentication-info",
		"realm", "dpop", "x-api-key",
		// cookies
		"cookie", "cookie2", "set-cookie", "set-cookie2",
		// response controls
		"age", "expires", "date", "location", "retry-after", "vary",
		"warning", "strict-transport-security", "content-security-policy",
		// content metadata
		"content-type", "content-encoding", "content-range",
		"content-language", "content-location", "content-disposition",
		// forwarding and the gateway's own
		"via", "x-request-id", "x-gatehouse-identity",
	}
	notTrailerPrefixes = []string{"proxy-", "if-", "access-control-", "sec-"}
)

// TrailerAllowed reports whether a field named name may be passed on in a
// trailer section. RFC 9110 §6.5.1 keeps out of trailers the fields that
// must be known before the content: framing, routing, request modifiers
// (conditionals, ranges, cache directives, Expect), authentication,
// response controls and the content's own metadata. Gatehouse adds the
// fields an upstream takes the gateway's word for: cookies, forwarding
// fields, the request id, method overrides, and protected, the names a
// route's policies set or strip (the identity headers and the identity
// token). Names are compared in any case and with '_' for '-'. A name
// that is not a valid field name, or a pseudo-header, is refused too.
func TrailerAllowed(name string, protected []string) bool {
	if name == "" || name[0] == ':' || !httpguts.ValidHeaderFieldName(name) {
		return false
	}
	if HopByHopField(name) || ForwardingField(name) || inFields(name, notTrailerNames) || inFields(name, protected) {
		return false
	}
	for _, p := range notTrailerPrefixes {
		if hasFieldPrefix(name, p) {
			return false
		}
	}
	return true
}

// trailerNames returns the names of declared (a trailer's declared names,
// as its Trailer field announced them) that may be passed on: allowed by
// TrailerAllowed and not also a field of the message's header section h
// (no trailer may stand in for a header field, RFC 9110 §6.5.2). Nil when
// none may.
func trailerNames(declared, h http.Header, protected []string) []string {
	var names []string
	for k := range declared {
		if !TrailerAllowed(k, protected) {
			continue
		}
		inHead := false
		for hk := range h {
			if SameField(hk, k) {
				inHead = true
				break
			}
		}
		if !inHead {
			names = append(names, k)
		}
	}
	return names
}

// keepTrailers reduces t to the names given, dropping values no HTTP/1.1
// message may carry.
func keepTrailers(t http.Header, names []string) {
	for k, vv := range t {
		keep := false
		for _, n := range names {
			if n == k {
				keep = true
				break
			}
		}
		if !keep {
			delete(t, k)
			continue
		}
		for _, v := range vv {
			if !httpguts.ValidHeaderFieldValue(v) {
				delete(t, k)
				break
			}
		}
	}
}

// protocolError is an upstream that switched protocols (101) when the
// client had not legitimately asked it to: no upgrade was forwarded, or
// to another protocol.
type protocolError struct{ msg string }

func (e protocolError) Error() string { return e.msg }

// ProtocolError reports that err, given to the ErrorHandler, is an
// upstream that broke the protocol (a 101 nobody asked for): the gateway
// answers 502 upstream_protocol_error and closes the client's connection.
func ProtocolError(err error) bool {
	var pe protocolError
	return errors.As(err, &pe)
}
