package gateway

import (
	"context"
	"fmt"
	"log/slog"
	"math"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/internal/config"
	"github.com/gatehouse/gatehouse/internal/policy"
	"github.com/gatehouse/gatehouse/internal/usagepool"
)

// counted is a policy that counts how many are open.
type counted struct {
	name   string
	mu     *sync.Mutex
	open   *int
	closed bool
}

func (c *counted) Apply(context.Context, *policy.Exchange) error { return nil }

func (c *counted) Close() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.closed {
		c.closed = true
		*c.open--
	}
	return nil
}

// sharedRes is a resource several policies share through the usage pool.
type sharedRes struct{}

func (sharedRes) Close() error { return nil }

// countingRegistry has a "mark" unit whose policy names its settings'
// mark and counts as open until closed, and whose settings `fail: true`
// refuse; and a "pooled" unit that fails through a resource the policies
// share (usagepool), as a WAF's bad rules fail every route using them.
func countingRegistry(mu *sync.Mutex, open *int) *policy.Registry {
	return policy.NewRegistry(
		policy.Unit{Name: "mark", New: func(cfg *config.Node, env *policy.Env) (policy.Policy, error) {
			var c struct {
				Mark string `yaml:"mark"`
				Fail bool   `yaml:"fail"`
			}
			if err := cfg.Decode(&c); err != nil {
				return nil, err
			}
			if c.Fail {
				return nil, cfg.Errorf("fail", "refused on route %s", env.Route.Name)
			}
			mu.Lock()
			defer mu.Unlock()
			*open++
			return &counted{name: c.Mark, mu: mu, open: open}, nil
		}},
		policy.Unit{Name: "pooled", New: func(cfg *config.Node, env *policy.Env) (policy.Policy, error) {
			// The error names the route whose build failed: a route that
			// waited for that build gets it as its own answer.
			_, release, err := usagepool.Acquire(env.Pool, "test-shared", func() (sharedRes, error) {
				time.Sleep(2 * time.Millisecond) // so that other builds wait for this one
				return sharedRes{}, cfg.Errorf("", "the shared resource fails (built for %s)", env.Route.Name)
			})
			if err != nil {
				return nil, err
			}
			release()
			return &counted{mu: mu, open: new(int)}, nil
		}},
	)
}

// TestBuildPoliciesInParallel builds configs of many routes in parallel
// and in order: the chains must be the same, in the same order; a config
// that fails must give the same errors, each route's own in the file's
// order, and leave nothing built open.
func TestBuildPoliciesInParallel(t *testing.T) {
	routes := func(n int, extra func(i int) string) string {
		var b strings.Builder
		b.WriteString("listeners: [{name: main, address: \"127.0.0.1:0\"}]\nadmin: {address: \"off\"}\nroutes:\n")
		for i := range n {
			fmt.Fprintf(&b, "  - name: r%d\n    match: {path_prefix: /r%d/}\n    upstream: {url: \"http://127.0.0.1:1\"}\n", i, i)
			fmt.Fprintf(&b, "    policies:\n      - mark: {mark: a%d}\n      - mark: {mark: b%d}\n%s", i, i, extra(i))
		}
		return b.String()
	}
	none := func(int) string { return "" }
	cases := []struct {
		name string
		yaml string
	}{
		{"builds", routes(300, none)},
		{"some routes fail", routes(300, func(i int) string {
			if i%97 == 5 {
				return "      - mark: {fail: true}\n"
			}
			return ""
		})},
		{"a shared resource fails", routes(300, func(i int) string {
			if i%3 == 1 {
				return "      - pooled: {}\n"
			}
			return ""
		})},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			build := func(threshold int) (chains []string, errText string) {
				defer func(n int) { parallelBuilds = n }(parallelBuilds)
				parallelBuilds = threshold
				var mu sync.Mutex
				open := 0
				g, err := New(load(t, c.yaml, nil), Options{Registry: countingRegistry(&mu, &open), Logger: slog.New(slog.DiscardHandler), BaseDir: t.TempDir()})
				if err != nil {
					if open != 0 {
						t.Errorf("a failed build left %d policies open", open)
					}
					return nil, err.Error()
				}
				for _, r := range g.current.Load().routes {
					var names []string
					for _, l := range r.chain {
						names = append(names, l.name+":"+l.policy.(*counted).name)
					}
					chains = append(chains, r.info.Name+" "+strings.Join(names, ","))
				}
				g.Close()
				mu.Lock()
				defer mu.Unlock()
				if open != 0 {
					t.Errorf("closing the gateway left %d policies open", open)
				}
				return chains, ""
			}
			wantChains, wantErr := build(math.MaxInt)
			gotChains, gotErr := build(1)
			if gotErr != wantErr {
				t.Errorf("built in parallel, the errors are\n%s\nwant\n%s", gotErr, wantErr)
			}
			if strings.Join(gotChains, "\n") != strings.Join(wantChains, "\n") {
				t.Errorf("built in parallel, the chains differ from those built in order")
			}
			if c.name == "builds" && len(gotChains) != 300 || c.name != "builds" && gotErr == "" {
				t.Errorf("got %d routes, error %q", len(gotChains), gotErr)
			}
		})
	}
}

