package config

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"unsafe"

	"github.com/google/go-cmp/cmp"
)

// TestReleased: the released copy shows the same redacted config, keeps
// listener positions for errors, holds no policy or route nodes, and
// leaves the original buildable.
func TestReleased(t *testing.T) {
	const src = `listeners:
  - name: main
    address: "127.0.0.1:8080"
admin: {address: "off"}
routes:
  - name: r1
    match: {path: /a}
    upstream: {url: "http://127.0.0.1:1"}
    policies:
      - headers: {request: {set: {X-A: "1"}}}
      - apikey:
          keys:
            - consumer: a
              hash: "sha256:LCa0a2j_xo_5m0U8HTBBNBNCLXBkg7-g-YpeiGJm564"
      - size_limit:
`
	c, err := LoadBytes("gh.yaml", []byte(src), nil)
	if err != nil {
		t.Fatal(err)
	}
	want, err := c.Redacted()
	if err != nil {
		t.Fatal(err)
	}
	r := c.Released()
	got, err := r.Redacted()
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("Redacted differs (-before +released):\n%s", diff)
	}
	if !strings.Contains(fmtAny(got), "[redacted]") {
		t.Errorf("the key hash is not redacted: %v", got)
	}
	// Errors on listeners keep their place; inside routes they fall
	// back to the routes key.
	if err := r.Errorf("listeners[0].address", "x"); !strings.HasPrefix(err.Error(), "gh.yaml:3:14: ") {
		t.Errorf("listener error: %v", err)
	}
	if err := r.Errorf("routes[0].match", "x"); !strings.HasPrefix(err.Error(), "gh.yaml:5:") {
		t.Errorf("route error: %v", err)
	}
	for _, p := range r.Routes[0].Policies {
		if p.Config == nil || p.Config.y != nil || p.Config.key != nil || p.Config.d != nil || !p.Config.released {
			t.Errorf("%s: not released: %+v", p.Type, p.Config)
		}
		var v struct {
			Request any `yaml:"request"`
		}
		if err := p.Config.Decode(&v); err != nil || v.Request != nil {
			t.Errorf("%s: a released node decodes as empty, got %v, %v", p.Type, v, err)
		}
	}
	if n := len(r.root.y.Content[5].Content); r.root.y.Content[4].Value != "routes" || n != 0 {
		t.Errorf("released root keeps %d route nodes", n)
	}
	// The original is untouched.
	if c.Routes[0].Policies[0].Config.y == nil || len(c.root.y.Content[5].Content) != 1 {
		t.Error("Released changed the original config")
	}
	var h struct {
		Request struct {
			Set map[string]string `yaml:"set"`
		} `yaml:"request"`
	}
	if err := c.Routes[0].Policies[0].Config.Decode(&h); err != nil || h.Request.Set["X-A"] != "1" {
		t.Errorf("original no longer decodes: %v %v", h, err)
	}
}

func fmtAny(v any) string {
	var b strings.Builder
	var walk func(v any)
	walk = func(v any) {
		switch x := v.(type) {
		case map[string]any:
			for k, e := range x {
				b.WriteString(k + "=")
				walk(e)
			}
		case []any:
			for _, e := range x {
				walk(e)
			}
		case string:
			b.WriteString(x + " ")
		}
	}
	walk(v)
	return b.String()
}

