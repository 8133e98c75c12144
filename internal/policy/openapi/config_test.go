package openapi

import (
	"testing"

	"github.com/gatehouse/gatehouse/internal/policy/policytest"
)

func TestConfigErrors(t *testing.T) {
	for _, tt := range []struct {
		name, yaml string
		line       int
		path, msg  string
	}{
		{"no spec", "server_base: /api", 1, "", "spec is required"},
		{"missing file", "spec: testdata/nope.yaml", 1, "spec", "reading the spec"},
		{"broken spec", "spec: testdata/broken.openapi.yaml", 1, "spec", "broken.openapi.yaml"},
		{"unknown field", "spec: testdata/products.openapi.yaml\nvalidates: {}", 2, "validates", ""},
		{"server_base", "spec: testdata/products.openapi.yaml\nserver_base: api", 2, "server_base", "must start with /"},
		{"mismatch without response", "spec: testdata/products.openapi.yaml\non_response_mismatch: block", 2, "on_response_mismatch", "needs validate.response"},
		{"bad mismatch", "spec: testdata/products.openapi.yaml\nvalidate: {response: true}\non_response_mismatch: drop", 3, "on_response_mismatch", "not log or block"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, err := New(policytest.Node(t, tt.yaml), policytest.Env())
			policytest.WantConfigError(t, err, tt.line, tt.path, tt.msg)
		})
	}
}

// TestConfigErrorsTogether checks that validate reports independent
// problems in one load, before the spec is read.
func TestConfigErrorsTogether(t *testing.T) {
	_, err := New(policytest.Node(t, "server_base: api\non_response_mismatch: drop\n"), policytest.Env())
	policytest.WantConfigErrors(t, err,
		policytest.ConfigErrorAt{Line: 1, Path: "spec"},
		policytest.ConfigErrorAt{Line: 1, Path: "server_base"},
		policytest.ConfigErrorAt{Line: 2, Path: "on_response_mismatch"},
	)
}
