package gateway

import (
	"context"
	"io"
	"net"
	"net/http"
	"time"
)

// listenerLimits are the per-request bounds of the listener a request
// came in on, found in the request's context (http.Server.BaseContext).
type listenerLimits struct {
	// bodyIdle bounds the pause between two reads of a request body that
	// is still arriving (nginx's client_body_timeout): a client trickling
	// its body, or stopping, loses the connection, while a large upload
	// that keeps moving is never cut. 0: none.
	bodyIdle time.Duration
	// readTimeout is the listener's whole-request bound, restored once
	// the body is read.
	readTimeout time.Duration
}

type listenerLimitsKey struct{}

// withListenerLimits is http.Server.BaseContext for a listener.
func withListenerLimits(l *listenerLimits) func(net.Listener) context.Context {
	ctx := context.WithValue(context.Background(), listenerLimitsKey{}, l)
	return func(net.Listener) context.Context { return ctx }
}

// deadlineSetter is what net/http's HTTP/1 and HTTP/2 response writers
// offer (http.ResponseController uses it too): a read deadline for the
// request body.
type deadlineSetter interface {
	SetReadDeadline(time.Time) error
}

// idleBody is a request body whose every read must make progress within
// bodyIdle. It lives in the pooled exchange: no allocation per request.
type idleBody struct {
	rc    io.ReadCloser
	w     deadlineSetter
	idle  time.Duration
	until time.Time // the listener's whole-request deadline, or zero
	done  bool
}

// wrapIdleBody puts r's body behind the listener's body idle timeout, if
// it has one and the body is not empty.
func (x *exchange) wrapIdleBody(w http.ResponseWriter, r *http.Request) {
	if r.Body == nil || r.Body == http.NoBody {
		return
	}
	l, _ := r.Context().Value(listenerLimitsKey{}).(*listenerLimits)
	if l == nil || l.bodyIdle <= 0 {
		return
	}
	ds, ok := w.(deadlineSetter)
	if !ok {
		return
	}
	b := &x.idle
	*b = idleBody{rc: r.Body, w: ds, idle: l.bodyIdle}
	if l.readTimeout > 0 {
		b.until = time.Now().Add(l.readTimeout) // about the server's own start
	}
	r.Body = b
}

func (b *idleBody) Read(p []byte) (int, error) {
	if b.done {
		return b.rc.Read(p)
	}
	deadline := time.Now().Add(b.idle)
	if !b.until.IsZero() && b.until.Before(deadline) {
		deadline = b.until
	}
	_ = b.w.SetReadDeadline(deadline)
	n, err := b.rc.Read(p)
	switch {
	case err == io.EOF:
		// The body is over: the connection's reads are the server's
		// again, with its own deadline (or none), so that its watch for
		// a client going away does not time out.
		b.done = true
		_ = b.w.SetReadDeadline(b.until)
	case err != nil:
		// The body failed (it stalled past the deadline, or the client
		// broke it): the deadline stays, so that net/http's discarding
		// of the rest before it answers fails at once too, and the
		// connection is closed after the answer instead of waiting
		// forever for bytes that will not come.
		b.done = true
	}
	return n, err
}

func (b *idleBody) Close() error { return b.rc.Close() }
