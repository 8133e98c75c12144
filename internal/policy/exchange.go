package policy

import (
	"bytes"
	"context"
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
	// FaultStatus, when not 0, is the HTTP status of every SOAP 1.1 Fault
	// of the route (500 for WS-I Basic Profile R1126); see
	// render.RouteDenial.
	FaultStatus int
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
	// refused. The gateway adds them to the response header before the
	// response filters see the status.
	// Nil or empty until a policy calls AddResponseHeader. The gateway
	// copies values out of it; a policy must not change a value slice in
	// place once added, as a later policy may share it.
	ResponseHeader http.Header
	// GatewayResponse is set by the gateway while the response being
	// written is its own (a denial, a gateway error, a response filter's
	// refusal) rather than the upstream's. Filters that inspect the
	// upstream's body (dlp, openapi) pass such a response through.
	GatewayResponse bool
	// SOAP is the request body parsed as a SOAP envelope, left by the
	// policy that parsed it (xmlguard, after its XML firewall scan) for
	// later ones (wssecurity) to read instead of parsing it again. Nil
	// until a policy sets it. It describes the bytes Body returns: SetBody
	// clears it. Read-only: policies share the tree.
	SOAP *soap.Message

	body     []byte
	bodyRead bool
	done     []func()
	values   []keyValue
	plainChk []PlaintextCheck
}

// A PlaintextCheck is a check of the request body that a policy (xmlguard)
// registers with AddPlaintextCheck after it has passed the message as it
// arrived, so that a later policy which decrypts the message (wssecurity)
// can apply it again to the plaintext: a policy placed before decryption
// sees only ciphertext. Policies do not import each other; this is their
// contract.
type PlaintextCheck interface {
	// CheckPlaintext checks msg, the whole decrypted message exactly as
	// later policies and the upstream receive it (the request body has
	// already been set to it), as the policy would have checked that
	// message had it arrived in clear. It returns nil, or the *Denial the
	// policy gives such a message.
	CheckPlaintext(ctx context.Context, ex *Exchange, msg []byte) error
}

// AddPlaintextCheck registers c for the policies that decrypt the body
// later in the chain (see PlaintextCheck).
func (ex *Exchange) AddPlaintextCheck(c PlaintextCheck) { ex.plainChk = append(ex.plainChk, c) }

// PlaintextChecks returns the checks registered with AddPlaintextCheck, in
// registration order. A policy that replaces the body with the plaintext of
// an encrypted message runs each of them on it. The slice is the
// Exchange's; callers must not keep or change it.
func (ex *Exchange) PlaintextChecks() []PlaintextCheck { return ex.plainChk }

type keyValue struct{ key, val any }

// SetValue keeps val for key until the request ends: what a policy's
// Apply leaves for its own FilterResponse (quota's byte meter, throttle's
// bucket). key is comparable and the policy's own, usually the policy
// itself, so that two policies of one type on a route keep apart. Storing a
// pointer allocates nothing once the pooled Exchange has room.
func (ex *Exchange) SetValue(key, val any) {
	for i := range ex.values {
		if ex.values[i].key == key {
			ex.values[i].val = val
			return
		}
	}
	ex.values = append(ex.values, keyValue{key, val})
}

// Value returns what SetValue kept for key, or nil.
func (ex *Exchange) Value(key any) any {
	for i := range ex.values {
		if ex.values[i].key == key {
			return ex.values[i].val
		}
	}
	return nil
}

// OnDone registers fn to run once when the gateway has finished with the
// request: the response is complete, failed, or was abandoned by the
// client. Functions run in the reverse order of registration, on the
// request's goroutine, after the access log line; they release what
// Apply took (a concurrency slot) and flush what the body writers
// counted (quota bytes). It is the request's lifecycle, not the
// response's: it runs when a later policy refused the request and when
// the response aborted, where a ResponseWriter's End does not. fn must
// not block for long.
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
		// ReadFrom wants MinRead bytes of room for every read, the one
		// that finds the end included: with only the body's length it
		// would grow the buffer, and copy the body, once it was all in.
		buf.Grow(int(r.ContentLength) + bytes.MinRead)
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
	clear(ex.values)
	values := ex.values[:0]
	clear(ex.plainChk)
	plainChk := ex.plainChk[:0]
	// The map is kept for the next request, emptied: most requests
	// through a rate limit or quota add headers, and a new map was two
	// allocations of each.
	rh := ex.ResponseHeader
	clear(rh)
	*ex = Exchange{Timings: timings, Params: params, done: done, values: values, plainChk: plainChk, ResponseHeader: rh}
}
