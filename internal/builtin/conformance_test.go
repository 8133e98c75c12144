package builtin_test

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"

	"github.com/gatehouse/gatehouse/internal/builtin"
	"github.com/gatehouse/gatehouse/internal/config"
	"github.com/gatehouse/gatehouse/internal/gateway"
	"github.com/gatehouse/gatehouse/internal/store"
)

// docsDir holds one page per policy type and authenticator,
// docs/policies/<name>.md.
const docsDir = "../../docs/policies"

// sections are the H2 sections every unit's page starts with, in this
// order; further H2 sections (Notes, Performance, ...) may follow them.
var sections = []string{"Name", "Description", "Syntax", "Examples", "Denials", "Metrics"}

// fragmentMarker, as the first line of a YAML example (alone or followed
// by ": reason"), marks it as deliberately partial: it is not built
// (CONTRIBUTING.md).
const fragmentMarker = "# fragment"

// isFragment reports whether an example's first line is the fragment
// marker, alone or followed by a colon and the reason.
func isFragment(text string) bool {
	first, _, _ := strings.Cut(strings.TrimSpace(text), "\n")
	first = strings.TrimSpace(first)
	return first == fragmentMarker || strings.HasPrefix(first, fragmentMarker+":")
}

// units returns every registered unit, the policy types and the
// authenticators, from the registries themselves.
func units(t *testing.T) (policies, authenticators []string) {
	t.Helper()
	policies = builtin.Registry().Names()
	authenticators = builtin.Authenticators().Names()
	if len(policies) == 0 || len(authenticators) == 0 {
		t.Fatalf("registries list %d policy types and %d authenticators", len(policies), len(authenticators))
	}
	for _, a := range authenticators {
		if slices.Contains(policies, a) {
			t.Fatalf("%s is both a policy type and an authenticator: their pages would collide", a)
		}
	}
	return policies, authenticators
}

// page is a unit's documentation page.
type page struct {
	file     string
	title    string
	sections []string // H2 headings in order
	// lines counts the non-blank lines under each H2 heading, up to the
	// next H2 (subsections included).
	lines    map[string]int
	examples []example
}

type example struct {
	line int // of the opening fence
	text string
}

var heading = regexp.MustCompile(`^(#{1,6})\s+(.*?)\s*$`)

func readPage(file string) (*page, error) {
	f, err := os.Open(file)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	p := &page{file: file, lines: map[string]int{}}
	sc := bufio.NewScanner(f)
	n := 0
	var fence string // the open fence, "" outside one
	var ex *example
	var b strings.Builder
	for sc.Scan() {
		line := sc.Text()
		n++
		trimmed := strings.TrimSpace(line)
		if fence != "" && trimmed != "" && len(p.sections) > 0 {
			p.lines[p.sections[len(p.sections)-1]]++
		}
		if fence != "" {
			if strings.HasPrefix(trimmed, fence) && strings.Trim(trimmed, "`~") == "" {
				if ex != nil {
					ex.text = b.String()
					p.examples = append(p.examples, *ex)
				}
				fence, ex = "", nil
				continue
			}
			if ex != nil {
				b.WriteString(line)
				b.WriteByte('\n')
			}
			continue
		}
		if strings.HasPrefix(trimmed, "```") || strings.HasPrefix(trimmed, "~~~") {
			if len(p.sections) > 0 {
				p.lines[p.sections[len(p.sections)-1]]++
			}
			fence = trimmed[:3]
			info := strings.ToLower(strings.TrimSpace(strings.Trim(trimmed, "`~")))
			if info == "yaml" || info == "yml" {
				ex = &example{line: n}
				b.Reset()
			}
			continue
		}
		m := heading.FindStringSubmatch(line)
		if m == nil {
			if trimmed != "" && len(p.sections) > 0 {
				p.lines[p.sections[len(p.sections)-1]]++
			}
			continue
		}
		if len(m[1]) > 2 && len(p.sections) > 0 {
			p.lines[p.sections[len(p.sections)-1]]++
		}
		switch len(m[1]) {
		case 1:
			if p.title != "" {
				return nil, fmt.Errorf("%s:%d: a second H1 %q", file, n, m[2])
			}
			p.title = m[2]
		case 2:
			p.sections = append(p.sections, m[2])
		}
	}
	if fence != "" {
		return nil, fmt.Errorf("%s: a code block is not closed", file)
	}
	return p, sc.Err()
}

