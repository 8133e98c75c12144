package gateway

import (
	"errors"
	"fmt"
	goruntime "runtime"
	"slices"
	"sync"

	"github.com/gatehouse/gatehouse/internal/config"
	"github.com/gatehouse/gatehouse/internal/policy"
	"github.com/gatehouse/gatehouse/internal/proxy"
	"github.com/gatehouse/gatehouse/internal/router"
	"github.com/gatehouse/gatehouse/internal/telemetry"
)

// policyBuild is one policy of one route to build, and what building it
// gave.
type policyBuild struct {
	spec  config.PolicySpec
	route *route // whose policy it is, its info set
	names *linkNames

	policy policy.Policy
	err    error
}

// parallelBuilds is the number of policies from which a load builds them
// on every core: 10,000 routes of three policies took 130 ms on one
// (issue 23). Below it, goroutines would cost more than they save. A
// variable for tests.
var parallelBuilds = 256

// buildPolicies builds every job's policy, setting its policy or err.
//
// A config of many policies is built on every core: a factory must be
// safe to call from several goroutines at once (policy.Factory), as the
// built-in ones are (TestBuildPoliciesInParallel). If any build fails,
// what was built is closed and every policy is built again in order, on
// one goroutine: policies that share a resource (a WAF's rules, a key
// set) share its failure too when built at the same time (usagepool),
// and the errors of a failed load must be each route's own, in the
// file's order, as a build in order gives them.
//
// env makes each policy's Env, on the goroutine that builds it.
func (g *Gateway) buildPolicies(jobs []policyBuild, env func(*policyBuild) *policy.Env) {
	workers := min(goruntime.GOMAXPROCS(0), len(jobs)/64+1, 8)
	if len(jobs) < parallelBuilds || workers < 2 {
		g.buildInOrder(jobs, env)
		return
	}
	// Worker w builds jobs w, w+workers, ...: a fixed share, so that the
	// workers share nothing the race detector would take for
	// synchronization (an atomic counter would order every build after
	// the one before and hide a race between two factories).
	failed := make([]bool, workers)
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			for i := w; i < len(jobs); i += workers {
				j := &jobs[i]
				if j.policy, j.err = g.registry.Build(j.spec, env(j)); j.err != nil {
					failed[w] = true
				}
			}
		})
	}
	wg.Wait()
	if !slices.Contains(failed, true) {
		return
	}
	for i := range jobs {
		if c, ok := jobs[i].policy.(policy.Closer); ok {
			_ = c.Close()
		}
		jobs[i].policy, jobs[i].err = nil, nil
	}
	g.buildInOrder(jobs, env)
}

func (g *Gateway) buildInOrder(jobs []policyBuild, env func(*policyBuild) *policy.Env) {
	for i := range jobs {
		j := &jobs[i]
		j.policy, j.err = g.registry.Build(j.spec, env(j))
	}
}

// policyEnv returns the maker of a policy's Env in the runtime rt being
// built.
func (g *Gateway) policyEnv(rt *runtime) func(*policyBuild) *policy.Env {
	return func(j *policyBuild) *policy.Env {
		return &policy.Env{
			Route:          j.route.info,
			Logger:         policyLogger(g.log, j.route.info.Name, j.spec.Type),
			Now:            g.now,
			TrustedProxies: rt.trusted,
			ClientIPHeader: rt.clientIP.Header,
			Store:          g.store,
			Pool:           g.pool,
			Metrics:        g.metrics,
			Revocations:    g.revocations,
			Audit:          g.audit,
		}
	}
}

// parallelAssembly is the number of routes from which a load assembles
// their chains and upstreams on every core (assemble). A variable for
// tests.
var parallelAssembly = 256

// assemble makes each route's chain from its built policies (jobs, route
// i's being jobs[first[i]:first[i+1]]) and its upstream, and returns the
// problems of each route in order: its policies' errors, then its
// upstream's. The routes are independent: many are assembled on every
// core, each worker a fixed share (as buildPolicies does).
func (g *Gateway) assemble(cfg *config.Config, rt *runtime, jobs []policyBuild, first []int) [][]error {
	errs := make([][]error, len(rt.routes))
	onError := proxy.ErrorHandler(g.proxyError) // one method value, not one a route
	one := func(i int) {
		rc, r := &cfg.Routes[i], rt.routes[i]
		var protected []string // the chain's protected request fields (inbound.go)
		if n := first[i+1] - first[i]; n > 0 {
			r.chain = make([]link, 0, n)
		}
		for _, job := range jobs[first[i]:first[i+1]] {
			p, err := job.policy, job.err
			if err != nil {
				errs[i] = append(errs[i], err)
				continue
			}
			typ := job.names.name
			if c, ok := p.(policy.Closer); ok {
				r.closers = append(r.closers, c)
			}
			r.chain = append(r.chain, link{linkNames: job.names, policy: p, duration: g.metrics.PolicyObserver(rc.Name, typ)})
			if f, ok := p.(policy.ResponseFilter); ok {
				r.filters = append(r.filters, filter{name: typ, filter: f})
			}
			protected = appendProtected(protected, p)
		}
		up, err := proxy.New(rc.Upstream, proxy.Options{
			Protected:      protected,
			TrustedProxies: rt.trusted,
			ClientIPHeader: rt.clientIP.Header,
			OnError:        onError,
			ErrorLog:       g.upstreamErrorLog(rc.Name),
			BaseDir:        g.baseDir,
			Clients:        rt.clients,
		})
		if err != nil {
			var fe *proxy.FieldError
			if errors.As(err, &fe) {
				err = cfg.Errorf(fmt.Sprintf("routes[%d].upstream.%s", i, fe.Field), "%v", fe.Err)
			}
			errs[i] = append(errs[i], err)
		} else {
			r.upstream = up
		}
	}
	workers := min(goruntime.GOMAXPROCS(0), len(rt.routes)/64+1, 8)
	if len(rt.routes) < parallelAssembly || workers < 2 {
		for i := range rt.routes {
			one(i)
		}
		return errs
	}
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			for i := w; i < len(rt.routes); i += workers {
				one(i)
			}
		})
	}
	wg.Wait()
	return errs
}

// aside is what a load makes on a goroutine of its own while the routes'
// policies are built (buildAside): it needs only the routes' names and
// matches, and the config, which building only reads.
type aside struct {
	wg        sync.WaitGroup
	metrics   []*telemetry.RouteMetrics // each route's, in order
	router    *router.Router[*route]
	routerErr error
	released  *config.Config
}

// buildAside starts making, in order, each route's request metrics (in
// the file's order, which is their exposition's), the router over routes
// (their addresses only: the router does not look into them) and the
// released config (config.Released). wait waits for them.
func (g *Gateway) buildAside(cfg *config.Config, routes []*route) *aside {
	a := &aside{}
	a.wg.Go(func() {
		a.metrics = make([]*telemetry.RouteMetrics, len(cfg.Routes))
		entries := make([]router.Route[*route], len(cfg.Routes))
		for i := range cfg.Routes {
			rc := &cfg.Routes[i]
			a.metrics[i] = g.metrics.Route(rc.Name)
			entries[i] = router.Route[*route]{
				Name:       rc.Name,
				Hosts:      rc.Match.Hosts,
				Path:       rc.Match.Path,
				PathPrefix: rc.Match.PathPrefix,
				Methods:    rc.Match.Methods,
				Value:      routes[i],
			}
		}
		a.router, a.routerErr = router.New(entries)
		a.released = cfg.Released()
	})
	return a
}

func (a *aside) wait() { a.wg.Wait() }
