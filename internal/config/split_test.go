package config

import (
	"fmt"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"
)

// wholeDecode parses data as one document the way decodeDocument does
// without splitting.
func wholeDecode(data []byte) (yaml.Node, error) { return decodeOnly(data) }

// sameTree reports where a and b differ, ignoring comments (which the
// config does not read); aliases must name the node at the same place.
func sameTree(a, b *yaml.Node, path string) string {
	if a.Kind != b.Kind || a.Style != b.Style || a.Tag != b.Tag || a.Value != b.Value ||
		a.Anchor != b.Anchor || a.Line != b.Line || a.Column != b.Column || len(a.Content) != len(b.Content) {
		return fmt.Sprintf("%s: %+v != %+v", path,
			[]any{a.Kind, a.Style, a.Tag, a.Value, a.Anchor, a.Line, a.Column, len(a.Content)},
			[]any{b.Kind, b.Style, b.Tag, b.Value, b.Anchor, b.Line, b.Column, len(b.Content)})
	}
	if (a.Alias == nil) != (b.Alias == nil) {
		return path + ": alias differs"
	}
	if a.Alias != nil && (a.Alias.Line != b.Alias.Line || a.Alias.Column != b.Alias.Column) {
		return path + ": alias target differs"
	}
	for i := range a.Content {
		if d := sameTree(a.Content[i], b.Content[i], fmt.Sprintf("%s/%d", path, i)); d != "" {
			return d
		}
	}
	return ""
}

// checkSplit fails t when splitting data in pieces gives another tree than
// a whole parse, or succeeds where the whole parse fails. It reports
// whether the split was taken.
func checkSplit(t testing.TB, data []byte, pieces int) bool {
	t.Helper()
	got, ok := splitInto(data, pieces, 0)
	want, err := wholeDecode(data)
	if !ok {
		return false
	}
	if err != nil {
		t.Fatalf("split parse succeeded where the whole parse fails (%v):\n%s", err, data)
	}
	if d := sameTree(&got, &want, ""); d != "" {
		t.Fatalf("split tree differs from the whole parse: %s\n%s", d, data)
	}
	return true
}

func routesDoc(n int, item string) string {
	var b strings.Builder
	b.WriteString("listeners: [{name: main, address: \"127.0.0.1:0\"}]\n# routes follow\nroutes:\n")
	for i := range n {
		fmt.Fprintf(&b, item, i, i, i)
	}
	b.WriteString("admin: {address: \"off\"}\n")
	return b.String()
}

const scaleItem = `  - name: route-%d
    match: {path_prefix: /r%d/, methods: [GET, POST]}
    upstream: {url: "http://127.0.0.1:1"}
    policies:
      - ipfilter: {allow: [127.0.0.0/8]}
      - headers: {request: {set: {X-Route: "r%d"}}}
`

