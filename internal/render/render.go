// Package render is the one place that turns a refusal or a gateway error
// into an HTTP response, in the shape the route speaks: RFC 9457 problem
// details (application/problem+json) on REST routes, a SOAP 1.1 or 1.2 Fault
// on SOAP routes.
//
// Keeping every denial in one renderer means every policy's refusal gets the
// same headers (Cache-Control: no-store, nosniff), the same escaping and the
// same request id, and that an internal cause (Denial.Err) can never leak.
package render

import (
	"net/http"
	"slices"
	"strconv"
	"sync"

	"github.com/gatehouse/gatehouse/internal/policy"
)

// Content types of the rendered bodies.
const (
	ContentTypeProblem = "application/problem+json"
	ContentTypeSOAP11  = "text/xml; charset=utf-8"
	ContentTypeSOAP12  = "application/soap+xml; charset=utf-8"
)

// Namespaces used in SOAP faults.
const (
	NamespaceSOAP11 = "http://schemas.xmlsoap.org/soap/envelope/"
	NamespaceSOAP12 = "http://www.w3.org/2003/05/soap-envelope"
	// NamespaceWSSE is the WS-Security 1.0 secext namespace that qualifies
	// the fault codes of WSS 1.1 §12 (wsse:FailedAuthentication, ...).
	NamespaceWSSE = "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-secext-1.0.xsd"
	// NamespaceError qualifies Gatehouse's own elements in fault details.
	NamespaceError = "urn:gatehouse:error"
)

// wssePrefix marks a Denial code that is a WS-Security fault code QName.
const wssePrefix = "wsse:"

// Denial writes d as the response to r, shaped for proto, and tags it with
// requestID (omitted from the body when empty).
//
// The headers of d.Header replace any of the same name already set on w;
// then Content-Type, Content-Length, Cache-Control: no-store and
// X-Content-Type-Options: nosniff are set. d.Err is never written. A HEAD
// request gets the headers only. A nil d is rendered as 500 internal_error,
// so a bug upstream of the renderer still fails closed.
//
// The status is d.StatusCode() on every protocol, SOAP included: SOAP 1.1's
// HTTP binding says faults travel with 500 and SOAP 1.2's maps Sender to
// 400, but a 401 that carries WWW-Authenticate or a 429 that carries
// Retry-After means something to clients, retry logic and load balancers
// that a 500 would hide, and SOAP toolkits read the Fault whatever the
// status.
func Denial(w http.ResponseWriter, r *http.Request, proto policy.Protocol, requestID string, d *policy.Denial) {
	write(w, r, proto, requestID, d, 0)
}

// RouteDenial is Denial on route: as Denial with route.Protocol, except
// that on a SOAP 1.1 route with a FaultStatus (soap_fault_status: 500,
// WS-I Basic Profile 1.1 R1126: "An INSTANCE MUST use a 500 Internal
// Server Error HTTP status code if the response message is a SOAP
// Fault") the HTTP status is that. The Fault is the one Denial writes,
// faultcode included: a refused credential stays soap:Client or its wsse
// code, only the status line changes.
func RouteDenial(w http.ResponseWriter, r *http.Request, route *policy.Route, requestID string, d *policy.Denial) {
	if route == nil {
		Denial(w, r, policy.REST, requestID, d)
		return
	}
	httpStatus := 0
	if route.Protocol == policy.SOAP11 {
		httpStatus = route.FaultStatus
	}
	write(w, r, route.Protocol, requestID, d, httpStatus)
}

// RouteError is Error on route, with RouteDenial's status rule.
func RouteError(w http.ResponseWriter, r *http.Request, route *policy.Route, requestID string, status int, code, detail string) {
	RouteDenial(w, r, route, requestID, &policy.Denial{Status: status, Code: code, Detail: detail})
}

