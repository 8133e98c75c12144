package policy

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/netip"
	"strconv"
	"time"

	"github.com/gatehouse/gatehouse/internal/router"
	"github.com/gatehouse/gatehouse/internal/soap"
)

// Protocol is what a route speaks, which decides how denials are rendered.
type Protocol uint8

const (
	// REST routes answer denials with RFC 9457 problem+json.
	REST Protocol = iota
	// SOAP11 routes answer denials with a SOAP 1.1 Fault.
	SOAP11
	// SOAP12 routes answer denials with a SOAP 1.2 Fault.
	SOAP12
)

func (p Protocol) String() string {
	switch p {
	case SOAP11:
		return "soap1.1"
	case SOAP12:
		return "soap1.2"
	default:
		return "rest"
	}
}

// Route is what a policy knows of the route it runs on.
type Route struct {
	Name     string
	Protocol Protocol
	// Realm is the protection space every WWW-Authenticate challenge of
	// the route names, 401 and 403 alike: set once per route by the
	// gateway (from the realm its policies agree on). Empty outside the
	// gateway; see ChallengeRealm.
	Realm string
}

// DefaultRealm is the realm of a route none of whose policies names one.
const DefaultRealm = "gatehouse"

// ChallengeRealm returns the realm a policy's challenges name: Realm, or
// DefaultRealm when it is empty.
func (r Route) ChallengeRealm() string {
	if r.Realm == "" {
		return DefaultRealm
	}
	return r.Realm
}

// Principal is the authenticated caller of a request.
type Principal struct {
	// Subject is who the caller is (a user, or a client for machine calls).
	Subject string
	// ClientID is the OAuth client or API consumer the call came through.
	ClientID string
	// Consumer names the consumer used for limits and quotas.
	Consumer string
	// Scopes are the granted scopes.
	Scopes []string
	// Claims are further attributes (token claims, SAML attributes).
	Claims map[string]any
	// Method says how the identity was proven: "jwt", "introspection",
	// "apikey", "mtls", "wss-username", "wss-x509", "saml".
	Method string
}

// Exchange is one request on its way through a route's chain. It is owned by
// one goroutine at a time and must not be kept after the request ends.
type Exchange struct {
	// Request is the client's request; policies may change its headers and
	// URL query. Its Body streams unless a policy called Body.
	Request *http.Request
	// Route is the matched route.
	Route *Route
	// Principal is the authenticated caller; nil until a policy proves one.
	Principal *Principal
	// ClientIP is the client's address, taking trusted proxies into account.
	ClientIP netip.Addr
	// TLS reports whether the client connection is TLS.
	TLS bool
	// RequestID identifies the request in logs and the X-Request-Id header.
	RequestID string
	// Params are the route's path template parameters.
	Params []router.Param
	// Start is when the gateway received the request.
	Start time.Time
	// Timings records each policy's verdict and duration, in chain order.
	Timings []Timing
	// ResponseHeader holds headers policies want added to the response
	// (RateLimit, quota remaining), whether the request is allowed or
	// refused. The gateway adds them just before the status is written.
	// Nil or empty until a policy calls AddResponseHeader. The gateway
	// copies values out of it; a policy must not change a value slice in
	// place once added, as a later policy may share it.
	ResponseHeader http.Header
	// ResponseBody is what the response body (after the status line and
	// headers) is written through on its way to the client. The gateway
	// sets it before the chain runs. A policy that counts or paces the
	// bytes sent (quota, throttle) replaces it in Apply with a writer of
	// its own that passes every byte on to the writer it replaced, and
	// returns that writer's errors. Nil outside the gateway: nothing to
	// wrap. The request body needs no such hook: a policy may wrap
	// Request.Body itself.
	ResponseBody io.Writer
	// HoldHeader, when a policy sets it in Apply, holds the response's
	// status line and headers back after the response policies ran, for a
	// ResponseBody writer that must see the body before the status is
	// decided (dlp's block mode). The gateway calls it once, instead of
	// writing them, with the status, the header about to be sent (which it
	// may change) and send, which writes them with the status given. The
	// policy calls send once, before its writer passes the first body byte
	// on, and at the latest from a function registered with OnResponseEnd;
	// until then the gateway's Flush sends nothing. Nil: they are written at
	// once. One per exchange: a later policy setting it replaces it.
	HoldHeader func(status int, header http.Header, send func(status int))
	// SOAP is the request body parsed as a SOAP envelope, left by the
	// policy that parsed it (xmlguard, after its XML firewall scan) for
	// later ones (wssecurity) to read instead of parsing it again. Nil
	// until a policy sets it. It describes the bytes Body returns: SetBody
	// clears it. Read-only: policies share the tree.
	SOAP *soap.Message

	body     []byte
	bodyRead bool
	done     []func()
	ends     []func()
}

