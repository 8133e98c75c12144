// Package gateway runs Gatehouse: it builds a runtime (router, policy
// chains, upstreams, TLS) from a config, serves the listeners with it, swaps
// in a new one on reload without dropping a request, and drains on stop.
package gateway

import (
	"cmp"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"os"
	"reflect"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gatehouse/gatehouse/internal/admin"
	"github.com/gatehouse/gatehouse/internal/audit"
	"github.com/gatehouse/gatehouse/internal/config"
	"github.com/gatehouse/gatehouse/internal/connlimit"
	"github.com/gatehouse/gatehouse/internal/policy"
	"github.com/gatehouse/gatehouse/internal/revocation"
	"github.com/gatehouse/gatehouse/internal/store"
	"github.com/gatehouse/gatehouse/internal/telemetry"
	"github.com/gatehouse/gatehouse/internal/tracing"
	"github.com/gatehouse/gatehouse/internal/usagepool"
)

// Options are what a Gateway needs besides its config.
type Options struct {
	// Registry knows the policy types. Required.
	Registry *policy.Registry
	// Logger is the operational log. Nil: slog.Default().
	Logger *slog.Logger
	// AccessLog, when set, replaces the access log the config describes
	// (tests use it to capture lines).
	AccessLog *slog.Logger
	// Metrics collects Prometheus metrics. Nil: a new set.
	Metrics *telemetry.Metrics
	// Now is the clock. Nil: time.Now.
	Now func() time.Time
	// BaseDir resolves relative file paths of the config (certificates,
	// the file store). Usually the config file's directory.
	BaseDir string
	// Store, when set, is the shared state instead of the one cfg.Store
	// describes (whose settings are still checked); the gateway does not
	// close it. `check` passes a memory store so that it neither takes the
	// state file's lock nor connects to Redis. Nil: cfg.Store is opened
	// by New and closed with the gateway.
	Store store.Store
	// Audit, when set, is the audit log instead of the one cfg.Audit
	// describes; the gateway does not close it. Nil: opened from cfg.
	Audit *audit.Log
	// Load, when set, reads the config again for the admin API's reload
	// (`serve` passes one reading its file). Nil: that reload answers
	// 501.
	Load func() (*config.Config, error)
}

// Gateway serves a config. Build it with New, then Start it.
type Gateway struct {
	registry *policy.Registry
	log      *slog.Logger
	access   *slog.Logger
	closeLog io.Closer
	metrics  *telemetry.Metrics
	now      func() time.Time
	baseDir  string
	// pool and revocations outlive reloads: a key set shared by the old
	// and the new config is not fetched again, and a revocation stays.
	pool        *usagepool.Pool
	revocations *revocation.List
	// store lives as long as the gateway too; its settings are read once.
	store      store.Store
	closeStore bool
	storeCfg   config.Store
	// audit, decisions and stats live as long as the gateway too.
	audit      *audit.Log
	closeAudit bool
	decisions  *decisionRing
	stats      *stats
	load       func() (*config.Config, error)
	// tracer exports the requests' spans; nil when tracing is off, which
	// is all the request path checks. Built once, like the store: a
	// reload that changes tracing takes effect on restart.
	tracer     *tracing.Tracer
	tracingCfg *config.Tracing
	// inService are the trace ids of the token services' requests in
	// flight, by request id, for the audit events they record (tracing
	// on only).
	inService sync.Map

	current atomic.Pointer[runtime]
	reload  sync.Mutex // serialises Reload

	servers   []*http.Server
	addrs     map[string]net.Addr
	adminSrv  *http.Server
	adminAddr net.Addr
	ready     atomic.Bool
	serveErrs chan error
	stopOnce  sync.Once
}

