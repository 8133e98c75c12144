// Package internal_test holds the layering test: the packages under
// internal/ import only what the layering table in docs/architecture.md
// allows.
package internal_test

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// testLayer is the layer of the test helpers' row: imported only from
// tests, importing anything.
const testLayer = -1

// layers is the parsed layering table.
type layers struct {
	// rows maps a package name or a "dir/*" pattern to its layer.
	rows map[string]int
	// within holds the allowed imports inside one layer, as pattern pairs.
	within [][2]string
}

var backticked = regexp.MustCompile("`([^`]+)`")

// parseLayers reads the table of the "## Layers" section of the
// architecture document: | layer | packages | imports within the layer |.
func parseLayers(r io.Reader) (*layers, error) {
	l := &layers{rows: map[string]int{}}
	sc := bufio.NewScanner(r)
	in, table, n := false, false, 0
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		n++
		if strings.HasPrefix(line, "## ") {
			if in && table {
				break
			}
			in = line == "## Layers"
			continue
		}
		if !in {
			continue
		}
		if !strings.HasPrefix(line, "|") {
			if table {
				break // the table ended
			}
			continue
		}
		table = true
		cells := strings.Split(strings.Trim(line, "|"), "|")
		if len(cells) != 3 {
			return nil, fmt.Errorf("line %d: %d cells, want 3 (layer, packages, imports within the layer)", n, len(cells))
		}
		head := strings.TrimSpace(cells[0])
		if head == "layer" || strings.Trim(head, "- ") == "" {
			continue
		}
		layer := testLayer
		if head != "test" {
			v, err := strconv.Atoi(head)
			if err != nil || v < 0 {
				return nil, fmt.Errorf("line %d: layer %q is neither a number nor \"test\"", n, head)
			}
			layer = v
		}
		pkgs := backticked.FindAllStringSubmatch(cells[1], -1)
		if len(pkgs) == 0 {
			return nil, fmt.Errorf("line %d: no packages", n)
		}
		for _, m := range pkgs {
			if _, dup := l.rows[m[1]]; dup {
				return nil, fmt.Errorf("line %d: %s is in two rows", n, m[1])
			}
			l.rows[m[1]] = layer
		}
		for edge := range strings.SplitSeq(cells[2], ";") {
			from, to, ok := strings.Cut(edge, "->")
			if !ok {
				if backticked.MatchString(edge) {
					return nil, fmt.Errorf("line %d: %q is not of the form `a` -> `b`, `c`", n, strings.TrimSpace(edge))
				}
				continue // prose, such as "none: ..."
			}
			f := backticked.FindStringSubmatch(from)
			ts := backticked.FindAllStringSubmatch(to, -1)
			if f == nil || len(ts) == 0 {
				return nil, fmt.Errorf("line %d: %q is not of the form `a` -> `b`, `c`", n, strings.TrimSpace(edge))
			}
			for _, t := range ts {
				l.within = append(l.within, [2]string{f[1], t[1]})
			}
		}
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	if len(l.rows) == 0 {
		return nil, fmt.Errorf("no layering table under \"## Layers\"")
	}
	return l, nil
}

// match reports whether pattern (a package name or "dir/*") names pkg.
func match(pattern, pkg string) bool {
	if dir, ok := strings.CutSuffix(pattern, "/*"); ok {
		return path.Dir(pkg) == dir
	}
	return pattern == pkg
}

// layerOf returns pkg's layer: its own row, else its directory's "dir/*"
// row.
func (l *layers) layerOf(pkg string) (int, bool) {
	if v, ok := l.rows[pkg]; ok {
		return v, true
	}
	v, ok := l.rows[path.Dir(pkg)+"/*"]
	return v, ok
}

// allows reports whether from may import to, or why not.
func (l *layers) allows(from, to string) error {
	lf, ok := l.layerOf(from)
	if !ok {
		return fmt.Errorf("%s is in no row", from)
	}
	lt, ok := l.layerOf(to)
	if !ok {
		return fmt.Errorf("%s is in no row", to)
	}
	switch {
	case lf == testLayer:
		return nil
	case lt == testLayer:
		return fmt.Errorf("%s imports the test helper %s", from, to)
	case lt < lf:
		return nil
	case lt > lf:
		return fmt.Errorf("%s (layer %d) imports %s (layer %d), which is above it", from, lf, to, lt)
	}
	for _, e := range l.within {
		if match(e[0], from) && match(e[1], to) {
			return nil
		}
	}
	return fmt.Errorf("%s imports %s, of its own layer %d, and the table does not name that import", from, to, lf)
}

// pkg is what the test reads of `go list -json`.
type pkg struct {
	ImportPath string
	GoFiles    []string
	Imports    []string
	Module     *struct {
		Path string
		Main bool
	}
}