// write renders d; httpStatus, when not 0, replaces d's status on the
// status line only.
func write(w http.ResponseWriter, r *http.Request, proto policy.Protocol, requestID string, d *policy.Denial, httpStatus int) {
	if d == nil {
		d = &policy.Denial{Status: http.StatusInternalServerError, Code: "internal_error"}
	}
	status := d.StatusCode()
	h := w.Header()
	for k, vs := range d.Header {
		// Clipped so that an append by a later writer reallocates instead
		// of writing into a Denial that may be shared between requests.
		h[k] = slices.Clip(vs)
	}

	bp := bufPool.Get().(*[]byte)
	body := appendBody((*bp)[:0], proto, status, d.Code, d.Detail, requestID)

	// One allocation for the four values; each key gets a capacity-1
	// window so a later append reallocates instead of overwriting the next.
	vs := []string{contentType(proto), strconv.Itoa(len(body)), "no-store", "nosniff"}
	h["Content-Type"] = vs[0:1:1]
	h["Content-Length"] = vs[1:2:2]
	h["Cache-Control"] = vs[2:3:3]
	h["X-Content-Type-Options"] = vs[3:4:4]
	// A body is rendered fresh here; whatever encoding an earlier writer
	// announced does not apply to it.
	h.Del("Content-Encoding")
	if httpStatus != 0 {
		status = httpStatus
	}
	w.WriteHeader(status)
	if r == nil || r.Method != http.MethodHead {
		w.Write(body) //nolint:errcheck // the client is gone; nothing to do.
	}

	if cap(body) <= maxPooled {
		*bp = body
		bufPool.Put(bp)
	}
}

// Error writes a gateway-generated error, such as 404 no_route,
// 405 method_not_allowed, 502 upstream_unavailable, 504 upstream_timeout or
// 500 internal_error, exactly as Denial would write the equivalent Denial.
// An empty detail means the status text.
func Error(w http.ResponseWriter, r *http.Request, proto policy.Protocol, requestID string, status int, code, detail string) {
	Denial(w, r, proto, requestID, &policy.Denial{Status: status, Code: code, Detail: detail})
}

// maxPooled keeps an unusually large body (a huge detail) from pinning its
// buffer in the pool forever.
const maxPooled = 16 << 10

var bufPool = sync.Pool{New: func() any { b := make([]byte, 0, 1024); return &b }}

func contentType(proto policy.Protocol) string {
	switch proto {
	case policy.SOAP11:
		return ContentTypeSOAP11
	case policy.SOAP12:
		return ContentTypeSOAP12
	default:
		return ContentTypeProblem
	}
}

// appendBody appends the body for proto to dst.
func appendBody(dst []byte, proto policy.Protocol, status int, code, detail, requestID string) []byte {
	switch proto {
	case policy.SOAP11:
		return appendSOAP11(dst, status, code, detail, requestID)
	case policy.SOAP12:
		return appendSOAP12(dst, status, code, detail, requestID)
	default:
		return appendProblem(dst, status, code, detail, requestID)
	}
}

// statusText is http.StatusText with a fallback for codes it does not know,
// so that a title or faultstring is never empty.
func statusText(status int) string {
	if t := http.StatusText(status); t != "" {
		return t
	}
	if status >= 500 {
		return "Server Error"
	}
	return "Client Error"
}

// appendProblem appends an RFC 9457 problem details object. "type" is
// about:blank, so "title" must be the status text (RFC 9457 §4.2.1); "code"
// and "request_id" are extension members, omitted when empty, as is
// "detail".
func appendProblem(dst []byte, status int, code, detail, requestID string) []byte {
	dst = append(dst, `{"type":"about:blank","title":`...)
	dst = appendJSONString(dst, statusText(status))
	dst = append(dst, `,"status":`...)
	dst = strconv.AppendInt(dst, int64(status), 10)
	if detail != "" {
		dst = append(dst, `,"detail":`...)
		dst = appendJSONString(dst, detail)
	}
	if code != "" {
		dst = append(dst, `,"code":`...)
		dst = appendJSONString(dst, code)
	}
	if requestID != "" {
		dst = append(dst, `,"request_id":`...)
		dst = appendJSONString(dst, requestID)
	}
	return append(dst, '}')
}

// wsseLocal returns the local part of a "wsse:Name" code when it is one
// that can be written as a QName.
func wsseLocal(code string) (string, bool) {
	if len(code) <= len(wssePrefix) || code[:len(wssePrefix)] != wssePrefix {
		return "", false
	}
	local := code[len(wssePrefix):]
	return local, isNCName(local)
}

const xmlDecl = `<?xml version="1.0" encoding="utf-8"?>`

// CodeVersionMismatch is the code of a denial for a message in the wrong
// SOAP envelope version; it is rendered as the VersionMismatch fault both
// SOAP versions define (SOAP 1.1 §4.4.1, SOAP 1.2 Part 1 §5.4.6) rather
// than as a Client or Sender fault.
const CodeVersionMismatch = "soap_version_mismatch"

