package sizelimit

import (
	"testing"

	"github.com/gatehouse/gatehouse/internal/policy/policytest"
)

func TestConfigErrors(t *testing.T) {
	tests := []struct {
		name string
		yaml string
		line int
		path string
		msg  string
	}{
		{"no limit", "{}\n", 1, "", "size_limit needs at least one of"},
		{"only nulls", "body:\nurl:\n", 1, "", "size_limit needs at least one of"},
		{"unknown field", "body: 1MiB\nbodyy: 2MiB\n", 2, "bodyy", `unknown field "bodyy"`},
		{"negative body", "url: 8KiB\nbody: -1\n", 2, "body", "must not be negative"},
		{"lower-case unit", "body: 1mb\n", 1, "body", "invalid size"},
		{"zero headers", "body: 1MiB\nheaders: 0\n", 2, "headers", "must be greater than 0"},
		{"zero url", "url: 0\n", 1, "url", "must be greater than 0"},
		{"zero header count", "body: 1MiB\n\nheader_count: 0\n", 3, "header_count", "must be greater than 0"},
		{"negative header count", "header_count: -5\n", 1, "header_count", "must be greater than 0"},
		{"header count not a number", "url: 8KiB\nheader_count: many\n", 2, "header_count", ""},
		{"negative query params", "query_params: -1\n", 1, "query_params", "must not be negative"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := New(policytest.Node(t, tt.yaml), policytest.Env())
			policytest.WantConfigError(t, err, tt.line, tt.path, tt.msg)
		})
	}
}

func TestConfigParses(t *testing.T) {
	tests := []struct {
		yaml string
		want limits
	}{
		{"body: 1MiB\n", limits{body: 1 << 20, headers: -1, url: -1, headerCount: -1, queryParams: -1}},
		{"body: 0\n", limits{body: 0, headers: -1, url: -1, headerCount: -1, queryParams: -1}},
		{"body: 1 MB\nheaders: 16KiB\nheader_count: 100\nurl: 8KiB\nquery_params: 0\n",
			limits{body: 1e6, headers: 16 << 10, url: 8 << 10, headerCount: 100, queryParams: 0}},
		{"url: 2048\n", limits{body: -1, headers: -1, url: 2048, headerCount: -1, queryParams: -1}},
	}
	for _, tt := range tests {
		got, err := decode(policytest.Node(t, tt.yaml))
		if err != nil {
			t.Fatalf("%q: %v", tt.yaml, err)
		}
		if got != tt.want {
			t.Errorf("%q: got %+v, want %+v", tt.yaml, got, tt.want)
		}
	}
}

// TestConfigErrorsTogether checks that independent problems are reported
// in one load, each at its place.
func TestConfigErrorsTogether(t *testing.T) {
	_, err := New(policytest.Node(t, "headers: 0B\nurl: 0B\nheader_count: 0\nquery_params: -1\n"), policytest.Env())
	policytest.WantConfigErrors(t, err,
		policytest.ConfigErrorAt{Line: 1, Path: "headers"},
		policytest.ConfigErrorAt{Line: 2, Path: "url"},
		policytest.ConfigErrorAt{Line: 3, Path: "header_count"},
		policytest.ConfigErrorAt{Line: 4, Path: "query_params"},
	)
}
