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
	"syscall"
)

// protocolError is an upstream response that breaks HTTP: a status line or
// header that does not parse, a final status outside 200-599, a storm of
// informational responses, a head too large. It is the upstream's fault,
// and no byte of it reaches the client.
type protocolError struct{ err error }

func (e protocolError) Error() string { return "upstream protocol error: " + e.err.Error() }
func (e protocolError) Unwrap() error { return e.err }

// UpstreamProtocol reports that err, given to the ErrorHandler, is an
// upstream response that breaks HTTP (see protocolError); the gateway
// answers it with 502 upstream_protocol_error.
func UpstreamProtocol(err error) bool {
	var pe protocolError
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
	return protocolError{fmt.Errorf("invalid final status %03d", code)}
}

// checkInformational refuses the informational response past max1xx. A
// 1xx is interim whatever its code (RFC 9110 §15.2: a client must parse
// unexpected ones), so only their number, besides the head's size, is
// bounded.
func checkInformational(n int) error {
	if n >= max1xx {
		return protocolError{errors.New("too many informational responses")}
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
		return protocolError{err}
	}
	if transportFailure(err) {
		return err
	}
	return protocolError{err}
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
		return protocolError{err}
	}
	msg := err.Error()
	for _, m := range readResponseErrors {
		if strings.Contains(msg, m) {
			return protocolError{err}
		}
	}
	return err
}

// checkResponse is the ReverseProxy's ModifyResponse: a final status no
// client may be given fails the exchange as a protocol error.
func checkResponse(res *http.Response) error {
	return checkFinalStatus(res.StatusCode)
}

// rpError is the ReverseProxy's ErrorHandler: the gateway's, with the
// errors of a malformed response classified.
func (u *Upstream) rpError(w http.ResponseWriter, r *http.Request, err error) {
	u.onError(w, r, classifyTransportError(err))
}

// bound1xx returns r with a ClientTrace that fails the exchange at the
// informational response past max1xx. ReverseProxy composes its own trace,
// which forwards each 1xx, before this one, so the client may receive the
// one that is refused before the 502.
func bound1xx(r *http.Request) *http.Request {
	n := 0
	trace := &httptrace.ClientTrace{
		Got1xxResponse: func(code int, _ textproto.MIMEHeader) error {
			n++
			if n > max1xx {
				return protocolError{errors.New("too many informational responses")}
			}
			return nil
		},
	}
	return r.WithContext(httptrace.WithClientTrace(r.Context(), trace))
}