// checkSections reports how p's headings differ from the contract.
func checkSections(p *page, name string) []string {
	var out []string
	if p.title != name {
		out = append(out, fmt.Sprintf("H1 is %q, want %q", p.title, name))
	}
	if len(p.sections) < len(sections) || !slices.Equal(p.sections[:len(sections)], sections) {
		out = append(out, fmt.Sprintf("H2 sections %q, want them to start with %q", p.sections, sections))
	}
	for _, s := range sections {
		if slices.Contains(p.sections, s) && p.lines[s] == 0 {
			out = append(out, fmt.Sprintf("section %q is empty: a unit without one says so (\"None.\")", s))
		}
	}
	seen := map[string]bool{}
	for _, s := range p.sections {
		if seen[s] {
			out = append(out, fmt.Sprintf("section %q appears twice", s))
		}
		seen[s] = true
	}
	return out
}

// TestUnitPages checks that every registered policy type and authenticator
// has its page, docs/policies/<name>.md, with the H1 its name and the
// sections of the contract in order, and that no page documents a unit
// that is not registered.
func TestUnitPages(t *testing.T) {
	policies, authenticators := units(t)
	names := append(slices.Clone(policies), authenticators...)
	for _, name := range names {
		t.Run(name, func(t *testing.T) {
			p, err := readPage(filepath.Join(docsDir, name+".md"))
			if err != nil {
				t.Fatal(err)
			}
			for _, e := range checkSections(p, name) {
				t.Errorf("%s: %s", p.file, e)
			}
			if len(p.examples) == 0 {
				t.Errorf("%s: no YAML example", p.file)
			}
		})
	}
	files, err := filepath.Glob(filepath.Join(docsDir, "*.md"))
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range files {
		if name := strings.TrimSuffix(filepath.Base(f), ".md"); !slices.Contains(names, name) {
			t.Errorf("%s documents no registered unit: rename it to the unit's name or move it out of docs/policies", f)
		}
	}
}

// header is the part of a config every wrapped example shares; the
// examples' files are resolved against testdata/docs.
const header = `listeners: [{name: public, address: "127.0.0.1:0"}]
admin: {address: "off"}
access_log: {disabled: true}
store: {type: memory}
`

// restRoute and soapRoute are the kind line of a wrapped route: a snippet
// without its route may be meant for either kind, so an example that
// does not build on a REST route is built on a SOAP 1.1 route too.
const (
	restRoute = "    soap: \"\"\n"
	soapRoute = "    soap: \"1.1\"\n"
)

// route wraps policies (a YAML sequence, indented by 6) into a REST route.
func route(policies string) string {
	return header + "routes:\n  - name: example\n    match: {path_prefix: /}\n    upstream: {url: \"http://127.0.0.1:9\"}\n" +
		restRoute + "    policies:\n" + policies
}

func indent(s string, n int) string {
	pad := strings.Repeat(" ", n)
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	for i, l := range lines {
		if strings.TrimSpace(l) != "" {
			lines[i] = pad + l
		}
	}
	return strings.Join(lines, "\n") + "\n"
}

func dedent(s string) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	least := -1
	for _, l := range lines {
		if strings.TrimSpace(l) == "" {
			continue
		}
		if n := len(l) - len(strings.TrimLeft(l, " ")); least < 0 || n < least {
			least = n
		}
	}
	for i, l := range lines {
		if len(l) >= least {
			lines[i] = l[least:]
		}
	}
	return strings.Join(lines, "\n") + "\n"
}