// OnResponseEnd registers fn to run when the response's body is complete
// (the upstream's copy ended, or the gateway's own response was written),
// before the access log line and before the OnDone functions. Functions
// run in the reverse order of registration, so that a ResponseBody writer
// wrapped around another passes on what it held back (a sliding window's
// tail, a buffered body) before the inner one passes on its own. They are
// not run when the response aborted. fn must not block for long.
func (ex *Exchange) OnResponseEnd(fn func()) { ex.ends = append(ex.ends, fn) }

// EndResponse runs the functions registered with OnResponseEnd, last first,
// and forgets them. The gateway calls it once the response body is
// complete; calling it again runs nothing.
func (ex *Exchange) EndResponse() {
	for i := len(ex.ends) - 1; i >= 0; i-- {
		fn := ex.ends[i]
		ex.ends[i] = nil
		ex.ends = ex.ends[:i]
		fn()
	}
}

// OnDone registers fn to run once when the gateway has finished with the
// request: the response is complete, failed, or was abandoned by the
// client. Functions run in the reverse order of registration, on the
// request's goroutine, after the access log line; they release what
// Apply took (a concurrency slot) and flush what the body writers
// counted (quota bytes). fn must not block for long.
func (ex *Exchange) OnDone(fn func()) { ex.done = append(ex.done, fn) }

// Done runs the functions registered with OnDone, last first, and forgets
// them. The gateway calls it once per request; calling it again runs
// nothing.
func (ex *Exchange) Done() {
	for i := len(ex.done) - 1; i >= 0; i-- {
		fn := ex.done[i]
		ex.done[i] = nil
		ex.done = ex.done[:i]
		fn()
	}
}

// PathParam returns the value of the path template parameter name, or "".
func (ex *Exchange) PathParam(name string) string {
	for _, p := range ex.Params {
		if p.Key == name {
			return p.Value
		}
	}
	return ""
}

// ErrBodyTooLarge is the cause of the Denial returned by Body when the body
// exceeds the limit.
var ErrBodyTooLarge = errors.New("request body too large")

// Body buffers the request body, up to limit bytes, and returns it. The
// request's Body is replaced so that the upstream still receives it in full.
// A body over limit is refused with a 413 Denial (code body_too_large).
// Calling Body again returns the same bytes; a later call with a smaller
// limit than the buffered size also refuses.
func (ex *Exchange) Body(limit int64) ([]byte, error) {
	if ex.bodyRead {
		if int64(len(ex.body)) > limit {
			return nil, tooLarge(limit)
		}
		return ex.body, nil
	}
	r := ex.Request
	if r.ContentLength > limit {
		return nil, tooLarge(limit)
	}
	if r.Body == nil || r.Body == http.NoBody {
		ex.bodyRead = true
		return nil, nil
	}
	var buf bytes.Buffer
	if r.ContentLength > 0 {
		buf.Grow(int(r.ContentLength))
	}
	n, err := buf.ReadFrom(io.LimitReader(r.Body, limit+1))
	if err != nil {
		return nil, fmt.Errorf("policy: reading request body: %w", err)
	}
	if n > limit {
		return nil, tooLarge(limit)
	}
	r.Body.Close()
	ex.body = buf.Bytes()
	ex.bodyRead = true
	r.Body = io.NopCloser(bytes.NewReader(ex.body))
	r.ContentLength = n
	r.GetBody = func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(ex.body)), nil }
	return ex.body, nil
}

// SetBody replaces the request body with b: later policies' Body calls
// return b, and the upstream receives it, with a matching Content-Length.
// Policies that rewrite the message (removing a WS-Security header, masking
// a field) use it so that the chain and the upstream see the same bytes.
func (ex *Exchange) SetBody(b []byte) {
	ex.body, ex.bodyRead = b, true
	ex.SOAP = nil // a tree of the old bytes
	r := ex.Request
	if r.Body != nil {
		r.Body.Close()
	}
	r.Body = io.NopCloser(bytes.NewReader(b))
	r.ContentLength = int64(len(b))
	r.GetBody = func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(b)), nil }
	if _, ok := r.Header["Content-Length"]; ok {
		r.Header.Set("Content-Length", strconv.Itoa(len(b)))
	}
}

func tooLarge(limit int64) *Denial {
	return &Denial{
		Status: http.StatusRequestEntityTooLarge,
		Code:   "body_too_large",
		Detail: fmt.Sprintf("request body exceeds %d bytes", limit),
		Err:    ErrBodyTooLarge,
	}
}

// AddResponseHeader records a header to add to the response.
func (ex *Exchange) AddResponseHeader(key, value string) {
	if ex.ResponseHeader == nil {
		ex.ResponseHeader = make(http.Header, 4)
	}
	ex.ResponseHeader.Add(key, value)
}

// Reset clears ex for reuse from a pool.
func (ex *Exchange) Reset() {
	timings := ex.Timings[:0]
	params := ex.Params[:0]
	done := ex.done[:0]
	ends := ex.ends[:0]
	// The map is kept for the next request, emptied: most requests
	// through a rate limit or quota add headers, and a new map was two
	// allocations of each.
	rh := ex.ResponseHeader
	clear(rh)
	*ex = Exchange{Timings: timings, Params: params, done: done, ends: ends, ResponseHeader: rh}
}
