package gateway

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	coltracepb "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	commonpb "go.opentelemetry.io/proto/otlp/common/v1"
	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"
	"google.golang.org/grpc"
	"google.golang.org/protobuf/proto"

	"github.com/gatehouse/gatehouse/internal/audit"
)

// collector is a real OTLP trace receiver: it keeps every span exported to
// it, over gRPC (the TraceService) or HTTP (protobuf POST /v1/traces).
type collector struct {
	coltracepb.UnimplementedTraceServiceServer
	mu    sync.Mutex
	spans []*tracepb.Span
	// service is the service.name of the last export.
	service string
}

func (c *collector) Export(_ context.Context, req *coltracepb.ExportTraceServiceRequest) (*coltracepb.ExportTraceServiceResponse, error) {
	c.add(req)
	return &coltracepb.ExportTraceServiceResponse{}, nil
}

func (c *collector) add(req *coltracepb.ExportTraceServiceRequest) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, rs := range req.GetResourceSpans() {
		for _, a := range rs.GetResource().GetAttributes() {
			if a.GetKey() == "service.name" {
				c.service = a.GetValue().GetStringValue()
			}
		}
		for _, ss := range rs.GetScopeSpans() {
			c.spans = append(c.spans, ss.GetSpans()...)
		}
	}
}

// grpcCollector serves c over gRPC on 127.0.0.1 and returns its endpoint.
func grpcCollector(t *testing.T, c *collector) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := grpc.NewServer()
	coltracepb.RegisterTraceServiceServer(srv, c)
	go srv.Serve(ln)
	t.Cleanup(srv.Stop)
	return "http://" + ln.Addr().String()
}

// httpCollector serves c over OTLP/HTTP and returns its endpoint.
func httpCollector(t *testing.T, c *collector) string {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/v1/traces" || r.Header.Get("Content-Type") != "application/x-protobuf" {
			http.Error(w, "want a protobuf POST to /v1/traces", http.StatusBadRequest)
			return
		}
		b, err := io.ReadAll(r.Body)
		if err != nil {
			return
		}
		var req coltracepb.ExportTraceServiceRequest
		if err := proto.Unmarshal(b, &req); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		c.add(&req)
		out, _ := proto.Marshal(&coltracepb.ExportTraceServiceResponse{})
		w.Header().Set("Content-Type", "application/x-protobuf")
		w.Write(out)
	}))
	t.Cleanup(srv.Close)
	return srv.URL
}

