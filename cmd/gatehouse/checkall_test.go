package main

import (
	"bytes"
	"path/filepath"
	"strings"
	"testing"
)

// TestCheckReportsEveryError: one run of check reports the problems of
// every stage: decoding the config (an unknown field, a wrong type, a bad
// value), and each policy's settings, decoded only when it is built.
func TestCheckReportsEveryError(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "bad.yaml")
	writeFile(t, path, `listeners: [{address: "127.0.0.1:0"}]
store: {type: memory}
shutdown_timeout: 30
routes:
  - name: a
    match: {path: /a}
    upstream: {url: "http://127.0.0.1:1", retries: 3}
    policies:
      - ipfilter: {allow: [10.0.0.300/8]}
  - name: b
    match: {path: /b}
    upstream: {url: "http://127.0.0.1:1"}
    policies:
      - size_limit: {body: lots}
      - rate_limit: {rate: 10, per: 1s, burts: 5}
`)
	var stdout, stderr bytes.Buffer
	if code := run([]string{"check", "--config", path}, &stdout, &stderr); code != 1 {
		t.Fatalf("check = %d, want 1\n%s", code, &stderr)
	}
	got := stderr.String()
	for _, want := range []string{
		path + ":3:19: shutdown_timeout:",
		path + ":7:43: routes[0].upstream.retries: unknown field",
		path + ":9:28: routes[0].policies[0].ipfilter.allow[0]:",
		path + ":14:28: routes[1].policies[0].size_limit.body:",
		path + ":15:41: routes[1].policies[1].rate_limit.burts: unknown field",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("check output lacks %q:\n%s", want, got)
		}
	}
	// In file order, one line each.
	if lines := strings.Split(strings.TrimSpace(got), "\n"); len(lines) != 5 {
		t.Errorf("want 5 problems, got %d:\n%s", len(lines), got)
	}
}

// TestCheckYAMLSyntaxPositions: a YAML syntax error is reported at the
// line and column of the fault, not where the construct began.
func TestCheckYAMLSyntaxPositions(t *testing.T) {
	dir := t.TempDir()
	for _, tc := range []struct {
		name, src, want string
	}{
		{"tab indentation", "listeners:\n\t- address: x\n", ":2:1: invalid YAML: found character"},
		{"unterminated quote", "admin:\n  address: \"x\nroutes: []\n", ":2:12: invalid YAML: could not find end character of double-quoted text"},
		{"list never closed", "trusted_proxies: [10.0.0.0/8, 10.1.0.0/16\nroutes: []\n", ":2:1: invalid YAML:"},
		{"mapping never closed", "admin: {address: x\nroutes: []\n", ":2:1: invalid YAML:"},
		{"key at the wrong indentation", "routes:\n  - name: a\n  match: {path: /}\n", ":3:3: invalid YAML:"},
		{"sequence item in a mapping", "store: {type: memory}\n- listeners\n", ":2:1: invalid YAML:"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(dir, strings.ReplaceAll(tc.name, " ", "_")+".yaml")
			writeFile(t, path, tc.src)
			var stdout, stderr bytes.Buffer
			if code := run([]string{"check", "--config", path}, &stdout, &stderr); code != 1 {
				t.Fatalf("check = %d, want 1", code)
			}
			if !strings.HasPrefix(stderr.String(), path+tc.want) {
				t.Errorf("check said\n%s\nwant it to start %q", &stderr, path+tc.want)
			}
		})
	}
}
