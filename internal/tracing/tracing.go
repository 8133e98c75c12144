// Package tracing is Gatehouse's OpenTelemetry tracing: a tracer provider
// exporting over OTLP (gRPC or HTTP) through a bounded batch queue, the
// W3C trace context (traceparent, tracestate) taken from the peers the
// config trusts and given to the upstream, and the few span helpers the
// gateway uses.
//
// A nil *Tracer is tracing off: the gateway checks for nil once per
// request and does nothing more, so tracing costs nothing when it is not
// configured.
//
// The span tree of a request:
//
//	SERVER   "GET route-name"         (the request; renamed once routed)
//	├ INTERNAL "policy NAME"           (one per policy the chain ran)
//	│  └ INTERNAL "store allow" ...    (the shared store's round trips)
//	├ CLIENT   "upstream"              (the proxied call, when allowed)
//	├ INTERNAL "authorization_server"  (the embedded authorization server)
//	└ INTERNAL "sts"                   (the embedded STS)
package tracing

import (
	"cmp"
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"time"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracegrpc"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"
	"google.golang.org/grpc/credentials"

	"github.com/gatehouse/gatehouse/internal/config"
)

// The attribute keys the gateway's spans carry, besides the OpenTelemetry
// semantic conventions' HTTP ones.
const (
	AttrRoute     = attribute.Key("gatehouse.route")
	AttrRequestID = attribute.Key("gatehouse.request_id")
	AttrDecision  = attribute.Key("gatehouse.decision")
	AttrCode      = attribute.Key("gatehouse.code")
	AttrPolicy    = attribute.Key("gatehouse.policy")
	AttrVerdict   = attribute.Key("gatehouse.verdict")
	AttrStoreOp   = attribute.Key("gatehouse.store.operation")

	attrMethod     = attribute.Key("http.request.method")
	attrStatus     = attribute.Key("http.response.status_code")
	attrPath       = attribute.Key("url.path")
	attrScheme     = attribute.Key("url.scheme")
	attrClientAddr = attribute.Key("client.address")
	attrProto      = attribute.Key("network.protocol.version")
	attrServerAddr = attribute.Key("server.address")
	attrURLFull    = attribute.Key("url.full")
	attrErrorType  = attribute.Key("error.type")
)

// propagator reads and writes the W3C trace context: traceparent and
// tracestate, nothing else (no baggage: the gateway neither reads nor
// vouches for it).
var propagator = propagation.TraceContext{}

// from is whose trace context a request continues.
type from uint8

const (
	fromTrusted from = iota
	fromAll
	fromNone
)

// Tracer makes the gateway's spans and exports them. Build it with New;
// nil is tracing off.
type Tracer struct {
	provider *sdktrace.TracerProvider
	tracer   trace.Tracer
	from     from
}

// Options are what New needs besides the config.
type Options struct {
	// BaseDir resolves relative certificate paths.
	BaseDir string
	// Logger receives export failures, at most one line per
	// ErrorInterval. Nil: slog.Default().
	Logger *slog.Logger
}

// New builds the tracer c.Tracing describes, or returns nil (tracing off)
// when the section is absent. It opens no connection: the exporter
// connects on its first export, so a collector that is down delays
// nothing here. A file that cannot be read is a config error naming its
// field.
func New(c *config.Config, opt Options) (*Tracer, error) {
	tc := c.Tracing
	if tc == nil {
		return nil, nil
	}
	exp, err := newExporter(c, opt.BaseDir)
	if err != nil {
		return nil, err
	}
	ratio := 1.0
	if tc.SamplingRatio != nil {
		ratio = *tc.SamplingRatio
	}
	res := resource.NewSchemaless(attribute.String("service.name", tc.ServiceName))
	bsp := sdktrace.NewBatchSpanProcessor(exp,
		// Never WithBlocking: a full queue drops spans rather than
		// holding a request.
		sdktrace.WithMaxQueueSize(tc.QueueSize),
		sdktrace.WithMaxExportBatchSize(tc.BatchSize),
		sdktrace.WithBatchTimeout(tc.BatchTimeout.Std()),
		sdktrace.WithExportTimeout(tc.ExportTimeout.Std()),
	)
	tp := sdktrace.NewTracerProvider(
		sdktrace.WithSpanProcessor(bsp),
		sdktrace.WithResource(res),
		sdktrace.WithSampler(sdktrace.ParentBased(sdktrace.TraceIDRatioBased(ratio))),
	)
	installErrorHandler(opt.Logger)
	t := &Tracer{provider: tp, tracer: tp.Tracer("github.com/gatehouse/gatehouse")}
	switch tc.PropagateFrom {
	case "all":
		t.from = fromAll
	case "none":
		t.from = fromNone
	}
	return t, nil
}