// trace waits (30 s at most) until the server span of the trace traceID
// has arrived, with at least n spans in all, and returns them.
func (c *collector) trace(t *testing.T, traceID string, n int) []*tracepb.Span {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		c.mu.Lock()
		var got []*tracepb.Span
		server := false
		for _, s := range c.spans {
			if hex.EncodeToString(s.GetTraceId()) == traceID {
				got = append(got, s)
				server = server || s.GetKind() == tracepb.Span_SPAN_KIND_SERVER
			}
		}
		c.mu.Unlock()
		// The server span ends last, and spans are exported in the order
		// they end: once it is here, the whole trace is.
		if server && len(got) >= n {
			return got
		}
		if time.Now().After(deadline) {
			t.Fatalf("trace %s: %d spans arrived, want %d", traceID, len(got), n)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// node is a span as the tests compare it: its name, kind, status and the
// attributes asked for, and its children.
type node struct {
	Name     string
	Kind     string
	Status   string
	Attrs    map[string]string
	Children []node
}

// tree builds the span tree under root (the span without a parent among
// spans), keeping the attributes named in keep.
func tree(t *testing.T, spans []*tracepb.Span, keep ...string) node {
	t.Helper()
	byParent := map[string][]*tracepb.Span{}
	ids := map[string]bool{}
	for _, s := range spans {
		ids[hex.EncodeToString(s.GetSpanId())] = true
	}
	var roots []*tracepb.Span
	for _, s := range spans {
		p := hex.EncodeToString(s.GetParentSpanId())
		if !ids[p] {
			roots = append(roots, s)
			continue
		}
		byParent[p] = append(byParent[p], s)
	}
	if len(roots) != 1 {
		t.Fatalf("%d root spans, want 1", len(roots))
	}
	var build func(s *tracepb.Span) node
	build = func(s *tracepb.Span) node {
		n := node{Name: s.GetName(), Kind: strings.TrimPrefix(s.GetKind().String(), "SPAN_KIND_"),
			Status: strings.TrimPrefix(s.GetStatus().GetCode().String(), "STATUS_CODE_"), Attrs: map[string]string{}}
		for _, a := range s.GetAttributes() {
			for _, k := range keep {
				if a.GetKey() == k {
					switch v := a.GetValue().GetValue().(type) {
					case *commonpb.AnyValue_StringValue:
						n.Attrs[k] = v.StringValue
					case *commonpb.AnyValue_IntValue:
						n.Attrs[k] = fmt.Sprint(v.IntValue)
					}
				}
			}
		}
		kids := byParent[hex.EncodeToString(s.GetSpanId())]
		// Children in the order they started.
		for i := range kids {
			for j := i + 1; j < len(kids); j++ {
				if kids[j].GetStartTimeUnixNano() < kids[i].GetStartTimeUnixNano() {
					kids[i], kids[j] = kids[j], kids[i]
				}
			}
		}
		for _, k := range kids {
			n.Children = append(n.Children, build(k))
		}
		return n
	}
	return build(roots[0])
}

// accessLine returns the access log line of the request id.
func accessLine(t *testing.T, g *testGateway, requestID string) map[string]any {
	t.Helper()
	for line := range strings.SplitSeq(g.access.String(), "\n") {
		if !strings.Contains(line, requestID) {
			continue
		}
		var m map[string]any
		if err := json.Unmarshal([]byte(line), &m); err != nil {
			t.Fatal(err)
		}
		return m
	}
	t.Fatalf("no access log line for %s", requestID)
	return nil
}

const tracedConfig = `
listeners:
  - name: main
    address: 127.0.0.1:0
admin:
  address: 127.0.0.1:0
trusted_proxies: TRUSTED
tracing:
  exporter: ${EXPORTER}
  endpoint: ${COLLECTOR}
  batch_timeout: 50ms
  service_name: gatehouse-test
  propagate_from: ${FROM}
routes:
  - name: allowed
    match: {path: /ok}
    upstream: {url: "${UP}"}
    policies:
      - ipfilter: {allow: [127.0.0.0/8, "::1"]}
      - rate_limit: {key: ip, rate: 1000, per: 1s}
  - name: denied
    match: {path: /deny}
    upstream: {url: "${UP}"}
    policies:
      - headers: {request: {set: {X-Seen: "yes"}}}
      - ipfilter: {deny: [127.0.0.0/8, "::1"]}
`

// TestTracingSpanTree sends an allowed and a denied request through a
// gateway exporting to a real OTLP receiver (gRPC and HTTP), and checks
// the span tree of each, the trace context the upstream got, and the
// trace ids in the access log and the audit log.
func TestTracingSpanTree(t *testing.T) {
	for _, exporter := range []string{"otlp-grpc", "otlp-http"} {
		t.Run(exporter, func(t *testing.T) {
			up := echoUpstream(t)
			c := &collector{}
			endpoint := grpcCollector(t, c)
			if exporter == "otlp-http" {
				endpoint = httpCollector(t, c)
			}
			g := startGateway(t, tracedConfig, map[string]string{"UP": up.URL, "TRUSTED": "[]", "EXPORTER": exporter, "COLLECTOR": endpoint, "FROM": "trusted"})

			// Allowed.
			resp, body := do(t, nil, newReq(t, "GET", g.base+"/ok", nil))
			if resp.StatusCode != 200 {
				t.Fatalf("allowed: status %d %s", resp.StatusCode, body)
			}
			reqID := resp.Header.Get("X-Request-Id")
			line := accessLine(t, g, reqID)
			traceID, _ := line["trace_id"].(string)
			spanID, _ := line["span_id"].(string)
			if len(traceID) != 32 || len(spanID) != 16 {
				t.Fatalf("access log trace_id %q span_id %q", traceID, spanID)
			}
			spans := c.trace(t, traceID, 5)
			keep := []string{"gatehouse.verdict", "gatehouse.code", "http.response.status_code", "gatehouse.route", "gatehouse.store.operation"}
			want := node{Name: "GET allowed", Kind: "SERVER", Status: "UNSET", Attrs: map[string]string{"gatehouse.route": "allowed", "http.response.status_code": "200"}, Children: []node{
				{Name: "policy ipfilter", Kind: "INTERNAL", Status: "UNSET", Attrs: map[string]string{"gatehouse.verdict": "allow"}},
				{Name: "policy rate_limit", Kind: "INTERNAL", Status: "UNSET", Attrs: map[string]string{"gatehouse.verdict": "allow"}, Children: []node{
					{Name: "store allow", Kind: "CLIENT", Status: "UNSET", Attrs: map[string]string{"gatehouse.store.operation": "allow"}},
				}},
				{Name: "upstream", Kind: "CLIENT", Status: "UNSET", Attrs: map[string]string{"http.response.status_code": "200"}},
			}}
			if diff := cmp.Diff(want, tree(t, spans, keep...)); diff != "" {
				t.Errorf("allowed request's span tree (-want +got):\n%s", diff)
			}
			// The server span is the one the access log names; the
			// upstream got the upstream span as its parent.
			var upstreamSpan string
			for _, s := range spans {
				switch s.GetName() {
				case "GET allowed":
					if got := hex.EncodeToString(s.GetSpanId()); got != spanID {
						t.Errorf("server span %s, access log span_id %s", got, spanID)
					}
				case "upstream":
					upstreamSpan = hex.EncodeToString(s.GetSpanId())
				}
			}
			tp := decodeEcho(t, body).Header.Get("Traceparent")
			if want := "00-" + traceID + "-" + upstreamSpan + "-01"; tp != want {
				t.Errorf("upstream got traceparent %q, want %q", tp, want)
			}
			if c.service != "gatehouse-test" {
				t.Errorf("service.name %q", c.service)
			}
			// The sampled request's trace id is the exemplar of its latency
			// bucket in the OpenMetrics exposition.
			_, om, _ := scrape(t, "http://"+g.AdminAddr().String(), "application/openmetrics-text;version=1.0.0")
			ex := regexp.MustCompile(`(?m)^gatehouse_request_duration_seconds_bucket\{[^}]*route="allowed"[^}]*\} \d+ # \{trace_id="` + traceID + `"\}`)
			if !ex.MatchString(om) {
				t.Errorf("no exemplar with trace id %s on route allowed's latency buckets", traceID)
			}
			ex = regexp.MustCompile(`(?m)^gatehouse_policy_duration_seconds_bucket\{[^}]*policy="ipfilter"[^}]*route="allowed"[^}]*\} \d+ # \{trace_id="` + traceID + `"\}`)
			if !ex.MatchString(om) {
				t.Errorf("no exemplar with trace id %s on ipfilter's latency buckets of route allowed", traceID)
			}

			// Denied: the chain stops at ipfilter, no upstream span.
			resp, body = do(t, nil, newReq(t, "GET", g.base+"/deny", nil))
			if resp.StatusCode != 403 {
				t.Fatalf("denied: status %d %s", resp.StatusCode, body)
			}
			reqID = resp.Header.Get("X-Request-Id")
			line = accessLine(t, g, reqID)
			traceID, _ = line["trace_id"].(string)
			spans = c.trace(t, traceID, 3)
			want = node{Name: "GET denied", Kind: "SERVER", Status: "UNSET", Attrs: map[string]string{"gatehouse.route": "denied", "gatehouse.code": "ip_denied", "http.response.status_code": "403"}, Children: []node{
				{Name: "policy headers", Kind: "INTERNAL", Status: "UNSET", Attrs: map[string]string{"gatehouse.verdict": "allow"}},
				{Name: "policy ipfilter", Kind: "INTERNAL", Status: "ERROR", Attrs: map[string]string{"gatehouse.verdict": "deny", "gatehouse.code": "ip_denied", "http.response.status_code": "403"}},
			}}
			if diff := cmp.Diff(want, tree(t, spans, keep...)); diff != "" {
				t.Errorf("denied request's span tree (-want +got):\n%s", diff)
			}
			ev := g.Audit().Recent(audit.Filter{RequestID: reqID}, 1)
			if len(ev) != 1 || ev[0].TraceID != traceID || ev[0].SpanID != line["span_id"] {
				t.Errorf("audit events %+v, want one with trace %s span %v", ev, traceID, line["span_id"])
			}
		})
	}
}

// TestTracingPropagation: a request's traceparent is continued only from
// the peers propagate_from accepts; from any other the request starts a
// new trace, and the upstream never gets the client's trace context as it
// came (always the gateway's own traceparent, no tracestate of the
// client's).
func TestTracingPropagation(t *testing.T) {
	const (
		clientTrace = "4bf92f3577b34da6a3ce929d0e0e4736"
		clientSpan  = "00f067aa0ba902b7"
	)
	up := echoUpstream(t)
	cases := []struct {
		from, trusted string
		continued     bool
	}{
		{"trusted", "[127.0.0.1/32]", true},
		{"trusted", "[10.0.0.0/8]", false}, // the test's peer is untrusted
		{"trusted", "[]", false},
		{"all", "[]", true},
		{"none", "[127.0.0.1/32]", false},
	}
	for _, tc := range cases {
		t.Run(tc.from+" "+tc.trusted, func(t *testing.T) {
			c := &collector{} // one a case: cases share the client's trace id
			endpoint := grpcCollector(t, c)
			g := startGateway(t, tracedConfig, map[string]string{"UP": up.URL, "TRUSTED": tc.trusted, "EXPORTER": "otlp-grpc", "COLLECTOR": endpoint, "FROM": tc.from})
			req := newReq(t, "GET", g.base+"/ok", nil)
			req.Header.Set("Traceparent", "00-"+clientTrace+"-"+clientSpan+"-01")
			req.Header.Set("Tracestate", "vendor=secret")
			resp, body := do(t, nil, req)
			if resp.StatusCode != 200 {
				t.Fatalf("status %d %s", resp.StatusCode, body)
			}
			line := accessLine(t, g, resp.Header.Get("X-Request-Id"))
			traceID := line["trace_id"].(string)
			if got := traceID == clientTrace; got != tc.continued {
				t.Fatalf("trace %s: continued the client's = %v, want %v", traceID, got, tc.continued)
			}
			spans := c.trace(t, traceID, 5)
			var server, upstream *tracepb.Span
			for _, s := range spans {
				switch s.GetName() {
				case "GET allowed":
					server = s
				case "upstream":
					upstream = s
				}
			}
			if server == nil || upstream == nil {
				t.Fatalf("spans %v: no server or upstream span", spans)
			}
			parent := hex.EncodeToString(server.GetParentSpanId())
			if tc.continued && parent != clientSpan || !tc.continued && parent != "" {
				t.Errorf("server span's parent %q (continued %v)", parent, tc.continued)
			}
			e := decodeEcho(t, body)
			if want := "00-" + traceID + "-" + hex.EncodeToString(upstream.GetSpanId()) + "-01"; e.Header.Get("Traceparent") != want {
				t.Errorf("upstream got traceparent %q, want %q", e.Header.Get("Traceparent"), want)
			}
			wantState := ""
			if tc.continued {
				wantState = "vendor=secret" // part of the accepted context
			}
			if got := strings.Join(e.Header.Values("Tracestate"), ","); got != wantState {
				t.Errorf("upstream got tracestate %q, want %q", got, wantState)
			}
		})
	}
}

// TestTracingCollectorDown: with the collector unreachable (a port that
// accepts nothing) or hanging (one that accepts and never answers), and
// a tiny queue, requests are answered as usual and the gateway still
// shuts down: spans are dropped, never waited for.
func TestTracingCollectorDown(t *testing.T) {
	closed, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closedAddr := closed.Addr().String()
	closed.Close()
	hang, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { hang.Close() })
	var held sync.WaitGroup
	go func() {
		for {
			conn, err := hang.Accept()
			if err != nil {
				return
			}
			held.Go(func() { io.Copy(io.Discard, conn) }) // never answers
		}
	}()
	up := echoUpstream(t)
	for _, tc := range []struct{ name, exporter, endpoint string }{
		{"refused grpc", "otlp-grpc", "http://" + closedAddr},
		{"hanging grpc", "otlp-grpc", "http://" + hang.Addr().String()},
		{"hanging http", "otlp-http", "http://" + hang.Addr().String()},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := strings.Replace(tracedConfig, "  batch_timeout: 50ms\n", "  batch_timeout: 10ms\n  queue_size: 4\n  batch_size: 2\n  export_timeout: 30s\n", 1)
			g := startGateway(t, cfg, map[string]string{"UP": up.URL, "TRUSTED": "[]", "EXPORTER": tc.exporter, "COLLECTOR": tc.endpoint, "FROM": "trusted"})
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			var wg sync.WaitGroup
			errs := make(chan error, 100)
			for range 10 {
				wg.Go(func() {
					for range 10 {
						req, _ := http.NewRequestWithContext(ctx, "GET", g.base+"/ok", nil)
						resp, err := http.DefaultClient.Do(req)
						if err != nil {
							errs <- err
							return
						}
						io.Copy(io.Discard, resp.Body)
						resp.Body.Close()
						if resp.StatusCode != 200 {
							errs <- fmt.Errorf("status %d", resp.StatusCode)
						}
					}
				})
			}
			wg.Wait()
			close(errs)
			for err := range errs {
				t.Error(err)
			}
			// The drain ends too, however long the exporter would wait.
			done := make(chan error, 1)
			go func() { done <- g.Shutdown(ctx) }()
			select {
			case err := <-done:
				if err != nil {
					t.Errorf("Shutdown: %v", err)
				}
			case <-ctx.Done():
				t.Fatal("the gateway did not shut down with the collector down")
			}
		})
	}
}

