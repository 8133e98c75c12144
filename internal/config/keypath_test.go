package config

import (
	"fmt"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"
)

// TestKeyPath: keyPath, the decoder's one-allocation path of a mapping
// key, spells every path as joinPath and KeySeg do.
func TestKeyPath(t *testing.T) {
	for _, base := range []string{"", "routes[3]", "routes[3].policies[0].headers"} {
		for _, k := range []string{"", "a", "path_prefix", "X-Route", "a.b", "a b", "[x]", "é", "k\"q", "0", "-"} {
			if got, want := keyPath(base, k), joinPath(base, KeySeg(k)); got != want {
				t.Errorf("keyPath(%q, %q) = %q, want %q", base, k, got, want)
			}
		}
	}
}

// TestMappingPairsDuplicates: duplicate keys are found, and merged keys
// give way to a mapping's own, in mappings short enough to be searched
// without a map and in longer ones (smallMapping).
func TestMappingPairsDuplicates(t *testing.T) {
	for _, n := range []int{2, smallMapping, smallMapping + 1, 3 * smallMapping} {
		var b []byte
		b = append(b, "base: &b {k0: merged, extra: merged}\nm:\n  <<: *b\n"...)
		for i := range n {
			b = fmt.Appendf(b, "  k%d: v%d\n", i, i)
		}
		b = fmt.Appendf(b, "  k%d: again\n", n-1)
		b = append(b, "  k0: again\n"...)
		root, _, perrs := parseDocument("m.yaml", b, false)
		if perrs != nil {
			t.Fatal(perrs)
		}
		var m *yaml.Node
		for _, p := range mappingPairs(root, nil, "m.yaml", "") {
			if p.k.Value == "m" {
				m = p.v
			}
		}
		var errs Errors
		pairs := mappingPairs(m, &errs, "m.yaml", "m")
		var got []string
		for _, p := range pairs {
			got = append(got, p.k.Value+"="+p.v.Value)
		}
		var want []string
		for i := range n {
			want = append(want, fmt.Sprintf("k%d=v%d", i, i))
		}
		want = append(want, "extra=merged")
		if strings.Join(got, " ") != strings.Join(want, " ") {
			t.Errorf("%d keys: pairs %v, want %v", n, got, want)
		}
		if len(errs) != 2 || errs[0].Path != fmt.Sprintf("m.k%d", n-1) || errs[1].Path != "m.k0" ||
			!strings.Contains(errs[0].Msg, "duplicate key") || errs[1].Line != n+5 {
			t.Errorf("%d keys: errors %v", n, errs)
		}
	}
}