func newExporter(c *config.Config, baseDir string) (sdktrace.SpanExporter, error) {
	tc := c.Tracing
	u, err := url.Parse(tc.Endpoint)
	if err != nil {
		return nil, c.Errorf("tracing.endpoint", "%v", err)
	}
	headers := make(map[string]string, len(tc.Headers))
	for k, v := range tc.Headers {
		headers[k] = v.Value()
	}
	var tlsCfg *tls.Config
	if u.Scheme == "https" {
		if tlsCfg, err = clientTLS(c, baseDir); err != nil {
			return nil, err
		}
	}
	timeout := tc.ExportTimeout.Std()
	ctx := context.Background()
	switch tc.Exporter {
	case "otlp-http":
		opts := []otlptracehttp.Option{
			otlptracehttp.WithEndpoint(u.Host),
			otlptracehttp.WithURLPath(cmpPath(u.Path)),
			otlptracehttp.WithHeaders(headers),
			otlptracehttp.WithTimeout(timeout),
			otlptracehttp.WithRetry(otlptracehttp.RetryConfig{Enabled: true, InitialInterval: time.Second, MaxInterval: 5 * time.Second, MaxElapsedTime: timeout}),
		}
		if tlsCfg == nil {
			opts = append(opts, otlptracehttp.WithInsecure())
		} else {
			opts = append(opts, otlptracehttp.WithTLSClientConfig(tlsCfg))
		}
		return otlptracehttp.New(ctx, opts...)
	default:
		opts := []otlptracegrpc.Option{
			otlptracegrpc.WithEndpoint(u.Host),
			otlptracegrpc.WithHeaders(headers),
			otlptracegrpc.WithTimeout(timeout),
			otlptracegrpc.WithRetry(otlptracegrpc.RetryConfig{Enabled: true, InitialInterval: time.Second, MaxInterval: 5 * time.Second, MaxElapsedTime: timeout}),
		}
		if tlsCfg == nil {
			opts = append(opts, otlptracegrpc.WithInsecure())
		} else {
			opts = append(opts, otlptracegrpc.WithTLSCredentials(credentials.NewTLS(tlsCfg)))
		}
		return otlptracegrpc.New(ctx, opts...)
	}
}

// cmpPath is the OTLP/HTTP path: the endpoint's, or the standard one.
func cmpPath(p string) string {
	if strings.Trim(p, "/") == "" {
		return "/v1/traces"
	}
	return p
}