// TestTracingAuthorizationServer: a token request has the authorization
// server's span under the server span, and the audit events the
// authorization server records while answering (token issued, client
// authentication failed) carry that span's ids.
func TestTracingAuthorizationServer(t *testing.T) {
	c := &collector{}
	endpoint := grpcCollector(t, c)
	addr := freePort(t)
	issuer := "http://" + addr
	doc := `
listeners: [{name: main, address: "` + addr + `"}]
admin: {address: "off"}
store: {type: memory}
tracing: {endpoint: "` + endpoint + `", batch_timeout: 50ms}
authorization_server:
  issuer: ` + issuer + `
  insecure_plaintext_keys: true
  clients:
    - client_id: reader
      secret_hash: ` + sha256Hex("reader-secret-value-1234") + `
      scopes: [products:read]
      audience: [gatehouse-test]
routes: []
`
	g := startGateway(t, doc, nil)
	for _, tc := range []struct {
		secret string
		status int
		kind   audit.Kind
	}{
		{"reader-secret-value-1234", 200, audit.TokenIssue},
		{"not-the-secret-at-all-000", 401, audit.AuthFailure},
	} {
		form := "grant_type=client_credentials&client_id=reader&client_secret=" + tc.secret
		req := newReq(t, "POST", g.base+"/oauth2/token", strings.NewReader(form))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		resp, body := do(t, nil, req)
		if resp.StatusCode != tc.status {
			t.Fatalf("token: status %d %s", resp.StatusCode, body)
		}
		reqID := resp.Header.Get("X-Request-Id")
		traceID := accessLine(t, g, reqID)["trace_id"].(string)
		spans := c.trace(t, traceID, 2)
		want := node{Name: "POST authorization_server", Kind: "SERVER", Status: "UNSET", Attrs: map[string]string{"http.response.status_code": fmt.Sprint(tc.status)}, Children: []node{
			{Name: "authorization_server", Kind: "INTERNAL", Status: "UNSET", Attrs: map[string]string{"http.response.status_code": fmt.Sprint(tc.status)}},
		}}
		got := tree(t, spans, "http.response.status_code")
		// The authorization server's own store round trips (its
		// failed-authentication limits) are spans too; counted, not
		// compared.
		stores := pruneStores(&got)
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("span tree (-want +got):\n%s", diff)
		}
		if stores == 0 {
			t.Errorf("no store span under the authorization server")
		}
		var serviceSpan string
		for _, s := range spans {
			if s.GetName() == "authorization_server" {
				serviceSpan = hex.EncodeToString(s.GetSpanId())
			}
		}
		ev := g.Audit().Recent(audit.Filter{RequestID: reqID, Kind: tc.kind}, 1)
		if len(ev) != 1 || ev[0].TraceID != traceID || ev[0].SpanID != serviceSpan {
			t.Errorf("audit %s events %+v, want one with trace %s span %s", tc.kind, ev, traceID, serviceSpan)
		}
	}
}

