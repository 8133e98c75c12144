package extauthz_test

import (
	"context"
	"crypto/tls"
	"log/slog"
	"net/http"
	"testing"
	"time"

	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"

	"github.com/gatehouse/gatehouse/internal/config"
	"github.com/gatehouse/gatehouse/internal/doortest"
	"github.com/gatehouse/gatehouse/internal/extauthz"
	"github.com/gatehouse/gatehouse/internal/tlstest"
)

// TestBodyNotForwarded: a route whose policies read the body is never
// allowed on the fields alone. Without with_request_body, a request whose
// own framing shows no body is decided as it is; one that had a body
// Envoy kept (a Content-Length, an HTTP/2 stream without one, a body cut
// at max_request_bytes) is denied 403 body_unavailable. A route that
// reads no body is decided without it.
func TestBodyNotForwarded(t *testing.T) {
	d := openDoors(t, false)
	deep := `{"a":{"b":{"c":{"d":1}}}}`
	check := func(t *testing.T, req request, mutate func(*authv3.CheckRequest)) outcome {
		t.Helper()
		cr := d.checkRequest(req)
		if mutate != nil {
			mutate(cr)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		defer cancel()
		resp, err := d.grpc.Check(ctx, cr)
		if err != nil {
			t.Fatal(err)
		}
		o := outcome{Status: 200}
		if den := resp.GetDeniedResponse(); den != nil {
			o.Status, o.Code = int(den.GetStatus().GetCode()), codeOf(den.GetBody())
		}
		return o
	}
	dropBody := func(cl string) func(*authv3.CheckRequest) {
		return func(cr *authv3.CheckRequest) {
			hr := cr.GetAttributes().GetRequest().GetHttp()
			hr.Body = ""
			delete(hr.Headers, "x-envoy-auth-partial-body")
			if cl == "" {
				delete(hr.Headers, "content-length")
			} else {
				hr.Headers["content-length"] = cl
			}
		}
	}
	unavailable := outcome{Status: 403, Code: "body_unavailable"}
	jsonType := map[string]string{"Content-Type": "application/json"}
	for _, c := range []struct {
		name   string
		req    request
		mutate func(*authv3.CheckRequest)
		want   outcome
	}{
		{"forwarded", request{"POST", "/orders", deep, jsonType}, nil, outcome{Status: 400, Code: "json_limit_exceeded"}},
		{"kept, Content-Length", request{"POST", "/orders", deep, jsonType}, dropBody("25"), unavailable},
		{"kept, chunked", request{"POST", "/orders", deep, jsonType}, func(cr *authv3.CheckRequest) {
			dropBody("")(cr)
			cr.Attributes.Request.Http.Headers["transfer-encoding"] = "chunked"
		}, unavailable},
		{"kept, HTTP/2", request{"POST", "/orders", deep, jsonType}, func(cr *authv3.CheckRequest) {
			dropBody("")(cr)
			cr.Attributes.Request.Http.Protocol = "HTTP/2"
		}, unavailable},
		{"cut short", request{"POST", "/orders", deep, jsonType}, func(cr *authv3.CheckRequest) {
			cr.Attributes.Request.Http.Headers["x-envoy-auth-partial-body"] = "true"
		}, unavailable},
		{"none, HTTP/1.1", request{"GET", "/orders", "", nil}, nil, d.serve(t, request{"GET", "/orders", "", nil})},
		{"none, Content-Length 0", request{"GET", "/orders", "", nil}, func(cr *authv3.CheckRequest) {
			cr.Attributes.Request.Http.Protocol = "HTTP/2"
			cr.Attributes.Request.Http.Headers["content-length"] = "0"
		}, d.serve(t, request{"GET", "/orders", "", nil})},
		{"a route reading no body", request{"POST", "/product", `{}`, map[string]string{"Authorization": "Bearer " + d.env.Writer}}, dropBody("2"), outcome{Status: 200}},
	} {
		t.Run(c.name, func(t *testing.T) {
			got := check(t, c.req, c.mutate)
			if got.Status != c.want.Status || got.Code != c.want.Code {
				t.Errorf("got %d %q, want %d %q", got.Status, got.Code, c.want.Status, c.want.Code)
			}
		})
	}
	// A client's own x-envoy-auth-partial-body cannot make a kept body
	// look forwarded over the HTTP flavour: its framing fields are
	// Envoy's, so without the body the route is denied.
	r, _ := http.NewRequest("POST", d.extHTTP+"/orders", nil)
	r.Header.Set("Content-Type", "application/json")
	resp, err := d.client.Do(r)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 403 {
		t.Errorf("http_service without the body: %d, want 403", resp.StatusCode)
	}
}

// TestMutualTLS serves the gRPC service over mTLS, as Envoy's
// grpc_service with a client certificate reaches it: a verified client
// is answered, one without a certificate is not.
func TestMutualTLS(t *testing.T) {
	env := doortest.Start(t, "")
	ca := tlstest.NewCA(t, "doors CA")
	srvCert, srvKey := ca.Server(t).WriteFiles(t, env.Dir, "server")
	caFile := ca.WriteFile(t, env.Dir, "ca")
	ext, err := extauthz.Start(env.GW.Gateway, &config.ExtAuthz{GRPCAddress: "127.0.0.1:0", MaxRequestBytes: 1 << 20,
		TLS: &config.ServerTLS{CertFile: srvCert, KeyFile: srvKey, MinVersion: "1.2", ClientAuth: "require_and_verify", ClientCAFile: caFile}},
		slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(ext.Close)
	req := (&doors{env: env}).checkRequest(request{"GET", "/product/p-1", "", map[string]string{"Authorization": "Bearer " + env.Reader}})
	dial := func(certs []tls.Certificate) (*authv3.CheckResponse, error) {
		creds := credentials.NewTLS(&tls.Config{RootCAs: ca.Pool(), Certificates: certs, ServerName: "localhost"})
		conn, err := grpc.NewClient(ext.GRPCAddr().String(), grpc.WithTransportCredentials(creds))
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		defer cancel()
		return authv3.NewAuthorizationClient(conn).Check(ctx, req)
	}
	resp, err := dial([]tls.Certificate{ca.Client(t, "envoy").TLS})
	if err != nil {
		t.Fatalf("verified client: %v", err)
	}
	if resp.GetOkResponse() == nil {
		t.Fatalf("verified client: %v", resp)
	}
	if resp, err := dial(nil); err == nil {
		t.Fatalf("client without a certificate was answered: %v", resp)
	}
}