// wrap turns an example on the page of unit (a policy type, or an
// authenticator when authn) into a whole config: a config as it is; a list
// of policies into a route; a list of authenticators into an authenticate
// policy; a mapping of the unit's settings into the unit.
func wrap(unit string, authn bool, text string, policies, authenticators []string) (string, error) {
	text = dedent(text)
	var doc yaml.Node
	if err := yaml.Unmarshal([]byte(text), &doc); err != nil {
		return "", fmt.Errorf("not YAML: %v", err)
	}
	if doc.Kind != yaml.DocumentNode || len(doc.Content) != 1 {
		return "", errors.New("empty")
	}
	root := doc.Content[0]
	keyOf := func(n *yaml.Node) string {
		if n.Kind == yaml.MappingNode && len(n.Content) == 2 {
			return n.Content[0].Value
		}
		return ""
	}
	switch root.Kind {
	case yaml.MappingNode:
		for i := 0; i < len(root.Content); i += 2 {
			if k := root.Content[i].Value; k == "routes" || k == "listeners" {
				// A whole config: add what it leaves out of the header.
				var add strings.Builder
				for _, line := range strings.SplitAfter(header, "\n") {
					k, _, _ := strings.Cut(line, ":")
					if k != "" && !hasKey(root, k) {
						add.WriteString(line)
					}
				}
				return add.String() + text, nil
			}
		}
		if keyOf(root) == "policies" {
			// A route's policies, as the Syntax sections show them.
			_, rest, _ := strings.Cut(text, "\n")
			return wrap(unit, authn, rest, policies, authenticators)
		}
		if k := keyOf(root); slices.Contains(policies, k) || slices.Contains(authenticators, k) {
			// One item written without its dash.
			return wrap(unit, authn, "- "+strings.TrimPrefix(indent(text, 2), "  "), policies, authenticators)
		}
		if authn {
			return route("      - authenticate:\n          with:\n            - " + unit + ":\n" + indent(text, 16)), nil
		}
		return route("      - " + unit + ":\n" + indent(text, 10)), nil
	case yaml.SequenceNode:
		var inPolicy, inAuthn int
		for _, item := range root.Content {
			k := keyOf(item)
			switch {
			case slices.Contains(policies, k):
				inPolicy++
			case slices.Contains(authenticators, k):
				inAuthn++
			default:
				return "", fmt.Errorf("list item %q is neither a policy type nor an authenticator", k)
			}
		}
		switch {
		case inAuthn == 0:
			return route(indent(text, 6)), nil
		case inPolicy == 0:
			return route("      - authenticate:\n          with:\n" + indent(text, 12)), nil
		}
		return "", errors.New("a list mixing policy types and authenticators")
	}
	return "", fmt.Errorf("a YAML %v is not an example of a config, a policy list or settings", root.Kind)
}

func hasKey(m *yaml.Node, k string) bool {
	for i := 0; i < len(m.Content); i += 2 {
		if m.Content[i].Value == k {
			return true
		}
	}
	return false
}

// exampleEnv answers every ${NAME} and {env: NAME} of the examples.
func exampleEnv(name string) (string, bool) {
	// Base64 of 32 bytes: fits the settings that want base64 too, and
	// those that want an AES-256 key.
	return "ZXhhbXBsZS1zZWNyZXQtdmFsdWUtMDEyMzQ1Njc4OWE=", true
}

// build loads config text as the file name in dir, the way `gatehouse
// serve` does, and builds the gateway's runtime (every route's policies,
// with the real registry) without starting it.
func build(t *testing.T, dir, name, text string) error {
	t.Helper()
	file := filepath.Join(dir, name)
	cfg, err := config.LoadBytes(file, []byte(text), exampleEnv)
	if err != nil {
		return err
	}
	st := store.NewMemory(nil)
	defer st.Close()
	g, err := gateway.New(cfg, gateway.Options{
		Registry: builtin.Registry(), Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
		Store: st, BaseDir: dir,
	})
	if err != nil {
		return err
	}
	g.Close()
	return nil
}

