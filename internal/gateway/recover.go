package gateway

import (
	"errors"
	"fmt"
	"net/http"
	"runtime/debug"

	"github.com/gatehouse/gatehouse/internal/policy"
	"github.com/gatehouse/gatehouse/internal/render"
)

// handleRecovered is handle with a panic in one request's handling (the
// proxy, a policy, a response policy's writer) contained to that request:
// it is logged with the request id and answered, or, when the response
// had begun, the connection is aborted. http.ErrAbortHandler is the
// deliberate way to abort a response and goes on as it is.
//
// The proxy joins its own goroutines before a panic leaves it (the h1
// client's request body writer), and the request body handed to the
// upstream is a handle of this request only (trackedBody), so nothing
// reaches the pooled exchange after the handler has returned.
func (g *Gateway) handleRecovered(rt *runtime, x *exchange, r *http.Request) {
	defer func() {
		v := recover()
		if v == nil {
			return
		}
		if v == http.ErrAbortHandler {
			panic(v)
		}
		g.recovered(x, r, v, debug.Stack())
	}()
	g.handle(rt, x, r)
}

// recovered answers a request whose handling panicked with v: 502
// upstream_protocol_error when the panic came while the upstream's answer
// was being handled and before its status reached the response policies,
// 500 internal_error otherwise; an abort when the status line is out.
func (g *Gateway) recovered(x *exchange, r *http.Request, v any, stack []byte) {
	status, code := http.StatusInternalServerError, "internal_error"
	if x.upstream && !x.w.wroteHeader {
		status, code = http.StatusBadGateway, "upstream_protocol_error"
	}
	routeName, proto := "", policy.REST
	if x.route != nil {
		routeName, proto = x.route.info.Name, x.route.info.Protocol
	}
	x.decision, x.code, x.cause = "error", code, fmt.Errorf("panic: %v", v)
	g.log.Error("panic handling a request", "request_id", x.RequestID, "route", routeName,
		"panic", fmt.Sprint(v), "stack", string(stack))
	if status == http.StatusBadGateway {
		g.metrics.UpstreamError(routeName, "protocol")
	}
	if x.sent {
		// Part of a response is out: it cannot be replaced, and must not
		// look complete.
		panic(http.ErrAbortHandler)
	}
	// The writers policies wrapped around the body and a held status line
	// belong to the response that failed.
	x.HoldHeader = nil
	x.ResponseBody = (*clientBody)(&x.w)
	if !renderAfterPanic(x, r, proto, status, code, true) {
		// A response policy panicked on the error too: answer without
		// them rather than not at all.
		if x.sent {
			panic(http.ErrAbortHandler)
		}
		renderAfterPanic(x, r, proto, status, code, false)
	}
	// What policies registered for the end of the failed response runs
	// now, after the answer (whose Content-Length keeps out any byte they
	// still write), and may not take the request down either.
	func() {
		defer func() {
			if v := recover(); v != nil {
				g.log.Error("panic ending a failed response", "request_id", x.RequestID, "panic", fmt.Sprint(v))
			}
		}()
		x.Exchange.EndResponse()
	}()
}

// renderAfterPanic writes the error on a writer reset to nothing sent,
// with the route's response policies or without; false if it panicked.
func renderAfterPanic(x *exchange, r *http.Request, proto policy.Protocol, status int, code string, withPolicies bool) (ok bool) {
	w := &x.w
	w.wroteHeader, w.held, w.status = false, false, 0
	if !withPolicies {
		w.response = nil
	}
	h := w.ResponseWriter.Header()
	for k := range h {
		// What the failed response set goes; what the gateway set for
		// every response stays.
		if k != "X-Request-Id" && k != "Connection" {
			delete(h, k)
		}
	}
	defer func() {
		if v := recover(); v != nil {
			if v == http.ErrAbortHandler {
				panic(v)
			}
			ok = false
		}
	}()
	detail := "the gateway could not process this request"
	if code == "upstream_protocol_error" {
		detail = "the upstream sent an invalid response"
	}
	render.Error(w, r, proto, x.RequestID, status, code, detail)
	return true
}

// bodyPanic is a panic of a request body reader, made the body's error.
type bodyPanic struct {
	v     any
	stack []byte
}

func (e *bodyPanic) Error() string { return fmt.Sprintf("panic reading the request body: %v", e.v) }

// recoverBodyPanic, deferred in trackedBody.Read, turns a panic of the
// reader below into the read's error, recorded as the body's.
func recoverBodyPanic(b *trackedBody, n *int, err *error) {
	v := recover()
	if v == nil {
		return
	}
	var e error = &bodyPanic{v: v, stack: debug.Stack()}
	*n, *err = 0, e
	b.err.CompareAndSwap(nil, &e)
}

// bodyPanicked reports, and logs with the request id, a failed exchange
// whose request body reader panicked.
func (g *Gateway) bodyPanicked(x *exchange, bodyErr error) bool {
	var bp *bodyPanic
	if !errors.As(bodyErr, &bp) {
		return false
	}
	routeName := ""
	if x.route != nil {
		routeName = x.route.info.Name
	}
	g.log.Error("panic handling a request", "request_id", x.RequestID, "route", routeName,
		"panic", fmt.Sprint(bp.v), "stack", string(bp.stack))
	return true
}
