package throttle

import (
	"testing"

	"github.com/gatehouse/gatehouse/internal/policy/policytest"
)

func TestConfigGood(t *testing.T) {
	for _, tc := range []struct {
		yaml string
		want settings
	}{
		{"concurrency: 3\n", settings{request: true, response: true, concurrency: 3}},
		{"bandwidth: 1MiB\n", settings{rate: 1 << 20, burst: 64 << 10, request: true, response: true}},
		{"bandwidth: 1KiB\n", settings{rate: 1024, burst: 1024, request: true, response: true}}, // burst at most a second
		{"bandwidth: 1MiB\nburst: 1MiB\ndirection: request\n", settings{rate: 1 << 20, burst: 1 << 20, request: true}},
		{"bandwidth: 1MiB\ndirection: response\nupstream_concurrency: 7\n", settings{rate: 1 << 20, burst: 64 << 10, response: true, upstream: 7}},
		{"key: ip\nbandwidth: 2KiB\ndirection: both\n", settings{rate: 2048, burst: 2048, request: true, response: true}},
	} {
		s, err := decode(policytest.Node(t, tc.yaml), nil)
		if err != nil {
			t.Errorf("%q: %v", tc.yaml, err)
			continue
		}
		got := *s
		got.key = tc.want.key
		if got != tc.want {
			t.Errorf("%q: got %+v, want %+v", tc.yaml, got, tc.want)
		}
	}
}

func TestConfigErrors(t *testing.T) {
	for _, tc := range []struct {
		name, yaml string
		line       int
		path, msg  string
	}{
		{"nothing", "key: consumer\n", 1, "", "needs bandwidth, concurrency"},
		{"unknown field", "concurrency: 1\nrate: 5\n", 2, "rate", "unknown field"},
		{"bandwidth", "bandwidth: 2TiB\n", 1, "bandwidth", "above 1TiB"},
		{"burst without bandwidth", "concurrency: 1\nburst: 1KiB\n", 2, "burst", "needs bandwidth"},
		{"direction without bandwidth", "concurrency: 1\ndirection: request\n", 2, "direction", "needs bandwidth"},
		{"burst too big", "bandwidth: 1KiB\nburst: 2KiB\n", 2, "burst", "more than a second"},
		{"direction", "bandwidth: 1KiB\ndirection: up\n", 2, "direction", `unknown direction "up"`},
		{"concurrency", "concurrency: -1\nbandwidth: 1KiB\n", 1, "concurrency", "negative"},
		{"upstream", "upstream_concurrency: -1\nbandwidth: 1KiB\n", 1, "upstream_concurrency", "negative"},
		{"key", "key: nobody\nconcurrency: 1\n", 1, "key", ""},
		{"bad size", "bandwidth: 1mb\n", 1, "bandwidth", "unknown unit"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := New(policytest.Node(t, tc.yaml), policytest.Env())
			policytest.WantConfigError(t, err, tc.line, tc.path, tc.msg)
		})
	}
}

// TestConfigErrorsTogether checks that independent problems are reported
// in one load, each at its place.
func TestConfigErrorsTogether(t *testing.T) {
	_, err := New(policytest.Node(t, "burst: 1KiB\ndirection: up\nconcurrency: -1\nupstream_concurrency: -2\n"), policytest.Env())
	policytest.WantConfigErrors(t, err,
		policytest.ConfigErrorAt{Line: 1, Path: "burst"},
		policytest.ConfigErrorAt{Line: 2, Path: "direction"},
		policytest.ConfigErrorAt{Line: 2, Path: "direction"},
		policytest.ConfigErrorAt{Line: 3, Path: "concurrency"},
		policytest.ConfigErrorAt{Line: 4, Path: "upstream_concurrency"},
	)
}