// New builds a gateway from cfg without opening any socket. A config that
// does not build (bad certificate, ambiguous routes, bad policy settings)
// returns the config errors.
func New(cfg *config.Config, opt Options) (*Gateway, error) {
	if opt.Registry == nil {
		return nil, errors.New("gateway: no policy registry")
	}
	g := &Gateway{
		registry:  opt.Registry,
		log:       opt.Logger,
		metrics:   opt.Metrics,
		now:       opt.Now,
		baseDir:   opt.BaseDir,
		addrs:     make(map[string]net.Addr),
		serveErrs: make(chan error, len(cfg.Listeners)+1),
	}
	if g.log == nil {
		g.log = slog.Default()
	}
	if g.metrics == nil {
		g.metrics = telemetry.NewMetrics()
	}
	if g.now == nil {
		g.now = time.Now
	}
	g.load = opt.Load
	g.decisions = newDecisionRing(cfg.Admin.DecisionHistory)
	if cfg.Admin.Address == "off" {
		g.decisions = noDecisions()
	}
	g.stats = newStats(g.now)
	g.audit = opt.Audit
	if g.audit == nil {
		al, err := audit.New(cfg.Audit, cfg, audit.Options{Now: g.now, BaseDir: g.baseDir})
		if err != nil {
			return nil, err
		}
		g.audit, g.closeAudit = al, true
	}
	g.pool = usagepool.New()
	g.revocations = revocation.New(g.now)
	tr, err := tracing.New(cfg, tracing.Options{BaseDir: g.baseDir, Logger: g.log})
	if err != nil {
		g.closeResources()
		return nil, err
	}
	g.tracer, g.tracingCfg = tr, cfg.Tracing
	if tr != nil {
		g.audit.SetTraceLookup(g.serviceTrace)
		// The latency histograms carry the trace id of a sampled request as
		// an exemplar (OpenMetrics), so a slow bucket leads to its trace.
		g.metrics.SetExemplarFunc(tracing.SampledTraceID)
	}
	if err := g.openStore(cfg, opt.Store); err != nil {
		g.closeResources()
		return nil, err
	}
	g.access = opt.AccessLog
	if g.access == nil && !cfg.AccessLog.Disabled {
		w, closer, err := openLog(cfg.AccessLog.Output)
		if err != nil {
			return nil, cfg.Errorf("access_log.output", "%v", err)
		}
		g.access, g.closeLog = slog.New(slog.NewJSONHandler(w, nil)), closer
	}
	rt, err := g.build(cfg)
	g.metrics.Reloaded(err == nil, float64(g.now().Unix()))
	if err != nil {
		g.closeResources()
		return nil, err
	}
	g.current.Store(rt)
	return g, nil
}

// openStore checks cfg.Store and opens it, unless given is set.
func (g *Gateway) openStore(cfg *config.Config, given store.Store) error {
	g.storeCfg = cfg.Store
	fieldErr := func(err error) error {
		if fe, ok := errors.AsType[*store.FieldError](err); ok {
			return cfg.Errorf("store."+fe.Field, "%v", fe.Err)
		}
		return cfg.Errorf("store", "%v", err)
	}
	if given != nil {
		if err := store.Validate(cfg.Store, g.baseDir); err != nil {
			return fieldErr(err)
		}
		g.store = g.guard(given, cfg.Store.Type)
		return nil
	}
	st, err := store.Open(cfg.Store, g.baseDir, g.now)
	if err != nil {
		return fieldErr(err)
	}
	g.store, g.closeStore = g.guard(st, cfg.Store.Type), true
	return nil
}

// guard puts st's reachability in one place for every policy and service
// using it (store.Guarded): one log line and one transition each way per
// outage, gatehouse_store_up and gatehouse_store_transitions_total.
func (g *Gateway) guard(st store.Store, kind string) *store.Guarded {
	kind = cmp.Or(kind, "file")
	g.metrics.StoreState(kind, true, false)
	var trace func(context.Context, string) (context.Context, func(error))
	if g.tracer != nil {
		trace = g.tracer.StoreSpan
	}
	return store.Guard(st, store.HealthOptions{Trace: trace, OnChange: func(up bool, err error) {
		g.metrics.StoreState(kind, up, true)
		if up {
			g.log.Info("state store reachable again (recovery confirmed by probes)", "store", kind)
			return
		}
		g.log.Warn("state store unreachable; policies apply their failure modes until probes confirm recovery", "store", kind, "error", err)
	}})
}

func openLog(output string) (io.Writer, io.Closer, error) {
	switch output {
	case "", "stdout":
		return os.Stdout, nil, nil
	case "stderr":
		return os.Stderr, nil, nil
	}
	f, err := os.OpenFile(output, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o640)
	if err != nil {
		return nil, nil, err
	}
	return f, f, nil
}

// acquire returns the current runtime with a reference held for the caller.
func (g *Gateway) acquire() *runtime {
	for {
		rt := g.current.Load()
		rt.refs.Add(1)
		if g.current.Load() == rt {
			return rt
		}
		// Swapped between the load and the increment: this runtime may be
		// retiring; let go and take the new one.
		rt.release()
	}
}

