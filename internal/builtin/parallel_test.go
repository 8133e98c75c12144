package builtin_test

import (
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"
)

// TestExamplesBuildInParallel builds the routes of every unit's page
// examples, copied until the config holds several hundred policies, as
// one config: the gateway then builds the policies on every core
// (policy.Factory's contract). Under the race detector (make test) this
// is what shows that the built-in factories, and what they share
// (package state, the usage pool), are safe for that; without it, that
// the copies build as each example does alone.
func TestExamplesBuildInParallel(t *testing.T) {
	policies, authenticators := units(t)
	dir, err := filepath.Abs("testdata/docs")
	if err != nil {
		t.Fatal(err)
	}
	var routes []*yaml.Node
	nPolicies, examples := 0, 0
	for _, name := range append(slices.Clone(policies), authenticators...) {
		for _, ex := range pageExamples(t, name, slices.Contains(authenticators, name), policies, authenticators) {
			if ex.err != nil {
				continue // TestUnitExamples reports it
			}
			text := ex.text
			if build(t, dir, "example.yaml", text) != nil {
				soap := strings.Replace(text, restRoute, soapRoute, 1)
				if build(t, dir, "example.yaml", soap) != nil {
					continue // TestUnitExamples reports it
				}
				text = soap
			}
			var doc yaml.Node
			if err := yaml.Unmarshal([]byte(text), &doc); err != nil {
				t.Fatal(err)
			}
			top := doc.Content[0]
			var rs *yaml.Node
			alone := true // nothing at the top but the header and routes
			for i := 0; i < len(top.Content); i += 2 {
				switch k := top.Content[i].Value; {
				case k == "routes":
					rs = top.Content[i+1]
				case !strings.Contains(header, k+":"):
					alone = false
				}
			}
			if !alone || rs == nil {
				continue
			}
			examples++
			for _, r := range rs.Content {
				routes = append(routes, r)
				for i := 0; i < len(r.Content); i += 2 {
					if r.Content[i].Value == "policies" {
						nPolicies += len(r.Content[i+1].Content)
					}
				}
			}
		}
	}
	if examples < 20 || nPolicies == 0 {
		t.Fatalf("only %d examples (%d policies) to build", examples, nPolicies)
	}
	// Each copy gets its own name and path, so the routes do not collide.
	copies := 400/nPolicies + 1
	var b strings.Builder
	b.WriteString(header + "routes:\n")
	for k := range copies {
		for i, r := range routes {
			c := *r
			c.Content = nil
			for j := 0; j < len(r.Content); j += 2 {
				switch r.Content[j].Value {
				case "name", "match":
					continue
				}
				c.Content = append(c.Content, r.Content[j], r.Content[j+1])
			}
			out, err := yaml.Marshal(&c)
			if err != nil {
				t.Fatal(err)
			}
			fmt.Fprintf(&b, "  - name: copy%d-%d\n    match: {path_prefix: /copy%d-%d/}\n%s", k, i, k, i, indent(string(out), 4))
		}
	}
	if err := build(t, dir, "parallel.yaml", b.String()); err != nil {
		t.Fatalf("%d copies of %d example routes (%d policies) do not build together: %v", copies, len(routes), copies*nPolicies, err)
	}
	t.Logf("built %d copies of %d routes from %d examples: %d policies", copies, len(routes), examples, copies*nPolicies)
}
