package gateway

import (
	"net/http"
	"strings"
)

// h2TargetOK reports whether an HTTP/2 request's :path is one RFC 9113
// §8.3.1 allows for http and https: origin-form (a "/" and the path and
// query) or "*" for OPTIONS; CONNECT has none and is refused elsewhere.
// Go's server also accepts an absolute URI there
// (":path: http://other.example/x"), keeping its authority in URL.Host
// while Host is :authority, so that two authorities travel with one
// request; an intermediary must not forward such a malformed request
// (§8.1.1). HTTP/1.1's absolute-form is legal (RFC 9112 §3.2.2) and Go
// makes its authority the Host, so only HTTP/2 is checked.
func h2TargetOK(r *http.Request) bool {
	if r.ProtoMajor != 2 {
		return true
	}
	return strings.HasPrefix(r.RequestURI, "/") ||
		(r.Method == http.MethodOptions && r.RequestURI == "*") ||
		r.Method == http.MethodConnect
}