// Reload builds cfg and, only if it builds, swaps it in. Requests in flight
// finish on the runtime they started with, which is closed after the last
// of them. A config that fails keeps the current one serving. Listener
// addresses and server timeouts are fixed at Start; a change to them is
// reported in the log and needs a restart (certificates do reload).
func (g *Gateway) Reload(cfg *config.Config) error {
	g.reload.Lock()
	defer g.reload.Unlock()
	rt, err := g.build(cfg)
	g.metrics.Reloaded(err == nil, float64(g.now().Unix()))
	if err != nil {
		g.log.Error("config reload failed; keeping the current config", "err", err)
		g.audit.Record(audit.Event{Kind: audit.ConfigReload, Result: "failure", Detail: "the new config does not build; the current one keeps serving"})
		return err
	}
	g.audit.Record(audit.Event{Kind: audit.ConfigReload, Result: "success", Detail: fmt.Sprintf("%d routes", len(rt.routes))})
	old := g.current.Swap(rt)
	if !sameListeners(old.listeners, rt.listeners) {
		g.log.Warn("listener settings changed; they take effect on restart")
	}
	if !reflect.DeepEqual(g.storeCfg, cfg.Store) {
		g.log.Warn("store settings changed; they take effect on restart")
	}
	if !reflect.DeepEqual(g.tracingCfg, cfg.Tracing) {
		g.log.Warn("tracing settings changed; they take effect on restart")
	}
	old.release()
	g.log.Info("config reloaded", "routes", len(rt.routes))
	return nil
}

func sameListeners(a, b []config.Listener) bool {
	return slices.EqualFunc(a, b, func(x, y config.Listener) bool {
		return x.Name == y.Name && x.Address == y.Address && x.H2C == y.H2C && (x.TLS == nil) == (y.TLS == nil) &&
			x.ReadHeaderTimeout == y.ReadHeaderTimeout && x.ReadTimeout == y.ReadTimeout &&
			x.WriteTimeout == y.WriteTimeout && x.IdleTimeout == y.IdleTimeout && x.MaxHeaderBytes == y.MaxHeaderBytes
	})
}

// Start opens the listeners and the admin listener and serves in the
// background. It returns once every socket is bound, or the first bind error
// (with everything already opened closed again).
func (g *Gateway) Start() error {
	rt := g.current.Load()
	cfg := rt.cfg
	var lns []net.Listener
	fail := func(err error) error {
		for _, ln := range lns {
			ln.Close()
		}
		return err
	}
	for i, lc := range cfg.Listeners {
		ln, err := net.Listen("tcp", lc.Address)
		if err != nil {
			return fail(cfg.Errorf(fmt.Sprintf("listeners[%d].address", i), "%v", err))
		}
		open, refused := g.metrics.Conns(lc.Name)
		lns = append(lns, connlimit.Wrap(ln, connlimit.Options{
			Max:     max(lc.MaxConnections, 0),
			PerIP:   max(lc.MaxConnectionsPerIP, 0),
			Exempt:  rt.trusted,
			Open:    open,
			Refused: refused,
		}))
	}
	var adminLn net.Listener
	if cfg.Admin.Address != "off" {
		// Checked again here, not only at load: a Config built in code
		// must not open the admin API to the network either.
		if !config.IsLoopbackAddress(cfg.Admin.Address) && cfg.Admin.Token == nil && (cfg.Admin.TLS == nil || cfg.Admin.TLS.ClientCAFile == "") {
			return fail(cfg.Errorf("admin.address", "gateway: refusing to serve the admin API on non-loopback %q without admin.token or admin.tls.client_ca_file", cfg.Admin.Address))
		}
		ln, err := net.Listen("tcp", cfg.Admin.Address)
		if err != nil {
			return fail(cfg.Errorf("admin.address", "%v", err))
		}
		if cfg.Admin.TLS != nil {
			tc, err := g.serverTLS(cfg, -1, cfg.Admin.TLS)
			if err != nil {
				ln.Close()
				return fail(err)
			}
			ln = tls.NewListener(ln, tc)
		}
		lns = append(lns, ln)
		adminLn = ln
	}

	errLog := slog.NewLogLogger(g.log.Handler(), slog.LevelDebug)
	for i, lc := range cfg.Listeners {
		srv := &http.Server{
			Handler:           g,
			ReadHeaderTimeout: lc.ReadHeaderTimeout.Std(),
			ReadTimeout:       lc.ReadTimeout.Std(),
			WriteTimeout:      lc.WriteTimeout.Std(),
			IdleTimeout:       lc.IdleTimeout.Std(),
			MaxHeaderBytes:    int(lc.MaxHeaderBytes.Bytes()),
			ErrorLog:          errLog,
			BaseContext: withListenerLimits(&listenerLimits{
				bodyIdle:    lc.BodyIdleTimeout.Std(),
				readTimeout: lc.ReadTimeout.Std(),
			}),
		}
		var protos http.Protocols
		protos.SetHTTP1(true)
		protos.SetHTTP2(lc.TLS != nil)
		protos.SetUnencryptedHTTP2(lc.H2C)
		srv.Protocols = &protos
		srv.HTTP2 = http2Config()
		ln := lns[i]
		g.addrs[lc.Name] = ln.Addr()
		if lc.TLS != nil {
			name := lc.Name
			srv.TLSConfig = &tls.Config{
				MinVersion: tls.VersionTLS12,
				NextProtos: []string{"h2", "http/1.1"},
				// Taken from the current runtime at each handshake, so a
				// reload rotates certificates and client CAs.
				GetConfigForClient: func(*tls.ClientHelloInfo) (*tls.Config, error) {
					return g.current.Load().tls[name], nil
				},
			}
			ln = tls.NewListener(ln, srv.TLSConfig)
		}
		g.servers = append(g.servers, srv)
		go g.serve(srv, ln)
	}
	if adminLn != nil {
		g.adminAddr = adminLn.Addr()
		g.adminSrv = &http.Server{
			Handler:           admin.Handler(g.adminOptions(cfg)),
			ReadHeaderTimeout: 10 * time.Second,
			ErrorLog:          errLog,
		}
		go g.serve(g.adminSrv, adminLn)
	}
	g.ready.Store(true)
	for name, a := range g.addrs {
		g.log.Info("listening", "listener", name, "address", a.String())
	}
	if g.adminAddr != nil {
		g.log.Info("admin listening", "address", g.adminAddr.String())
	}
	return nil
}

