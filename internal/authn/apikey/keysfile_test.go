package apikey

import (
	"crypto/sha256"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/gatehouse/gatehouse/internal/config"
)

// dumpKey is one key of a keySet, comparable.
type dumpKey struct {
	Hash     string
	Consumer string
	Scopes   []string
	Claims   map[string]any
}

func dumpSet(s *keySet) []dumpKey {
	var out []dumpKey
	for i := 0; i < s.Len(); i++ {
		p := s.principal(i)
		out = append(out, dumpKey{
			Hash:     fmt.Sprintf("%x", s.hashes[i*sha256.Size:(i+1)*sha256.Size]),
			Consumer: p.Consumer, Scopes: p.Scopes, Claims: p.Claims,
		})
	}
	return out
}

// loadBoth reads the keys file content through the streaming reader and
// as one whole YAML document, and returns both results.
func loadBoth(t *testing.T, content string) (stream, whole []dumpKey, serr, werr string) {
	t.Helper()
	dir := t.TempDir()
	path := filepath.Join(dir, "keys.yaml")
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := config.ParseNode(filepath.Join(dir, "gatehouse.yaml"), []byte("keys_file: keys.yaml\n"), nil)
	if err != nil {
		t.Fatal(err)
	}
	run := func(read func(b *keySetBuilder) error) ([]dumpKey, string) {
		b := newKeySetBuilder()
		if err := read(b); err != nil {
			return nil, err.Error()
		}
		s, errs := b.build()
		if len(errs) > 0 {
			return nil, errors.Join(errs...).Error()
		}
		return dumpSet(s), ""
	}
	stream, serr = run(func(b *keySetBuilder) error { return readKeysFile(b, cfg, "keys.yaml") })
	whole, werr = run(func(b *keySetBuilder) error {
		return readWhole(b, b.addSource(path, "keys"), path, []byte(content))
	})
	return stream, whole, strings.ReplaceAll(serr, dir, "DIR"), strings.ReplaceAll(werr, dir, "DIR")
}

