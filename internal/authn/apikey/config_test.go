package apikey

import (
	"context"
	"errors"
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"

	"github.com/gatehouse/gatehouse/internal/authn"
	"github.com/gatehouse/gatehouse/internal/config"
	"github.com/gatehouse/gatehouse/internal/policy/policytest"
)

func TestConfigErrors(t *testing.T) {
	h1, h2 := hashOf(readerKey), hashOf(writerKey)
	tests := []struct {
		name string
		yaml string
		line int
		path string
		msg  string
	}{
		{"no keys", "header: X-Key\n", 1, "", "at least one key"},
		{"unknown field", "keys: []\nheadr: X\n", 2, "headr", `unknown field "headr"`},
		{"bad header", "header: \"X Key\"\nkeys: []\n", 1, "header", "not a valid header name"},
		{"authorization header", "header: authorization\n", 1, "header", "cannot carry API keys"},
		{"bad query", "query: \"a&b\"\n", 1, "query", "not a plain query parameter"},
		{"missing consumer", "keys:\n  - hash: \"" + h1 + "\"\n", 2, "keys[0]", "consumer is required"},
		{"bad consumer", "keys:\n  - consumer: \"a b\"\n    hash: \"" + h1 + "\"\n", 2, "keys[0].consumer", "letters, digits"},
		{"missing hash", "keys:\n  - consumer: a\n", 2, "keys[0]", "hash is required"},
		{"hash without prefix", "keys:\n  - consumer: a\n    hash: abc\n", 3, "keys[0].hash", `"sha256:"`},
		{"hash too short", "keys:\n  - consumer: a\n    hash: sha256:abc\n", 3, "keys[0].hash", "43 characters"},
		{"hash padded", "keys:\n  - consumer: a\n    hash: \"" + h1 + "=\"\n", 3, "keys[0].hash", "43 characters"},
		{"key instead of hash", "keys:\n  - consumer: a\n    hash: " + readerKey + "\n", 3, "keys[0].hash", "this is a key, not a hash"},
		{"bad scope", "keys:\n  - consumer: a\n    hash: \"" + h1 + "\"\n    scopes: [ok, \"a b\"]\n", 4, "keys[0].scopes[1]", "not a valid scope"},
		{"tier twice", "keys:\n  - consumer: a\n    hash: \"" + h1 + "\"\n    tier: gold\n    metadata:\n      tier: silver\n", 6, "keys[0].metadata.tier", "tier is set both"},
		{"duplicate consumer", "keys:\n  - consumer: a\n    hash: \"" + h1 + "\"\n  - consumer: a\n    hash: \"" + h2 + "\"\n", 4, "keys[1].consumer", `duplicate consumer "a"`},
		{"duplicate hash", "keys:\n  - consumer: a\n    hash: \"" + h1 + "\"\n  - consumer: b\n    hash: \"" + h1 + "\"\n", 5, "keys[1].hash", "duplicate hash"},
		{"missing keys file", "keys_file: /nonexistent/consumers.yaml\n", 1, "keys_file", "no such file"},
		{"strip not bool", "strip: yes\nkeys: []\n", 1, "strip", "expected a boolean"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := New(policytest.Node(t, tt.yaml), &authn.Env{Env: policytest.Env(), Realm: "api"})
			policytest.WantConfigError(t, err, tt.line, tt.path, tt.msg)
		})
	}
}

// TestKeysFile loads consumers from a keys_file named relative to the
// config file, and reports its errors with its own name and lines.
func TestKeysFile(t *testing.T) {
	dir := t.TempDir()
	write := func(name, content string) {
		t.Helper()
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	node := func(yaml string) *config.Node {
		t.Helper()
		n, err := config.ParseNode(filepath.Join(dir, "gatehouse.yaml"), []byte(yaml), nil)
		if err != nil {
			t.Fatal(err)
		}
		return n
	}
	env := &authn.Env{Env: policytest.Env(), Realm: "api"}

	write("consumers.yaml", "keys:\n  - consumer: writer-app\n    hash: \""+hashOf(writerKey)+"\"\n    scopes: [products:write]\n")
	a, err := New(node("keys:\n  - consumer: reader-app\n    hash: \""+hashOf(readerKey)+"\"\nkeys_file: consumers.yaml\n"), env)
	if err != nil {
		t.Fatal(err)
	}
	for key, want := range map[string]string{readerKey: "reader-app", writerKey: "writer-app"} {
		r := httptest.NewRequest("GET", "/", nil)
		r.Header.Set("X-Api-Key", key)
		pr, err := a.Authenticate(context.Background(), policytest.Exchange(r))
		if err != nil || pr.Consumer != want {
			t.Errorf("got %v, %v, want %s", pr, err, want)
		}
	}

	// A consumer in both places is a duplicate, reported in the file.
	write("dup.yaml", "keys:\n  - consumer: other\n    hash: \""+hashOf(writerKey)+"\"\n  - consumer: reader-app\n    hash: \""+hashOf("gh_x")+"\"\n")
	_, err = New(node("keys:\n  - consumer: reader-app\n    hash: \""+hashOf(readerKey)+"\"\nkeys_file: dup.yaml\n"), env)
	var ce *config.Error
	if !errors.As(err, &ce) || ce.File != filepath.Join(dir, "dup.yaml") || ce.Line != 4 || ce.Path != "keys[1].consumer" {
		t.Errorf("got %v, want a duplicate consumer error at dup.yaml:4 keys[1].consumer", err)
	}

	write("typo.yaml", "keys:\n  - consumer: x\n    hsh: abc\n")
	_, err = New(node("keys_file: typo.yaml\n"), env)
	if !errors.As(err, &ce) || ce.File != filepath.Join(dir, "typo.yaml") || ce.Line != 3 {
		t.Errorf("got %v, want an unknown field error at typo.yaml:3", err)
	}
}

// TestConfigErrorsAtOnce: the settings' independent problems are reported
// in one load, each at its place.
func TestConfigErrorsAtOnce(t *testing.T) {
	const yaml = "header: \"X Key\"\n" +
		"query: \"a&b\"\n" +
		"store:\n" +
		"  prefix: \"{a}:\"\n" +
		"  cache_ttl: 2h\n" +
		"  cache_size: -1\n"
	_, err := New(policytest.Node(t, yaml), &authn.Env{Env: policytest.Env(), Realm: "api"})
	policytest.WantConfigErrors(t, err,
		policytest.ConfigErrorAt{Line: 1, Path: "header"},
		policytest.ConfigErrorAt{Line: 2, Path: "query"},
		policytest.ConfigErrorAt{Line: 4, Path: "store.prefix"},
		policytest.ConfigErrorAt{Line: 5, Path: "store.cache_ttl"},
		policytest.ConfigErrorAt{Line: 6, Path: "store.cache_size"},
	)
}