// wrapped is an example of a unit's page made a whole config (wrap), or
// why it could not be.
type wrapped struct {
	file string
	line int
	text string
	err  error
}

// pageExamples reads the page of unit (an authenticator when authn) and
// wraps each of its examples that is not a fragment, in page order.
func pageExamples(t *testing.T, unit string, authn bool, policies, authenticators []string) []wrapped {
	t.Helper()
	p, err := readPage(filepath.Join(docsDir, unit+".md"))
	if err != nil {
		t.Fatal(err)
	}
	var out []wrapped
	for _, ex := range p.examples {
		if isFragment(ex.text) {
			continue
		}
		text, err := wrap(unit, authn, ex.text, policies, authenticators)
		out = append(out, wrapped{file: p.file, line: ex.line, text: text, err: err})
	}
	return out
}

// TestUnitExamples builds every YAML example of every unit's page through
// the config loader and the real registry: a documented config that does
// not load is a bug in the page or in the unit.
func TestUnitExamples(t *testing.T) {
	policies, authenticators := units(t)
	dir, err := filepath.Abs("testdata/docs")
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range append(slices.Clone(policies), authenticators...) {
		authn := slices.Contains(authenticators, name)
		t.Run(name, func(t *testing.T) {
			for _, ex := range pageExamples(t, name, authn, policies, authenticators) {
				if ex.err != nil {
					t.Errorf("%s:%d: %v", ex.file, ex.line, ex.err)
					continue
				}
				text := ex.text
				file := fmt.Sprintf("%s-%d.yaml", name, ex.line)
				err := build(t, dir, file, text)
				if err != nil && strings.Contains(text, restRoute) {
					soap := strings.Replace(text, restRoute, soapRoute, 1)
					if soapErr := build(t, dir, file, soap); soapErr == nil {
						err = nil
					} else {
						err = fmt.Errorf("on a REST route: %v; on a SOAP route: %v", err, soapErr)
					}
				}
				if err != nil {
					t.Errorf("%s:%d: the example does not build: %v\n%s", ex.file, ex.line, err, text)
				}
			}
		})
	}
}

// TestUnitConfigErrors builds every unit with settings of the wrong kind
// and with a field it does not know, and requires a config error that
// names the file, line and column of the mistake.
func TestUnitConfigErrors(t *testing.T) {
	policies, authenticators := units(t)
	dir := t.TempDir()
	for _, name := range append(slices.Clone(policies), authenticators...) {
		authn := slices.Contains(authenticators, name)
		at := func(settings string) (text string, line int) {
			item := "      - " + name + ": " + settings + "\n"
			if authn {
				text = route("      - authenticate:\n          with:\n      " + item)
			} else {
				text = route(item)
			}
			return text, strings.Count(text[:strings.Index(text, name+": "+settings)], "\n") + 1
		}
		for _, tc := range []struct{ what, settings string }{
			{"an unknown field", "{no_such_field_xyz: 1}"},
			{"a list for the settings", "[1, 2]"},
			{"a string for the settings", "oops"},
			{"empty settings", ""},
		} {
			t.Run(name+"/"+tc.what, func(t *testing.T) {
				text, line := at(tc.settings)
				err := build(t, dir, "gatehouse.yaml", text)
				if err == nil && tc.settings == "" {
					return // the unit's defaults are a whole config
				}
				var ce *config.Error
				if !errors.As(err, &ce) {
					t.Fatalf("got %T %v, want a *config.Error\n%s", err, err, text)
				}
				if ce.File != filepath.Join(dir, "gatehouse.yaml") || ce.Line < line || ce.Column <= 0 {
					t.Errorf("got %q at %s:%d:%d, want %s:%d or below, with a column\n%s", err, ce.File, ce.Line, ce.Column, filepath.Join(dir, "gatehouse.yaml"), line, text)
				}
			})
		}
	}
}

