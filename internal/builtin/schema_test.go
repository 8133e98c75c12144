package builtin

import (
	"bytes"
	"encoding/json"
	"log/slog"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/santhosh-tekuri/jsonschema/v6"
	"go.yaml.in/yaml/v3"

	"github.com/gatehouse/gatehouse/internal/config"
	"github.com/gatehouse/gatehouse/internal/policy"
	"github.com/gatehouse/gatehouse/internal/store"
)

// compileSchema compiles the generated schema with a draft 2020-12
// validator, at ref ("" the root, "#/$defs/PolicySpec" a part).
func compileSchema(t *testing.T, ref string) *jsonschema.Schema {
	t.Helper()
	data, err := config.JSONSchema(PolicyConfigs())
	if err != nil {
		t.Fatal(err)
	}
	doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(data))
	if err != nil {
		t.Fatal(err)
	}
	c := jsonschema.NewCompiler()
	c.DefaultDraft(jsonschema.Draft2020)
	if err := c.AddResource(config.SchemaID, doc); err != nil {
		t.Fatal(err)
	}
	s, err := c.Compile(config.SchemaID + ref)
	if err != nil {
		t.Fatalf("the generated schema does not compile: %v", err)
	}
	return s
}

// yamlToJSONValue reads YAML as a schema validator in an editor does:
// YAML 1.2 scalars as JSON values.
func yamlToJSONValue(data []byte) (any, error) {
	var v any
	if err := yaml.Unmarshal(data, &v); err != nil {
		return nil, err
	}
	j, err := json.Marshal(v)
	if err != nil {
		return nil, err
	}
	return jsonschema.UnmarshalJSON(bytes.NewReader(j))
}

func TestPolicyConfigsCoverUnits(t *testing.T) {
	pc := PolicyConfigs()
	for _, u := range Units() {
		if pc.Policies[u.Name] == nil {
			t.Errorf("policy %s has no settings type in PolicyConfigs: the schema would refuse it", u.Name)
		}
	}
	for _, n := range Authenticators().Names() {
		if pc.Authenticators[n] == nil {
			t.Errorf("authenticator %s has no settings type in PolicyConfigs", n)
		}
	}
	if len(pc.Policies) != len(Units()) || len(pc.Authenticators) != len(Authenticators().Names()) {
		t.Errorf("PolicyConfigs lists units that are not registered")
	}
}

var yamlBlock = regexp.MustCompile("(?s)```ya?ml\n(.*?)```")

// TestSchemaValidatesExamples: every config in examples/ and every YAML
// example in docs/ validates against the schema: whole configs against
// the root, and fragments (a route, a list of policies, a policy, an
// authenticator) against their part of it.
func TestSchemaValidatesExamples(t *testing.T) {
	root := compileSchema(t, "")
	parts := map[string]*jsonschema.Schema{
		"route":         compileSchema(t, "#/$defs/Route"),
		"policy":        compileSchema(t, "#/$defs/PolicySpec"),
		"authenticator": compileSchema(t, "#/$defs/AuthenticatorSpec"),
	}
	var schemaDoc map[string]any
	data, _ := config.JSONSchema(PolicyConfigs())
	if err := json.Unmarshal(data, &schemaDoc); err != nil {
		t.Fatal(err)
	}
	topKeys := schemaDoc["properties"].(map[string]any)
	routeKeys := schemaDoc["$defs"].(map[string]any)["Route"].(map[string]any)["properties"].(map[string]any)
	pc := PolicyConfigs()

	keysIn := func(m map[string]any, set map[string]any) bool {
		for k := range m {
			if _, ok := set[k]; !ok {
				return false
			}
		}
		return len(m) > 0
	}
	// classify says which schema a YAML example is for; "" skips it.
	var classify func(v any) (string, []any)
	classify = func(v any) (string, []any) {
		switch v := v.(type) {
		case map[string]any:
			if len(v) == 1 {
				for k := range v {
					if pc.Policies[k] != nil {
						return "policy", []any{v}
					}
					if pc.Authenticators[k] != nil {
						return "authenticator", []any{v}
					}
				}
			}
			if keysIn(v, topKeys) {
				return "config", []any{v}
			}
			if keysIn(v, routeKeys) {
				return "route", []any{v}
			}
		case []any:
			kind := ""
			for _, item := range v {
				k, _ := classify(item)
				if k == "" || kind != "" && k != kind {
					return "", nil
				}
				kind = k
			}
			return kind, v
		}
		return "", nil
	}

	type example struct {
		where string
		data  []byte
	}
	var examples []example
	files, _ := filepath.Glob("../../examples/*.yaml")
	for _, f := range files {
		if strings.HasSuffix(f, ".openapi.yaml") {
			continue // an OpenAPI document the demo's openapi policy reads
		}
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		examples = append(examples, example{f, data})
	}
	if len(examples) == 0 {
		t.Fatal("no example configs found")
	}
	docs, _ := filepath.Glob("../../docs/*.md")
	more, _ := filepath.Glob("../../docs/policies/*.md")
	for _, f := range append(append(docs, more...), "../../README.md") {
		md, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range yamlBlock.FindAllSubmatchIndex(md, -1) {
			line := bytes.Count(md[:m[2]], []byte("\n")) + 1
			examples = append(examples, example{f + ":" + itoa(line), md[m[2]:m[3]]})
		}
	}
	checked := map[string]int{}
	for _, ex := range examples {
		if bytes.Contains(ex.data, []byte("...")) {
			// A reference block with placeholders ([...], {...}): the
			// shape of a setting, not a config.
			t.Logf("%s: has ... placeholders: skipped", ex.where)
			continue
		}
		v, err := yamlToJSONValue(ex.data)
		if err != nil {
			t.Logf("%s: not one YAML document (%v): skipped", ex.where, err)
			continue
		}
		kind, items := classify(v)
		if kind == "" {
			t.Logf("%s: neither a config nor a part of one: skipped", ex.where)
			continue
		}
		s := root
		if kind != "config" {
			s = parts[kind]
		}
		for _, item := range items {
			checked[kind]++
			if err := s.Validate(item); err != nil {
				t.Errorf("%s: the %s example does not validate against the schema:\n%v", ex.where, kind, err)
			}
		}
	}
	t.Logf("validated: %v", checked)
	if checked["config"] < 5 || checked["policy"] < 20 {
		t.Errorf("too few examples validated (%v): is the classification broken?", checked)
	}
}

