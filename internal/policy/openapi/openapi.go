// Package openapi is the "openapi" policy: a positive security model from
// the API's own OpenAPI 3.0/3.1 document. Requests for operations the
// document does not declare are refused; declared ones have their path,
// query and header parameters and JSON body validated; responses may be
// validated too.
//
// Validation is pb33f/libopenapi-validator's, chosen over kin-openapi for
// its full OpenAPI 3.1 (JSON Schema 2020-12) support; kin-openapi's 3.1
// support is partial.
package openapi

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"

	validator "github.com/pb33f/libopenapi-validator"
	verrors "github.com/pb33f/libopenapi-validator/errors"
	"github.com/pb33f/libopenapi-validator/helpers"

	"github.com/gatehouse/gatehouse/internal/config"
	"github.com/gatehouse/gatehouse/internal/policy"
)

// Unit registers the openapi policy.
var Unit = policy.Unit{Name: "openapi", New: New}

// Denial codes.
const (
	CodeNotFound         = "operation_not_found"
	CodeMethodNotAllowed = "method_not_allowed"
	CodeInvalid          = "request_invalid"
	CodeResponseInvalid  = "response_invalid"
)

// OpenAPI validates a route's requests (and optionally responses) against
// a document. It is immutable and safe for concurrent use: the validator's
// caches are built at load time.
type OpenAPI struct {
	v           validator.Validator
	base        string
	request     bool
	response    bool
	block       bool
	maxBody     int64
	maxResponse int
	logger      *slog.Logger
	route       string
}

var (
	_ policy.Policy         = (*OpenAPI)(nil)
	_ policy.ResponseFilter = (*OpenAPI)(nil)
)

// New builds an OpenAPI from cfg (see Config). The document is read,
// parsed and checked against the OpenAPI schema here: a broken one is a
// config error naming the spec's own line.
func New(cfg *config.Node, env *policy.Env) (policy.Policy, error) {
	c, err := decode(cfg)
	if err != nil {
		return nil, err
	}
	if err := c.validate(cfg); err != nil {
		return nil, err
	}
	return c.provision(cfg, env)
}

// Apply refuses a request for an operation the document does not declare
// (404 operation_not_found; 405 method_not_allowed for a declared path
// with another method) and, with request validation on, one whose
// parameters or body the operation does not allow (400 request_invalid,
// the detail naming the field: "body.price: must be >= 0"). With response
// validation on, it routes the response through a check (see Config).
func (o *OpenAPI) Apply(_ context.Context, ex *policy.Exchange) error {
	r := ex.Request
	vr := r
	if o.base != "" {
		p := r.URL.Path
		rest, ok := strings.CutPrefix(p, o.base)
		if !ok || (rest != "" && rest[0] != '/') {
			return policy.Deny(http.StatusNotFound, CodeNotFound, "no operation of the API matches this request")
		}
		if rest == "" {
			rest = "/"
		}
		vr = r.Clone(r.Context())
		vr.URL.Path, vr.URL.RawPath = rest, ""
	} else {
		vr = r.Clone(r.Context())
	}
	if o.request {
		body, err := ex.Body(o.maxBody)
		if err != nil {
			return err
		}
		vr.Body = io.NopCloser(bytes.NewReader(body))
		if ok, errs := o.v.ValidateHttpRequestSync(vr); !ok {
			return o.denial(errs)
		}
	} else if ok, errs := o.v.ValidateHttpRequestSync(withoutBody(vr)); !ok && routeError(errs) != nil {
		return o.denial(errs)
	}
	if o.response {
		// The request as validated, for FilterResponse to find its
		// operation.
		ex.SetValue(o, vr)
	}
	return nil
}

// FilterResponse, with response validation on, holds a JSON response
// from the upstream back, up to max_response, and validates it when it is
// complete; a mismatch is logged and, with on_response_mismatch: block,
// refused with 502 response_invalid. A larger or non-JSON response, a
// HEAD's, and the gateway's own pass unvalidated, as does every response
// to a request Apply did not see (an earlier policy refused it).
func (o *OpenAPI) FilterResponse(ex *policy.Exchange, next policy.ResponseWriter) policy.ResponseWriter {
	if !o.response {
		return next
	}
	req, _ := ex.Value(o).(*http.Request)
	if req == nil {
		return next
	}
	return &responseCheck{ResponseWriter: next, o: o, ex: ex, req: req}
}

// withoutBody is r, a clone, without its body: only the route is wanted,
// and the upstream must still receive the body unread.
func withoutBody(r *http.Request) *http.Request {
	r.Body, r.ContentLength = http.NoBody, 0
	return r
}

