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
// was being handled and before its status reached the response filters,
// 500 internal_error otherwise; an abort when the status line is out.
func (g *Gateway) recovered(x *exchange, r *http.Request, v any, stack []byte) {
	status, code := http.StatusInternalServerError, "internal_error"
	if x.upstream && !x.w.wroteHeader {
		status, code = http.StatusBadGateway, "upstream_protocol_error"
	}
	routeName := ""
	if x.route != nil {
		routeName = x.route.info.Name
	}
	x.decision, x.code, x.cause = "error", code, fmt.Errorf("panic: %v", v)
	g.log.Error("panic handling a request", "request_id", x.RequestID, "route", routeName,
		"panic", fmt.Sprint(v), "stack", string(stack))
	if status == http.StatusBadGateway {
		g.metrics.UpstreamError(routeName, "protocol")
	}
	if x.w.written() {
		// Part of a response is out: it cannot be replaced, and must not
		// look complete.
		panic(http.ErrAbortHandler)
	}
	if !renderAfterPanic(x, r, status, code, true) {
		// A response filter panicked on the error too: answer without
		// them rather than not at all.
		if x.w.written() {
			panic(http.ErrAbortHandler)
		}
		renderAfterPanic(x, r, status, code, false)
	}
}

// renderAfterPanic writes the error on a writer reset to nothing sent:
// the filter chain of the failed response is dropped (never ended: it
// belongs to a response that did not complete), and a new one is built
// for the error, with the route's response filters or without; false if
// it panicked.
func renderAfterPanic(x *exchange, r *http.Request, status int, code string, withFilters bool) (ok bool) {
	w := &x.w
	w.wroteHeader, w.next, w.ending = false, nil, false
	w.client = clientWriter{w: w}
	clear(w.links[:])
	if !withFilters {
		w.filters = nil
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
	if x.route != nil {
		render.RouteError(w, r, &x.route.info, x.RequestID, status, code, detail)
	} else {
		render.Error(w, r, policy.REST, x.RequestID, status, code, detail)
	}
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
