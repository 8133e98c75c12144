package extauthz

import (
	"context"
	"net/http"
	"slices"
	"strings"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	typev3 "github.com/envoyproxy/go-control-plane/envoy/type/v3"
	rpcstatus "google.golang.org/genproto/googleapis/rpc/status"
	"google.golang.org/grpc/codes"

	"github.com/gatehouse/gatehouse/internal/gateway"
	"github.com/gatehouse/gatehouse/internal/policy"
	"github.com/gatehouse/gatehouse/internal/render"
)

// Service is the gRPC service envoy.service.auth.v3.Authorization.
type Service struct {
	authv3.UnimplementedAuthorizationServer
	d Decider
	// withBody: Envoy forwards every body (with_request_body), so a
	// request it sent without one had none.
	withBody bool
}

// NewService returns the Authorization service deciding with d.
// withRequestBody says that Envoy is configured with with_request_body
// (ext_authz.with_request_body), so that a request described without a
// body had none.
func NewService(d Decider, withRequestBody bool) *Service {
	return &Service{d: d, withBody: withRequestBody}
}

// Check decides the request req describes. It never fails with a gRPC
// error for a request it could decide: a refusal is a CheckResponse with
// a DeniedHttpResponse (status PERMISSION_DENIED, or UNAUTHENTICATED for
// a 401), a CheckRequest that does not describe an HTTP request is
// denied 400 invalid_request.
func (s *Service) Check(ctx context.Context, req *authv3.CheckRequest) (*authv3.CheckResponse, error) {
	r, err := fromCheck(ctx, req, s.withBody)
	if err != nil {
		return badRequest(), nil
	}
	return checkResponse(s.d.Decide(r)), nil
}

// badRequest is the denial of a CheckRequest without an HTTP request.
func badRequest() *authv3.CheckResponse {
	rec := &recorder{h: http.Header{}}
	r, _ := http.NewRequest(http.MethodGet, "/", nil)
	render.Error(rec, r, policy.REST, "", http.StatusBadRequest, "invalid_request", "the authorization request does not describe an HTTP request")
	return checkResponse(gateway.Decision{Status: rec.status, Header: rec.h, Body: rec.body})
}

// checkResponse translates a decision.
func checkResponse(d gateway.Decision) *authv3.CheckResponse {
	if d.Allowed {
		ok := &authv3.OkHttpResponse{
			Headers:              headerOptions(d.UpstreamSet),
			HeadersToRemove:      lower(d.UpstreamRemove),
			ResponseHeadersToAdd: headerOptions(d.Header),
		}
		return &authv3.CheckResponse{Status: &rpcstatus.Status{Code: int32(codes.OK)},
			HttpResponse: &authv3.CheckResponse_OkResponse{OkResponse: ok}}
	}
	code := codes.PermissionDenied
	if d.Status == http.StatusUnauthorized {
		code = codes.Unauthenticated
	}
	den := &authv3.DeniedHttpResponse{
		Status:  &typev3.HttpStatus{Code: typev3.StatusCode(d.Status)},
		Headers: headerOptions(responseFields(d.Header)),
		Body:    string(d.Body),
	}
	return &authv3.CheckResponse{Status: &rpcstatus.Status{Code: int32(code), Message: d.Code},
		HttpResponse: &authv3.CheckResponse_DeniedResponse{DeniedResponse: den}}
}

// responseFields drops the fields of a response that describe its
// connection or framing, which Envoy writes itself.
func responseFields(h http.Header) http.Header {
	for _, k := range [...]string{"Connection", "Content-Length", "Transfer-Encoding", "Keep-Alive"} {
		delete(h, k)
	}
	return h
}

// headerOptions lists h's fields in a stable order, each name's first
// value overwriting what Envoy has and the further ones appended, so that
// a client's own value of a field never survives next to the gateway's.
func headerOptions(h http.Header) []*corev3.HeaderValueOption {
	if len(h) == 0 {
		return nil
	}
	keys := make([]string, 0, len(h))
	for k := range h {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	out := make([]*corev3.HeaderValueOption, 0, len(keys))
	for _, k := range keys {
		for i, v := range h[k] {
			action := corev3.HeaderValueOption_OVERWRITE_IF_EXISTS_OR_ADD
			if i > 0 {
				action = corev3.HeaderValueOption_APPEND_IF_EXISTS_OR_ADD
			}
			out = append(out, &corev3.HeaderValueOption{
				Header:       &corev3.HeaderValue{Key: strings.ToLower(k), Value: v},
				AppendAction: action,
			})
		}
	}
	return out
}

func lower(names []string) []string {
	if len(names) == 0 {
		return nil
	}
	out := make([]string, len(names))
	for i, n := range names {
		out[i] = strings.ToLower(n)
	}
	return out
}

// recorder keeps a response written by the renderer.
type recorder struct {
	h      http.Header
	status int
	body   []byte
}

func (w *recorder) Header() http.Header { return w.h }
func (w *recorder) WriteHeader(code int) {
	if w.status == 0 {
		w.status = code
	}
}
func (w *recorder) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	w.body = append(w.body, b...)
	return len(b), nil
}