func routeError(errs []*verrors.ValidationError) *verrors.ValidationError {
	for _, e := range errs {
		if e.ValidationType == helpers.PathValidation {
			return e
		}
	}
	return nil
}

// maxDetail bounds a detail: reasons may quote the offending value.
const maxDetail = 200

func (o *OpenAPI) denial(errs []*verrors.ValidationError) error {
	if e := routeError(errs); e != nil {
		cause := fmt.Errorf("openapi: %s", e.Message)
		if e.ValidationSubType == helpers.ValidationMissingOperation {
			return policy.Deny(http.StatusMethodNotAllowed, CodeMethodNotAllowed, "the API does not allow this method on this path").WithErr(cause)
		}
		return policy.Deny(http.StatusNotFound, CodeNotFound, "no operation of the API matches this request").WithErr(cause)
	}
	e := errs[0]
	detail := describe(e)
	if len(detail) > maxDetail {
		detail = detail[:maxDetail] + "…"
	}
	return policy.Deny(http.StatusBadRequest, CodeInvalid, detail).WithErr(fmt.Errorf("openapi: %s: %s", e.Message, e.Reason))
}

// describe names the failing field: "query.limit: ...", "body.price: ...".
func describe(e *verrors.ValidationError) string {
	where := ""
	switch e.ValidationType {
	case helpers.ParameterValidation:
		where = e.ValidationSubType + "." + e.ParameterName
	case helpers.RequestBodyValidation, helpers.Schema:
		where = "body"
	}
	reason := e.Reason
	if len(e.SchemaValidationErrors) > 0 {
		f := e.SchemaValidationErrors[0]
		reason = f.Reason
		if fp := strings.TrimPrefix(f.FieldPath, "$"); fp != "" && where == "body" {
			where += fp
		} else if len(f.InstancePath) > 0 && where == "body" {
			where += "." + strings.Join(f.InstancePath, ".")
		}
	}
	if where == "" {
		return e.Message
	}
	return where + ": " + reason
}

// responseCheck holds a JSON response back, up to maxResponse, and
// validates it when it is complete.
type responseCheck struct {
	policy.ResponseWriter
	o      *OpenAPI
	ex     *policy.Exchange
	req    *http.Request
	status int // 0 until WriteHeader
	buf    []byte
	// passing: not held (not JSON, too large, the gateway's own, or
	// decided).
	passing bool
}

func (c *responseCheck) WriteHeader(status int) {
	if c.status != 0 {
		return
	}
	c.status = status
	ct := c.Header().Get("Content-Type")
	if c.ex.GatewayResponse || c.ex.Request.Method == http.MethodHead || !strings.Contains(strings.ToLower(ct), "json") {
		c.passing = true
		c.ResponseWriter.WriteHeader(status)
	}
}

func (c *responseCheck) Write(b []byte) (int, error) {
	if c.status == 0 {
		c.WriteHeader(http.StatusOK)
	}
	if c.passing {
		return c.ResponseWriter.Write(b)
	}
	if len(c.buf)+len(b) > c.o.maxResponse {
		// Too large to hold: passes unvalidated.
		c.passing = true
		c.ResponseWriter.WriteHeader(c.status)
		if _, err := c.ResponseWriter.Write(c.buf); err != nil {
			return 0, err
		}
		c.buf = nil
		return c.ResponseWriter.Write(b)
	}
	c.buf = append(c.buf, b...)
	return len(b), nil
}

// Flush flushes only what is not held.
func (c *responseCheck) Flush() {
	if c.passing {
		c.ResponseWriter.Flush()
	}
}

// End validates a held response and passes it on, or refuses it.
func (c *responseCheck) End() {
	next := c.ResponseWriter
	if c.passing || c.status == 0 {
		next.End()
		return
	}
	c.passing = true
	resp := &http.Response{StatusCode: c.status, Header: c.Header(), Body: io.NopCloser(bytes.NewReader(c.buf)), Request: c.req}
	c.req.Body = http.NoBody
	if ok, errs := c.o.v.ValidateHttpResponse(c.req, resp); !ok {
		detail := describe(errs[0])
		c.o.logger.LogAttrs(context.Background(), slog.LevelWarn, "openapi response mismatch",
			slog.String("route", c.o.route), slog.String("request_id", c.ex.RequestID),
			slog.Int("status", c.status), slog.String("problem", detail))
		if c.o.block {
			next.Refuse(policy.Deny(http.StatusBadGateway, CodeResponseInvalid, "the upstream's response does not match the API").
				WithErr(fmt.Errorf("openapi: response %d: %s", c.status, detail)))
			next.End()
			return
		}
	}
	next.WriteHeader(c.status)
	next.Write(c.buf) //nolint:errcheck // the client is gone; nothing to do.
	next.End()
}
