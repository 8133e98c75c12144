package gateway

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"github.com/gatehouse/gatehouse/internal/clientip"
	"log"
	"log/slog"
	"net/netip"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"

	"github.com/gatehouse/gatehouse/internal/authserver"
	"github.com/gatehouse/gatehouse/internal/config"
	"github.com/gatehouse/gatehouse/internal/policy"
	"github.com/gatehouse/gatehouse/internal/proxy"
	"github.com/gatehouse/gatehouse/internal/router"
	"github.com/gatehouse/gatehouse/internal/sts"
	"github.com/gatehouse/gatehouse/internal/telemetry"
	"github.com/gatehouse/gatehouse/internal/tracing"
)

// runtime is everything one config load builds: the router, each route's
// chain and upstream, and the listeners' TLS settings. It is immutable once
// built and swapped in as a whole; requests hold a reference while they run
// so that retiring it closes its resources only after the last one ends.
type runtime struct {
	cfg     *config.Config
	router  *router.Router[*route]
	routes  []*route
	noRoute *telemetry.RouteMetrics
	// tokens are the request metrics of the token services (metrics.go).
	tokens  tokenMetrics
	trusted []netip.Prefix
	// clientIP is where the client address is read from (client_ip).
	clientIP  clientip.Source
	tls       map[string]*tls.Config // by listener name
	listeners []config.Listener
	log       *slog.Logger
	// auth is the embedded authorization server, nil when not configured.
	// Built per load like the routes; its keys and revocations live in the
	// store and the gateway's revocation list, so a reload keeps them.
	auth *authserver.Server
	// sts is the embedded WS-Trust STS, nil when not configured; its key
	// and registry live in the store, so a reload keeps them.
	sts *sts.Server
	// clients are the upstream clients the routes share (proxy.Clients).
	clients *proxy.Clients

	refs      atomic.Int64 // the gateway's own reference plus one per request
	closeOnce sync.Once
}

// route is one compiled route.
type route struct {
	info policy.Route
	// chain is the route's policies; filters those of them that are
	// response filters, in the same order.
	chain    []link
	filters  []filter
	upstream *proxy.Upstream
	// target is the upstream, for its span.
	target  tracing.Target
	metrics *telemetry.RouteMetrics
	// telemetry counts the refusals of the route's response filters.
	telemetry *telemetry.Metrics
	closers   []policy.Closer
	// methodOverride: a POST's X-HTTP-Method-Override may name this
	// route's method (method.go).
	methodOverride bool
}

// link is one policy in a chain with its pre-resolved metrics.
type link struct {
	*linkNames // shared by every link of the same type in a load
	policy     policy.Policy
	duration   *telemetry.PolicyObserver
}

// linkNames are the names of a policy type.
type linkNames struct {
	name string
	// spanName is "policy NAME", made once rather than per request.
	spanName string
}