func (g *Gateway) serve(srv *http.Server, ln net.Listener) {
	if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
		g.log.Error("listener stopped", "address", ln.Addr().String(), "err", err)
		g.serveErrs <- err
	}
}

// Err delivers a listener's fatal serving error.
func (g *Gateway) Err() <-chan error { return g.serveErrs }

// Addr returns the bound address of the named listener (useful with port 0),
// or nil before Start.
func (g *Gateway) Addr(listener string) net.Addr { return g.addrs[listener] }

// AdminAddr returns the admin listener's bound address, or nil.
func (g *Gateway) AdminAddr() net.Addr { return g.adminAddr }

// Shutdown stops accepting, reports not ready, waits for requests in flight
// until ctx ends, then closes the runtime. Connections still open when ctx
// ends are closed.
func (g *Gateway) Shutdown(ctx context.Context) error {
	g.ready.Store(false)
	var wg sync.WaitGroup
	errs := make([]error, len(g.servers))
	for i, srv := range g.servers {
		wg.Go(func() {
			if err := srv.Shutdown(ctx); err != nil {
				errs[i] = err
				srv.Close()
			}
		})
	}
	wg.Wait()
	if g.adminSrv != nil {
		g.adminSrv.Close()
	}
	g.Close()
	return errors.Join(errs...)
}

func netipAddr(remoteAddr string) (netip.Addr, error) {
	ap, err := netip.ParseAddrPort(remoteAddr)
	if err != nil {
		return netip.Addr{}, err
	}
	return ap.Addr().Unmap(), nil
}

func inPrefixes(ip netip.Addr, prefixes []netip.Prefix) bool {
	for _, p := range prefixes {
		if p.Contains(ip) {
			return true
		}
	}
	return false
}

// Close releases what New built without serving (used by `check`). Use
// Shutdown for a started gateway.
func (g *Gateway) Close() {
	g.stopOnce.Do(func() {
		if rt := g.current.Load(); rt != nil {
			rt.release()
		}
		g.closeResources()
	})
}

// closeResources closes what the gateway opened besides runtimes.
func (g *Gateway) closeResources() {
	if g.closeStore {
		if err := g.store.Close(); err != nil {
			g.log.Warn("closing the store", "err", err)
		}
	} else if gs, ok := g.store.(*store.Guarded); ok {
		gs.Stop() // the caller's store: stop watching it, leave it open
	}
	if g.closeLog != nil {
		g.closeLog.Close()
	}
	if g.closeAudit {
		g.audit.Close()
	}
	if g.tracer != nil {
		// The spans still queued get a bounded chance to leave: a
		// collector that is down does not hold the exit.
		ctx, cancel := context.WithTimeout(context.Background(), tracerShutdownTimeout)
		defer cancel()
		if err := g.tracer.Shutdown(ctx); err != nil {
			g.log.Warn("tracing: spans still queued at shutdown were dropped", "err", err)
		}
	}
}

// tracerShutdownTimeout bounds the last export at shutdown.
const tracerShutdownTimeout = 5 * time.Second
