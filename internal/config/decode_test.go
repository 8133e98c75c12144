package config

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"go.yaml.in/yaml/v3"
)

// sampleHeaders and samplePolicy stand for a policy's settings struct.
type sampleHeaders struct {
	Set    map[string]string `yaml:"set"`
	Remove []string          `yaml:"remove"`
}

type sampleCommon struct {
	Realm string `yaml:"realm"`
}

type samplePolicy struct {
	sampleCommon `yaml:",inline"`
	Allow        []netip.Prefix `yaml:"allow"`
	Window       Duration       `yaml:"window"`
	Grace        time.Duration  `yaml:"grace"`
	MaxBody      ByteSize       `yaml:"max_body"`
	Headers      sampleHeaders  `yaml:"headers"`
	Limits       []sampleLimit  `yaml:"limits"`
	Key          Secret         `yaml:"key"`
	Extra        map[string]any `yaml:"extra"`
	Ratio        float64        `yaml:"ratio"`
	Burst        *uint8         `yaml:"burst"`
	Rules        *Node          `yaml:"rules"`
	Internal     string         // no yaml tag: not settable from YAML
}

type sampleLimit struct {
	Name  string `yaml:"name"`
	Count int    `yaml:"count"`
}

// parse is ParseNode for tests, failing the test on error.
func parse(t *testing.T, file, src string, envm map[string]string) *Node {
	t.Helper()
	n, err := ParseNode(file, []byte(src), env(envm))
	if err != nil {
		t.Fatalf("ParseNode: %v", err)
	}
	return n
}

