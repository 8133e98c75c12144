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
