//go:build unix

package gateway

import (
	"context"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"testing"

	coltracepb "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	"google.golang.org/grpc"

	"github.com/gatehouse/gatehouse/internal/benchcpu"
	"github.com/gatehouse/gatehouse/internal/builtin"
)

// discardCollector is an OTLP gRPC receiver that drops what it gets.
type discardCollector struct {
	coltracepb.UnimplementedTraceServiceServer
}

func (discardCollector) Export(context.Context, *coltracepb.ExportTraceServiceRequest) (*coltracepb.ExportTraceServiceResponse, error) {
	return &coltracepb.ExportTraceServiceResponse{}, nil
}

// BenchmarkTracing measures the whole handler in front of a loopback
// upstream, through a chain of three policies, with tracing off (no
// tracing: block, the default), on (every request sampled, exported over
// gRPC to a real receiver in this process) and on with sampling_ratio 0
// (spans made but not recorded: the trace context alone). Besides ns/op
// it reports cpu-ns/op (benchcpu), the process CPU time per request, the
// exporter's goroutines included.
func BenchmarkTracing(b *testing.B) {
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, `{"id":"p-1001"}`)
	}))
	defer up.Close()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	srv := grpc.NewServer()
	coltracepb.RegisterTraceServiceServer(srv, discardCollector{})
	go srv.Serve(ln)
	defer srv.Stop()

	routes := `
routes:
  - name: product
    match: {path: "/product/{id}"}
    upstream: {url: "` + up.URL + `"}
    policies:
      - ipfilter: {allow: [127.0.0.0/8]}
      - size_limit: {body: 1MiB, headers: 16KiB}
      - headers: {request: {set: {X-Via-Gatehouse: "1"}}}
`
	base := "listeners: [{name: main, address: \"127.0.0.1:0\"}]\nadmin: {address: \"off\"}\n"
	tracing := func(ratio string) string {
		return "tracing: {endpoint: \"http://" + ln.Addr().String() + "\", sampling_ratio: " + ratio + "}\n"
	}
	for _, tc := range []struct{ name, cfg string }{
		{"off", base + routes},
		{"on", base + tracing("1") + routes},
		{"on_unsampled", base + tracing("0") + routes},
	} {
		b.Run(tc.name, func(b *testing.B) {
			g, err := New(load(b, tc.cfg, nil), Options{BaseDir: b.TempDir(), Registry: builtin.Registry(), Logger: slog.New(slog.DiscardHandler), AccessLog: slog.New(slog.DiscardHandler)})
			if err != nil {
				b.Fatal(err)
			}
			defer g.Close()
			b.ReportAllocs()
			c := benchcpu.Start(b)
			for b.Loop() {
				req := httptest.NewRequest("GET", "http://gw/product/p-1001", nil)
				req.RemoteAddr = "127.0.0.1:5000"
				w := httptest.NewRecorder()
				g.ServeHTTP(w, req)
				if w.Code != 200 {
					b.Fatalf("status %d", w.Code)
				}
			}
			c.Report()
		})
	}
}
