// Package headers is the "headers" policy: it sets, adds and removes
// request and response headers and sends response security headers (HSTS,
// nosniff, frame options, referrer policy, CSP, CORP, permissions policy).
package headers

import (
	"context"
	"net/http"

	"github.com/gatehouse/gatehouse/internal/config"
	"github.com/gatehouse/gatehouse/internal/policy"
)

// Unit registers the headers policy.
var Unit = policy.Unit{Name: "headers", New: New}

// Headers edits request headers (as a Policy) and response headers (as a
// ResponsePolicy). Everything is validated and precomputed at load; it is
// immutable and safe for concurrent use.
type Headers struct {
	c compiled
}

var (
	_ policy.Policy         = (*Headers)(nil)
	_ policy.ResponsePolicy = (*Headers)(nil)
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

// ApplyResponse edits the response headers: response.remove, then
// response.set and the security headers (replacing upstream values), then
// response.add. Strict-Transport-Security is sent only when ex.TLS.
func (h *Headers) ApplyResponse(ex *policy.Exchange, _ int, header http.Header) {
	hsts := ""
	if ex.TLS {
		hsts = h.c.hsts
	}
	h.c.resp.apply(header, hsts)
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
