//go:build unix

package extauthz_test

import (
	"context"
	"log/slog"
	"net"
	"testing"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	rpcstatus "google.golang.org/genproto/googleapis/rpc/status"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/gatehouse/gatehouse/internal/benchcpu"
	"github.com/gatehouse/gatehouse/internal/config"
	"github.com/gatehouse/gatehouse/internal/doortest"
	"github.com/gatehouse/gatehouse/internal/extauthz"
)

// noop answers every Check OK at once: what gRPC itself costs.
type noop struct {
	authv3.UnimplementedAuthorizationServer
}

func (noop) Check(context.Context, *authv3.CheckRequest) (*authv3.CheckResponse, error) {
	return &authv3.CheckResponse{Status: &rpcstatus.Status{},
		HttpResponse: &authv3.CheckResponse_OkResponse{OkResponse: &authv3.OkHttpResponse{}}}, nil
}

// BenchmarkCheck measures an ext_authz Check of the bench route (jwt with
// the verified-token cache, a local rate limit never reached, scopes) on
// one repeated token, against a no-op Check server over the same gRPC
// transport in the same process:
//
//   - noop: gRPC's own cost, client and server;
//   - gatehouse: the same call answered by Gatehouse;
//   - direct: Service.Check without gRPC (the rebuild, the decision and
//     the translation).
//
// cpu-ns/op (benchcpu: the process's CPU time, all threads) of gatehouse
// minus noop is what Gatehouse adds over gRPC's own cost.
func BenchmarkCheck(b *testing.B) {
	env := doortest.Start(b, "")
	d := &doors{env: env}
	req := d.checkRequest(request{"GET", "/bench/p-1", "", map[string]string{"Authorization": "Bearer " + env.Reader, "Accept": "application/json", "User-Agent": "bench"}})
	req.Attributes.Source.Address = &corev3.Address{Address: &corev3.Address_SocketAddress{SocketAddress: &corev3.SocketAddress{
		Address: "127.0.0.1", PortSpecifier: &corev3.SocketAddress_PortValue{PortValue: 50000}}}}

	noopSrv := grpc.NewServer()
	authv3.RegisterAuthorizationServer(noopSrv, noop{})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	go noopSrv.Serve(ln)
	b.Cleanup(noopSrv.Stop)

	ext, err := extauthz.Start(env.GW.Gateway, &config.ExtAuthz{GRPCAddress: "127.0.0.1:0", MaxRequestBytes: 1 << 20}, slog.New(slog.DiscardHandler))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(ext.Close)

	client := func(addr string) authv3.AuthorizationClient {
		conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { conn.Close() })
		return authv3.NewAuthorizationClient(conn)
	}
	ctx := context.Background()
	for _, tc := range []struct {
		name  string
		check func(context.Context, *authv3.CheckRequest, ...grpc.CallOption) (*authv3.CheckResponse, error)
	}{
		{"noop", client(ln.Addr().String()).Check},
		{"gatehouse", client(ext.GRPCAddr().String()).Check},
		{"direct", func(ctx context.Context, r *authv3.CheckRequest, _ ...grpc.CallOption) (*authv3.CheckResponse, error) {
			return extauthz.NewService(env.GW.Gateway, false).Check(ctx, r)
		}},
	} {
		b.Run(tc.name, func(b *testing.B) {
			resp, err := tc.check(ctx, req)
			if err != nil || resp.GetOkResponse() == nil {
				b.Fatalf("not allowed: %v %v", resp, err)
			}
			b.ReportAllocs()
			c := benchcpu.Start(b)
			for b.Loop() {
				if _, err := tc.check(ctx, req); err != nil {
					b.Fatal(err)
				}
			}
			c.Report()
		})
	}
}
