package telemetry

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/internal/buildinfo"
)

type traceKey struct{}

// traced is an ExemplarFunc reading the trace id a test put in ctx, as
// tracing reads its span context.
func traced(ctx context.Context) (string, bool) {
	id, ok := ctx.Value(traceKey{}).(string)
	return id, ok
}

// get scrapes m's handler with accept, returning the body and its
// Content-Type.
func get(t *testing.T, m *Metrics, accept string) (string, string) {
	t.Helper()
	srv := httptest.NewServer(m.Handler())
	defer srv.Close()
	req, _ := http.NewRequest("GET", srv.URL, nil)
	if accept != "" {
		req.Header.Set("Accept", accept)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return string(b), resp.Header.Get("Content-Type")
}

const openMetrics = "application/openmetrics-text;version=1.0.0"

// TestExemplars: with an ExemplarFunc set, the latency histograms carry
// the trace id of the observation's context in OpenMetrics; without a
// trace id in the context, or without the func, they carry none; the
// text format never does.
func TestExemplars(t *testing.T) {
	const id = "0af7651916cd43dd8448eb211c80319c"
	m := NewMetrics()
	rm := m.Route("r")
	in := m.Introspection("https://idp.example/introspect")
	js := m.JWKSFetch("https://idp.example/jwks")
	ctx := context.WithValue(context.Background(), traceKey{}, id)

	// No func yet: no exemplar.
	rm.ObserveDuration(ctx, 0.003)
	if body, _ := get(t, m, openMetrics); strings.Contains(body, "trace_id") {
		t.Fatalf("an exemplar without an ExemplarFunc:\n%s", body)
	}

	m.SetExemplarFunc(traced)
	rm.ObserveDuration(ctx, 0.02)
	rm.ObserveDuration(context.Background(), 0.7) // untraced: none
	in.Observe(ctx, 0.04, true)
	js.Observe(ctx, 0.3, false)
	body, ct := get(t, m, openMetrics)
	if !strings.HasPrefix(ct, "application/openmetrics-text") {
		t.Fatalf("Content-Type %q, want OpenMetrics", ct)
	}
	for _, want := range []string{
		`gatehouse_request_duration_seconds_bucket{route="r",le="0.025"} 2 # {trace_id="` + id + `"} 0.02`,
		`gatehouse_introspection_duration_seconds_bucket{endpoint="https://idp.example/introspect",result="success",le="0.05"} 1 # {trace_id="` + id + `"} 0.04`,
		`gatehouse_jwks_fetch_duration_seconds_bucket{result="failure",source="https://idp.example/jwks",le="0.5"} 1 # {trace_id="` + id + `"} 0.3`,
	} {
		if !strings.Contains(body, want) {
			t.Errorf("no line\n%s\nin\n%s", want, grepLines(body, "_bucket"))
		}
	}
	if n := strings.Count(body, "trace_id"); n != 3 {
		t.Errorf("%d exemplars, want 3 (none for the untraced observation nor the one before the func)", n)
	}
	text, ct := get(t, m, "")
	if !strings.HasPrefix(ct, "text/plain") || strings.Contains(text, "trace_id") {
		t.Errorf("the text format (%s) carries exemplars", ct)
	}

	m.SetExemplarFunc(nil)
	rm.ObserveDuration(ctx, 8)
	body, _ = get(t, m, openMetrics)
	if strings.Contains(body, `# {trace_id="`+id+`"} 8`) {
		t.Error("an exemplar after SetExemplarFunc(nil)")
	}
}

// TestObserveWithoutExemplarNoAllocs: without tracing, observing a
// request's duration through ObserveDuration allocates nothing.
func TestObserveWithoutExemplarNoAllocs(t *testing.T) {
	m := NewMetrics()
	rm := m.Route("r")
	ctx := context.Background()
	rm.ObserveDuration(ctx, 1)
	if a := testing.AllocsPerRun(100, func() { rm.ObserveDuration(ctx, 0.5) }); a != 0 {
		t.Errorf("ObserveDuration: %v allocations", a)
	}
	m.SetExemplarFunc(func(context.Context) (string, bool) { return "", false })
	if a := testing.AllocsPerRun(100, func() { rm.ObserveDuration(ctx, 0.5) }); a != 0 {
		t.Errorf("ObserveDuration with no trace id: %v allocations", a)
	}
}

func grepLines(s, sub string) string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if strings.Contains(l, sub) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}

