package config

import (
	"errors"
	"fmt"
	"strings"
	"testing"
)

// TestSchemaEnumsMatchValidator: each enum of the JSON Schema is the set of
// values Load accepts at that field: every listed value passes the
// field's validation and a value not listed fails it. (Store.Type is
// checked by store.Open, in internal/builtin's schema tests.)
func TestSchemaEnumsMatchValidator(t *testing.T) {
	base := "listeners: [{address: \"127.0.0.1:8080\"}]\n"
	where := map[string]struct {
		path string
		doc  func(v string) string
	}{
		"ServerTLS.MinVersion": {"listeners[0].tls.min_version", func(v string) string {
			return fmt.Sprintf("listeners: [{address: \"127.0.0.1:8080\", tls: {cert_file: c, key_file: k, min_version: %q}}]\n", v)
		}},
		"ServerTLS.ClientAuth": {"listeners[0].tls.client_auth", func(v string) string {
			return fmt.Sprintf("listeners: [{address: \"127.0.0.1:8080\", tls: {cert_file: c, key_file: k, client_ca_file: ca, client_auth: %q}}]\n", v)
		}},
		"Route.SOAP": {"routes[0].soap", func(v string) string {
			return base + fmt.Sprintf("routes: [{name: r, match: {path: /r}, upstream: {url: \"http://127.0.0.1:9\"}, soap: %q}]\n", v)
		}},
		"AuthorizationServer.Algorithm": {"authorization_server.algorithm", func(v string) string {
			return base + fmt.Sprintf("authorization_server: {issuer: \"http://127.0.0.1:8080\", insecure_plaintext_keys: true, algorithm: %q}\n", v)
		}},
		"STS.Signature": {"sts.signature", func(v string) string {
			return base + fmt.Sprintf("sts: {issuer: \"urn:x\", insecure_plaintext_keys: true, signature: %q}\n", v)
		}},
		"Tracing.Exporter": {"tracing.exporter", func(v string) string {
			return base + fmt.Sprintf("tracing: {endpoint: \"http://127.0.0.1:4318\", exporter: %q}\n", v)
		}},
		"Tracing.PropagateFrom": {"tracing.propagate_from", func(v string) string {
			return base + fmt.Sprintf("tracing: {endpoint: \"http://127.0.0.1:4317\", propagate_from: %q}\n", v)
		}},
	}
	errAt := func(doc, path string) error {
		_, err := LoadBytes("e.yaml", []byte(doc), nil)
		var es Errors
		if errors.As(err, &es) {
			for _, e := range es {
				if e.Path == path {
					return e
				}
			}
		}
		return nil
	}
	for key, vals := range enumValues {
		if key == "Store.Type" {
			continue
		}
		w, ok := where[key]
		if !ok {
			t.Errorf("enum %s has no case here: add one", key)
			continue
		}
		for _, v := range vals {
			if err := errAt(w.doc(v), w.path); err != nil {
				t.Errorf("%s: the schema allows %q, Load refuses it: %v", key, v, err)
			}
		}
		for _, bad := range []string{"bogus", strings.ToUpper(vals[len(vals)-1]) + "x"} {
			if errAt(w.doc(bad), w.path) == nil {
				t.Errorf("%s: Load accepts %q, the schema refuses it", key, bad)
			}
		}
	}
}
