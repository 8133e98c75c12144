package gateway

import (
	goruntime "runtime"
	"slices"
	"sync"

	"github.com/gatehouse/gatehouse/internal/config"
	"github.com/gatehouse/gatehouse/internal/policy"
)

// policyBuild is one policy of one route to build, and what building it
// gave.
type policyBuild struct {
	spec  config.PolicySpec
	env   *policy.Env
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
func (g *Gateway) buildPolicies(jobs []policyBuild) {
	workers := min(goruntime.GOMAXPROCS(0), len(jobs)/64+1, 8)
	if len(jobs) < parallelBuilds || workers < 2 {
		g.buildInOrder(jobs)
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
				if j.policy, j.err = g.registry.Build(j.spec, j.env); j.err != nil {
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
	g.buildInOrder(jobs)
}

func (g *Gateway) buildInOrder(jobs []policyBuild) {
	for i := range jobs {
		j := &jobs[i]
		j.policy, j.err = g.registry.Build(j.spec, j.env)
	}
}