// TestStartsAtZero: the metrics whose label values are known start with
// those series at zero, before any event.
func TestStartsAtZero(t *testing.T) {
	m := NewMetrics()
	m.Route("orders")
	m.Conns("main")
	m.AuthServerClient("svc", []string{"client_credentials"})
	m.JWKSFetch("https://idp.example")
	body, _ := get(t, m, "")
	for _, want := range []string{
		`gatehouse_upstream_errors_total{kind="connect",route="orders"} 0`,
		`gatehouse_upstream_errors_total{kind="other",route="orders"} 0`,
		`gatehouse_connections_refused_total{listener="main",reason="max_connections_per_ip"} 0`,
		`gatehouse_config_reloads_total{result="failure"} 0`,
		`gatehouse_authserver_tokens_issued_total{client="svc",grant="client_credentials"} 0`,
		`gatehouse_authserver_client_auth_failures_total{reason="unknown_client"} 0`,
		`gatehouse_authserver_token_exchanges_total{outcome="invalid_grant",subject_token_type="saml2"} 0`,
		`gatehouse_authserver_introspections_total{result="inactive"} 0`,
		`gatehouse_authserver_key_rotations_total{trigger="schedule"} 0`,
		`gatehouse_sts_requests_total{operation="cancel",outcome="FailedAuthentication"} 0`,
		`gatehouse_sts_requests_total{operation="validate",outcome="invalid"} 0`,
		`gatehouse_jwks_fetches_total{result="failure",source="https://idp.example"} 0`,
		`gatehouse_jwks_fetch_duration_seconds_count{result="success",source="https://idp.example"} 0`,
	} {
		if !strings.Contains(body, want+"\n") {
			t.Errorf("missing %s", want)
		}
	}
	// The route of no match has no upstream, nor the token services.
	m.TokenService(RouteAuthServer)
	body, _ = get(t, m, "")
	if regexp.MustCompile(`gatehouse_upstream_errors_total\{kind="\w+",route="(|authserver)"\}`).MatchString(body) {
		t.Error("upstream error series for a route without an upstream")
	}
}

// TestUpstreamErrors counts by route and kind, an unknown kind as other,
// and keeps the counts of a route across Route calls (reloads).
func TestUpstreamErrors(t *testing.T) {
	m := NewMetrics()
	m.Route("a")
	m.UpstreamError("a", "connect")
	m.UpstreamError("a", "connect")
	m.Route("a") // a reload
	m.UpstreamError("a", "timeout")
	m.UpstreamError("b", "mystery")
	body, _ := get(t, m, "")
	for _, want := range []string{
		`gatehouse_upstream_errors_total{kind="connect",route="a"} 2`,
		`gatehouse_upstream_errors_total{kind="timeout",route="a"} 1`,
		`gatehouse_upstream_errors_total{kind="reset",route="a"} 0`,
		`gatehouse_upstream_errors_total{kind="other",route="b"} 1`,
	} {
		if !strings.Contains(body, want+"\n") {
			t.Errorf("missing %s in\n%s", want, grepLines(body, "upstream_errors"))
		}
	}
}

// TestBuildInfo: one series, 1, labelled as buildinfo reports the build.
func TestBuildInfo(t *testing.T) {
	m := NewMetrics()
	bi := buildinfo.Get()
	body, _ := get(t, m, "")
	re := regexp.MustCompile(`(?m)^gatehouse_build_info\{goversion="([^"]*)",revision="([^"]*)",version="([^"]*)"\} 1$`)
	got := re.FindAllStringSubmatch(body, -1)
	if len(got) != 1 {
		t.Fatalf("gatehouse_build_info:\n%s", grepLines(body, "build_info"))
	}
	if got[0][1] != bi.GoVersion || got[0][3] != bi.Version || bi.Version == "" {
		t.Errorf("build info %q, want Go %s, version %s", got[0][0], bi.GoVersion, bi.Version)
	}
}

// BenchmarkObserveDuration: a request's latency observation without
// tracing (the default), with tracing but no trace id in the context,
// and with one (an exemplar).
//
//	go test -run XXX -bench ObserveDuration -benchtime 200000x ./internal/telemetry/
func BenchmarkObserveDuration(b *testing.B) {
	ctx := context.WithValue(context.Background(), traceKey{}, "0af7651916cd43dd8448eb211c80319c")
	for _, c := range []struct {
		name string
		f    ExemplarFunc
		ctx  context.Context
	}{
		{"off", nil, ctx},
		{"no_trace", traced, context.Background()},
		{"exemplar", traced, ctx},
	} {
		b.Run(c.name, func(b *testing.B) {
			m := NewMetrics()
			m.SetExemplarFunc(c.f)
			rm := m.Route("r")
			b.ReportAllocs()
			for b.Loop() {
				rm.ObserveDuration(c.ctx, 0.004)
			}
		})
	}
}

// TestExemplarEveryBucketSecond: a bucket of a route's latency takes one
// exemplar a second; another bucket has its own.
func TestExemplarEveryBucketSecond(t *testing.T) {
	m := NewMetrics()
	clock := time.Unix(1_800_000_000, 0)
	m.now = func() time.Time { return clock }
	m.SetExemplarFunc(traced)
	rm := m.Route("r")
	with := func(id string) context.Context { return context.WithValue(context.Background(), traceKey{}, id) }
	rm.ObserveDuration(with("aaaa"), 0.02)
	rm.ObserveDuration(with("bbbb"), 0.021) // same bucket, same second: kept aaaa
	rm.ObserveDuration(with("cccc"), 3)     // another bucket
	body, _ := get(t, m, openMetrics)
	for id, want := range map[string]bool{"aaaa": true, "bbbb": false, "cccc": true} {
		if got := strings.Contains(body, `trace_id="`+id+`"`); got != want {
			t.Errorf("exemplar %s present %v, want %v", id, got, want)
		}
	}
	clock = clock.Add(time.Second)
	rm.ObserveDuration(with("dddd"), 0.022)
	body, _ = get(t, m, openMetrics)
	if !strings.Contains(body, `trace_id="dddd"`) || strings.Contains(body, `trace_id="aaaa"`) {
		t.Errorf("a second later the bucket did not take the new exemplar:\n%s", grepLines(body, "trace_id"))
	}
}