// build compiles cfg. Every problem is returned as a config error naming the
// file, line and field; on error nothing built is left open.
func (g *Gateway) build(cfg *config.Config) (_ *runtime, err error) {
	rt := &runtime{
		cfg:       cfg,
		trusted:   cfg.TrustedPrefixes(),
		clientIP:  cfg.ClientIPSource(),
		tls:       make(map[string]*tls.Config),
		listeners: cfg.Listeners,
		noRoute:   g.metrics.Route(""),
		tokens:    newTokenMetrics(g.metrics),
		log:       g.log,
		clients:   proxy.NewClients(),
	}
	rt.refs.Store(1)
	var errs []error
	defer func() {
		if err != nil {
			rt.close()
		}
	}()

	// What many routes would otherwise each hold a copy of, made once per
	// load (issue 23): the tracing target of each upstream URL, and each
	// policy type's names (a link is then 32 bytes, not 56). All are
	// immutable.
	targets := make(map[string]tracing.Target)
	types := make(map[string]*linkNames)
	// The routes, one allocation for all. While they are built, a second
	// goroutine makes what needs only their names and matches, in the
	// file's order (buildAside): their request metrics, the router and
	// the released config.
	routes := make([]route, len(cfg.Routes))
	rt.routes = make([]*route, len(cfg.Routes))
	for i := range routes {
		rt.routes[i] = &routes[i]
	}
	aside := g.buildAside(cfg, rt.routes)
	defer aside.wait() // on every return: nothing may still be writing
	// First each route and the policies it asks for, in order; then the
	// policies, in parallel when there are many (policyBuilds); then each
	// route's chain and upstream from them, in parallel too (assemble);
	// errors keep the order of the file.
	n := 0
	for _, rc := range cfg.Routes {
		n += len(rc.Policies)
	}
	jobs := make([]policyBuild, 0, n)
	first := make([]int, len(cfg.Routes)+1) // route i's jobs are jobs[first[i]:first[i+1]]
	early := make([][]error, len(cfg.Routes))
	for i, rc := range cfg.Routes {
		first[i] = len(jobs)
		target, ok := targets[rc.Upstream.URL]
		if !ok {
			target = tracing.NewTarget(rc.Upstream.URL)
			targets[rc.Upstream.URL] = target
		}
		r := rt.routes[i]
		*r = route{
			info:      policy.Route{Name: rc.Name, Protocol: protocolOf(rc.SOAP), FaultStatus: rc.SOAPFaultStatus},
			target:    target,
			telemetry: g.metrics,

			methodOverride: rc.MethodOverride,
		}
		var err error
		if r.info.Realm, err = routeRealm(rc); err != nil {
			early[i] = append(early[i], err)
		}
		if err := tokenServiceName(cfg, i); err != nil {
			early[i] = append(early[i], err)
		}
		for _, spec := range rc.Policies {
			names, ok := types[spec.Type]
			if !ok {
				names = &linkNames{name: spec.Type, spanName: "policy " + spec.Type}
				types[spec.Type] = names
			}
			jobs = append(jobs, policyBuild{spec: spec, names: names, route: r})
		}
	}
	first[len(cfg.Routes)] = len(jobs)
	g.buildPolicies(jobs, g.policyEnv(rt))
	late := g.assemble(cfg, rt, jobs, first)
	for i := range cfg.Routes {
		errs = append(errs, early[i]...)
		errs = append(errs, late[i]...)
	}
	aside.wait()
	for i, r := range rt.routes {
		r.metrics = aside.metrics[i]
	}
	if err := aside.routerErr; err != nil {
		var ae *router.AmbiguousError
		var re *router.RouteError
		switch {
		case errors.As(err, &ae):
			err = cfg.Errorf(fmt.Sprintf("routes[%d].match", ae.B), "%v", err)
		case errors.As(err, &re):
			err = cfg.Errorf(fmt.Sprintf("routes[%d].match.%s", re.Index, re.Field), "%v", err)
		}
		errs = append(errs, err)
	}
	rt.router = aside.router
	// The STS first: the authorization server's token exchange trusts
	// the assertions it issues (one login for SOAP and REST routes).
	var stsIssuers []authserver.SAMLIssuer
	if sc := cfg.STS; sc != nil {
		s, err := sts.New(*sc, sts.Deps{Store: g.store, Now: g.now, Logger: g.log, Config: cfg, BaseDir: g.baseDir, Audit: g.audit, TrustedProxies: rt.trusted,
			Metrics: g.metrics})
		if err != nil {
			errs = append(errs, err)
		} else {
			rt.sts = s
			stsIssuers = []authserver.SAMLIssuer{{Issuer: s.Issuer(), Certificates: []*x509.Certificate{s.Certificate()}}}
		}
	}
	if as := cfg.AuthorizationServer; as != nil {
		auth, err := authserver.New(*as, authserver.Deps{
			Store: g.store, Revocations: g.revocations, Now: g.now, Logger: g.log,
			Config: cfg, BaseDir: g.baseDir, TrustedProxies: rt.trusted, ClientIPHeader: rt.clientIP.Header, Audit: g.audit,
			SAMLIssuers: stsIssuers,
			Metrics:     g.metrics,
		})
		if err != nil {
			errs = append(errs, err)
		} else {
			rt.auth = auth
		}
	}

	for i, lc := range cfg.Listeners {
		if lc.TLS == nil {
			continue
		}
		tc, err := g.serverTLS(cfg, i, lc.TLS)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		rt.tls[lc.Name] = tc
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	// Built: keep the config without the YAML trees only the factories
	// needed (issue 23: ~2 KiB per route), made aside meanwhile.
	rt.cfg = aside.released
	return rt, nil
}

// upstreamErrorLog returns the maker of a route's reverse proxy error log
// (proxy.Options.ErrorLog), called only if the route ever needs one.
func (g *Gateway) upstreamErrorLog(route string) func() *log.Logger {
	return func() *log.Logger {
		return slog.NewLogLogger(g.log.With("route", route).Handler(), slog.LevelDebug)
	}
}

func protocolOf(soap string) policy.Protocol {
	switch soap {
	case "1.1":
		return policy.SOAP11
	case "1.2":
		return policy.SOAP12
	}
	return policy.REST
}

// serverTLS loads a listener's certificate and client CAs.
func (g *Gateway) serverTLS(cfg *config.Config, i int, tc *config.ServerTLS) (*tls.Config, error) {
	prefix := fmt.Sprintf("listeners[%d].tls", i)
	if i < 0 {
		prefix = "admin.tls"
	}
	return g.tlsConfig(cfg, prefix, tc)
}

// ServerTLS builds the TLS settings of a listener served outside the
// gateway (ext_authz, forward-auth) as the gateway's own listeners get
// theirs: files relative to the config, errors naming prefix's fields in
// the current config.
func (g *Gateway) ServerTLS(prefix string, tc *config.ServerTLS) (*tls.Config, error) {
	return g.tlsConfig(g.current.Load().cfg, prefix, tc)
}

func (g *Gateway) tlsConfig(cfg *config.Config, prefix string, tc *config.ServerTLS) (*tls.Config, error) {
	field := func(f string) string { return prefix + "." + f }
	cert, err := tls.LoadX509KeyPair(g.path(tc.CertFile), g.path(tc.KeyFile))
	if err != nil {
		return nil, cfg.Errorf(field("cert_file"), "loading key pair: %v", err)
	}
	c := &tls.Config{
		Certificates: []tls.Certificate{cert},
		MinVersion:   tls.VersionTLS12,
		NextProtos:   []string{"h2", "http/1.1"},
	}
	if tc.MinVersion == "1.3" {
		c.MinVersion = tls.VersionTLS13
	}
	switch tc.ClientAuth {
	case "request":
		c.ClientAuth = tls.RequestClientCert
	case "require":
		c.ClientAuth = tls.RequireAnyClientCert
	case "verify_if_given":
		c.ClientAuth = tls.VerifyClientCertIfGiven
	case "require_and_verify":
		c.ClientAuth = tls.RequireAndVerifyClientCert
	}
	if tc.ClientCAFile != "" {
		pemBytes, err := os.ReadFile(g.path(tc.ClientCAFile))
		if err != nil {
			return nil, cfg.Errorf(field("client_ca_file"), "%v", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pemBytes) {
			return nil, cfg.Errorf(field("client_ca_file"), "no PEM certificate found")
		}
		c.ClientCAs = pool
	}
	return c, nil
}

func (g *Gateway) path(p string) string {
	if p == "" || filepath.IsAbs(p) || g.baseDir == "" {
		return p
	}
	return filepath.Join(g.baseDir, p)
}

// RotateKeys rotates the embedded authorization server's signing key now
// (SIGUSR1, `gatehouse keys rotate`). Without one it is an error.
func (g *Gateway) RotateKeys(ctx context.Context) error {
	rt := g.acquire()
	defer rt.release()
	if rt.auth == nil {
		return errNoAuthServer
	}
	return rt.auth.Rotate(ctx)
}

var errNoAuthServer = errors.New("gateway: no authorization_server configured")

// release drops one reference; the last one closes the runtime.
func (rt *runtime) release() {
	if rt.refs.Add(-1) == 0 {
		rt.close()
	}
}

// close releases the runtime's upstream connections and policy resources.
func (rt *runtime) close() {
	rt.closeOnce.Do(func() {
		if rt.auth != nil {
			rt.auth.Close()
		}
		for _, r := range rt.routes {
			if r.upstream != nil {
				r.upstream.Close()
			}
			for _, c := range r.closers {
				if err := c.Close(); err != nil {
					rt.log.Warn("closing a policy", "route", r.info.Name, "err", err)
				}
			}
		}
		rt.clients.Close()
	})
}
