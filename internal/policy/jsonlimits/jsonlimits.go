// Package jsonlimits is the "json_limits" policy: it refuses JSON request
// bodies that are malformed, hold duplicate keys, or exceed limits on size,
// depth, object and array sizes, string and number lengths and token
// count, before any parser behind the gateway spends time or memory on
// them.
//
// The body is buffered up to max_bytes (so later policies and the upstream
// see the same bytes) and checked in one pass by a hand-written scanner
// that builds nothing: no tree, no token values beyond the keys of the
// open objects, kept to find duplicates. It is several times cheaper than
// encoding/json's Decoder.Token, which allocates per token (see
// BenchmarkCheck).
//
// The package is jsonlimits, not json_limits, only because Go package names have no
// underscores; the unit, its docs page and its metrics use json_limits.
package jsonlimits

import (
	"context"
	"errors"
	"fmt"
	"mime"
	"net/http"
	"strings"
	"sync"

	"github.com/gatehouse/gatehouse/internal/config"
	"github.com/gatehouse/gatehouse/internal/policy"
)

// Unit registers the json_limits policy.
var Unit = policy.Unit{Name: "json_limits", New: New}

// Denial codes.
const (
	CodeLimit     = "json_limit_exceeded"
	CodeDuplicate = "json_duplicate_key"
	CodeMalformed = "json_malformed"
)

// JSONLimits checks JSON request bodies. It is immutable and safe for
// concurrent use.
type JSONLimits struct {
	lim      Limits
	maxBytes int64
	pool     sync.Pool
}

var _ policy.Policy = (*JSONLimits)(nil)

// New builds a JSONLimits from cfg (see Config).
func New(cfg *config.Node, _ *policy.Env) (policy.Policy, error) {
	lim, maxBytes, err := decode(cfg)
	if err != nil {
		return nil, err
	}
	j := &JSONLimits{lim: lim, maxBytes: maxBytes}
	j.pool.New = func() any { return &checker{lim: lim} }
	return j, nil
}

// IsJSON reports whether a Content-Type is JSON: application/json or a
// +json type (application/problem+json, application/merge-patch+json).
func IsJSON(ct string) bool {
	if ct == "" {
		return false
	}
	mt, _, err := mime.ParseMediaType(ct)
	if err != nil {
		// Unparseable parameters: judge by the type alone, so that a
		// broken header cannot slip a JSON body past the check.
		mt, _, _ = strings.Cut(ct, ";")
		mt = strings.ToLower(strings.TrimSpace(mt))
	}
	return mt == "application/json" || (strings.HasPrefix(mt, "application/") && strings.HasSuffix(mt, "+json"))
}

// Apply checks the body of a request whose Content-Type is JSON; other
// requests, and empty bodies, pass. A body over max_bytes is refused with
// 413 json_limit_exceeded, another exceeded limit with 400
// json_limit_exceeded, a repeated key with 400 json_duplicate_key,
// anything encoding/json would not accept (and invalid UTF-8, lone
// surrogates) with 400 json_malformed. The detail names the limit and
// where in the body it was hit (body.items[3].name), never a value.
func (j *JSONLimits) Apply(_ context.Context, ex *policy.Exchange) error {
	if !IsJSON(ex.Request.Header.Get("Content-Type")) {
		return nil
	}
	b, err := ex.Body(j.maxBytes)
	if err != nil {
		if d, ok := policy.AsDenial(err); ok && errors.Is(d.Err, policy.ErrBodyTooLarge) {
			return policy.Deny(http.StatusRequestEntityTooLarge, CodeLimit,
				fmt.Sprintf("max_bytes: the body exceeds %d bytes", j.maxBytes)).WithErr(d.Err)
		}
		return err
	}
	if len(b) == 0 {
		return nil
	}
	c := j.pool.Get().(*checker)
	v := c.check(b)
	if cap(c.keyBuf) > 64<<10 {
		c.keyBuf = nil
	}
	j.pool.Put(c)
	if v == nil {
		return nil
	}
	return denial(v)
}

func denial(v *violation) *policy.Denial {
	cause := fmt.Errorf("json_limits: %s at offset %d (%s)", v.describe(), v.offset, v.path)
	switch v.kind {
	case kindLimit:
		return policy.Deny(http.StatusBadRequest, CodeLimit, v.path+": exceeds "+v.limit).WithErr(cause)
	case kindDuplicate:
		return policy.Deny(http.StatusBadRequest, CodeDuplicate, v.path+": duplicate key").WithErr(cause)
	}
	return policy.Deny(http.StatusBadRequest, CodeMalformed, fmt.Sprintf("%s: invalid JSON at byte %d: %s", v.path, v.offset, v.msg)).WithErr(cause)
}

func (v *violation) describe() string {
	switch v.kind {
	case kindLimit:
		return v.limit + " exceeded"
	case kindDuplicate:
		return "duplicate key"
	}
	return v.msg
}

// Check reports whether b is a JSON document within lim, with the error
// saying why not. It is what Apply runs on a body, for tests and tools.
func Check(b []byte, lim Limits) error {
	c := &checker{lim: lim}
	if v := c.check(b); v != nil {
		return denial(v)
	}
	return nil
}