// violations returns every production import among pkgs (module-relative
// names, each with its imports) that l does not allow, and every package
// with Go files that no row lists.
func violations(l *layers, pkgs map[string][]string) []string {
	var out []string
	for _, name := range slices.Sorted(func(yield func(string) bool) {
		for k := range pkgs {
			if !yield(k) {
				return
			}
		}
	}) {
		if _, ok := l.layerOf(name); !ok {
			out = append(out, name+" is in no row of the layering table: add it")
			continue
		}
		for _, imp := range pkgs[name] {
			if err := l.allows(name, imp); err != nil {
				out = append(out, err.Error())
			}
		}
	}
	return out
}

// TestLayering checks every import between the packages under internal/
// against the layering table of docs/architecture.md.
func TestLayering(t *testing.T) {
	doc, err := os.Open("../docs/architecture.md")
	if err != nil {
		t.Fatal(err)
	}
	defer doc.Close()
	l, err := parseLayers(doc)
	if err != nil {
		t.Fatalf("docs/architecture.md: %v", err)
	}
	goTool, err := exec.LookPath("go")
	if err != nil {
		t.Fatalf("the go command is needed to list the imports: %v", err)
	}
	cmd := exec.Command(goTool, "list", "-deps", "-json", "./...")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	raw, err := cmd.Output()
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, stderr.Bytes())
	}
	pkgs := map[string][]string{}
	dec := json.NewDecoder(bytes.NewReader(raw))
	for dec.More() {
		var p pkg
		if err := dec.Decode(&p); err != nil {
			t.Fatal(err)
		}
		if p.Module == nil || !p.Module.Main || len(p.GoFiles) == 0 {
			continue // another module, or a directory of tests only (this one)
		}
		rel := func(s string) (string, bool) {
			r, ok := strings.CutPrefix(s, p.Module.Path+"/")
			return r, ok && strings.HasPrefix(r, "internal/")
		}
		name, ok := rel(p.ImportPath)
		if !ok {
			continue
		}
		imps := []string{}
		for _, imp := range p.Imports {
			if r, ok := rel(imp); ok {
				imps = append(imps, r)
			}
		}
		pkgs[name] = imps
	}
	if len(pkgs) < 40 {
		t.Fatalf("go list found %d packages under internal/: the listing is broken", len(pkgs))
	}
	for _, v := range violations(l, pkgs) {
		t.Error(v)
	}
}

// TestLayeringRefuses checks that the checker refuses what the table does
// not allow, on a table of its own.
func TestLayeringRefuses(t *testing.T) {
	const table = "# x\n\n## Layers\n\ntext\n\n" +
		"| layer | packages | imports within the layer |\n| --- | --- | --- |\n" +
		"| 2 | `internal/gateway`, `internal/sts` | |\n" +
		"| 1 | `internal/policy/*`, `internal/policy/expr`, `internal/policy/limitkey` | `internal/policy/limitkey` -> `internal/policy/expr` |\n" +
		"| 0 | `internal/config` | |\n" +
		"| test | `internal/policy/policytest` | |\n\n## Next\n\n| a | b | c |\n"
	l, err := parseLayers(strings.NewReader(table))
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		from, to string
		ok       bool
	}{
		{"internal/policy/saml", "internal/config", true},
		{"internal/policy/limitkey", "internal/policy/expr", true},
		{"internal/gateway", "internal/policy/saml", true},
		{"internal/policy/policytest", "internal/gateway", true},
		{"internal/policy/saml", "internal/sts", false},
		{"internal/policy/saml", "internal/policy/wssecurity", false},
		{"internal/policy/expr", "internal/policy/limitkey", false},
		{"internal/gateway", "internal/sts", false},
		{"internal/policy/saml", "internal/policy/policytest", false},
		{"internal/config", "internal/nowhere", false},
		{"internal/policy/saml/deeper", "internal/config", false},
	} {
		if err := l.allows(tc.from, tc.to); (err == nil) != tc.ok {
			t.Errorf("%s -> %s: got %v, want allowed %v", tc.from, tc.to, err, tc.ok)
		}
	}
	got := violations(l, map[string][]string{
		"internal/config":      nil,
		"internal/policy/saml": {"internal/config", "internal/sts"},
		"internal/unlisted":    nil,
	})
	if len(got) != 2 || !strings.Contains(got[0], "internal/policy/saml (layer 1) imports internal/sts") || !strings.Contains(got[1], "internal/unlisted is in no row") {
		t.Errorf("got %q, want the unit importing the STS and the unlisted package", got)
	}
	for _, bad := range []string{
		"## Layers\n\n| layer | packages | within |\n| --- | --- | --- |\n| x | `a` | |\n",
		"## Layers\n\n| layer | packages | within |\n| --- | --- | --- |\n| 1 | `a` | |\n| 0 | `a` | |\n",
		"## Layers\n\n| layer | packages |\n| --- | --- |\n| 1 | `a` |\n",
		"## Layers\n\n| layer | packages | within |\n| --- | --- | --- |\n| 1 | `a`, `b` | `a` `b` |\n",
		"## Other\n\n| layer | packages | within |\n| --- | --- | --- |\n| 1 | `a` | |\n",
	} {
		if _, err := parseLayers(strings.NewReader(bad)); err == nil {
			t.Errorf("%q parsed: want an error", bad)
		}
	}
}