// TestTracingSTS: a request the STS answers (here a refusal: not a SOAP
// envelope) has the STS's span under the server span.
func TestTracingSTS(t *testing.T) {
	c := &collector{}
	endpoint := grpcCollector(t, c)
	doc := `
listeners: [{name: main, address: "127.0.0.1:0"}]
admin: {address: "off"}
store: {type: memory}
tracing: {endpoint: "` + endpoint + `", batch_timeout: 50ms}
sts:
  issuer: urn:gatehouse:test
  insecure_plaintext_keys: true
  authentication:
    username_token: {text: allowed, users: [{username: alice, password: alice-password}]}
  subjects: [{subject: alice, roles: [reader]}]
  relying_parties: [{audience: "urn:rp"}]
routes: []
`
	g := startGateway(t, doc, nil)
	req := newReq(t, "POST", g.base+"/sts", strings.NewReader("not soap"))
	req.Header.Set("Content-Type", "text/xml; charset=utf-8")
	resp, body := do(t, nil, req)
	if resp.StatusCode < 400 {
		t.Fatalf("status %d %s, want a refusal", resp.StatusCode, body)
	}
	status := fmt.Sprint(resp.StatusCode)
	traceID := accessLine(t, g, resp.Header.Get("X-Request-Id"))["trace_id"].(string)
	spans := c.trace(t, traceID, 2)
	serverStatus := "UNSET"
	if resp.StatusCode >= 500 {
		serverStatus = "ERROR"
	}
	want := node{Name: "POST sts", Kind: "SERVER", Status: serverStatus, Attrs: map[string]string{"http.response.status_code": status, "gatehouse.route": "sts"}, Children: []node{
		{Name: "sts", Kind: "INTERNAL", Status: serverStatus, Attrs: map[string]string{"http.response.status_code": status}},
	}}
	got := tree(t, spans, "http.response.status_code", "gatehouse.route")
	pruneStores(&got) // the STS's own limits' round trips
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("span tree (-want +got):\n%s", diff)
	}
}

// pruneStores removes the "store ..." spans from the tree under n and
// returns how many there were.
func pruneStores(n *node) int {
	count := 0
	var kids []node
	for _, k := range n.Children {
		if strings.HasPrefix(k.Name, "store ") {
			count++
			continue
		}
		count += pruneStores(&k)
		kids = append(kids, k)
	}
	n.Children = kids
	return count
}