// TestKeysFileStreamMatchesWhole reads keys files of many shapes both
// through the streaming reader and as one YAML document, and requires the
// same keys, or the same errors at the same lines and paths.
func TestKeysFileStreamMatchesWhole(t *testing.T) {
	t.Setenv("GH_TEST_SCOPE", "env:scope")
	h := func(k string) string { return hashOf(k) }
	h1, h2, h3 := h("gh_1"), h("gh_2"), h("gh_3")
	tests := []struct {
		name    string
		content string
		wantErr bool
	}{
		{"as created", "keys:\n  - consumer: a\n    hash: \"" + h1 + "\"\n", false},
		{"plain hash, scopes, tier", "keys:\n  - consumer: a\n    hash: " + h1 + "\n    scopes: [read, \"write:x\", 'y']\n    tier: gold\n  - consumer: b\n    hash: " + h2 + "\n    scopes: [read, \"write:x\", 'y']\n    tier: gold\n", false},
		{"comments and blanks", "# keys\n\nkeys: # the list\n\n  # first\n  - consumer: a # the app\n\n    hash: \"" + h1 + "\" # its hash\n# between\n  - # dash alone\n    consumer: b\n    hash: \"" + h2 + "\"\n", false},
		{"crlf", "keys:\r\n  - consumer: a\r\n    hash: \"" + h1 + "\"\r\n  - consumer: b\r\n    hash: \"" + h2 + "\"\r\n", false},
		{"bom", "\xEF\xBB\xBFkeys:\n  - consumer: a\n    hash: \"" + h1 + "\"\n", false},
		{"no indent", "keys:\n- consumer: a\n  hash: \"" + h1 + "\"\n- consumer: b\n  hash: \"" + h2 + "\"\n", false},
		{"wide indent", "keys:\n    -   consumer: a\n        hash: \"" + h1 + "\"\n", false},
		{"block scopes", "keys:\n  - consumer: a\n    hash: \"" + h1 + "\"\n    scopes:\n      - read\n      - write\n  - consumer: b\n    hash: \"" + h2 + "\"\n", false},
		{"metadata", "keys:\n  - consumer: a\n    hash: \"" + h1 + "\"\n    metadata: {team: x, n: 3}\n  - consumer: b\n    hash: \"" + h2 + "\"\n    metadata:\n      team: y\n", false},
		{"env", "keys:\n  - consumer: a\n    hash: \"" + h1 + "\"\n    scopes: [\"${GH_TEST_SCOPE}\"]\n", false},
		{"unset env", "keys:\n  - consumer: a\n    hash: \"" + h1 + "\"\n  - consumer: b\n    hash: \"" + h2 + "\"\n    tier: ${GH_TEST_UNSET_VAR}\n", true},
		{"escapes", "keys:\n  - consumer: \"\\x61\"\n    hash: \"" + h1 + "\"\n    tier: 'it''s'\n", false},
		{"anchor across items", "keys:\n  - consumer: a\n    hash: \"" + h1 + "\"\n    scopes: &s [read]\n  - consumer: b\n    hash: \"" + h2 + "\"\n    scopes: *s\n", false},
		{"merge key", "keys:\n  - &base\n    consumer: a\n    hash: \"" + h1 + "\"\n  - <<: *base\n    consumer: b\n    hash: \"" + h2 + "\"\n", false},
		{"flow document", "{keys: [{consumer: a, hash: \"" + h1 + "\"}]}\n", false},
		{"json", "{\"keys\": [{\"consumer\": \"a\", \"hash\": \"" + h1 + "\"}]}\n", false},
		{"flow list", "keys: [{consumer: a, hash: \"" + h1 + "\"}]\n", false},
		{"special words", "keys:\n  - consumer: yes\n    hash: \"" + h1 + "\"\n  - consumer: null\n    hash: \"" + h2 + "\"\n  - consumer: 123\n    hash: \"" + h3 + "\"\n", true},
		{"true as tier", "keys:\n  - consumer: a\n    hash: \"" + h1 + "\"\n    tier: true\n", true},
		{"numeric consumer", "keys:\n  - consumer: 0x1F\n    hash: \"" + h1 + "\"\n", false},
		{"hash in plain with hash sign", "keys:\n  - consumer: a\n    hash: " + h1 + "#x\n", true},
		{"value ending in colon", "keys:\n  - consumer: a:\n    hash: \"" + h1 + "\"\n", true},
		{"mapping value", "keys:\n  - consumer: a: b\n    hash: \"" + h1 + "\"\n", true},
		{"unknown field", "keys:\n  - consumer: a\n    hash: \"" + h1 + "\"\n  - consumer: b\n    hsh: \"" + h2 + "\"\n", true},
		{"duplicate field", "keys:\n  - consumer: a\n    consumer: b\n    hash: \"" + h1 + "\"\n", true},
		{"bad hash line 900", strings.Repeat("\n", 897) + "keys:\n  - consumer: a\n    hash: sha256:short\n", true},
		{"missing consumer", "keys:\n  - hash: \"" + h1 + "\"\n  - consumer: b\n", true},
		{"bad scope", "keys:\n  - consumer: a\n    hash: \"" + h1 + "\"\n    scopes: [ok, \"a b\"]\n", true},
		{"duplicates", "keys:\n  - consumer: a\n    hash: \"" + h1 + "\"\n  - consumer: a\n    hash: \"" + h2 + "\"\n  - consumer: c\n    hash: \"" + h1 + "\"\n", true},
		{"other top-level key", "keys:\n  - consumer: a\n    hash: \"" + h1 + "\"\nextra: 1\n", true},
		{"two documents", "keys:\n  - consumer: a\n    hash: \"" + h1 + "\"\n---\nkeys: []\n", true},
		{"tab indent", "keys:\n  - consumer: a\n\thash: \"" + h1 + "\"\n", true},
		{"misindented field", "keys:\n  - consumer: a\n     hash: \"" + h1 + "\"\n", true},
		{"dedented field", "keys:\n    - consumer: a\n   hash: \"" + h1 + "\"\n", true},
		{"empty", "", false},
		{"keys null", "keys:\n", false},
		{"keys empty", "keys: []\n", false},
		{"nested sequence", "keys:\n  - - a\n", true},
		{"scalar item", "keys:\n  - a\n", true},
		{"multi-line quoted", "keys:\n  - consumer: \"a\n      b\"\n    hash: \"" + h1 + "\"\n", true},
		{"trailing comma scopes", "keys:\n  - consumer: a\n    hash: \"" + h1 + "\"\n    scopes: [a, ]\n", false},
		{"unclosed flow", "keys:\n  - consumer: a\n    hash: \"" + h1 + "\"\n    scopes: [a,\n      b]\n", false},
		{"nul scope", "keys:\n  - consumer: a\n    hash: \"" + h1 + "\"\n    scopes: [\"a\\0b\"]\n", true},
		{"utf8 tier", "keys:\n  - consumer: a\n    hash: \"" + h1 + "\"\n    tier: \"gölд\"\n", false},
		{"lone cr", "keys:\n  - consumer: a\r    hash: \"" + h1 + "\"\n  - consumer: b\n    hash: \"" + h2 + "\"\r  - consumer: c\n    hash: \"" + h3 + "\"\n", false},
		{"line separator", "keys:\n  - consumer: a\n    hash: \"" + h1 + "\"\u2028  - consumer: b\n    hash: \"" + h2 + "\"\n", false},
		{"next line", "keys:\n  - consumer: a\n    tier: \"x\u0085y\"\n    hash: \"" + h1 + "\"\n", false},
		{"key instead of hash", "keys:\n  - consumer: a\n    hash: " + readerKey + "\n", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			stream, whole, serr, werr := loadBoth(t, tt.content)
			// The whole document stops at its decode errors; the stream
			// also reports the entries' own problems: it may say more,
			// never less, and never something else.
			if (serr == "") != (werr == "") {
				t.Errorf("errors differ:\nstream: %s\nwhole:  %s", serr, werr)
			}
			for _, l := range strings.Split(werr, "\n") {
				if !strings.Contains("\n"+serr+"\n", "\n"+l+"\n") {
					t.Errorf("stream misses %q:\nstream: %s", l, serr)
				}
			}
			if diff := cmp.Diff(whole, stream); diff != "" {
				t.Errorf("keys differ (-whole +stream):\n%s", diff)
			}
			if (werr != "") != tt.wantErr {
				t.Errorf("error %q, want error: %v", werr, tt.wantErr)
			}
		})
	}
}