// TestAssembleInParallel builds configs of many routes with their chains
// and upstreams assembled in parallel (assemble) and the router, request
// metrics and released config made aside (buildAside), and in order: each
// route must get its own chain, upstream, metrics and router entry, and a
// config that fails must give the errors an in-order build gives, in the
// file's order.
func TestAssembleInParallel(t *testing.T) {
	const n = 300
	routes := func(extra func(i int) string) string {
		var b strings.Builder
		b.WriteString("listeners: [{name: main, address: \"127.0.0.1:0\"}]\nadmin: {address: \"off\"}\nroutes:\n")
		for i := range n {
			up := fmt.Sprintf("{url: \"http://127.0.0.1:%d/u%d\"}", 1+i%7, i)
			if e := extra(i); e != "" {
				up = e
			}
			fmt.Fprintf(&b, "  - name: r%d\n    match: {path_prefix: /r%d/}\n    upstream: %s\n", i, i, up)
			fmt.Fprintf(&b, "    policies:\n      - mark: {mark: a%d}\n      - mark: {mark: b%d}\n", i, i)
		}
		return b.String()
	}
	none := func(int) string { return "" }
	cases := []struct {
		name string
		yaml string
	}{
		{"builds", routes(none)},
		{"some upstreams fail", routes(func(i int) string {
			if i%61 == 7 {
				return fmt.Sprintf("{url: \"https://127.0.0.1:1\", tls: {ca_file: missing-%d.pem}}", i)
			}
			return ""
		})},
		{"routes overlap", strings.Replace(routes(none), "/r250/", "/r25/", 1)},
	}
	dir := t.TempDir()
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			build := func(threshold int) (out []string, errText string) {
				defer func(b, a int) { parallelBuilds, parallelAssembly = b, a }(parallelBuilds, parallelAssembly)
				parallelBuilds, parallelAssembly = threshold, threshold
				var mu sync.Mutex
				open := 0
				cfg := load(t, c.yaml, nil)
				g, err := New(cfg, Options{Registry: countingRegistry(&mu, &open), Logger: slog.New(slog.DiscardHandler), BaseDir: dir})
				if err != nil {
					return nil, err.Error()
				}
				defer g.Close()
				rt := g.current.Load()
				if len(rt.cfg.Routes) != n || rt.cfg == cfg || rt.cfg.Routes[0].Policies[0].Config == cfg.Routes[0].Policies[0].Config {
					t.Errorf("the runtime's config is not the released one")
				}
				for i, r := range rt.routes {
					var names []string
					for _, l := range r.chain {
						names = append(names, l.name+":"+l.policy.(*counted).name)
					}
					m := rt.router.Lookup("", "GET", fmt.Sprintf("/r%d/x", i))
					if m.Value != r {
						t.Errorf("route %d: /r%d/x routes to %v, not to the route", i, i, m.Name)
					}
					for range i%5 + 1 {
						r.metrics.Count(200)
					}
					out = append(out, fmt.Sprintf("%s %s %s", r.info.Name, strings.Join(names, ","), r.upstream.Target()))
				}
				// Each route's request metrics are its own: route i
				// counted i%5+1 requests.
				families, err := g.metrics.Registry.Gather()
				if err != nil {
					t.Fatal(err)
				}
				counted := 0
				for _, f := range families {
					if f.GetName() != "gatehouse_requests_total" {
						continue
					}
					for _, m := range f.GetMetric() {
						var i int
						for _, l := range m.GetLabel() {
							if l.GetName() == "route" {
								fmt.Sscanf(l.GetValue(), "r%d", &i)
							}
						}
						if v := m.GetCounter().GetValue(); v != float64(i%5+1) {
							t.Errorf("route r%d counted %v requests, want %d", i, v, i%5+1)
						}
						counted++
					}
				}
				if counted != n {
					t.Errorf("%d routes counted requests, want %d", counted, n)
				}
				return out, ""
			}
			want, wantErr := build(math.MaxInt)
			got, gotErr := build(1)
			if gotErr != wantErr {
				t.Errorf("assembled in parallel, the errors are\n%s\nwant\n%s", gotErr, wantErr)
			}
			if strings.Join(got, "\n") != strings.Join(want, "\n") {
				t.Errorf("assembled in parallel, the routes differ from those assembled in order")
			}
			for i, line := range got {
				if w := fmt.Sprintf("r%d mark:a%d,mark:b%d http://127.0.0.1:%d/u%d", i, i, i, 1+i%7, i); line != w {
					t.Errorf("route %d is %q, want %q", i, line, w)
					break
				}
			}
			switch c.name {
			case "builds":
				if len(got) != n {
					t.Errorf("got %d routes, error %q", len(got), gotErr)
				}
			case "some upstreams fail":
				if !strings.Contains(gotErr, "routes[7].upstream.tls.ca_file") || strings.Index(gotErr, "missing-7.pem") > strings.Index(gotErr, "missing-68.pem") {
					t.Errorf("error %q does not name the upstreams at fault in order", gotErr)
				}
			case "routes overlap":
				if !strings.Contains(gotErr, "routes[250].match") {
					t.Errorf("error %q does not name the overlapping route", gotErr)
				}
			}
		})
	}
}
