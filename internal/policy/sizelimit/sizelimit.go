// Package sizelimit is the "size_limit" policy: it refuses requests whose
// URL, headers or body are larger than configured, the cheapest defence
// against resource exhaustion, meant to run first in a chain.
//
// The package is sizelimit, not size_limit, only because Go package names have no
// underscores; the unit, its docs page and its metrics use size_limit.
package sizelimit

import (
	"context"
	"io"
	"net/http"
	"strconv"
	"strings"

	"github.com/gatehouse/gatehouse/internal/config"
	"github.com/gatehouse/gatehouse/internal/policy"
)

// Unit registers the size_limit policy.
var Unit = policy.Unit{Name: "size_limit", New: New}

// Denial codes.
const (
	CodeBodyTooLarge    = "body_too_large"        // 413
	CodeHeadersTooLarge = "headers_too_large"     // 431
	CodeURITooLong      = "uri_too_long"          // 414
	CodeTooManyParams   = "too_many_query_params" // 400
)

// Limit enforces size limits on requests. It is immutable and safe for
// concurrent use.
type Limit struct {
	l limits
}

var _ policy.Policy = (*Limit)(nil)

// New builds a Limit from cfg (see Config). env is not used.
func New(cfg *config.Node, env *policy.Env) (policy.Policy, error) {
	l, err := decode(cfg)
	if err != nil {
		return nil, err
	}
	return &Limit{l: l}, nil
}

// Apply checks, in order, the URL (414 uri_too_long), the number of query
// parameters (400 too_many_query_params), the header count and size (431
// headers_too_large) and the declared Content-Length (413 body_too_large).
//
// A body whose length is not declared (chunked, HTTP/2 without
// content-length) cannot be judged up front: the request's Body is wrapped
// so that reading past the limit fails with a *policy.Denial (413
// body_too_large) wrapping policy.ErrBodyTooLarge, which the proxy turns
// into the refusal. The body is streamed, never buffered here, so the part
// before the limit has reached the upstream by then.
func (s *Limit) Apply(_ context.Context, ex *policy.Exchange) error {
	r := ex.Request
	uri := r.RequestURI
	if uri == "" {
		uri = r.URL.RequestURI()
	}
	if s.l.url >= 0 && int64(len(uri)) > s.l.url {
		return policy.Deny(http.StatusRequestURITooLong, CodeURITooLong,
			"request URI exceeds "+strconv.FormatInt(s.l.url, 10)+" bytes")
	}
	if s.l.queryParams >= 0 && countParams(r.URL.RawQuery, s.l.queryParams) > s.l.queryParams {
		return policy.Deny(http.StatusBadRequest, CodeTooManyParams,
			"more than "+strconv.Itoa(s.l.queryParams)+" query parameters")
	}
	if s.l.headers >= 0 || s.l.headerCount >= 0 {
		if d := s.checkHeaders(r, uri); d != nil {
			return d
		}
	}
	if s.l.body >= 0 {
		if r.ContentLength > s.l.body {
			return tooLarge(s.l.body)
		}
		if r.Body != nil && r.Body != http.NoBody {
			r.Body = &limitedBody{rc: r.Body, left: s.l.body, limit: s.l.body}
		}
	}
	return nil
}

// checkHeaders measures the header section, stopping as soon as a limit is
// passed so that a flood costs no more than the limit.
func (s *Limit) checkHeaders(r *http.Request, uri string) *policy.Denial {
	size := int64(len(uri))
	count := 0
	if r.Host != "" {
		size += int64(len("Host") + len(r.Host) + 4)
		count++
	}
	if d := s.overHeaders(size, count); d != nil {
		return d
	}
	for k, vs := range r.Header {
		for _, v := range vs {
			size += int64(len(k) + len(v) + 4)
		}
		count += len(vs)
		if d := s.overHeaders(size, count); d != nil {
			return d
		}
	}
	return nil
}

func (s *Limit) overHeaders(size int64, count int) *policy.Denial {
	if s.l.headers >= 0 && size > s.l.headers {
		return policy.Deny(http.StatusRequestHeaderFieldsTooLarge, CodeHeadersTooLarge,
			"request headers exceed "+strconv.FormatInt(s.l.headers, 10)+" bytes")
	}
	if s.l.headerCount >= 0 && count > s.l.headerCount {
		return policy.Deny(http.StatusRequestHeaderFieldsTooLarge, CodeHeadersTooLarge,
			"more than "+strconv.Itoa(s.l.headerCount)+" request header fields")
	}
	return nil
}

// countParams counts the non-empty &-separated fields of a raw query, the
// way url.ParseQuery splits it, stopping once past max.
func countParams(q string, max int) int {
	n := 0
	for q != "" && n <= max {
		var field string
		field, q, _ = strings.Cut(q, "&")
		if field != "" {
			n++
		}
	}
	return n
}

// tooLarge is the refusal of a body over limit bytes. It wraps
// policy.ErrBodyTooLarge so that the proxy recognises it however the
// transport wraps it.
func tooLarge(limit int64) *policy.Denial {
	return &policy.Denial{
		Status: http.StatusRequestEntityTooLarge,
		Code:   CodeBodyTooLarge,
		Detail: "request body exceeds " + strconv.FormatInt(limit, 10) + " bytes",
		Err:    policy.ErrBodyTooLarge,
	}
}

// limitedBody passes at most limit bytes of rc through, then fails every
// read with the refusal, like http.MaxBytesReader but with an error the
// gateway renders as a Denial and without touching the ResponseWriter.
type limitedBody struct {
	rc    io.ReadCloser
	left  int64 // bytes still allowed
	limit int64
	err   error // sticky
}

func (l *limitedBody) Read(p []byte) (int, error) {
	if l.err != nil {
		return 0, l.err
	}
	if len(p) == 0 {
		return 0, nil
	}
	// Read one byte more than allowed, to tell a body of exactly limit
	// bytes from a longer one.
	if int64(len(p))-1 > l.left {
		p = p[:l.left+1]
	}
	n, err := l.rc.Read(p)
	if int64(n) <= l.left {
		l.left -= int64(n)
		l.err = err
		return n, err
	}
	n = int(l.left)
	l.left = 0
	l.err = tooLarge(l.limit)
	return n, l.err
}

func (l *limitedBody) Close() error { return l.rc.Close() }