// TestKeysFileErrorCap: a file of many bad entries reports the first
// ones, with file:line, and says how many were left out.
func TestKeysFileErrorCap(t *testing.T) {
	var b strings.Builder
	b.WriteString("keys:\n")
	for i := range 500 {
		fmt.Fprintf(&b, "  - consumer: c%d\n    hash: sha256:bad\n", i)
	}
	_, _, serr, werr := loadBoth(t, b.String())
	if serr != werr {
		t.Fatalf("errors differ:\nstream: %s\nwhole:  %s", serr, werr)
	}
	if !strings.Contains(serr, "DIR/keys.yaml:3:") || !strings.Contains(serr, "keys[0].hash") ||
		!strings.Contains(serr, fmt.Sprintf("and %d more errors", 500-maxErrors)) {
		t.Errorf("got %.300s…", serr)
	}
}

// TestParseSimpleItem pins which items the streaming reader reads itself
// (the differential test above shows it reads them as YAML does) and which
// it leaves to the YAML parser.
func TestParseSimpleItem(t *testing.T) {
	h1 := hashOf("gh_1")
	tests := []struct {
		item string
		ok   bool
		want KeyConfig
	}{
		{"  - consumer: a\n    hash: \"" + h1 + "\"\n", true, KeyConfig{Consumer: "a", Hash: h1}},
		{"  - consumer: a-b.c@d\n    hash: " + h1 + " # c\n    scopes: [r, 'w', \"x:y\"]\n    tier: gold\n", true,
			KeyConfig{Consumer: "a-b.c@d", Hash: h1, Scopes: []string{"r", "w", "x:y"}, Tier: "gold"}},
		{"  -\n    consumer: a\n\n    # c\n    hash: x\n", true, KeyConfig{Consumer: "a", Hash: "x"}},
		{"  - scopes: []\n", true, KeyConfig{}},
		{"  - consumer: yes\n", false, KeyConfig{}},
		{"  - consumer: Off\n", false, KeyConfig{}},
		{"  - consumer: 12\n", false, KeyConfig{}},
		{"  - consumer: \"a\\tb\"\n", false, KeyConfig{}},
		{"  - consumer: 'it''s'\n", false, KeyConfig{}},
		{"  - consumer: ${X}\n", false, KeyConfig{}},
		{"  - consumer: &a x\n", false, KeyConfig{}},
		{"  - consumer: *a\n", false, KeyConfig{}},
		{"  - consumer: !!str x\n", false, KeyConfig{}},
		{"  - consumer: a\n    metadata: {a: b}\n", false, KeyConfig{}},
		{"  - consumer: a\n    scopes:\n      - r\n", false, KeyConfig{}},
		{"  - consumer: a\n    consumer: b\n", false, KeyConfig{}},
		{"  - consumer: a#b\n", false, KeyConfig{}},
		{"  - consumer: a b\n", false, KeyConfig{}},
		{"  - \"consumer\": a\n", false, KeyConfig{}},
		{"  - consumer: a\n     hash: b\n", false, KeyConfig{}},
		{"  - consumer: \"ä\"\n", false, KeyConfig{}},
		{"  - consumer: |\n      a\n", false, KeyConfig{}},
		{"  -consumer: a\n", false, KeyConfig{}},
	}
	for _, tt := range tests {
		k, _, _, ok := parseSimpleItem([]byte(tt.item), 2, 1)
		if ok != tt.ok {
			t.Errorf("%q: ok %v, want %v", tt.item, ok, tt.ok)
			continue
		}
		if ok {
			if diff := cmp.Diff(tt.want, k); diff != "" {
				t.Errorf("%q (-want +got):\n%s", tt.item, diff)
			}
		}
	}
}