func itoa(i int) string { return fmtInt(i) }

func fmtInt(i int) string {
	b, _ := json.Marshal(i)
	return string(b)
}

// loadAndBuild is the decoder's verdict on a config, as `gatehouse check`
// gives it: Load, then each policy's factory (which decodes its settings
// strictly).
func loadAndBuild(t *testing.T, data string) error {
	t.Helper()
	dir := t.TempDir()
	cfg, err := config.LoadBytes(filepath.Join(dir, "gatehouse.yaml"), []byte(data), nil)
	if err != nil {
		return err
	}
	if _, err := store.Open(cfg.Store, dir, time.Now); err != nil {
		return err
	}
	reg := Registry()
	var errs []error
	for _, r := range cfg.Routes {
		for _, spec := range r.Policies {
			env := &policy.Env{Route: policy.Route{Name: r.Name}, Logger: slog.New(slog.DiscardHandler), Now: time.Now, Store: store.NewMemory(nil)}
			p, err := reg.Build(spec, env)
			if err != nil {
				errs = append(errs, err)
				continue
			}
			if c, ok := p.(policy.Closer); ok {
				c.Close()
			}
		}
	}
	if len(errs) > 0 {
		return errs[0]
	}
	return nil
}

// TestSchemaAgreesWithDecoder: on a table of configs, good and bad (an
// unknown field, a wrong type, a bad enum value, at the top, deep inside,
// and in policies' and authenticators' settings), the schema and the
// decoder give the same verdict.
func TestSchemaAgreesWithDecoder(t *testing.T) {
	root := compileSchema(t, "")
	base := "listeners: [{address: \"127.0.0.1:8080\"}]\nstore: {type: memory}\n"
	route := func(policies string) string {
		return base + "routes:\n  - name: r\n    match: {path_prefix: /}\n    upstream: {url: \"http://127.0.0.1:9\"}\n    policies:\n" + policies
	}
	for _, tc := range []struct {
		name string
		yaml string
		ok   bool
	}{
		{"minimal", base, true},
		{"durations, sizes, numbers as strings", base + "shutdown_timeout: 1m30s\nadmin: {address: \"off\"}\naccess_log: {output: stderr}\n" +
			"routes: [{name: r, match: {path: /r, methods: [GET]}, upstream: {url: \"http://127.0.0.1:9\", timeout: 0, idle_conn_timeout: 2m}}]\n", true},
		{"null is not set", base + "shutdown_timeout:\naudit:\n", true},
		{"tls min_version as a number", base + "admin: {address: \"127.0.0.1:0\", tls: {cert_file: c.pem, key_file: k.pem, min_version: 1.3}}\n", true},
		{"policies with settings", route("      - ipfilter: {allow: [10.0.0.0/8]}\n      - size_limit: {body: 1MiB}\n      - rate_limit: {rate: 10, per: 1s}\n"), true},
		{"policy without settings", route("      - xmlguard:\n"), true},
		{"authenticators", route("      - authenticate:\n          with:\n            - apikey: {keys: [{consumer: a, hash: \"sha256:" + strings.Repeat("A", 43) + "\"}]}\n"), true},

		{"tracing", base + "tracing: {exporter: otlp-http, endpoint: \"http://127.0.0.1:4318\", sampling_ratio: 0.5, batch_timeout: 1s, headers: {x-team: platform}}\n", true},
		{"bad enum: tracing exporter", base + "tracing: {endpoint: \"http://127.0.0.1:4317\", exporter: zipkin}\n", false},
		{"unknown field in tracing", base + "tracing: {endpoint: \"http://127.0.0.1:4317\", endpont: x}\n", false},
		{"wrong type: sampling ratio", base + "tracing: {endpoint: \"http://127.0.0.1:4317\", sampling_ratio: most}\n", false},
		{"unknown top-level field", base + "listenrs: []\n", false},
		{"unknown nested field", "listeners: [{address: \"127.0.0.1:8080\", adress: x}]\n", false},
		{"unknown field in upstream tls", base + "routes: [{name: r, match: {path: /r}, upstream: {url: \"https://127.0.0.1:9\", tls: {ca_fil: x}}}]\n", false},
		{"wrong type: boolean", base + "access_log: {disabled: \"no way\"}\n", false},
		{"wrong type: integer", "listeners: [{address: \"127.0.0.1:8080\", max_connections: lots}]\nstore: {type: memory}\n", false},
		{"wrong type: integer out of range", base + "routes: [{name: r, match: {path: /r}, upstream: {url: \"http://127.0.0.1:9\"}, soap_fault_status: 99999999999999999999}]\n", false},
		{"wrong type: duration without unit", base + "shutdown_timeout: 30\n", false},
		{"wrong type: negative size", "listeners: [{address: \"127.0.0.1:8080\", max_header_bytes: -1}]\nstore: {type: memory}\n", false},
		{"wrong type: mapping for a list", base + "trusted_proxies: {a: b}\n", false},
		{"wrong type: string for a mapping", base + "admin: loopback\n", false},
		{"bad secret form", base + "admin: {token: {envv: X}}\n", false},
		{"bad enum: min_version", base + "admin: {address: \"127.0.0.1:0\", tls: {cert_file: c.pem, key_file: k.pem, min_version: \"1.1\"}}\n", false},
		{"bad enum: client_auth", "listeners: [{address: \"127.0.0.1:8080\", tls: {cert_file: c.pem, key_file: k.pem, client_auth: maybe}}]\nstore: {type: memory}\n", false},
		{"bad enum: soap", base + "routes: [{name: r, match: {path: /r}, upstream: {url: \"http://127.0.0.1:9\"}, soap: \"2.0\"}]\n", false},
		{"bad enum: store type", "listeners: [{address: \"127.0.0.1:8080\"}]\nstore: {type: etcd}\n", false},
		{"unknown policy type", route("      - firewall: {}\n"), false},
		{"two policy types in one entry", route("      - ipfilter: {allow: [10.0.0.0/8]}\n        size_limit: {body: 1MiB}\n"), false},
		{"unknown field in a policy", route("      - ipfilter: {alow: [10.0.0.0/8]}\n"), false},
		{"wrong type in a policy", route("      - size_limit: {body: huge}\n"), false},
		{"wrong type in a policy: list", route("      - ipfilter: {allow: 10.0.0.0/8}\n"), false},
		{"unknown authenticator", route("      - authenticate: {with: [{kerberos: {}}]}\n"), false},
		{"unknown field in an authenticator", route("      - authenticate: {with: [{apikey: {header: X-Key, hedaer: X}}]}\n"), false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			v, err := yamlToJSONValue([]byte(tc.yaml))
			if err != nil {
				t.Fatal(err)
			}
			schemaErr := root.Validate(v)
			decodeErr := loadAndBuild(t, tc.yaml)
			// Files named in the config (c.pem) are read by the gateway,
			// after decoding: a config that decodes is good here.
			if (schemaErr == nil) != tc.ok {
				t.Errorf("schema says ok=%v, want %v: %v", schemaErr == nil, tc.ok, schemaErr)
			}
			if (decodeErr == nil) != tc.ok {
				t.Errorf("decoder says ok=%v, want %v: %v", decodeErr == nil, tc.ok, decodeErr)
			}
		})
	}
}

// TestSchemaDescriptions: the schema carries the Go doc comments of the
// config types, so editors show them.
func TestSchemaDescriptions(t *testing.T) {
	data, err := config.JSONSchema(PolicyConfigs())
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"Listeners accept client traffic. At least one is required.",
		"ShutdownTimeout bounds the drain on SIGTERM.",
	} {
		if !bytes.Contains(data, []byte(want)) {
			t.Errorf("schema lacks the description %q", want)
		}
	}
	if !slices.Contains([]string{"https://json-schema.org/draft/2020-12/schema"}, jsonField(t, data, "$schema")) {
		t.Errorf("$schema = %q", jsonField(t, data, "$schema"))
	}
}

func jsonField(t *testing.T, data []byte, k string) string {
	var m map[string]any
	if err := json.Unmarshal(data, &m); err != nil {
		t.Fatal(err)
	}
	s, _ := m[k].(string)
	return s
}