// appendSOAP11 appends a SOAP 1.1 envelope holding a Fault. faultcode is the
// WS-Security QName for wsse codes (WSS 1.1 §12), else soap:Client for 4xx
// and soap:Server for 5xx.
func appendSOAP11(dst []byte, status int, code, detail, requestID string) []byte {
	local, wsse := wsseLocal(code)
	dst = append(dst, xmlDecl...)
	dst = append(dst, `<soap:Envelope xmlns:soap="`+NamespaceSOAP11+`"`...)
	if wsse {
		dst = append(dst, ` xmlns:wsse="`+NamespaceWSSE+`"`...)
	}
	dst = append(dst, `><soap:Body><soap:Fault><faultcode>`...)
	switch {
	case wsse:
		dst = append(dst, wssePrefix...)
		dst = append(dst, local...)
	case code == CodeVersionMismatch:
		dst = append(dst, "soap:VersionMismatch"...)
	case status >= 500:
		dst = append(dst, "soap:Server"...)
	default:
		dst = append(dst, "soap:Client"...)
	}
	dst = append(dst, `</faultcode><faultstring>`...)
	dst = appendReason(dst, status, detail)
	dst = append(dst, `</faultstring>`...)
	if code != "" || requestID != "" {
		dst = append(dst, `<detail>`...)
		dst = appendGatehouseDetail(dst, code, requestID)
		dst = append(dst, `</detail>`...)
	}
	return append(dst, `</soap:Fault></soap:Body></soap:Envelope>`...)
}

// appendSOAP12 appends a SOAP 1.2 envelope holding a Fault: env:Sender for
// 4xx and env:Receiver for 5xx, refined by a subcode that is the wsse QName
// for wsse codes or gh:<code> when the code is an NCName. The gh prefix is
// bound on the Envelope because the subcode's QName value needs it in scope.
func appendSOAP12(dst []byte, status int, code, detail, requestID string) []byte {
	local, wsse := wsseLocal(code)
	dst = append(dst, xmlDecl...)
	dst = append(dst, `<env:Envelope xmlns:env="`+NamespaceSOAP12+`" xmlns:gh="`+NamespaceError+`"`...)
	if wsse {
		dst = append(dst, ` xmlns:wsse="`+NamespaceWSSE+`"`...)
	}
	dst = append(dst, `><env:Body><env:Fault><env:Code><env:Value>`...)
	switch {
	case code == CodeVersionMismatch:
		dst = append(dst, "env:VersionMismatch"...)
	case status >= 500:
		dst = append(dst, "env:Receiver"...)
	default:
		dst = append(dst, "env:Sender"...)
	}
	dst = append(dst, `</env:Value>`...)
	switch {
	case wsse:
		dst = append(dst, `<env:Subcode><env:Value>`+wssePrefix...)
		dst = append(dst, local...)
		dst = append(dst, `</env:Value></env:Subcode>`...)
	case isNCName(code):
		dst = append(dst, `<env:Subcode><env:Value>gh:`...)
		dst = append(dst, code...)
		dst = append(dst, `</env:Value></env:Subcode>`...)
	}
	dst = append(dst, `</env:Code><env:Reason><env:Text xml:lang="en">`...)
	dst = appendReason(dst, status, detail)
	dst = append(dst, `</env:Text></env:Reason>`...)
	if code != "" || requestID != "" {
		dst = append(dst, `<env:Detail>`...)
		dst = appendGatehouseDetail(dst, code, requestID)
		dst = append(dst, `</env:Detail>`...)
	}
	return append(dst, `</env:Fault></env:Body></env:Envelope>`...)
}

func appendReason(dst []byte, status int, detail string) []byte {
	if detail == "" {
		return appendXMLText(dst, statusText(status))
	}
	return appendXMLText(dst, detail)
}

// appendGatehouseDetail appends gh:code and gh:requestId, each when not
// empty. Each declares the gh prefix itself: SOAP toolkits hand detail
// entries to applications as standalone elements, sometimes as text.
func appendGatehouseDetail(dst []byte, code, requestID string) []byte {
	if code != "" {
		dst = append(dst, `<gh:code xmlns:gh="`+NamespaceError+`">`...)
		dst = appendXMLText(dst, code)
		dst = append(dst, `</gh:code>`...)
	}
	if requestID != "" {
		dst = append(dst, `<gh:requestId xmlns:gh="`+NamespaceError+`">`...)
		dst = appendXMLText(dst, requestID)
		dst = append(dst, `</gh:requestId>`...)
	}
	return dst
}
