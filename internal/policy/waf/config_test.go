package waf

import (
	"reflect"
	"slices"
	"testing"

	"github.com/gatehouse/gatehouse/internal/policy/policytest"
)

// TestConfigGood checks the settings of good configs, defaults included,
// without compiling the rule set.
func TestConfigGood(t *testing.T) {
	defaults := settings{paranoia: 1, inbound: 5, mode: ModeBlock,
		inspect: inspect{query: true, headers: true, cookies: true, body: true, bodyLimit: 128 << 10, maxArgs: 200},
		methods: []string{"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"}}
	for _, tc := range []struct {
		yaml string
		edit func(s *settings)
	}{
		{"", func(*settings) {}},
		{"paranoia_level: 4\nanomaly_threshold: {inbound: 10000}\nmode: detect\n", func(s *settings) {
			s.paranoia, s.inbound, s.mode = 4, 10000, ModeDetect
		}},
		{"exclude: {ids: [942100, 1], tags: [attack-protocol]}\n", func(s *settings) {
			s.excludeIDs, s.excludeTags = []int{942100, 1}, []string{"attack-protocol"}
		}},
		{"platform: [windows, unix, unix]\n", func(s *settings) { s.platforms = []string{"unix", "windows"} }},
		{"platform: [all]\n", func(s *settings) { s.platforms = []string{"all"} }},
		{"inspect: {query: false, body: false, body_limit: 16MiB, max_args: 10000}\nallowed_methods: [GET, PROPFIND]\n", func(s *settings) {
			s.inspect = inspect{headers: true, cookies: true, bodyLimit: 16 << 20, maxArgs: 10000}
			s.methods = []string{"GET", "PROPFIND"}
		}},
		{"directives: ['SecRuleRemoveById 920350']\n", func(s *settings) { s.directives = []string{"SecRuleRemoveById 920350"} }},
	} {
		got, err := decode(policytest.Node(t, tc.yaml))
		if err != nil {
			t.Errorf("%q: %v", tc.yaml, err)
			continue
		}
		want := defaults
		want.platforms = slices.Compact(slices.Sorted(slices.Values(DefaultPlatforms)))
		tc.edit(&want)
		if !reflect.DeepEqual(*got, want) {
			t.Errorf("%q:\n got %+v\nwant %+v", tc.yaml, *got, want)
		}
	}
}

func TestConfigErrors(t *testing.T) {
	for _, c := range []struct {
		yaml, path, msg string
		line            int
	}{
		{"paranoia_level: 5", "paranoia_level", "1 to 4", 1},
		{"anomaly_threshold: {inbound: 0}", "anomaly_threshold.inbound", "1 to 10000", 1},
		{"mode: block-ish", "mode", "block or detect", 1},
		{"exclude:\n  ids: [0]", "exclude.ids[0]", "not a rule id", 2},
		{"exclude:\n  tags: ['a b']", "exclude.tags[0]", "not a rule tag", 2},
		{"platform: [cobol]", "platform[0]", "unknown platform", 1},
		{"platform: [unix, all]", "platform[1]", "stands alone", 1},
		{"inspect:\n  body_limit: 32MiB", "inspect.body_limit", "16MiB", 2},
		{"inspect:\n  max_args: 0", "inspect.max_args", "max_args", 2},
		{"allowed_methods: [get]", "allowed_methods[0]", "upper case", 1},
		{"directives: [\"Include /etc/passwd\"]", "directives[0]", "Include", 1},
		{"directives: [\"SecRule ARGS x \\\"id:1\\\"\\nSecRule\"]", "directives[0]", "one directive per entry", 1},
		{"directives: [\"SecRule ARGS \\\"@nosuchop x\\\" \\\"id:1\\\"\"]", "directives", "compiling rules", 1},
		{"colour: red", "colour", "", 1},
	} {
		t.Run(c.path, func(t *testing.T) {
			_, err := New(policytest.Node(t, c.yaml), policytest.Env())
			policytest.WantConfigError(t, err, c.line, c.path, c.msg)
		})
	}
}

// TestConfigErrorsTogether checks that independent problems are reported
// in one load, each at its place, before any rule is compiled.
func TestConfigErrorsTogether(t *testing.T) {
	yaml := "paranoia_level: 0\n" +
		"mode: passive\n" +
		"exclude: {ids: [-1], tags: ['']}\n" +
		"platform: [cobol]\n" +
		"inspect: {body_limit: 0B, max_args: -1}\n" +
		"allowed_methods: [get]\n" +
		"directives: [Include x]\n"
	_, err := New(policytest.Node(t, yaml), policytest.Env())
	policytest.WantConfigErrors(t, err,
		policytest.ConfigErrorAt{Line: 1, Path: "paranoia_level"},
		policytest.ConfigErrorAt{Line: 2, Path: "mode"},
		policytest.ConfigErrorAt{Line: 3, Path: "exclude.ids[0]"},
		policytest.ConfigErrorAt{Line: 3, Path: "exclude.tags[0]"},
		policytest.ConfigErrorAt{Line: 4, Path: "platform[0]"},
		policytest.ConfigErrorAt{Line: 5, Path: "inspect.body_limit"},
		policytest.ConfigErrorAt{Line: 5, Path: "inspect.max_args"},
		policytest.ConfigErrorAt{Line: 6, Path: "allowed_methods[0]"},
		policytest.ConfigErrorAt{Line: 7, Path: "directives[0]"},
	)
}
