package config

import (
	"strings"
	"testing"
)

func TestDoors(t *testing.T) {
	good := `listeners: [{address: "127.0.0.1:8080"}]
trusted_proxies: [10.0.0.0/8]
ext_authz:
  grpc_address: 127.0.0.1:9191
  http_address: 127.0.0.1:9192
  http_path_prefix: /authz
  with_request_body: true
  tls: {cert_file: c.pem, key_file: k.pem, client_ca_file: ca.pem}
forward_auth:
  address: 127.0.0.1:9193
`
	c, err := LoadBytes("gatehouse.yaml", []byte(good), nil)
	if err != nil {
		t.Fatal(err)
	}
	if e := c.ExtAuthz; e.MaxRequestBytes != DefaultDoorBodyBytes || !e.WithRequestBody || e.TLS.ClientAuth != "require_and_verify" || e.TLS.MinVersion != "1.2" {
		t.Errorf("ext_authz defaults: %+v %+v", e, e.TLS)
	}
	if f := c.ForwardAuth; f.MaxBodyBytes != DefaultDoorBodyBytes {
		t.Errorf("forward_auth defaults: %+v", f)
	}

	for _, tc := range []struct {
		name, src string
		want      []string // "line: field: message" fragments, each of one error
	}{
		{"neither address", "listeners: [{address: ':80'}]\next_authz: {with_request_body: true}\n",
			[]string{"gatehouse.yaml:2", "ext_authz", "set grpc_address, http_address or both"}},
		{"bad address", "listeners: [{address: ':80'}]\next_authz:\n  grpc_address: nowhere\n",
			[]string{"gatehouse.yaml:3", "ext_authz.grpc_address", "want host:port"}},
		{"bad prefix", "listeners: [{address: ':80'}]\next_authz:\n  http_address: ':9'\n  http_path_prefix: authz/\n",
			[]string{"gatehouse.yaml:4", "ext_authz.http_path_prefix", "must start with /"}},
		{"tls without key", "listeners: [{address: ':80'}]\next_authz:\n  grpc_address: ':9'\n  tls: {cert_file: c.pem}\n",
			[]string{"gatehouse.yaml:4", "ext_authz.tls.key_file", "required field is missing"}},
		{"unknown field", "listeners: [{address: ':80'}]\nforward_auth:\n  adress: ':9'\n",
			[]string{"gatehouse.yaml:3", "forward_auth.adress", "unknown field"}},
		{"forward-auth without trusted proxies", "listeners: [{address: ':80'}]\nforward_auth:\n  address: ':9'\n",
			[]string{"gatehouse.yaml:2", "forward_auth", "needs trusted_proxies"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := LoadBytes("gatehouse.yaml", []byte(tc.src), nil)
			if err == nil {
				t.Fatal("loaded")
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q lacks %q", err, w)
				}
			}
		})
	}
}