// FuzzKeysFileStream: for any keys file, the streaming reader finds the
// same keys as the whole-document parse, or errors where it does (it may
// report more errors, never fewer or other ones).
func FuzzKeysFileStream(f *testing.F) {
	h1, h2 := hashOf("gh_1"), hashOf("gh_2")
	for _, s := range []string{
		"keys:\n  - consumer: a\n    hash: \"" + h1 + "\"\n",
		"keys:\n  - consumer: a\n    hash: " + h1 + "\n    scopes: [r, 'w']\n    tier: gold\n  - consumer: b\n    hash: \"" + h2 + "\"\n",
		"keys:\n- consumer: a # c\n  hash: \"" + h1 + "\"\n  metadata: {x: 1}\n",
		"keys:\n  - &x\n    consumer: a\n    hash: \"" + h1 + "\"\n  - <<: *x\n    consumer: b\n",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, content string) {
		stream, whole, serr, werr := loadBoth(t, content)
		if (serr == "") != (werr == "") {
			t.Fatalf("errors differ:\nstream: %s\nwhole:  %s", serr, werr)
		}
		for _, l := range strings.Split(werr, "\n") {
			if !strings.Contains("\n"+serr+"\n", "\n"+l+"\n") {
				t.Fatalf("stream misses %q:\nstream: %s", l, serr)
			}
		}
		if diff := cmp.Diff(whole, stream); diff != "" {
			t.Fatalf("keys differ (-whole +stream):\n%s", diff)
		}
	})
}