// TestPageChecker checks the page checker itself on pages of its own.
func TestPageChecker(t *testing.T) {
	good := "# u\n\n## Name\n\nu - x\n\n## Description\n\nx\n\n## Syntax\n\n```yaml\na: 1\n```\n\n" +
		"## Examples\n\n```yaml\n# fragment\nb: 2\n```\n\n## Denials\n\nNone.\n\n## Metrics\n\nNone.\n\n## Notes\n\nx\n"
	for _, tc := range []struct {
		name, text string
		problems   int
	}{
		{"good", good, 0},
		{"wrong title", strings.Replace(good, "# u\n", "# u (more)\n", 1), 1},
		{"empty denials", strings.Replace(good, "## Denials\n\nNone.\n", "## Denials\n\n", 1), 1},
		{"swapped", strings.Replace(strings.Replace(good, "## Denials", "## X", 1), "## Metrics", "## Denials", 1), 1},
		{"twice", good + "\n## Syntax\n\nx\n", 1},
		{"no metrics", strings.Replace(good, "## Metrics\n\nNone.\n\n", "", 1), 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := filepath.Join(t.TempDir(), "u.md")
			if err := os.WriteFile(f, []byte(tc.text), 0o600); err != nil {
				t.Fatal(err)
			}
			p, err := readPage(f)
			if err != nil {
				t.Fatal(err)
			}
			if got := checkSections(p, "u"); len(got) != tc.problems {
				t.Errorf("got %q, want %d problems", got, tc.problems)
			}
			if len(p.examples) != 2 || !isFragment(p.examples[1].text) || isFragment(p.examples[0].text) {
				t.Errorf("examples %+v: want two, the second a fragment", p.examples)
			}
		})
	}
}

// TestWrap checks how examples are wrapped: each shape becomes a config
// with the unit where the example put it, and a list of unknown items is
// refused rather than passed.
func TestWrap(t *testing.T) {
	policies, authenticators := units(t)
	for _, tc := range []struct {
		name, unit string
		authn      bool
		text, want string // want: a line the config has, "" for an error
	}{
		{"settings of a policy", "size_limit", false, "body: 1MiB\n", "      - size_limit:\n          body: 1MiB\n"},
		{"settings of an authenticator", "mtls", true, "{}\n", "            - mtls:\n                {}\n"},
		{"a policy list", "scopes", false, "  - scopes: {all: [a]}\n", "      - scopes: {all: [a]}\n"},
		{"an authenticator list", "jwt", true, "- mtls: {}\n", "          with:\n            - mtls: {}\n"},
		{"a route's policies", "ipfilter", false, "policies:\n  - ipfilter: {allow: [10.0.0.0/8]}\n", "      - ipfilter: {allow: [10.0.0.0/8]}\n"},
		{"one item without its dash", "headers", false, "headers:\n  request: {remove: [X]}\n", "      - headers:\n          request: {remove: [X]}\n"},
		{"a whole config", "ipfilter", false, "routes: []\nstore: {type: file}\n", "listeners: [{name: public"},
		{"an unknown list item", "ipfilter", false, "- nosuchunit: {}\n", ""},
		{"a mixed list", "ipfilter", false, "- ipfilter: {}\n- mtls: {}\n", ""},
		{"a scalar", "ipfilter", false, "just text\n", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := wrap(tc.unit, tc.authn, tc.text, policies, authenticators)
			if tc.want == "" {
				if err == nil {
					t.Fatalf("got\n%s\nwant an error", got)
				}
				return
			}
			if err != nil || !strings.Contains(got, tc.want) {
				t.Fatalf("got %v\n%s\nwant it to contain\n%s", err, got, tc.want)
			}
			if tc.name == "a whole config" && strings.Count(got, "store:") != 1 {
				t.Errorf("the header's store was added to a config that has one:\n%s", got)
			}
		})
	}
}
