// Package admin serves the admin listener: Prometheus metrics and health.
package admin

import (
	"net/http"
	"net/http/pprof"

	"github.com/gatehouse/gatehouse/internal/telemetry"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Options are what the admin handler serves.
type Options struct {
	// Metrics are exposed at /metrics. Required.
	Metrics *telemetry.Metrics
	// Ready reports readiness for /readyz. Nil: always ready.
	Ready func() bool
}

// Handler returns the admin API:
//
//	GET /metrics  Prometheus text exposition
//	GET /healthz  200 while the process serves (liveness)
//	GET /readyz   200 when the gateway takes traffic, 503 while starting or draining
//	GET /debug/pprof/...  Go profiles (CPU, heap, goroutines) for diagnosis
//
// The admin listener binds to loopback by default; it must not be exposed
// without protection (profiles reveal internals and cost CPU).
func Handler(opt Options) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /debug/pprof/", pprof.Index)
	mux.HandleFunc("GET /debug/pprof/cmdline", pprof.Cmdline)
	mux.HandleFunc("GET /debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("GET /debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("GET /debug/pprof/trace", pprof.Trace)
	mux.Handle("GET /metrics", promhttp.HandlerFor(opt.Metrics.Registry, promhttp.HandlerOpts{}))
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		plain(w, http.StatusOK, "ok\n")
	})
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, _ *http.Request) {
		if opt.Ready != nil && !opt.Ready() {
			plain(w, http.StatusServiceUnavailable, "not ready\n")
			return
		}
		plain(w, http.StatusOK, "ready\n")
	})
	return mux
}

func plain(w http.ResponseWriter, status int, body string) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_, _ = w.Write([]byte(body))
}
