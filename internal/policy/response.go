package policy

import (
	"net/http"
	"strings"
)

// A ResponseFilter sees the response on its way out: the upstream's and
// the gateway's own (denials, gateway errors) alike. A policy that is also
// a ResponseFilter has FilterResponse called once per response, when the
// response begins (its status is about to be written), whether or not the
// policy's Apply ran for the request: a policy after the one that refused
// still sets its security headers on the refusal.
//
// The filters of a route wrap the writer in chain order: the first policy
// of the route is the one nearest the client, the last one sees the
// response first, as middleware does. FilterResponse returns the writer the
// response is written to, which passes it on to next; a filter with nothing
// to do for this response returns next itself.
//
// Any number of filters on one route may hold the response back: each
// holds what it was given until it has decided, and passes on what it
// accepts. A filter's writer embeds next (or forwards every method it does
// not override to it), so that what it does not change reaches the client.
type ResponseFilter interface {
	FilterResponse(ex *Exchange, next ResponseWriter) ResponseWriter
}

// A ResponseWriter is what a ResponseFilter writes the response to: the
// next filter towards the client, through the gateway. Its contract, for
// the filter calling it:
//
//   - The header map is shared by the whole chain: Header returns the one
//     the client will be sent. Edit it before calling WriteHeader.
//   - WriteHeader is called at most once, with a final status (1xx
//     responses never reach filters), before the first Write. A Write or
//     Flush before it means 200.
//   - Write passes on body bytes; every byte accepted is passed on, in
//     order, by End at the latest. An error means the client is gone: give
//     up the response and return it.
//   - Flush asks for what was passed on to be sent now (streaming, SSE). A
//     filter holding the response back does not pass Flush on.
//   - End says the body is complete: pass on what is held (the status
//     included, if it still is), then call next.End once. End is not
//     called for a response that aborted (the upstream cut it short);
//     nothing held is ever sent then.
//   - Refuse(d) replaces the response, instead of WriteHeader, with the
//     gateway's rendering of d (problem+json or a SOAP Fault), written to
//     the filters below the caller as a response of the gateway's own
//     (Exchange.GatewayResponse is set). The refused response's
//     entity headers (Content-*, ETag, Set-Cookie, Location, ...) are
//     removed first. What is written after Refuse is dropped; End is still
//     called. Refuse after WriteHeader cannot replace what the client may
//     have received: the gateway aborts the response instead (the client
//     sees it cut short, never as complete). A policy never renders a
//     response itself.
type ResponseWriter interface {
	Header() http.Header
	WriteHeader(status int)
	Write(b []byte) (int, error)
	Flush()
	End()
	Refuse(d *Denial)
}

// DropTrailers removes from h, a response header map, the trailers it
// declares and those set after the header was sent (http.TrailerPrefix),
// and the declaration itself: a filter that cannot see trailers (they
// come after the body it checked) or a refusal that replaces the body
// they belong to keeps them from the client. Called before WriteHeader it
// also keeps net/http from taking declared names as trailers; called at
// End it removes those set since.
func DropTrailers(h http.Header) {
	for _, v := range h["Trailer"] {
		for _, k := range strings.Split(v, ",") {
			if k = strings.TrimSpace(k); k != "" {
				delete(h, http.CanonicalHeaderKey(k))
			}
		}
	}
	delete(h, "Trailer")
	for k := range h {
		if strings.HasPrefix(k, http.TrailerPrefix) {
			delete(h, k)
		}
	}
}
