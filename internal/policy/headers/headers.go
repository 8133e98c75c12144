// Package headers is the "headers" policy: it sets, adds and removes
// request and response headers and sends response security headers (HSTS,
// nosniff, frame options, referrer policy, CSP, CORP, permissions policy).
package headers

import (
	"context"
	"net/http"
	"sync"

	"github.com/gatehouse/gatehouse/internal/config"
	"github.com/gatehouse/gatehouse/internal/policy"
)

// Unit registers the headers policy.
var Unit = policy.Unit{Name: "headers", New: New}

// Headers edits request headers (as a Policy) and response headers (as a
// ResponseFilter). Everything is validated and precomputed at load; it is
// immutable and safe for concurrent use.
type Headers struct {
	c compiled
}

var (
	_ policy.Policy         = (*Headers)(nil)
	_ policy.ResponseFilter = (*Headers)(nil)
)

// New builds Headers from cfg (see Config). env is not used.
func New(cfg *config.Node, env *policy.Env) (policy.Policy, error) {
	c, err := decode(cfg)
	if err != nil {
		return nil, err
	}
	return &Headers{c: *c}, nil
}

// Apply edits the request headers: request.remove, then request.set, then
// request.add. It never refuses.
func (h *Headers) Apply(_ context.Context, ex *policy.Exchange) error {
	if ex.Request.Header == nil {
		ex.Request.Header = make(http.Header)
	}
	h.c.req.apply(ex.Request.Header, "")
	return nil
}

// FilterResponse edits the response headers when the status passes, the
// gateway's own responses (denials, errors, refusals) included:
// response.remove, then response.set and the security headers (replacing
// upstream values), then response.add. Strict-Transport-Security is sent
// only when ex.TLS. It holds nothing back.
func (h *Headers) FilterResponse(ex *policy.Exchange, next policy.ResponseWriter) policy.ResponseWriter {
	w := writers.Get().(*writer)
	w.ResponseWriter, w.h, w.tls = next, h, ex.TLS
	return w
}

// writer is one response's header edit. Pooled: routes with security
// headers are the common case. One not given back (an aborted response)
// is only garbage.
type writer struct {
	policy.ResponseWriter
	h   *Headers
	tls bool
}

var writers = sync.Pool{New: func() any { return new(writer) }}

func (w *writer) WriteHeader(status int) {
	w.edit()
	w.ResponseWriter.WriteHeader(status)
}

// Write and Flush without WriteHeader mean 200: the edit must come first.
func (w *writer) Write(b []byte) (int, error) {
	if w.h != nil {
		w.WriteHeader(http.StatusOK)
	}
	return w.ResponseWriter.Write(b)
}

func (w *writer) Flush() {
	if w.h != nil {
		w.WriteHeader(http.StatusOK)
	}
	w.ResponseWriter.Flush()
}

// edit applies the response edits once.
func (w *writer) edit() {
	h := w.h
	if h == nil {
		return
	}
	w.h = nil
	hsts := ""
	if w.tls {
		hsts = h.c.hsts
	}
	h.c.resp.apply(w.ResponseWriter.Header(), hsts)
}

// End passes End on and gives the writer back.
func (w *writer) End() {
	next := w.ResponseWriter
	*w = writer{}
	writers.Put(w)
	next.End()
}

// Refuse: the refusal is rendered below this filter; the refused
// response's edits need not be made.
func (w *writer) Refuse(d *policy.Denial) {
	w.h = nil
	w.ResponseWriter.Refuse(d)
}

// apply edits hdr; a non-empty hsts is set as Strict-Transport-Security.
//
// Keys are canonical already, so the map is indexed directly. Each value
// slice handed to hdr is a one-element window (capacity 1) of a single
// per-call allocation: later appends by other writers reallocate instead of
// clobbering a neighbour, and nothing is shared between requests.
func (o *ops) apply(hdr http.Header, hsts string) {
	for _, k := range o.remove {
		delete(hdr, k)
	}
	n := len(o.set) + len(o.add)
	if hsts != "" {
		n++
	}
	if n == 0 {
		return
	}
	vals := make([]string, n)
	i := 0
	one := func(v string) []string {
		vals[i] = v
		s := vals[i : i+1 : i+1]
		i++
		return s
	}
	for _, f := range o.set {
		hdr[f.key] = one(f.value)
	}
	if hsts != "" {
		hdr["Strict-Transport-Security"] = one(hsts)
	}
	for _, f := range o.add {
		if old := hdr[f.key]; len(old) > 0 {
			hdr[f.key] = append(old, f.value)
		} else {
			hdr[f.key] = one(f.value)
		}
	}
}
