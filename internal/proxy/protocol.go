package proxy

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptrace"
	"net/textproto"
	"os"
	"strings"
	"sync/atomic"
	"syscall"

	"golang.org/x/net/http/httpguts"
)

// badResponse is an upstream response that breaks HTTP: a status line or
// header that does not parse, a final status outside 200-599, a storm of
// informational responses, a head too large. It is the upstream's fault,
// and no byte of it reaches the client.
type badResponse struct{ err error }

func (e badResponse) Error() string { return "upstream protocol error: " + e.err.Error() }
func (e badResponse) Unwrap() error { return e.err }

// UpstreamProtocol reports that err, given to the ErrorHandler, is an
// upstream response that breaks HTTP (see badResponse); the gateway
// answers it with 502 upstream_protocol_error.
func UpstreamProtocol(err error) bool {
	var pe badResponse
	return errors.As(err, &pe)
}

// max1xx bounds the informational responses one exchange may receive
// before its final response, on both paths (http.Transport bounds them
// only by size, and not at all once a ClientTrace, which ReverseProxy
// always installs, sees them).
const max1xx = 5

// checkFinalStatus refuses a final status no client may be given. RFC 9110
// §15 defines 100-599; a 1xx is never final (§15.2: it is interim, and the
// client waits for the final response after it), so a 1xx that ends a
// response is a broken upstream too, 101 excepted: a protocol switch is
// judged where upgrades are handled. net/http's server panics on a status
// below 100 or above 999 and passes 600-999 on, so this is what keeps a
// hostile upstream from crashing a request or confusing the client.
func checkFinalStatus(code int) error {
	if code >= 200 && code <= 599 || code == http.StatusSwitchingProtocols {
		return nil
	}
	return badResponse{fmt.Errorf("invalid final status %03d", code)}
}

// checkInformational refuses the informational response past max1xx. A
// 1xx is interim whatever its code (RFC 9110 §15.2: a client must parse
// unexpected ones), so only their number, besides the head's size, is
// bounded.
func checkInformational(n int) error {
	if n >= max1xx {
		return badResponse{errors.New("too many informational responses")}
	}
	return nil
}

// transportFailure reports an error of the connection rather than of what
// came over it: end of stream, reset, timeout, cancellation.
func transportFailure(err error) bool {
	var ne net.Error
	return errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) ||
		errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE) ||
		errors.Is(err, os.ErrDeadlineExceeded) || errors.Is(err, net.ErrClosed) ||
		errors.As(err, &ne) || errors.Is(err, context.Canceled) ||
		errors.Is(err, context.DeadlineExceeded)
}

// malformedResponse classifies an error of http.ReadResponse: one that is
// not the connection's is the response's, a protocol error.
func malformedResponse(err error) error {
	if errors.Is(err, errHeadTooLarge) {
		return badResponse{err}
	}
	if transportFailure(err) {
		return err
	}
	return badResponse{err}
}

// readResponseErrors are the messages of net/http's response parser, which
// http.Transport returns without a type of their own (only textproto's
// header errors have one). They are how the ReverseProxy path tells a
// malformed response from a failed connection; TestHostileUpstream holds
// them to the standard library's wording.
var readResponseErrors = []string{
	"malformed HTTP response",
	"malformed HTTP status code",
	"malformed HTTP version",
	"bad Content-Length",
	"multiple Content-Length",
	"invalid Content-Length",
	"unsupported transfer encoding",
	"too many transfer encodings",
	"invalid Trailer key",
	"server response headers exceeded",
	"1xx informational response with END_STREAM flag",
	"invalid header field",
	"malformed response from server",
	"http2: invalid",
}

// classifyTransportError marks the errors of a malformed response that
// http.Transport returns on the ReverseProxy path as protocol errors.
func classifyTransportError(err error) error {
	if err == nil || UpstreamProtocol(err) {
		return err
	}
	var tpe textproto.ProtocolError
	if errors.As(err, &tpe) {
		return badResponse{err}
	}
	msg := err.Error()
	for _, m := range readResponseErrors {
		if strings.Contains(msg, m) {
			return badResponse{err}
		}
	}
	return err
}