func TestNodeDecodeGood(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "hmac.key"), []byte("s3cr3t\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	src := `realm: api
allow: [10.0.0.0/8, "2001:db8::/32"]
window: 1m30s
grace: 250ms
max_body: 1MiB
headers:
  set: {X-Frame-Options: DENY, X-Count: 3}
  remove: [Server]
limits:
  - {name: a, count: 0x10}
  - name: b
    count: 1_000
key: {file: hmac.key}
extra: {a: [1, two, 3.5, true, ~], b: {c: d}}
ratio: 2
burst: 200
rules:
  - deny: all
`
	n := parse(t, filepath.Join(dir, "gh.yaml"), src, nil)
	got := samplePolicy{Internal: "kept"}
	if err := n.Decode(&got); err != nil {
		t.Fatalf("Decode: %v", err)
	}
	burst := uint8(200)
	want := samplePolicy{
		sampleCommon: sampleCommon{Realm: "api"},
		Allow:        []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8"), netip.MustParsePrefix("2001:db8::/32")},
		Window:       Duration(90 * time.Second),
		Grace:        250 * time.Millisecond,
		MaxBody:      1 << 20,
		Headers: sampleHeaders{
			Set:    map[string]string{"X-Frame-Options": "DENY", "X-Count": "3"},
			Remove: []string{"Server"},
		},
		Limits: []sampleLimit{{"a", 16}, {"b", 1000}},
		Extra: map[string]any{
			"a": []any{1, "two", 3.5, true, nil},
			"b": map[string]any{"c": "d"},
		},
		Ratio:    2,
		Burst:    &burst,
		Internal: "kept",
	}
	opts := cmp.Options{
		cmp.AllowUnexported(samplePolicy{}),
		cmp.Comparer(func(a, b netip.Prefix) bool { return a == b }),
		cmp.Comparer(func(a, b Secret) bool { return a.Value() == b.Value() }),
		cmp.FilterPath(func(p cmp.Path) bool { return p.Last().String() == ".Rules" }, cmp.Ignore()),
	}
	want.Key = NewSecret("s3cr3t")
	if diff := cmp.Diff(want, got, opts); diff != "" {
		t.Errorf("Decode mismatch (-want +got):\n%s", diff)
	}
	if got, want := got.Key.Source(), "file:hmac.key"; got != want {
		t.Errorf("Key.Source() = %q, want %q", got, want)
	}
	if got.Rules == nil || got.Rules.Path() != "rules" || got.Rules.Line() != 17 {
		t.Fatalf("Rules node = %+v, want path rules at line 17", got.Rules)
	}
	var rules []map[string]string
	if err := got.Rules.Decode(&rules); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]map[string]string{{"deny": "all"}}, rules); diff != "" {
		t.Errorf("rules (-want +got):\n%s", diff)
	}
}

func TestNodeDecodeKeepsDefaults(t *testing.T) {
	n := parse(t, "p.yaml", "window: 5s\n", nil)
	got := samplePolicy{sampleCommon: sampleCommon{Realm: "default-realm"}, MaxBody: 64}
	if err := n.Decode(&got); err != nil {
		t.Fatal(err)
	}
	if got.Realm != "default-realm" || got.MaxBody != 64 || got.Window.Std() != 5*time.Second {
		t.Errorf("got realm %q, max_body %d, window %v; want the defaults kept and window 5s", got.Realm, got.MaxBody, got.Window)
	}
}

func TestNodeDecodeEmpty(t *testing.T) {
	for _, src := range []string{"", "~\n", "# just a comment\n"} {
		n := parse(t, "p.yaml", src, nil)
		if !n.IsZero() {
			t.Errorf("%q: IsZero() = false, want true", src)
		}
		got := samplePolicy{sampleCommon: sampleCommon{Realm: "r"}}
		if err := n.Decode(&got); err != nil {
			t.Errorf("%q: Decode: %v", src, err)
		}
		if got.Realm != "r" {
			t.Errorf("%q: Decode changed the target: realm %q", src, got.Realm)
		}
	}
	var nilNode *Node
	var got samplePolicy
	if err := nilNode.Decode(&got); err != nil {
		t.Errorf("nil Node Decode: %v", err)
	}
	if err := nilNode.Decode(got); err == nil {
		t.Errorf("Decode into a non-pointer succeeded, want an error")
	}
}

func TestNodeDecodeErrors(t *testing.T) {
	// The node sits deep in a config, as a policy's settings do.
	cfg := base + goodRoute + `    policies:
      - headers:
          realm: api
          headers:
            set: {A: b}
            remove: [Server]
            bogus: 1
          limits:
            - name: a
              count: many
          max_body: 10 MiBs
          window: 5
          burst: 300
          ratio: .nan
          key: {env: HMAC_KEY}
          allow: [10.0.0.0/33]
          grace: 5
          extra: {a: !custom x}
          Internal: x
`
	c, err := LoadBytes("gh.yaml", []byte(cfg), nil)
	if err != nil {
		t.Fatal(err)
	}
	node := c.Routes[0].Policies[0].Config
	var got samplePolicy
	err = node.Decode(&got)
	var errs Errors
	if !errors.As(err, &errs) {
		t.Fatalf("Decode error %v (%T) is not Errors", err, err)
	}
	const p = "routes[0].policies[0].headers."
	want := []struct {
		line int
		path string
		msg  string
	}{
		{13, p + "headers.bogus", `unknown field "bogus"`},
		{16, p + "limits[0].count", `expected an integer, got string "many"`},
		{17, p + "max_body", `invalid size "10 MiBs": unknown unit "MiBs"`},
		{18, p + "window", `invalid duration "5": use a unit, e.g. 5s`},
		{19, p + "burst", "integer 300 is out of range [0, 255]"},
		{20, p + "ratio", "not a finite 64-bit float"},
		{21, p + "key.env", "environment variable HMAC_KEY is not set"},
		{22, p + "allow[0]", `invalid value "10.0.0.0/33"`},
		{23, p + "grace", "use a unit"},
		{24, p + "extra.a", "unsupported tag !custom"},
		{25, p + "Internal", `unknown field "Internal"`},
	}
	if len(errs) != len(want) {
		t.Errorf("got %d errors, want %d:\n%v", len(errs), len(want), err)
	}
	for i := range min(len(errs), len(want)) {
		e, w := errs[i], want[i]
		if e.File != "gh.yaml" || e.Line != w.line || e.Path != w.path || !strings.Contains(e.Msg, w.msg) {
			t.Errorf("error %d = %v\nwant gh.yaml:%d: %s: ...%s...", i, e, w.line, w.path, w.msg)
		}
	}
}

func TestNodeDecodeStrictScalars(t *testing.T) {
	type all struct {
		S  string   `yaml:"s"`
		B  bool     `yaml:"b"`
		I8 int8     `yaml:"i8"`
		U  uint     `yaml:"u"`
		F  float32  `yaml:"f"`
		L  []string `yaml:"l"`
		M  map[string]int
		MI map[string]int `yaml:"mi"`
	}
	tests := []struct {
		src  string
		want string // substring of the error; "" for success
	}{
		{"s: hello", ""},
		{"s: 1.10", ""},
		{"s: 2024-01-02", ""},
		{"s: 'yes'", ""},
		{"s: !!str true", ""},
		{"s: Yes", "ambiguous unquoted Yes"},
		{"s: off", "ambiguous unquoted off"},
		{"s: false", `expected a string, got boolean "false"`},
		{"s: [a]", "expected a string, got a sequence"},
		{"s: {a: b}", "expected a string, got a mapping"},
		{"b: true", ""},
		{"b: FALSE", ""},
		{"b: 1", `expected a boolean (true or false), got integer "1"`},
		{"b: on", `got string "on"`},
		{"b: 'true'", `got string "true"`},
		{"i8: -128", ""},
		{"i8: 0o17", ""},
		{"i8: 0b101", ""},
		{"i8: 128", "integer 128 is out of range [-128, 127]"},
		{"i8: 1.5", `expected an integer, got number "1.5"`},
		{"i8: '5'", `expected an integer, got string "5"`},
		{"u: -1", "integer -1 is out of range [0, 18446744073709551615]"},
		{"f: 1e3", ""},
		{"f: 1e39", "not a finite 32-bit float"},
		{"f: abc", `expected a number, got string "abc"`},
		{"l: a", `expected a sequence, got string "a"`},
		{"l: [a, [b]]", "expected a string, got a sequence"},
		{"mi: [1]", "expected a mapping, got a sequence"},
		{"mi: {a: 1, a: 2}", `duplicate key "a" (first at line 1)`},
		{"mi: {[a]: 1}", "mapping keys must be scalars"},
		{"M: {}", `unknown field "M"`},
		{"<<: {s: a}\ns: b", ""},
		{"<<: [a]", "a merge key (<<) takes a mapping or a sequence of mappings"},
		{"- a", "expected a mapping, got a sequence"},
	}
	for _, tt := range tests {
		t.Run(tt.src, func(t *testing.T) {
			var got all
			err := parse(t, "s.yaml", tt.src+"\n", nil).Decode(&got)
			switch {
			case tt.want == "" && err != nil:
				t.Errorf("Decode: %v", err)
			case tt.want != "" && err == nil:
				t.Errorf("Decode succeeded (%+v), want an error containing %q", got, tt.want)
			case tt.want != "" && !strings.Contains(err.Error(), tt.want):
				t.Errorf("Decode error %q, want it to contain %q", err, tt.want)
			}
		})
	}
}

func TestMergeKeys(t *testing.T) {
	type pair struct {
		A string `yaml:"a"`
		B string `yaml:"b"`
		C string `yaml:"c"`
	}
	src := `x: &x {a: xa, b: xb}
y: &y {b: yb, c: yc}
z:
  <<: [*x, *y]
  a: za
`
	var got struct {
		X, Y, Z pair `yaml:"-"`
		All     map[string]pair
	}
	var m map[string]pair
	if err := parse(t, "m.yaml", src, nil).Decode(&m); err != nil {
		t.Fatal(err)
	}
	_ = got
	// Explicit keys win over merged ones; earlier merge sources win over
	// later ones.
	if diff := cmp.Diff(pair{A: "za", B: "xb", C: "yc"}, m["z"]); diff != "" {
		t.Errorf("merged z (-want +got):\n%s", diff)
	}
}

func TestNodeErrorf(t *testing.T) {
	src := `ipfilter:
  allow:
    - 10.0.0.0/8
    - 192.168.0.0/16
  hsts:
    max_age: 1d
  "odd.key": 1
  empty:
`
	root := parse(t, "e.yaml", src, nil)
	var m struct {
		IPFilter *Node `yaml:"ipfilter"`
	}
	if err := root.Decode(&m); err != nil {
		t.Fatal(err)
	}
	n := m.IPFilter
	tests := []struct {
		field    string
		wantPath string
		wantLine int
		wantCol  int
	}{
		{"", "ipfilter", 1, 1},
		{"allow", "ipfilter.allow", 2, 3},
		{"allow[1]", "ipfilter.allow[1]", 4, 7},
		{"allow[7]", "ipfilter.allow[7]", 2, 3}, // nearest ancestor
		{"hsts.max_age", "ipfilter.hsts.max_age", 6, 14},
		{"hsts.preload", "ipfilter.hsts.preload", 5, 3},
		{`["odd.key"]`, `ipfilter["odd.key"]`, 7, 14},
		{"empty", "ipfilter.empty", 8, 3},
		{"nope.deeper[3]", "ipfilter.nope.deeper[3]", 1, 1},
	}
	for _, tt := range tests {
		t.Run(tt.field, func(t *testing.T) {
			err := n.Errorf(tt.field, "bad %s", "thing")
			var e *Error
			if !errors.As(err, &e) {
				t.Fatalf("Errorf returned %T, want *Error", err)
			}
			if e.Path != tt.wantPath || e.Line != tt.wantLine || e.Column != tt.wantCol || e.Msg != "bad thing" || e.File != "e.yaml" {
				t.Errorf("Errorf(%q) = %+v, want path %q at %d:%d", tt.field, e, tt.wantPath, tt.wantLine, tt.wantCol)
			}
		})
	}
	cause := fs.ErrPermission
	if err := n.Errorf("allow", "open: %v", cause); !errors.Is(err, fs.ErrPermission) {
		t.Errorf("Errorf with an error argument: errors.Is(cause) = false")
	}
}

func TestConfigErrorf(t *testing.T) {
	c, err := LoadBytes("gh.yaml", []byte(base+goodRoute), nil)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		path string
		want string
	}{
		{"routes[0].upstream.url", `gh.yaml:6:21: routes[0].upstream.url: cannot dial`},
		{"routes[0].match", `gh.yaml:5:12: routes[0].match: cannot dial`},
		{"listeners[0].tls.cert_file", `gh.yaml:2:5: listeners[0].tls.cert_file: cannot dial`},
		{"routes[3]", `gh.yaml:3:1: routes[3]: cannot dial`},
	}
	for _, tt := range tests {
		if got := c.Errorf(tt.path, "cannot %s", "dial").Error(); got != tt.want {
			t.Errorf("Errorf(%q) = %q, want %q", tt.path, got, tt.want)
		}
	}
	var zero *Config
	if got, want := zero.Errorf("routes[0]", "x").Error(), "config: routes[0]: x"; got != want {
		t.Errorf("Errorf on nil Config = %q, want %q", got, want)
	}
	if got, want := (&Config{}).Errorf("", "x").Error(), "config: x"; got != want {
		t.Errorf("Errorf on unloaded Config = %q, want %q", got, want)
	}
}

func TestErrorsFormat(t *testing.T) {
	errs := Errors{
		{File: "a.yaml", Line: 3, Column: 5, Path: "routes[0].name", Msg: "required field is missing"},
		{File: "a.yaml", Msg: "empty config"},
		{Line: 2, Msg: "m"},
	}
	want := "a.yaml:3:5: routes[0].name: required field is missing\na.yaml: empty config\n2: m"
	if got := errs.Error(); got != want {
		t.Errorf("Error() = %q, want %q", got, want)
	}
	var e *Error
	if !errors.As(error(errs), &e) || e != errs[0] {
		t.Errorf("errors.As did not find the first *Error")
	}
	sorted := errs.err().(Errors)
	if sorted[0].Line != 2 || sorted[1].Line != 3 || sorted[2].Line != 0 {
		t.Errorf("err() order = %v, want by line, unpositioned last", sorted)
	}
	if Errors(nil).err() != nil {
		t.Errorf("empty Errors.err() != nil")
	}
}

func TestSecret(t *testing.T) {
	dir := t.TempDir()
	write := func(name, content string) {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write("crlf", "v1\r\n")
	write("two-newlines", "v2\n\n")
	write("empty", "\n")
	write("big", strings.Repeat("x", maxSecretFile+1))
	type holder struct {
		Key Secret `yaml:"key"`
	}
	envm := map[string]string{"K": "from-env", "EMPTY": ""}
	tests := []struct {
		src        string
		want       string
		wantSource string
		wantErr    string
		wantIs     error
	}{
		{src: "key: inline", want: "inline", wantSource: "inline"},
		{src: "key: 12345", want: "12345", wantSource: "inline"},
		{src: "key: ${K}", want: "from-env", wantSource: "inline"},
		{src: "key: {env: K}", want: "from-env", wantSource: "env:K"},
		{src: "key: {file: crlf}", want: "v1", wantSource: "file:crlf"},
		{src: "key: {file: two-newlines}", want: "v2\n", wantSource: "file:two-newlines"},
		{src: "key: {file: " + filepath.Join(dir, "crlf") + "}", want: "v1"},
		{src: "key:", want: ""},
		{src: "key: {env: NOPE}", wantErr: "gh.yaml:1:12: key.env: environment variable NOPE is not set"},
		{src: "key: {env: EMPTY}", wantErr: "environment variable EMPTY is empty"},
		{src: "key:\n  file: missing.key", wantErr: "gh.yaml:2:9: key.file: secret file: open " + filepath.Join(dir, "missing.key"), wantIs: fs.ErrNotExist},
		{src: "key: {file: empty}", wantErr: "is empty"},
		{src: "key: {file: big}", wantErr: "larger than 1MiB"},
		{src: "key: {vault: x}", wantErr: `gh.yaml:1:7: key.vault: unknown field "vault"`},
		{src: "key: {env: A, file: b}", wantErr: "got a mapping with 2 keys"},
		{src: "key: {env: [A]}", wantErr: "env: expected a non-empty string, got a sequence"},
		{src: "key: true", wantErr: `a secret is a string, {env: NAME} or {file: PATH}; got boolean "true"`},
	}
	for _, tt := range tests {
		t.Run(tt.src, func(t *testing.T) {
			var h holder
			err := parse(t, filepath.Join(dir, "gh.yaml"), tt.src, envm).Decode(&h)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("Decode error = %v, want it to contain %q", err, tt.wantErr)
				}
				if tt.wantIs != nil && !errors.Is(err, tt.wantIs) {
					t.Errorf("errors.Is(%v, %v) = false", err, tt.wantIs)
				}
				if strings.Contains(err.Error(), "from-env") {
					t.Errorf("error leaks the secret: %v", err)
				}
				return
			}
			if err != nil {
				t.Fatalf("Decode: %v", err)
			}
			if got := h.Key.Value(); got != tt.want {
				t.Errorf("Value() = %q, want %q", got, tt.want)
			}
			if tt.wantSource != "" && h.Key.Source() != tt.wantSource {
				t.Errorf("Source() = %q, want %q", h.Key.Source(), tt.wantSource)
			}
		})
	}
}

func TestSecretRedaction(t *testing.T) {
	const value = "hunter2-very-secret"
	s := NewSecret(value)
	type outer struct {
		Name   string
		Key    Secret
		hidden Secret
		Ptr    *Secret
	}
	o := outer{Name: "n", Key: s, hidden: s, Ptr: &s}
	var outputs []string
	for _, f := range []string{"%v", "%+v", "%#v", "%s", "%q", "%x", "%X", "%d", "%10.3v"} {
		outputs = append(outputs, fmt.Sprintf(f, s), fmt.Sprintf(f, o), fmt.Sprintf(f, &o))
	}
	outputs = append(outputs, s.String(), fmt.Sprint(s), fmt.Sprintln(o))

	j, err := json.Marshal(o)
	if err != nil {
		t.Fatal(err)
	}
	outputs = append(outputs, string(j))
	if want := `{"Name":"n","Key":"[redacted]","Ptr":"[redacted]"}`; string(j) != want {
		t.Errorf("json.Marshal = %s, want %s", j, want)
	}
	y, err := yaml.Marshal(map[string]any{"key": s})
	if err != nil {
		t.Fatal(err)
	}
	outputs = append(outputs, string(y))

	var buf bytes.Buffer
	logger := slog.New(slog.NewJSONHandler(&buf, nil))
	logger.Info("loaded", "key", s, "outer", o, slog.Any("ptr", &s))
	slog.New(slog.NewTextHandler(&buf, nil)).Info("loaded", "key", s)
	outputs = append(outputs, buf.String())

	for _, out := range outputs {
		if strings.Contains(out, value) || strings.Contains(out, fmt.Sprintf("%x", value)) {
			t.Errorf("output leaks the secret: %s", out)
		}
	}
	if got := fmt.Sprintf("%v", s); got != "[redacted]" {
		t.Errorf("%%v = %q, want [redacted]", got)
	}
	if !strings.Contains(buf.String(), `"key":"[redacted]"`) {
		t.Errorf("slog JSON output %s lacks \"key\":\"[redacted]\"", buf.String())
	}
	if s.Value() != value {
		t.Errorf("Value() = %q, want %q", s.Value(), value)
	}
	if (Secret{}).Value() != "" || (Secret{}).Source() != "" || NewSecret("").Source() != "" {
		t.Errorf("zero Secret is not empty")
	}
}

func TestDurationParse(t *testing.T) {
	tests := []struct {
		in      string
		want    time.Duration
		wantErr string
	}{
		{"5s", 5 * time.Second, ""},
		{"1m30s", 90 * time.Second, ""},
		{"250ms", 250 * time.Millisecond, ""},
		{"1h", time.Hour, ""},
		{"0", 0, ""},
		{"0s", 0, ""},
		{"5", 0, "use a unit, e.g. 5s"},
		{"1.5", 0, "use a unit"},
		{"-1s", 0, "must not be negative"},
		{"5 s", 0, "invalid duration"},
		{"1d", 0, "invalid duration"},
		{"", 0, "invalid duration"},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := ParseDuration(tt.in)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) || !strings.HasPrefix(err.Error(), "config: ") {
					t.Errorf("ParseDuration(%q) = %v, %v; want error containing %q", tt.in, got, err, tt.wantErr)
				}
				return
			}
			if err != nil || got.Std() != tt.want {
				t.Errorf("ParseDuration(%q) = %v, %v; want %v", tt.in, got, err, tt.want)
			}
			// String reads back.
			if back, err := ParseDuration(got.String()); err != nil || back != got {
				t.Errorf("ParseDuration(%q.String()=%q) = %v, %v", tt.in, got.String(), back, err)
			}
		})
	}
}

func TestByteSizeParse(t *testing.T) {
	tests := []struct {
		in      string
		want    int64
		str     string
		wantErr string
	}{
		{"512B", 512, "512B", ""},
		{"64KiB", 64 << 10, "64KiB", ""},
		{"1MiB", 1 << 20, "1MiB", ""},
		{"1GiB", 1 << 30, "1GiB", ""},
		{"2TiB", 2 << 40, "2TiB", ""},
		{"10KB", 10_000, "10KB", ""},
		{"1MB", 1_000_000, "1MB", ""},
		{"3GB", 3_000_000_000, "3GB", ""},
		{"1 MiB", 1 << 20, "1MiB", ""},
		{"1536KiB", 1536 << 10, "1536KiB", ""},
		{"1023", 1023, "1023B", ""},
		{"0", 0, "0B", ""},
		{"1.5MiB", 0, "", "use a whole number of a smaller unit"},
		{"64kb", 0, "", `unknown unit "kb"`},
		{"64 K", 0, "", `unknown unit "K"`},
		{"-1", 0, "", "must not be negative"},
		{"MiB", 0, "", "invalid size"},
		{"", 0, "", "invalid size"},
		{"9999999TiB", 0, "", "too large"},
		{"99999999999999999999", 0, "", "too large"},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := ParseByteSize(tt.in)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Errorf("ParseByteSize(%q) = %v, %v; want error containing %q", tt.in, got, err, tt.wantErr)
				}
				return
			}
			if err != nil || got.Bytes() != tt.want || got.String() != tt.str {
				t.Errorf("ParseByteSize(%q) = %d (%s), %v; want %d (%s)", tt.in, got.Bytes(), got, err, tt.want, tt.str)
			}
		})
	}
	// In YAML, a plain integer is bytes and a float or hex is refused.
	var v struct {
		S ByteSize `yaml:"s"`
	}
	if err := parse(t, "b.yaml", "s: 2048", nil).Decode(&v); err != nil || v.S != 2048 {
		t.Errorf("s: 2048 gave %d, %v", v.S, err)
	}
	for _, src := range []string{"s: 1.5", "s: 0x10", "s: [1]", "s: true"} {
		if err := parse(t, "b.yaml", src, nil).Decode(&v); err == nil {
			t.Errorf("%s: Decode succeeded, want an error", src)
		}
	}
}

func TestExpandEnv(t *testing.T) {
	envm := map[string]string{"A": "alpha", "EMPTY": "", "PORT": "8080"}
	tests := []struct {
		in, want, wantErr string
	}{
		{"plain", "plain", ""},
		{"${A}", "alpha", ""},
		{"x-${A}-y", "x-alpha-y", ""},
		{"${A}${A}", "alphaalpha", ""},
		{"${UNSET:-def}", "def", ""},
		{"${EMPTY:-def}", "def", ""},
		{"${A:-def}", "alpha", ""},
		{"${EMPTY}", "", ""},
		{"${UNSET:-}", "", ""},
		{"${UNSET:-a:b}", "a:b", ""},
		{"$$", "$", ""},
		{"$${A}", "${A}", ""},
		{"^/api$", "^/api$", ""},
		{"price $5", "price $5", ""},
		{"$A", "$A", ""},
		{"${UNSET}", "", "environment variable UNSET is not set"},
		{"${A", "", "unterminated ${"},
		{"${}", "", "invalid environment variable reference ${}"},
		{"${1A}", "", "invalid environment variable reference"},
		{"${A-b}", "", "invalid environment variable reference ${A-b}"},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := expandEnv(tt.in, env(envm))
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Errorf("expandEnv(%q) = %q, %v; want error containing %q", tt.in, got, err, tt.wantErr)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Errorf("expandEnv(%q) = %q, %v; want %q", tt.in, got, err, tt.want)
			}
		})
	}
}

func TestExpansionRetypes(t *testing.T) {
	var v struct {
		Port  int    `yaml:"port"`
		On    bool   `yaml:"on"`
		Name  string `yaml:"name"`
		Name2 string `yaml:"name2"`
		Lit   string `yaml:"lit"`
	}
	src := "port: ${PORT}\non: ${ON:-true}\nname: ${YES}\nname2: '${PORT}'\nlit: \"$${PORT}\"\n"
	n := parse(t, "x.yaml", src, map[string]string{"PORT": "8080", "YES": "yes"})
	if err := n.Decode(&v); err != nil {
		t.Fatal(err)
	}
	if v.Port != 8080 || !v.On || v.Name != "yes" || v.Name2 != "8080" || v.Lit != "${PORT}" {
		t.Errorf("got %+v, want port 8080, on true, name yes, name2 8080, lit ${PORT}", v)
	}
}

func TestAliasesDecodeOnce(t *testing.T) {
	// An anchored value with a mistake, used twice, is reported once.
	src := "a: &a {count: x}\nb: *a\n"
	var v map[string]sampleLimit
	err := parse(t, "a.yaml", src, nil).Decode(&v)
	var errs Errors
	if !errors.As(err, &errs) || len(errs) != 1 || errs[0].Line != 1 {
		t.Errorf("Decode error = %v, want one error at line 1", err)
	}
}

func TestParseNodeErrors(t *testing.T) {
	tests := []struct{ src, want string }{
		{"a: 1\n---\nb: 2\n", "n.yaml:2:1: multiple YAML documents"},
		{"a: ${NOPE}\n", "n.yaml:1:4: a: environment variable NOPE is not set"},
		{"a: [\n", "n.yaml:1:4: invalid YAML: sequence end token ']' not found"},
		{"a: *nope\n", "n.yaml: invalid YAML: unknown anchor 'nope' referenced"},
	}
	for _, tt := range tests {
		_, err := ParseNode("n.yaml", []byte(tt.src), nil)
		if err == nil || !strings.HasPrefix(err.Error(), tt.want) {
			t.Errorf("ParseNode(%q) error = %v, want prefix %q", tt.src, err, tt.want)
		}
	}
}

func BenchmarkLoadBytes(b *testing.B) {
	var sb strings.Builder
	sb.WriteString("listeners: [{address: ':8080'}]\nroutes:\n")
	for i := range 200 {
		fmt.Fprintf(&sb, "  - name: r%d\n    match: {path_prefix: /r%d, methods: [GET, POST], hosts: [api.example.com]}\n    upstream: {url: 'http://u%d:8080/base', connect_timeout: 2s}\n    policies:\n      - ipfilter: {allow: [10.0.0.0/8]}\n", i, i, i)
	}
	data := []byte(sb.String())
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := LoadBytes("bench.yaml", data, nil); err != nil {
			b.Fatal(err)
		}
	}
}

func TestLargeDocumentWithoutAliases(t *testing.T) {
	// The alias bound is on what aliases add, not on the document's size:
	// a big config written out in full loads.
	src := "a: [" + strings.Repeat("0,", maxAliasNodes+10) + "0]\n"
	var v struct {
		A []int `yaml:"a"`
	}
	if err := parse(t, "big.yaml", src, nil).Decode(&v); err != nil {
		t.Fatal(err)
	}
	if got, want := len(v.A), maxAliasNodes+11; got != want {
		t.Errorf("len = %d, want %d", got, want)
	}
}

// TestLoadExpandsEscapedReference: a config whose text has no "$" skips
// the expansion walk (mayReference), but a double-quoted "\x24{NAME}" is a
// reference all the same, and one to an unset variable an error.
func TestLoadExpandsEscapedReference(t *testing.T) {
	src := "listeners: [{name: \"main\\x24{SUFFIX}\", address: \"127.0.0.1:0\"}]\n"
	c, err := LoadBytes("x.yaml", []byte(src), env(map[string]string{"SUFFIX": "-1"}))
	if err != nil {
		t.Fatal(err)
	}
	if got := c.Listeners[0].Name; got != "main-1" {
		t.Errorf("listener name %q, want main-1", got)
	}
	_, err = LoadBytes("x.yaml", []byte(src), nil)
	if err == nil || !strings.Contains(err.Error(), "environment variable SUFFIX is not set") {
		t.Errorf("got %v, want SUFFIX not set", err)
	}
	if mayReference([]byte("a: b\nc: [d, 'e']\n")) || !mayReference([]byte("a: $b")) || !mayReference([]byte(`a: "\x24"`)) {
		t.Error("mayReference is wrong")
	}
}