func clientTLS(c *config.Config, baseDir string) (*tls.Config, error) {
	cfg := &tls.Config{MinVersion: tls.VersionTLS12}
	t := c.Tracing.TLS
	if t == nil {
		return cfg, nil
	}
	cfg.ServerName = t.ServerName
	if t.CAFile != "" {
		pemBytes, err := os.ReadFile(resolve(baseDir, t.CAFile))
		if err != nil {
			return nil, c.Errorf("tracing.tls.ca_file", "%v", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pemBytes) {
			return nil, c.Errorf("tracing.tls.ca_file", "no PEM certificate found")
		}
		cfg.RootCAs = pool
	}
	if t.CertFile != "" {
		cert, err := tls.LoadX509KeyPair(resolve(baseDir, t.CertFile), resolve(baseDir, t.KeyFile))
		if err != nil {
			return nil, c.Errorf("tracing.tls.cert_file", "loading key pair: %v", err)
		}
		cfg.Certificates = []tls.Certificate{cert}
	}
	return cfg, nil
}

func resolve(baseDir, p string) string {
	if p == "" || filepath.IsAbs(p) || baseDir == "" {
		return p
	}
	return filepath.Join(baseDir, p)
}

// ErrorInterval is the least time between two log lines about failed
// exports: a collector that is down is told once in a while, not once a
// batch.
const ErrorInterval = time.Minute

// errorLog is where the OpenTelemetry SDK's errors go (its handler is
// process-wide). The last New's logger wins.
var (
	errorLog  atomic.Pointer[slog.Logger]
	lastError atomic.Int64 // unix nanoseconds of the last line
	installed atomic.Bool
)

func installErrorHandler(log *slog.Logger) {
	if log == nil {
		log = slog.Default()
	}
	errorLog.Store(log)
	if installed.Swap(true) {
		return
	}
	otel.SetErrorHandler(otel.ErrorHandlerFunc(func(err error) {
		now := time.Now().UnixNano()
		last := lastError.Load()
		if now-last < int64(ErrorInterval) || !lastError.CompareAndSwap(last, now) {
			return
		}
		errorLog.Load().Warn("tracing: exporting spans failed; spans are dropped while the collector is unreachable", "err", err)
	}))
}

// Shutdown flushes the spans still queued and stops the exporter, waiting
// at most until ctx ends. Nil-safe.
func (t *Tracer) Shutdown(ctx context.Context) error {
	if t == nil {
		return nil
	}
	return t.provider.Shutdown(ctx)
}

// ForceFlush exports the spans queued now, waiting at most until ctx ends
// (tests; the gateway flushes at Shutdown). Nil-safe.
func (t *Tracer) ForceFlush(ctx context.Context) error {
	if t == nil {
		return nil
	}
	return t.provider.ForceFlush(ctx)
}

// StartServer starts the server span of r and returns the context
// carrying it. r's traceparent and tracestate are its parent when the
// config takes them from this peer (trustedPeer: the peer is one of the
// trusted proxies); they are removed from r.Header in every case, so that
// the upstream only ever gets the gateway's own (Inject), never a
// client's as it came.
func (t *Tracer) StartServer(r *http.Request, trustedPeer bool, clientIP, requestID string) (context.Context, trace.Span) {
	ctx := r.Context()
	h := r.Header
	if t.from == fromAll || (t.from == fromTrusted && trustedPeer) {
		ctx = propagator.Extract(ctx, propagation.HeaderCarrier(h))
	}
	delete(h, "Traceparent")
	delete(h, "Tracestate")
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	return t.tracer.Start(ctx, r.Method, trace.WithSpanKind(trace.SpanKindServer),
		trace.WithAttributes(
			attrMethod.String(r.Method),
			attrPath.String(r.URL.Path),
			attrScheme.String(scheme),
			attrProto.String(protoVersion(r)),
			attrClientAddr.String(clientIP),
			AttrRequestID.String(requestID),
		))
}

func protoVersion(r *http.Request) string {
	switch r.ProtoMajor {
	case 2:
		return "2"
	case 3:
		return "3"
	}
	if r.ProtoMinor == 0 {
		return "1.0"
	}
	return "1.1"
}

// Routed names the server span after what answers the request: "GET
// route" (or "GET authorization_server", "GET sts").
func Routed(span trace.Span, method, route string) {
	if !span.IsRecording() {
		return // not sampled: nothing of it is kept
	}
	span.SetName(method + " " + route)
	span.SetAttributes(AttrRoute.String(route))
}

// EndServer ends the server span with the response: its status (an error
// status from 500 up, as the semantic conventions have it for servers)
// and the gateway's decision.
func EndServer(span trace.Span, status int, decision, code, policy string) {
	if !span.IsRecording() {
		span.End()
		return
	}
	attrs := [...]attribute.KeyValue{
		attrStatus.Int(status),
		AttrDecision.String(decision),
		AttrCode.String(code),
		AttrPolicy.String(policy),
	}
	n := len(attrs)
	if code == "" {
		n = 2
	}
	span.SetAttributes(attrs[:n]...)
	if status >= 500 {
		span.SetStatus(codes.Error, code)
		span.SetAttributes(attrErrorType.String(cmp.Or(code, fmt.Sprint(status))))
	}
	span.End()
}

// Start starts an internal span under ctx's (a policy, a token service).
func (t *Tracer) Start(ctx context.Context, name string) (context.Context, trace.Span) {
	return t.tracer.Start(ctx, name)
}

// EndPolicy ends a policy's span with its verdict: "allow", or "deny"
// with the denial's code and status (an error status: the request stops
// here), or "error".
func EndPolicy(span trace.Span, name, verdict, code string, status int) {
	if !span.IsRecording() {
		span.End()
		return
	}
	span.SetAttributes(AttrPolicy.String(name), AttrVerdict.String(verdict))
	switch verdict {
	case "deny":
		span.SetAttributes(AttrCode.String(code), attrStatus.Int(status))
		span.SetStatus(codes.Error, code)
	case "error":
		span.SetAttributes(AttrCode.String(code))
		span.SetStatus(codes.Error, code)
	}
	span.End()
}

// Target is an upstream as its spans describe it, made once per route
// (NewTarget) rather than per request.
type Target struct {
	attrs []attribute.KeyValue
}

// NewTarget describes the upstream at the URL target.
func NewTarget(target string) Target {
	if u, err := url.Parse(target); err == nil {
		return Target{attrs: []attribute.KeyValue{attrServerAddr.String(u.Hostname()), attrURLFull.String(u.Redacted())}}
	}
	return Target{}
}

// StartUpstream starts the client span of the call to the upstream at
// target, and writes its trace context into h (the request going there),
// replacing any.
func (t *Tracer) StartUpstream(ctx context.Context, method string, target Target, h http.Header) (context.Context, trace.Span) {
	ctx, span := t.tracer.Start(ctx, "upstream", trace.WithSpanKind(trace.SpanKindClient),
		trace.WithAttributes(target.attrs...), trace.WithAttributes(attrMethod.String(method)))
	propagator.Inject(ctx, propagation.HeaderCarrier(h))
	return ctx, span
}

// EndUpstream ends the upstream span: the upstream's status, or the
// failure's code when there was no usable response.
func EndUpstream(span trace.Span, status int, failure string, err error) {
	if !span.IsRecording() {
		span.End()
		return
	}
	if status > 0 {
		span.SetAttributes(attrStatus.Int(status))
	}
	if failure != "" {
		span.SetAttributes(attrErrorType.String(failure))
		span.SetStatus(codes.Error, failure)
		if err != nil {
			span.RecordError(err)
		}
	} else if status >= 500 {
		span.SetStatus(codes.Error, "")
	}
	span.End()
}

// EndService ends the span of a token service's request with its status.
func EndService(span trace.Span, status int) {
	if !span.IsRecording() {
		span.End()
		return
	}
	span.SetAttributes(attrStatus.Int(status))
	if status >= 500 {
		span.SetStatus(codes.Error, "")
	}
	span.End()
}

// StoreSpan starts a span for one operation on the shared store under
// ctx's span, and returns the function that ends it with the operation's
// error. It is the store's trace hook (store.HealthOptions.Trace).
func (t *Tracer) StoreSpan(ctx context.Context, op string) (context.Context, func(error)) {
	if !trace.SpanFromContext(ctx).SpanContext().IsValid() {
		// A store call outside any request (a subscription, a probe):
		// not worth a trace of its own.
		return ctx, func(error) {}
	}
	ctx, span := t.tracer.Start(ctx, "store "+op, trace.WithSpanKind(trace.SpanKindClient), trace.WithAttributes(AttrStoreOp.String(op)))
	return ctx, func(err error) {
		if err != nil {
			span.SetStatus(codes.Error, err.Error())
		}
		span.End()
	}
}

// IDs returns the trace and span ids of span in hex, or "" twice when it
// has none.
func IDs(span trace.Span) (traceID, spanID string) {
	sc := span.SpanContext()
	if !sc.IsValid() {
		return "", ""
	}
	return sc.TraceID().String(), sc.SpanID().String()
}

// SampledTraceID returns the trace id of the span in ctx when that span is
// sampled (exported), for the latency histograms' exemplars
// (telemetry.ExemplarFunc): an exemplar must lead to a trace that exists.
func SampledTraceID(ctx context.Context) (string, bool) {
	sc := trace.SpanContextFromContext(ctx)
	if !sc.IsValid() || !sc.IsSampled() {
		return "", false
	}
	return sc.TraceID().String(), true
}
