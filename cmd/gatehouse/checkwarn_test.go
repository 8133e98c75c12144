package main

import (
	"bytes"
	"path/filepath"
	"strings"
	"testing"
)

// check warns, with file, line and route, where a scopes or expr policy
// reads a principal no earlier policy of its route can set; it says
// nothing where one can.
func TestCheckWarnsOfPrincipalReadersWithoutSetter(t *testing.T) {
	const auth = `      - authenticate: {with: [{apikey: {keys: [{consumer: a, hash: "sha256:LCa0a2j_xo_5m0U8HTBBNBNCLXBkg7-g-YpeiGJm564"}]}}]}
`
	file := filepath.Join(t.TempDir(), "gw.yaml")
	writeFile(t, file, `listeners: [{address: "127.0.0.1:0"}]
store: {type: memory}
routes:
  - name: scopes-first
    match: {path: /a}
    upstream: {url: "http://127.0.0.1:1"}
    policies:
      - scopes: {all: [read]}
`+auth+`  - name: no-authenticate
    match: {path: /b}
    upstream: {url: "http://127.0.0.1:1"}
    policies:
      - expr: {allow: '"admin" in principal.scopes'}
  - name: good
    match: {path: /c}
    upstream: {url: "http://127.0.0.1:1"}
    policies:
`+auth+`      - scopes: {all: [read]}
      - expr: {allow: 'principal.subject != ""'}
  - name: expr-without-principal
    match: {path: /d}
    upstream: {url: "http://127.0.0.1:1"}
    policies:
      - expr: {rules: [{name: m, allow: 'request.method == "GET" && request.headers["x-principal"] != "principal.subject"'}]}
`)
	var stdout, stderr bytes.Buffer
	if code := run([]string{"check", "--config", file}, &stdout, &stderr); code != 0 {
		t.Fatalf("exit %d\n%s%s", code, &stdout, &stderr)
	}
	lines := strings.Split(strings.TrimSpace(stderr.String()), "\n")
	want := []string{
		"warning: " + file + ":8:", `routes[0].policies[0].scopes`, `route "scopes-first"`,
		"warning: " + file + ":14:", `routes[1].policies[0].expr`, `route "no-authenticate"`,
	}
	if len(lines) != 2 {
		t.Fatalf("%d warnings, want 2:\n%s", len(lines), &stderr)
	}
	for i, w := range want {
		if !strings.Contains(lines[i/3], w) {
			t.Errorf("warning %q does not contain %q", lines[i/3], w)
		}
	}
	if !strings.Contains(stdout.String(), "ok") {
		t.Errorf("stdout %q", &stdout)
	}
}
