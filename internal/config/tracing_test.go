package config

import (
	"errors"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func TestTracingDefaults(t *testing.T) {
	c, err := LoadBytes("t.yaml", []byte("listeners: [{address: \"127.0.0.1:8080\"}]\ntracing: {endpoint: \"http://127.0.0.1:4317\"}\n"), nil)
	if err != nil {
		t.Fatal(err)
	}
	one := 1.0
	want := &Tracing{Exporter: "otlp-grpc", Endpoint: "http://127.0.0.1:4317", ServiceName: "gatehouse", SamplingRatio: &one,
		PropagateFrom: "trusted", QueueSize: 2048, BatchSize: 512, BatchTimeout: Duration(5 * time.Second), ExportTimeout: Duration(10 * time.Second)}
	if diff := cmp.Diff(want, c.Tracing); diff != "" {
		t.Errorf("defaults (-want +got):\n%s", diff)
	}
	c, err = LoadBytes("t.yaml", []byte("listeners: [{address: \"127.0.0.1:8080\"}]\n"), nil)
	if err != nil || c.Tracing != nil {
		t.Errorf("without the section: %+v, %v; want no tracing", c.Tracing, err)
	}
	// A small queue makes a batch no larger than itself.
	c, err = LoadBytes("t.yaml", []byte("listeners: [{address: \"127.0.0.1:8080\"}]\ntracing: {endpoint: \"http://127.0.0.1:4317\", queue_size: 8}\n"), nil)
	if err != nil || c.Tracing.BatchSize != 8 {
		t.Errorf("queue_size 8: batch_size %d, %v", c.Tracing.BatchSize, err)
	}
}

// TestTracingErrors: each bad setting is refused at its line and field,
// all of them in one load.
func TestTracingErrors(t *testing.T) {
	doc := `listeners: [{address: "127.0.0.1:8080"}]
tracing:
  exporter: jaeger
  endpoint: "collector:4317"
  sampling_ratio: 1.5
  propagate_from: everyone
  queue_size: 10
  batch_size: 20
  tls: {cert_file: c.pem}
  headers: {"bad name": x}
`
	_, err := LoadBytes("t.yaml", []byte(doc), nil)
	var es Errors
	if !errors.As(err, &es) {
		t.Fatalf("err %v, want config errors", err)
	}
	got := map[string]int{}
	for _, e := range es {
		got[e.Path] = e.Line
	}
	want := map[string]int{
		"tracing.exporter":       3,
		"tracing.endpoint":       4,
		"tracing.sampling_ratio": 5,
		"tracing.propagate_from": 6,
		"tracing.batch_size":     8,
		"tracing.tls.cert_file":  9,
		"tracing.headers":        10,
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("errors (-want +got):\n%s\n%v", diff, err)
	}
	for _, tc := range []struct{ name, section, path string }{
		{"missing endpoint", "{exporter: otlp-http}", "tracing.endpoint"},
		{"tls with http", "{endpoint: \"http://c:4317\", tls: {ca_file: ca.pem}}", "tracing.tls"},
		{"grpc with a path", "{endpoint: \"http://c:4317/v1/traces\"}", "tracing.endpoint"},
		{"negative ratio", "{endpoint: \"http://c:4317\", sampling_ratio: -0.1}", "tracing.sampling_ratio"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := LoadBytes("t.yaml", []byte("listeners: [{address: \"127.0.0.1:8080\"}]\ntracing: "+tc.section+"\n"), nil)
			var es Errors
			if !errors.As(err, &es) || len(es) != 1 || es[0].Path != tc.path || es[0].Line != 2 {
				t.Errorf("err %v, want one error at %s line 2", err, tc.path)
			}
		})
	}
}
