// Package admin serves the admin listener: Prometheus metrics, health, the
// admin API under /api/v1 (with its OpenAPI document) and the web console
// at /console.
package admin

import (
	_ "embed"
	"net/http"
	"net/http/pprof"

	"github.com/gatehouse/gatehouse/internal/audit"
	"github.com/gatehouse/gatehouse/internal/telemetry"
)

//go:embed openapi.json
var openapiJSON []byte

// Options are what the admin handler serves.
type Options struct {
	// Metrics are exposed at /metrics. Required.
	Metrics *telemetry.Metrics
	// Ready reports readiness for /readyz. Nil: always ready.
	Ready func() bool
	// Backend is what the admin API and the console show and act on.
	// Nil: neither is served.
	Backend Backend
	// Audit is the audit log (recent events, admin actions). Nil:
	// discard.
	Audit *audit.Log
	// Access protects the admin API, the console's data and pprof.
	Access Access
}

// Handler returns the admin API:
//
//	GET /metrics  Prometheus text exposition, or OpenMetrics when asked
//	GET /healthz  200 while the process serves (liveness)
//	GET /readyz   200 when the gateway takes traffic, 503 while starting or draining
//	GET /debug/pprof/...  Go profiles (CPU, heap, goroutines) for diagnosis
//	/api/v1/...   the admin API (see openapi.json, docs/admin.md)
//	GET /console  the web console
//
// The admin listener binds to loopback by default; elsewhere the config
// requires a token or client certificates (see Access). Metrics and health
// stay open for scrapers and probes; pprof and the API are protected.
// Unsafe methods from another origin (a web page posting to
// 127.0.0.1:9901) are refused.
func Handler(opt Options) http.Handler {
	mux := http.NewServeMux()
	acc := opt.Access
	mux.Handle("GET /debug/pprof/", acc.wrap(pprof.Index))
	mux.Handle("GET /debug/pprof/cmdline", acc.wrap(pprof.Cmdline))
	mux.Handle("GET /debug/pprof/profile", acc.wrap(pprof.Profile))
	mux.Handle("GET /debug/pprof/symbol", acc.wrap(pprof.Symbol))
	mux.Handle("GET /debug/pprof/trace", acc.wrap(pprof.Trace))
	if opt.Backend != nil {
		a := &api{b: opt.Backend, audit: opt.Audit}
		a.routes(mux, acc.wrap)
		consoleRoutes(mux, opt.Backend, acc)
	}
	mux.Handle("GET /metrics", opt.Metrics.Handler())
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
	return http.NewCrossOriginProtection().Handler(mux)
}

func plain(w http.ResponseWriter, status int, body string) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_, _ = w.Write([]byte(body))
}
