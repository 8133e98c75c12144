package xmlguard

import (
	"encoding/xml"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/gatehouse/gatehouse/internal/config"
	"github.com/gatehouse/gatehouse/internal/demo"
	"github.com/gatehouse/gatehouse/internal/policy"
	"github.com/gatehouse/gatehouse/internal/policy/policytest"
	"github.com/gatehouse/gatehouse/internal/soap"
	"github.com/gatehouse/gatehouse/internal/xmlscan"
)

func soapEnv(p policy.Protocol) *policy.Env {
	env := policytest.Env()
	env.Route.Protocol = p
	return env
}

func TestConfigErrors(t *testing.T) {
	tests := []struct {
		name  string
		proto policy.Protocol
		yaml  string
		line  int
		path  string
		msg   string
	}{
		{"unknown field", policy.REST, "max_depth: 10\nmax_dept: 10\n", 2, "max_dept", `unknown field "max_dept"`},
		{"zero depth", policy.REST, "max_depth: 0\n", 1, "max_depth", "must be greater than 0"},
		{"negative elements", policy.REST, "max_elements: -1\n", 1, "max_elements", "must be greater than 0"},
		{"zero bytes", policy.REST, "max_bytes: 0\n", 1, "max_bytes", "must be greater than 0"},
		{"huge bytes", policy.REST, "max_bytes: 1GiB\n", 1, "max_bytes", "must be at most"},
		{"depth past etree", policy.REST, "max_depth: 2000\n", 1, "max_depth", "must be at most 1024"},
		{"bad size", policy.REST, "max_text_bytes: 64kb\n", 1, "max_text_bytes", "invalid size"},
		{"decls over attributes", policy.REST, "max_attributes: 8\nmax_namespace_decls: 9\n", 2, "max_namespace_decls", "must not exceed max_attributes"},
		{"soap on a rest route", policy.REST, "soap:\n  operations: [\"{urn:a}Op\"]\n", 1, "soap", "need a SOAP route"},
		{"bad operation", policy.SOAP11, "soap:\n  operations:\n    - \"{urn:a}Op\"\n    - \"tns:Op\"\n", 4, "soap.operations[1]", "is not a qualified name"},
		{"empty operations", policy.SOAP11, "soap:\n  operations: []\n", 2, "soap.operations", "would refuse every request"},
		{"operations and wsdl", policy.SOAP11, "soap:\n  operations: [\"{urn:a}Op\"]\n  wsdl: x.wsdl\n", 3, "soap.wsdl", "not both"},
		{"action match without wsdl", policy.SOAP11, "soap:\n  operations: [\"{urn:a}Op\"]\n  require_action_match: true\n", 3, "soap.require_action_match", "needs wsdl"},
		{"missing wsdl", policy.SOAP11, "soap:\n  wsdl: missing.wsdl\n", 2, "soap.wsdl", "reading the WSDL"},
		{"bad version", policy.SOAP11, "soap:\n  versions: [\"1.1\", \"2\"]\n", 2, "soap.versions[1]", `unknown SOAP version "2"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := New(policytest.Node(t, tt.yaml), soapEnv(tt.proto))
			policytest.WantConfigError(t, err, tt.line, tt.path, tt.msg)
		})
	}
}

func TestConfigDefaults(t *testing.T) {
	s, err := decode(policytest.Node(t, ""), policytest.Env())
	if err != nil {
		t.Fatal(err)
	}
	if got, want := s.lim, xmlscan.DefaultLimits(); got != want {
		t.Errorf("got limits %+v, want the defaults %+v", got, want)
	}
	if s.soap != nil {
		t.Error("a REST route got SOAP checks")
	}
	s, err = decode(policytest.Node(t, "max_bytes: 64KiB\nmax_depth: 12\nmax_elements: 500\nmax_attributes: 16\nmax_namespace_decls: 8\nmax_total_namespace_decls: 40\nmax_text_bytes: 4KiB\nmax_attribute_bytes: 1KiB\nmax_name_bytes: 64\nroundtrip_check: true\n"), soapEnv(policy.SOAP12))
	if err != nil {
		t.Fatal(err)
	}
	want := xmlscan.Limits{MaxBytes: 64 << 10, MaxDepth: 12, MaxElements: 500, MaxAttributes: 16, MaxNamespaceDecls: 8,
		MaxTotalNamespaceDecls: 40, MaxTextBytes: 4 << 10, MaxAttributeBytes: 1 << 10, MaxNameBytes: 64, RoundTripCheck: true}
	if s.lim != want {
		t.Errorf("got limits %+v, want %+v", s.lim, want)
	}
	if s.soap == nil || !s.soap.versions[soap.V12] || s.soap.versions[soap.V11] || s.soap.ops != nil {
		t.Errorf("SOAP 1.2 route without soap section: got %+v, want version 1.2 only and no allow-list", s.soap)
	}
}

// writeDemoWSDL writes the demo ProductService WSDL next to a config file
// and returns the config node for yaml, read as if from that file.
func writeDemoWSDL(t testing.TB, yaml string) *config.Node {
	t.Helper()
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "products.wsdl"), demo.WSDL("http://127.0.0.1/soap/products"), 0o600); err != nil {
		t.Fatal(err)
	}
	n, err := config.ParseNode(filepath.Join(dir, "gatehouse.yaml"), []byte(yaml), nil)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

func TestConfigWSDL(t *testing.T) {
	s, err := decode(writeDemoWSDL(t, "soap:\n  wsdl: products.wsdl\n"), soapEnv(policy.SOAP11))
	if err != nil {
		t.Fatal(err)
	}
	if !s.soap.matchAction {
		t.Error("require_action_match is not on by default with a WSDL")
	}
	get := opKey{version: soap.V11, name: xml.Name{Space: demo.Namespace, Local: "GetProduct"}}
	if got := s.soap.ops[get]; len(got) != 1 || got[0] != demo.SOAPActionGetProduct {
		t.Errorf("GetProduct actions = %q, want [%q]", got, demo.SOAPActionGetProduct)
	}
	if len(s.soap.ops) != 3 { // GetProduct, CreateProduct, GetProductCost
		t.Errorf("got %d operations, want 3", len(s.soap.ops))
	}

	s, err = decode(writeDemoWSDL(t, "soap:\n  wsdl: products.wsdl\n  require_action_match: false\n"), soapEnv(policy.SOAP11))
	if err != nil {
		t.Fatal(err)
	}
	if s.soap.matchAction {
		t.Error("require_action_match: false is ignored")
	}

	// The demo WSDL binds SOAP 1.1 only: a 1.2 route has nothing allowed.
	_, err = New(writeDemoWSDL(t, "soap:\n  wsdl: products.wsdl\n"), soapEnv(policy.SOAP12))
	var ce *config.Error
	if err == nil || !errors.As(err, &ce) || ce.Path != "soap.wsdl" {
		t.Errorf("SOAP 1.2 route with a 1.1-only WSDL: got %v, want a soap.wsdl config error", err)
	}
}

// TestConfigErrorsTogether checks that independent problems are reported
// in one load, each at its place, before the WSDL is read.
func TestConfigErrorsTogether(t *testing.T) {
	yaml := "max_depth: 0\nmax_elements: 100000000\nsoap:\n  versions: ['1.3']\n  operations: ['{urn:x}Op', '{urn:x']\n  wsdl: missing.wsdl\n"
	_, err := decode(policytest.Node(t, yaml), soapEnv(policy.SOAP11))
	policytest.WantConfigErrors(t, err,
		policytest.ConfigErrorAt{Line: 1, Path: "max_depth"},
		policytest.ConfigErrorAt{Line: 2, Path: "max_elements"},
		policytest.ConfigErrorAt{Line: 4, Path: "soap.versions[0]"},
		policytest.ConfigErrorAt{Line: 5, Path: "soap.operations[1]"},
		policytest.ConfigErrorAt{Line: 6, Path: "soap.wsdl"},
	)
}
