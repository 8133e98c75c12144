package extauthz_test

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/netip"
	"strconv"
	"strings"
	"testing"
	"time"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	"github.com/google/go-cmp/cmp"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/gatehouse/gatehouse/internal/config"
	"github.com/gatehouse/gatehouse/internal/doortest"
	"github.com/gatehouse/gatehouse/internal/extauthz"
	"github.com/gatehouse/gatehouse/internal/forwardauth"
)

// doors is a gateway with every door open: its own listener (serve), the
// dry run (Evaluate), ext_authz over gRPC and over HTTP, and forward-auth.
type doors struct {
	env     *doortest.Env
	grpc    authv3.AuthorizationClient
	extHTTP string // base URL of the http_service flavour
	fwd     string // base URL of the forward-auth endpoint
	client  *http.Client
}

func openDoors(t *testing.T, withRequestBody bool) *doors {
	t.Helper()
	env := doortest.Start(t, "")
	log := slog.New(slog.DiscardHandler)
	ext, err := extauthz.Start(env.GW.Gateway, &config.ExtAuthz{GRPCAddress: "127.0.0.1:0", HTTPAddress: "127.0.0.1:0",
		WithRequestBody: withRequestBody, MaxRequestBytes: 1 << 20}, log)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(ext.Close)
	fwd, err := forwardauth.Start(env.GW.Gateway, &config.ForwardAuth{Address: "127.0.0.1:0", MaxBodyBytes: 1 << 20},
		[]netip.Prefix{netip.MustParsePrefix("127.0.0.1/32")}, log)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(fwd.Close)
	conn, err := grpc.NewClient(ext.GRPCAddr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return &doors{env: env, grpc: authv3.NewAuthorizationClient(conn), extHTTP: "http://" + ext.HTTPAddr().String(),
		fwd: "http://" + fwd.Addr().String(), client: &http.Client{Timeout: 60 * time.Second}}
}

// A request as a client sends it.
type request struct {
	method, target, body string
	header               map[string]string
}

// outcome is what a door decided, in the terms every door can tell:
// the status, the stable code, the identity the upstream would get, and
// for a refusal the fields and body of the answer.
type outcome struct {
	Status  int
	Code    string
	Subject string // X-Auth-Subject as the upstream gets it
	Scopes  string
	JWT     bool   // X-Gatehouse-Identity present
	User    string // X-User (spoofable, stripped by identity)
	// Refusals only: WWW-Authenticate, Retry-After, RateLimit-Policy and
	// the body with the request id taken out.
	Challenge, RetryAfter, RateLimit, Body string
}

// peerCopies are the identity fields a forward-auth peer is told to copy
// from the answer (nginx auth_request_set, Traefik authResponseHeaders,
// Caddy copy_headers: a field the answer lacks is removed).
var peerCopies = []string{"X-Auth-Subject", "X-Auth-Scopes", "X-Gatehouse-Identity", "X-User"}

func identity(o *outcome, h http.Header) {
	o.Subject, o.Scopes, o.JWT, o.User = h.Get("X-Auth-Subject"), h.Get("X-Auth-Scopes"), h.Get("X-Gatehouse-Identity") != "", h.Get("X-User")
}

func refusal(o *outcome, h http.Header, body []byte, id string) {
	o.Challenge, o.RetryAfter, o.RateLimit = h.Get("WWW-Authenticate"), h.Get("Retry-After"), h.Get("RateLimit-Policy")
	o.Body = string(body)
	if id != "" {
		o.Body = strings.ReplaceAll(o.Body, id, "ID")
	}
	o.Code = codeOf(o.Body)
}

// codeOf reads the stable code out of a problem+json body or a SOAP
// Fault's faultcode.
func codeOf(body string) string {
	if _, rest, ok := strings.Cut(body, `"code":"`); ok {
		code, _, _ := strings.Cut(rest, `"`)
		return code
	}
	if _, rest, ok := strings.Cut(body, "<faultcode>"); ok {
		code, _, _ := strings.Cut(rest, "</faultcode>")
		return code
	}
	return ""
}

func (d *doors) header(req request) http.Header {
	h := http.Header{}
	for k, v := range req.header {
		h.Set(k, v)
	}
	return h
}

func (d *doors) serve(t *testing.T, req request) outcome {
	r, err := http.NewRequest(req.method, d.env.GW.URL+req.target, strings.NewReader(req.body))
	if err != nil {
		t.Fatal(err)
	}
	r.Header = d.header(req)
	resp, err := d.client.Do(r)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	id := resp.Header.Get("X-Request-Id")
	o := outcome{Status: resp.StatusCode}
	if resp.StatusCode == http.StatusOK {
		identity(&o, d.env.Upstream.Seen(id))
		return o
	}
	refusal(&o, resp.Header, body, id)
	return o
}

func (d *doors) dryRun(t *testing.T, req request) outcome {
	r, err := http.NewRequest(req.method, "http://"+d.env.GW.Addr("main").String()+req.target, strings.NewReader(req.body))
	if err != nil {
		t.Fatal(err)
	}
	r.Header = d.header(req)
	r.RemoteAddr = "127.0.0.1:40000"
	dec := d.env.GW.Evaluate(r)
	o := outcome{Status: dec.Status, Code: dec.Code}
	if dec.Decision == "allow" {
		identity(&o, r.Header)
	}
	return o
}

func (d *doors) checkRequest(req request) *authv3.CheckRequest {
	h := map[string]string{}
	for k, v := range req.header {
		h[strings.ToLower(k)] = v
	}
	hr := &authv3.AttributeContext_HttpRequest{
		Id: "1", Method: req.method, Path: req.target, Host: d.env.GW.Addr("main").String(), Scheme: "http",
		Protocol: "HTTP/1.1", Headers: h,
	}
	if req.body != "" {
		hr.Body = req.body
		h["content-length"] = strconv.Itoa(len(req.body))
		h["x-envoy-auth-partial-body"] = "false"
	}
	return &authv3.CheckRequest{Attributes: &authv3.AttributeContext{
		Source: &authv3.AttributeContext_Peer{Address: &corev3.Address{Address: &corev3.Address_SocketAddress{
			SocketAddress: &corev3.SocketAddress{Address: "192.0.2.10", PortSpecifier: &corev3.SocketAddress_PortValue{PortValue: 51000}}}}},
		Request: &authv3.AttributeContext_Request{Http: hr},
	}}
}

func (d *doors) extGRPC(t *testing.T, req request) outcome {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	resp, err := d.grpc.Check(ctx, d.checkRequest(req))
	if err != nil {
		t.Fatal(err)
	}
	if ok := resp.GetOkResponse(); ok != nil {
		if resp.GetStatus().GetCode() != 0 {
			t.Fatalf("OK response with status %v", resp.GetStatus())
		}
		// The upstream gets the client's fields with Envoy's changes.
		up := d.header(req)
		for _, k := range ok.GetHeadersToRemove() {
			up.Del(k)
		}
		for _, o := range ok.GetHeaders() {
			switch o.GetAppendAction() {
			case corev3.HeaderValueOption_OVERWRITE_IF_EXISTS_OR_ADD:
				up.Set(o.GetHeader().GetKey(), o.GetHeader().GetValue())
			default:
				up.Add(o.GetHeader().GetKey(), o.GetHeader().GetValue())
			}
		}
		o := outcome{Status: http.StatusOK}
		identity(&o, up)
		return o
	}
	den := resp.GetDeniedResponse()
	if den == nil {
		t.Fatalf("neither OK nor denied: %v", resp)
	}
	h := http.Header{}
	for _, o := range den.GetHeaders() {
		h.Add(o.GetHeader().GetKey(), o.GetHeader().GetValue())
	}
	o := outcome{Status: int(den.GetStatus().GetCode())}
	refusal(&o, h, []byte(den.GetBody()), h.Get("X-Request-Id"))
	return o
}

func (d *doors) extHTTPCheck(t *testing.T, req request) outcome {
	r, err := http.NewRequest(req.method, d.extHTTP+req.target, strings.NewReader(req.body))
	if err != nil {
		t.Fatal(err)
	}
	r.Header = d.header(req)
	r.Host = d.env.GW.Addr("main").String()
	if req.body != "" {
		r.Header.Set("X-Envoy-Auth-Partial-Body", "false")
	}
	resp, err := d.client.Do(r)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	o := outcome{Status: resp.StatusCode}
	if resp.StatusCode == http.StatusOK {
		up := d.header(req)
		for _, k := range strings.Split(resp.Header.Get(extauthz.HeadersToRemove), ",") {
			up.Del(k)
		}
		for _, k := range peerCopies {
			if v := resp.Header.Get(k); v != "" {
				up.Set(k, v)
			}
		}
		identity(&o, up)
		return o
	}
	refusal(&o, resp.Header, body, resp.Header.Get("X-Request-Id"))
	return o
}

func (d *doors) forwardAuth(t *testing.T, req request) outcome {
	// As Traefik's forwardAuth with forwardBody sends it: the original's
	// fields, described in X-Forwarded-*, and the body.
	r, err := http.NewRequest(http.MethodGet, d.fwd+"/auth", strings.NewReader(req.body))
	if err != nil {
		t.Fatal(err)
	}
	r.Header = d.header(req)
	r.Header.Set("X-Forwarded-Method", req.method)
	r.Header.Set("X-Forwarded-Uri", req.target)
	r.Header.Set("X-Forwarded-Host", d.env.GW.Addr("main").String())
	r.Header.Set("X-Forwarded-Proto", "http")
	r.Header.Set("X-Forwarded-Content-Length", strconv.Itoa(len(req.body)))
	resp, err := d.client.Do(r)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	o := outcome{Status: resp.StatusCode}
	if resp.StatusCode == http.StatusOK {
		up := d.header(req)
		for _, k := range peerCopies {
			up.Del(k)
			if v := resp.Header.Get(k); v != "" {
				up.Set(k, v)
			}
		}
		identity(&o, up)
		return o
	}
	refusal(&o, resp.Header, body, resp.Header.Get("X-Request-Id"))
	return o
}

// TestSameDecisionsEverywhere sends each case through the gateway's own
// listener, the dry run, ext_authz (gRPC and HTTP) and forward-auth, and
// requires the same decision: status, code, the identity the upstream
// gets, and for a refusal the same challenge, limit fields and body.
// (The dry run tells neither fields nor body.)
func TestSameDecisionsEverywhere(t *testing.T) {
	d := openDoors(t, true)
	bearer := func(tok string) map[string]string { return map[string]string{"Authorization": "Bearer " + tok} }
	with := func(a map[string]string, kv ...string) map[string]string {
		out := map[string]string{}
		for k, v := range a {
			out[k] = v
		}
		for i := 0; i+1 < len(kv); i += 2 {
			out[kv[i]] = kv[i+1]
		}
		return out
	}
	env := d.env
	cases := []struct {
		name string
		req  request
		want outcome // status and code; the rest is compared between doors
		// dryCode is the code the dry run records where the answer's
		// differs (a SOAP Fault's faultcode).
		dryCode string
	}{
		{"allowed read", request{"GET", "/product/p-1", "", bearer(env.Reader)}, outcome{Status: 200}, ""},
		{"spoofed identity", request{"GET", "/product/p-1", "", with(bearer(env.Reader), "X-Auth-Subject", "admin", "X-User", "root")}, outcome{Status: 200}, ""},
		{"no token", request{"GET", "/product/p-1", "", nil}, outcome{Status: 401, Code: "missing_credentials"}, ""},
		{"bad token", request{"GET", "/product", "", bearer("not.a.jwt")}, outcome{Status: 401, Code: "invalid_token"}, ""},
		{"insufficient scope", request{"POST", "/product", `{"name":"Lamp"}`, with(bearer(env.Reader), "Content-Type", "application/json")}, outcome{Status: 403, Code: "insufficient_scope"}, ""},
		{"no route", request{"GET", "/nowhere", "", nil}, outcome{Status: 404, Code: "no_route"}, ""},
		{"method not in scopes", request{"DELETE", "/product/p-1", "", bearer(env.Writer)}, outcome{Status: 405, Code: "method_not_allowed"}, ""},
		{"body within limits", request{"POST", "/orders", `{"a":{"b":1}}`, map[string]string{"Content-Type": "application/json"}}, outcome{Status: 200}, ""},
		{"body too deep", request{"POST", "/orders", `{"a":{"b":{"c":{"d":1}}}}`, map[string]string{"Content-Type": "application/json"}}, outcome{Status: 400, Code: "json_limit_exceeded"}, ""},
		{"SOAP fault", request{"POST", "/soap", `<s:Envelope xmlns:s="http://schemas.xmlsoap.org/soap/envelope/"><s:Body/></s:Envelope>`, map[string]string{"Content-Type": "text/xml"}}, outcome{Status: 401, Code: "soap:Client"}, "missing_credentials"},
	}
	doorsByName := []struct {
		name string
		run  func(*testing.T, request) outcome
	}{
		{"ext_authz gRPC", d.extGRPC}, {"ext_authz HTTP", d.extHTTPCheck}, {"forward-auth", d.forwardAuth}, {"dry run", d.dryRun},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			served := d.serve(t, c.req)
			if served.Status != c.want.Status || (c.want.Code != "" && served.Code != c.want.Code) {
				t.Fatalf("serve: %d %q, want %d %q\n%s", served.Status, served.Code, c.want.Status, c.want.Code, served.Body)
			}
			if served.Status == 200 && strings.HasPrefix(c.req.target, "/product") {
				if served.Subject != "reader" || !served.JWT || served.User != "" {
					t.Fatalf("serve: identity %+v", served)
				}
			}
			for _, door := range doorsByName {
				got := door.run(t, c.req)
				want := served
				if door.name == "dry run" {
					want.Challenge, want.RetryAfter, want.RateLimit, want.Body = "", "", "", ""
					if c.dryCode != "" {
						want.Code = c.dryCode
					}
				}
				if diff := cmp.Diff(want, got); diff != "" {
					t.Errorf("%s differs from serve (-serve +%s):\n%s", door.name, door.name, diff)
				}
			}
		})
	}
}

// TestLimitsCountOnce: a request decided through any door is counted once
// by the route's rate limit, which all doors share.
func TestLimitsCountOnce(t *testing.T) {
	d := openDoors(t, true)
	req := request{"GET", "/limited/x", "", map[string]string{"Authorization": "Bearer " + d.env.Reader}}
	steps := []struct {
		door string
		run  func(*testing.T, request) outcome
		want int
	}{
		{"serve", d.serve, 200},
		{"ext_authz gRPC", d.extGRPC, 200},
		{"forward-auth", d.forwardAuth, 200},
		{"ext_authz HTTP", d.extHTTPCheck, 429},
		{"serve", d.serve, 429},
		{"forward-auth", d.forwardAuth, 429},
	}
	for i, s := range steps {
		got := s.run(t, req)
		if got.Status != s.want {
			t.Fatalf("request %d through %s: %d %q, want %d", i+1, s.door, got.Status, got.Code, s.want)
		}
		if s.want == 429 && (got.Code != "rate_limited" || got.RetryAfter == "") {
			t.Errorf("request %d through %s: %+v, want rate_limited with Retry-After", i+1, s.door, got)
		}
	}
}
