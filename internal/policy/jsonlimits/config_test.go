package jsonlimits

import (
	"testing"

	"github.com/gatehouse/gatehouse/internal/policy/policytest"
)

func TestConfig(t *testing.T) {
	p, err := New(policytest.Node(t, ""), policytest.Env())
	if err != nil {
		t.Fatal(err)
	}
	j := p.(*JSONLimits)
	want := Limits{Depth: 32, Keys: 1000, Array: 10000, String: 64 << 10, Number: 64, Tokens: 100000}
	if j.lim != want || j.maxBytes != 1<<20 {
		t.Errorf("defaults: got %+v %d, want %+v %d", j.lim, j.maxBytes, want, 1<<20)
	}
	for _, tt := range []struct {
		name, yaml string
		line       int
		path, msg  string
	}{
		{"unknown", "max_depth: 3\nmax_width: 3", 2, "max_width", ""},
		{"zero", "max_keys: 0", 1, "max_keys", "at least 1"},
		{"negative", "\nmax_array: -1", 2, "max_array", "at least 1"},
		{"bytes", "max_bytes: 1GiB", 1, "max_bytes", "64MiB"},
		{"depth", "max_depth: 100000", 1, "max_depth", "at most 10000"},
		{"type", "max_string: lots", 1, "max_string", ""},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, err := New(policytest.Node(t, tt.yaml), policytest.Env())
			policytest.WantConfigError(t, err, tt.line, tt.path, tt.msg)
		})
	}
}

// TestConfigErrorsTogether checks that independent problems are reported
// in one load, each at its place.
func TestConfigErrorsTogether(t *testing.T) {
	_, err := New(policytest.Node(t, "max_bytes: 65MiB\nmax_depth: 10001\nmax_keys: 0\nmax_tokens: -1\n"), policytest.Env())
	policytest.WantConfigErrors(t, err,
		policytest.ConfigErrorAt{Line: 1, Path: "max_bytes"},
		policytest.ConfigErrorAt{Line: 2, Path: "max_depth"},
		policytest.ConfigErrorAt{Line: 3, Path: "max_keys"},
		policytest.ConfigErrorAt{Line: 4, Path: "max_tokens"},
	)
}