// TestReleasedSharesPolicyLists: routes with the same policy types in the
// same order share one released list; every route keeps its own types.
func TestReleasedSharesPolicyLists(t *testing.T) {
	src := "listeners: [{name: main, address: \"127.0.0.1:8080\"}]\nroutes:\n"
	lists := [][]string{{"headers", "size_limit"}, {"headers", "size_limit"}, {"size_limit", "headers"}, {"headers"}, {"headers", "size_limit"}}
	for i, l := range lists {
		src += fmt.Sprintf("  - name: r%d\n    match: {path: /r%d}\n    upstream: {url: \"http://127.0.0.1:1\"}\n    policies:\n", i, i)
		for _, typ := range l {
			src += "      - " + typ + ": {}\n"
		}
	}
	c, err := LoadBytes("gh.yaml", []byte(src), nil)
	if err != nil {
		t.Fatal(err)
	}
	r := c.Released()
	for i, l := range lists {
		var got []string
		for _, p := range r.Routes[i].Policies {
			got = append(got, p.Type)
		}
		if diff := cmp.Diff(l, got); diff != "" {
			t.Errorf("route %d: types (-want +got):\n%s", i, diff)
		}
	}
	same := func(a, b int) bool { return &r.Routes[a].Policies[0] == &r.Routes[b].Policies[0] }
	if !same(0, 1) || !same(0, 4) {
		t.Error("equal lists are not shared")
	}
	if same(0, 2) || same(0, 3) {
		t.Error("different lists are shared")
	}
}

// TestLoadInternsStrings: equal strings of a loaded config share their
// bytes (a config of many routes holds each upstream URL and method
// once), and unequal ones stay themselves.
func TestLoadInternsStrings(t *testing.T) {
	const src = `listeners: [{name: main, address: "127.0.0.1:8080"}]
routes:
  - name: a
    match: {path: /a, methods: [GET, POST]}
    upstream: {url: "http://127.0.0.1:1"}
    policies: [{size_limit: {}}]
  - name: b
    match: {path: /b, methods: [GET]}
    upstream: {url: "http://127.0.0.1:1"}
    policies: [{size_limit: {}}]
  - name: c
    match: {path: /c}
    upstream: {url: "http://127.0.0.1:2"}
`
	c, err := LoadBytes("gh.yaml", []byte(src), nil)
	if err != nil {
		t.Fatal(err)
	}
	a, b, cc := c.Routes[0], c.Routes[1], c.Routes[2]
	if a.Upstream.URL != b.Upstream.URL || unsafe.StringData(a.Upstream.URL) != unsafe.StringData(b.Upstream.URL) {
		t.Error("the equal upstream URLs are not one string")
	}
	if unsafe.StringData(a.Match.Methods[0]) != unsafe.StringData(b.Match.Methods[0]) {
		t.Error("the equal methods are not one string")
	}
	if unsafe.StringData(a.Policies[0].Type) != unsafe.StringData(b.Policies[0].Type) {
		t.Error("the equal policy types are not one string")
	}
	if cc.Upstream.URL != "http://127.0.0.1:2" || a.Name != "a" || b.Name != "b" || a.Match.Methods[1] != "POST" {
		t.Errorf("interning changed a value: %+v", c.Routes)
	}
}

// TestLoadKeepsItsText: a loaded config keeps the text it was loaded from
// for Released without a copy when it is Load's own (the file read), and a
// copy of what LoadBytes is given, which its caller may change after.
func TestLoadKeepsItsText(t *testing.T) {
	src := []byte("listeners: [{name: main, address: \"127.0.0.1:8080\"}]\nadmin: {address: \"off\"}\nroutes:\n" +
		"  - name: r1\n    match: {path: /a}\n    upstream: {url: \"http://127.0.0.1:1\"}\n    policies:\n      - headers: {request: {set: {X-A: \"1\"}}}\n")
	path := filepath.Join(t.TempDir(), "gh.yaml")
	if err := os.WriteFile(path, src, 0o600); err != nil {
		t.Fatal(err)
	}
	fromFile, err := Load(path)
	if err != nil {
		t.Fatal(err)
	}
	given := bytes.Clone(src)
	fromBytes, err := LoadBytes(path, given, nil)
	if err != nil {
		t.Fatal(err)
	}
	for i := range given {
		given[i] = ' ' // the caller's buffer, reused
	}
	want, err := fromFile.Redacted()
	if err != nil {
		t.Fatal(err)
	}
	for name, c := range map[string]*Config{"Load": fromFile, "LoadBytes": fromBytes} {
		got, err := c.Released().Redacted()
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("%s: released Redacted differs (-want +got):\n%s", name, diff)
		}
	}
}