// checkResponse is the ReverseProxy's ModifyResponse: a final status no
// client may be given, or a header field no message may carry, fails the
// exchange as a protocol error, as on the h1 path.
func checkResponse(res *http.Response) error {
	recordResponse(res)
	if err := checkFinalStatus(res.StatusCode); err != nil {
		return err
	}
	return checkHeader(res.Header)
}

// checkHeader refuses a response header with a field name that is not a
// token ("Bad Name", which http.ReadResponse accepts) or a value with a
// control character: RFC 9112 §5.1 makes such a message invalid, and
// passing it on would leave the client's parser to decide what it means.
func checkHeader(h http.Header) error {
	for k, vv := range h {
		if !httpguts.ValidHeaderFieldName(k) {
			return badResponse{fmt.Errorf("invalid response header field name %q", k)}
		}
		for _, v := range vv {
			if !httpguts.ValidHeaderFieldValue(v) {
				return badResponse{fmt.Errorf("invalid value of response header field %q", k)}
			}
		}
	}
	return nil
}

// rpError is the ReverseProxy's ErrorHandler: the gateway's, with the
// errors of a malformed response classified.
//
// While a request body is still being written, http.Transport may report
// the write failing on the connection it closed itself after rejecting
// the response ("use of closed network connection") rather than why it
// rejected it. The exchange's trace (rpTrace) tells that case apart: the
// upstream had begun to answer and no response came of it.
func (u *Upstream) rpError(w http.ResponseWriter, r *http.Request, err error) {
	err = classifyTransportError(err)
	if st, ok := r.Context().Value(rpStateKey{}).(*rpState); ok && !UpstreamProtocol(err) &&
		st.firstByte.Load() && errors.Is(err, net.ErrClosed) && r.Context().Err() == nil {
		err = badResponse{err}
	}
	u.onError(w, r, err)
}

// rpState is what the trace of one ReverseProxy exchange saw.
type rpState struct {
	n1xx      atomic.Int32
	firstByte atomic.Bool
	// res is the response, set by checkResponse on the handler's
	// goroutine, so that a panic while it is copied (a response policy's
	// writer) does not leave its body, and the Transport's connection and
	// read loop with it, open for good (closeResponse).
	res *http.Response
}

// recordResponse keeps res in its exchange's rpState, for closeResponse.
func recordResponse(res *http.Response) {
	if res.Request != nil {
		if st, ok := res.Request.Context().Value(rpStateKey{}).(*rpState); ok {
			st.res = res
		}
	}
}

// closeResponse, deferred around ReverseProxy.ServeHTTP, closes the body
// of the exchange's response; ReverseProxy has closed it already unless a
// panic cut it short, and closing twice is harmless.
func closeResponse(r *http.Request) {
	if st, ok := r.Context().Value(rpStateKey{}).(*rpState); ok && st.res != nil {
		_ = st.res.Body.Close()
	}
}

type rpStateKey struct{}

// rpTrace returns r with a ClientTrace that fails the exchange at the
// informational response past max1xx and records the first response byte
// (for rpError). ReverseProxy composes its own trace, which forwards each
// 1xx, before this one, so the client may receive the one that is refused
// before the 502.
func rpTrace(r *http.Request) *http.Request {
	st := new(rpState)
	trace := &httptrace.ClientTrace{
		GotFirstResponseByte: func() { st.firstByte.Store(true) },
		Got1xxResponse: func(int, textproto.MIMEHeader) error {
			if st.n1xx.Add(1) > max1xx {
				return badResponse{errors.New("too many informational responses")}
			}
			return nil
		},
	}
	ctx := context.WithValue(r.Context(), rpStateKey{}, st)
	return r.WithContext(httptrace.WithClientTrace(ctx, trace))
}
