package config

import (
	"net/url"
	"strings"
)

// Tracing is OpenTelemetry tracing (internal/tracing): spans for every
// request, exported over OTLP. Absent: no tracing, and nothing of it is
// paid on the request path.
//
//	tracing:
//	  exporter: otlp-grpc          # or otlp-http
//	  endpoint: http://collector:4317
//	  sampling_ratio: 0.1
//	  propagate_from: trusted
type Tracing struct {
	// Exporter is how spans leave: otlp-grpc (default) or otlp-http
	// (protobuf over HTTP POST).
	Exporter string `yaml:"exporter"`
	// Endpoint is the collector's URL: http://host:4317 for otlp-grpc,
	// http://host:4318 for otlp-http (the path defaults to /v1/traces).
	// The scheme decides plain text (http) or TLS (https). Required.
	Endpoint string `yaml:"endpoint"`
	// TLS, with an https endpoint, sets the CA the collector's
	// certificate is verified against and a client certificate. Nil: the
	// system roots, no client certificate.
	TLS *TracingTLS `yaml:"tls"`
	// Headers are sent with every export (a collector's API key, say):
	// each value is a secret, {env: NAME} or {file: PATH}.
	Headers map[string]Secret `yaml:"headers"`
	// ServiceName is the service.name resource attribute. Default
	// "gatehouse".
	ServiceName string `yaml:"service_name"`
	// SamplingRatio is the share of new traces recorded, 0 to 1 (default
	// 1). Parent based: a request that carries an accepted traceparent
	// follows its parent's sampled flag instead.
	SamplingRatio *float64 `yaml:"sampling_ratio"`
	// PropagateFrom says whose traceparent and tracestate a request
	// continues: trusted (default: only the trusted proxies', client_ip
	// and trusted_proxies), all, or none. From any other peer they are
	// removed and the request starts a new trace. The upstream always
	// gets the gateway's own traceparent.
	PropagateFrom string `yaml:"propagate_from"`
	// QueueSize bounds the spans waiting for export; when the collector
	// is slow or down, spans beyond it are dropped, never waited for.
	// Default 2048.
	QueueSize int `yaml:"queue_size"`
	// BatchSize is the most spans sent in one export. Default 512, at
	// most queue_size.
	BatchSize int `yaml:"batch_size"`
	// BatchTimeout is the longest a span waits before its batch is sent.
	// Default 5s.
	BatchTimeout Duration `yaml:"batch_timeout"`
	// ExportTimeout bounds one export, retries included. Default 10s.
	ExportTimeout Duration `yaml:"export_timeout"`
}

// TracingTLS is the TLS of the connection to the collector.
type TracingTLS struct {
	// CAFile holds the PEM CA certificates the collector's certificate is
	// verified against. Empty: the system roots.
	CAFile string `yaml:"ca_file"`
	// CertFile and KeyFile are a PEM client certificate and its key, for
	// a collector that asks for one. Both or neither.
	CertFile string `yaml:"cert_file"`
	KeyFile  string `yaml:"key_file"`
	// ServerName overrides the name the certificate is checked for.
	ServerName string `yaml:"server_name"`
}

// The tracing defaults.
const (
	DefaultTracingQueueSize     = 2048
	DefaultTracingBatchSize     = 512
	DefaultTracingBatchTimeout  = 5_000_000_000  // 5s
	DefaultTracingExportTimeout = 10_000_000_000 // 10s
)

func applyTracingDefaults(t *Tracing) {
	if t == nil {
		return
	}
	setDefault(&t.Exporter, "otlp-grpc")
	setDefault(&t.ServiceName, "gatehouse")
	setDefault(&t.PropagateFrom, "trusted")
	setDefault(&t.QueueSize, DefaultTracingQueueSize)
	setDefault(&t.BatchSize, min(DefaultTracingBatchSize, t.QueueSize))
	setDefault(&t.BatchTimeout, Duration(DefaultTracingBatchTimeout))
	setDefault(&t.ExportTimeout, Duration(DefaultTracingExportTimeout))
	if t.SamplingRatio == nil {
		one := 1.0
		t.SamplingRatio = &one
	}
}

// validateTracing checks the tracing section; files are read when the
// gateway builds the exporter.
func (c *Config) validateTracing(v *validator) {
	t := c.Tracing
	if t == nil {
		return
	}
	switch t.Exporter {
	case "otlp-grpc", "otlp-http":
	default:
		v.add("tracing.exporter", "unknown exporter %q (want otlp-grpc or otlp-http)", t.Exporter)
	}
	if t.Endpoint == "" {
		v.add("tracing.endpoint", "required field is missing (the collector's URL, e.g. http://localhost:4317)")
	} else if u, err := url.Parse(t.Endpoint); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		v.add("tracing.endpoint", "%q is not an http:// or https:// URL with a host", t.Endpoint)
	} else {
		if u.Scheme == "http" && t.TLS != nil {
			v.add("tracing.tls", "is set but the endpoint %q is plain http: use https://", t.Endpoint)
		}
		if t.Exporter == "otlp-grpc" && strings.Trim(u.Path, "/") != "" {
			v.add("tracing.endpoint", "an otlp-grpc endpoint has no path, got %q", u.Path)
		}
	}
	if r := t.SamplingRatio; r != nil && (*r < 0 || *r > 1 || *r != *r) {
		v.add("tracing.sampling_ratio", "must be between 0 and 1, got %v", *r)
	}
	switch t.PropagateFrom {
	case "trusted", "all", "none":
	default:
		v.add("tracing.propagate_from", "unknown value %q (want trusted, all or none)", t.PropagateFrom)
	}
	if t.QueueSize < 1 || t.QueueSize > 1_000_000 {
		v.add("tracing.queue_size", "must be between 1 and 1000000, got %d", t.QueueSize)
	}
	if t.BatchSize < 1 || t.BatchSize > t.QueueSize {
		v.add("tracing.batch_size", "must be between 1 and queue_size (%d), got %d", t.QueueSize, t.BatchSize)
	}
	if tl := t.TLS; tl != nil && (tl.CertFile == "") != (tl.KeyFile == "") {
		v.add("tracing.tls.cert_file", "cert_file and key_file go together")
	}
	for k := range t.Headers {
		if k == "" || strings.ContainsAny(k, " \t\r\n:") {
			v.add("tracing.headers", "invalid header name %q", k)
		}
	}
}