func TestSplitDecodeMatchesWhole(t *testing.T) {
	for _, c := range []struct {
		name  string
		doc   string
		split int // 1: the split must be taken, -1: must not, 0: either
	}{
		{"scale", routesDoc(200, scaleItem), 1},
		{"items at column 0", routesDoc(50, "- name: r%d\n  match: {path_prefix: /a%d/}\n  x: %d\n"), 1},
		{"comments and blanks between items", routesDoc(50, "  # item %d\n\n  - name: r%d\n    n: %d\n# top comment\n"), 1},
		{"block scalars", routesDoc(50, "  - name: r%d\n    doc: |\n      line %d\n      - not an item\n      # not a comment\n\n    n: %d\n"), 1},
		{"folded scalar", routesDoc(50, "  - a: >-\n      x%d\n      y%d\n    b: %d\n"), 1},
		{"anchor inside an item", routesDoc(50, "  - a: &a%d {x: 1}\n    b: *a%d\n    c: %d\n"), 1},
		{"crlf", strings.ReplaceAll(routesDoc(50, scaleItem), "\n", "\r\n"), 1},
		{"no trailing newline", strings.TrimSuffix(routesDoc(50, scaleItem), "\n"), 1},
		{"section last", strings.TrimSuffix(routesDoc(50, scaleItem), "admin: {address: \"off\"}\n"), 1},
		{"nested sequences", routesDoc(50, "  - - a%d\n    - b%d\n  - c%d\n"), 1},
		{"empty items", routesDoc(50, "  -\n  - x%d\n  - {a: %d, b: %d}\n"), 1},
		// Where the split must not be taken, or must fall back. A cut
		// through a quoted or flow scalar makes a piece fail to parse;
		// cuts elsewhere give the same tree.
		{"alias across items", "x: &top 1\n" + routesDoc(50, "  - a: %d\n    b: %d\n    c: *top%d\n"), -1},
		{"anchor in one item, alias in another", routesDoc(50, "  - a: &a 1\n    n: %d\n  - b: *a\n    m: %d %d\n"), 0},
		{"quoted scalar over an item start", routesDoc(50, "  - a: \"x%d\n  - y\"\n    n: %d %d\n"), 0},
		{"flow over an item start", routesDoc(50, "  - a: [x%d,\n  - y]\n    n: %d %d\n"), 0},
		{"shallower line", routesDoc(50, "  - a: %d\n b: %d %d\n"), -1},
		{"tab indentation", routesDoc(50, "  - a: %d\n\tb: %d %d\n"), -1},
		{"document marker", "---\n" + routesDoc(50, scaleItem), -1},
		{"second document", routesDoc(50, scaleItem) + "---\nx: 1\n", -1},
		{"directive", "%YAML 1.1\n---\n" + routesDoc(50, scaleItem), -1},
		{"anchored sequence", strings.Replace(routesDoc(50, scaleItem), "routes:\n", "routes: &r\n", 1), -1},
		{"syntax error in an item", routesDoc(50, "  - a: %d\n    b: [%d\n    c: %d\n"), -1},
	} {
		t.Run(c.name, func(t *testing.T) {
			for _, pieces := range []int{2, 3, 7} {
				if got := checkSplit(t, []byte(c.doc), pieces); c.split != 0 && got != (c.split > 0) {
					t.Fatalf("%d pieces: split taken %v, want %v", pieces, got, c.split > 0)
				}
			}
		})
	}
}

// TestLoadSplitErrors shows that a large config whose routes hold an
// error reports it where the whole parse does.
func TestLoadSplitErrors(t *testing.T) {
	doc := routesDoc(3000, scaleItem)
	if len(doc) < splitMinSection {
		t.Fatalf("document of %d bytes is below the split size", len(doc))
	}
	// A syntax error in the middle of the routes.
	bad := strings.Replace(doc, "name: route-1500\n", "name: route-1500\n    match: [\n", 1)
	whole := yamlError("big.yaml", func() error { _, err := wholeDecode([]byte(bad)); return err }(), []byte(bad))
	_, _, errs := parseDocument("big.yaml", []byte(bad), false)
	if len(errs) != 1 || errs[0].Line != whole.Line || errs[0].Msg != whole.Msg {
		t.Fatalf("errors %v, want %v", errs, whole)
	}
	// A field error in the last route names its line.
	line := strings.Count(doc[:strings.Index(doc, "name: route-2999\n")], "\n") + 1
	badField := strings.Replace(doc, "name: route-2999\n", "name: route-2999\n    bogus_field: 1\n", 1)
	_, err := LoadBytes("big.yaml", []byte(badField), nil)
	if err == nil || !strings.Contains(err.Error(), fmt.Sprintf("big.yaml:%d:", line+1)) {
		t.Fatalf("error %v, want one at big.yaml:%d", err, line+1)
	}
}

func FuzzSplitDecode(f *testing.F) {
	for _, s := range []string{
		routesDoc(3, scaleItem),
		routesDoc(3, "- a: %d\n  b: |\n    x%d\n  c: %d\n"),
		routesDoc(3, "  - a: &a%d 1\n    b: *a%d\n    c: %d\n"),
		"x: &t 1\nroutes:\n  - a: *t\n  - b: 2\ny: 3\n",
		"routes:\n  - a: 'x\n  - y'\n  - c\n",
		"routes:\n  - a: {b: 1,\n  - c: 2}\n  - d\n",
		"a:\n  - 1\n  - 2\nb:\n  - 3\n  - 4\n  - 5\n",
		"routes: # c\n  - 1\n  # x\n  - 2\n",
	} {
		f.Add([]byte(s), uint8(2))
	}
	f.Fuzz(func(t *testing.T, data []byte, pieces uint8) {
		checkSplit(t, data, 2+int(pieces%6))
	})
}
