package extauthz

import (
	"context"
	"crypto/tls"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"time"

	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"

	"github.com/gatehouse/gatehouse/internal/config"
	"github.com/gatehouse/gatehouse/internal/gateway"
)

// Server is the ext_authz listeners of a gateway: the gRPC service, the
// http_service handler, or both.
type Server struct {
	grpc     *grpc.Server
	http     *http.Server
	grpcAddr net.Addr
	httpAddr net.Addr
}

// Start opens the listeners c describes and serves g's decisions on them
// in the background. The addresses and TLS settings are read once: a
// reload changes the routes decided, not the listeners.
func Start(g *gateway.Gateway, c *config.ExtAuthz, log *slog.Logger) (*Server, error) {
	var tc *tls.Config
	if c.TLS != nil {
		var err error
		if tc, err = g.ServerTLS("ext_authz.tls", c.TLS); err != nil {
			return nil, err
		}
	}
	s := &Server{}
	if c.GRPCAddress != "" {
		ln, err := net.Listen("tcp", c.GRPCAddress)
		if err != nil {
			return nil, err
		}
		opts := []grpc.ServerOption{grpc.MaxRecvMsgSize(int(c.MaxRequestBytes.Bytes()) + 64<<10)}
		if tc != nil {
			opts = append(opts, grpc.Creds(credentials.NewTLS(tc)))
		}
		s.grpc = grpc.NewServer(opts...)
		authv3.RegisterAuthorizationServer(s.grpc, NewService(g, c.WithRequestBody))
		s.grpcAddr = ln.Addr()
		go func() {
			if err := s.grpc.Serve(ln); err != nil {
				log.Error("ext_authz gRPC listener stopped", "err", err)
			}
		}()
		log.Info("ext_authz gRPC listening", "address", s.grpcAddr.String())
	}
	if c.HTTPAddress != "" {
		ln, err := net.Listen("tcp", c.HTTPAddress)
		if err != nil {
			s.Close()
			return nil, err
		}
		s.http = &http.Server{
			Handler:           NewHTTPHandler(g, c.HTTPPathPrefix, c.WithRequestBody, c.MaxRequestBytes.Bytes()),
			ReadHeaderTimeout: 10 * time.Second,
			IdleTimeout:       120 * time.Second,
			ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelDebug),
		}
		if tc != nil {
			s.http.TLSConfig = tc
			ln = tls.NewListener(ln, tc)
		}
		s.httpAddr = ln.Addr()
		go func() {
			if err := s.http.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
				log.Error("ext_authz HTTP listener stopped", "err", err)
			}
		}()
		log.Info("ext_authz http_service listening", "address", s.httpAddr.String())
	}
	return s, nil
}

// GRPCAddr is the gRPC listener's address, nil when not served.
func (s *Server) GRPCAddr() net.Addr { return s.grpcAddr }

// HTTPAddr is the http_service listener's address, nil when not served.
func (s *Server) HTTPAddr() net.Addr { return s.httpAddr }

// Shutdown stops accepting and waits for the checks under way until ctx
// ends, then closes what is left.
func (s *Server) Shutdown(ctx context.Context) error {
	var err error
	if s.http != nil {
		err = s.http.Shutdown(ctx)
	}
	if s.grpc != nil {
		done := make(chan struct{})
		go func() { s.grpc.GracefulStop(); close(done) }()
		select {
		case <-done:
		case <-ctx.Done():
			s.grpc.Stop()
		}
	}
	return err
}

// Close stops at once.
func (s *Server) Close() {
	if s.http != nil {
		s.http.Close()
	}
	if s.grpc != nil {
		s.grpc.Stop()
	}
}
