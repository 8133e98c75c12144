package gateway

import (
	"context"
	"crypto/tls"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/internal/builtin"
	"github.com/gatehouse/gatehouse/internal/config"
	"github.com/gatehouse/gatehouse/internal/policy"
	"github.com/gatehouse/gatehouse/internal/tlstest"
)

// panicky is a test policy that panics where its config says: in Apply
// ("apply"), when the response's status comes to its filter ("response"),
// in its filter's Write after passing the status on ("body"), in its
// filter's Write while holding the status back ("held"), or in the request
// body reader ("bodyread").
type panicky struct{ where string }

func (p *panicky) Apply(_ context.Context, ex *policy.Exchange) error {
	switch p.where {
	case "apply":
		panic("panicky: apply")
	case "bodyread":
		// Read by the proxy's own goroutines (the h1 writer,
		// http.Transport's write loop), where a panic ends the process
		// unless the gateway's body handle contains it.
		ex.Request.Body = panicReader{ex.Request.Body}
	}
	return nil
}

func (p *panicky) FilterResponse(_ *policy.Exchange, next policy.ResponseWriter) policy.ResponseWriter {
	if p.where == "response" {
		panic("panicky: response")
	}
	return &panicFilter{ResponseWriter: next, where: p.where}
}

// panicFilter panics in Write: after passing the status on ("body"), or
// holding it back ("held").
type panicFilter struct {
	policy.ResponseWriter
	where string
}

func (f *panicFilter) WriteHeader(code int) {
	if f.where != "held" {
		f.ResponseWriter.WriteHeader(code)
	}
}

func (f *panicFilter) Write(b []byte) (int, error) {
	if f.where == "body" || f.where == "held" {
		panic("panicky: body")
	}
	return f.ResponseWriter.Write(b)
}

type panicReader struct{ io.ReadCloser }

func (panicReader) Read([]byte) (int, error) { panic("panicky: body read") }

var panickyUnit = policy.Unit{Name: "panicky", New: func(cfg *config.Node, _ *policy.Env) (policy.Policy, error) {
	var c struct {
		Where string `yaml:"where"`
	}
	if err := cfg.Decode(&c); err != nil {
		return nil, err
	}
	return &panicky{where: c.Where}, nil
}}

// TestPanicsAreContained drives a real gateway whose policies panic at
// each stage of a proxied request, over the h1 client and the
// ReverseProxy path, with and without a streamed request body: each panic
// is answered (500 internal_error) when nothing was sent, or aborts the
// connection when the status line was out; it is logged with the request
// id; and the gateway goes on serving.
func TestPanicsAreContained(t *testing.T) {
	plain := echoUpstream(t)
	ca := tlstest.NewCA(t, "upstream CA")
	secure := httptest.NewUnstartedServer(plain.Config.Handler)
	secure.TLS = &tls.Config{Certificates: []tls.Certificate{ca.Server(t).TLS}}
	secure.StartTLS()
	t.Cleanup(secure.Close)
	dir := t.TempDir()
	caFile := ca.WriteFile(t, dir, "ca.pem")

	var routes strings.Builder
	for _, where := range []string{"apply", "response", "body", "held", "bodyread"} {
		for _, up := range []struct{ name, url, tls string }{
			{"h1", plain.URL, ""},
			{"rp", secure.URL, `, tls: {ca_file: "` + caFile + `", server_name: localhost}`},
		} {
			routes.WriteString(`
  - name: ` + up.name + `-` + where + `
    match: {path: /` + up.name + `/` + where + `}
    upstream: {url: "` + up.url + `"` + up.tls + `}
    policies:
      - panicky: {where: ` + where + `}
      - headers: {response: {set: {X-Frame-Options: DENY}}}`)
		}
	}
	cfg := load(t, `
listeners: [{name: main, address: "127.0.0.1:0"}]
admin: {address: "off"}
routes:
  - name: good
    match: {path: /good}
    upstream: {url: "`+plain.URL+`"}`+routes.String()+`
`, nil)
	logs := &syncBuffer{}
	g, err := New(cfg, Options{
		BaseDir:   t.TempDir(),
		Registry:  policy.NewRegistry(append(builtin.Units(), panickyUnit)...),
		Logger:    slog.New(slog.NewJSONHandler(logs, nil)),
		AccessLog: slog.New(slog.NewJSONHandler(io.Discard, nil)),
	})
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	if err := g.Start(); err != nil {
		t.Fatalf("Start: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = g.Shutdown(ctx)
	})
	base := "http://" + g.Addr("main").String()
	client := &http.Client{Timeout: 30 * time.Second}

	for _, tc := range []struct {
		where  string
		status int // 0: the response is aborted
		code   string
		// bodyOnly: without a body nothing panics (200).
		bodyOnly bool
	}{
		{"apply", 500, "internal_error", false},
		{"response", 500, "internal_error", false},
		{"held", 500, "internal_error", false},
		{"body", 0, "", false},
		{"bodyread", 500, "internal_error", true},
	} {
		for _, up := range []string{"h1", "rp"} {
			for _, streamed := range []bool{false, true} {
				name := up + "/" + tc.where
				if streamed {
					name += "/streamed"
				}
				t.Run(name, func(t *testing.T) {
					stop := make(chan struct{})
					defer close(stop)
					req := newReq(t, "GET", base+"/"+up+"/"+tc.where, nil)
					if streamed {
						req = newReq(t, "POST", base+"/"+up+"/"+tc.where, &slowBody{n: 190, stop: stop})
					}
					resp, err := client.Do(req)
					var b []byte
					if err == nil {
						b, err = io.ReadAll(resp.Body)
						resp.Body.Close()
					}
					if tc.bodyOnly && !streamed {
						if err != nil || resp.StatusCode != 200 {
							t.Fatalf("without a body: %v %v", err, resp)
						}
					} else if tc.status == 0 {
						if err == nil {
							t.Fatalf("status %d body %q: want an aborted response", resp.StatusCode, b)
						}
					} else {
						if err != nil {
							t.Fatalf("request: %v", err)
						}
						if resp.StatusCode != tc.status || problemCode(t, b) != tc.code {
							t.Fatalf("status %d body %q, want %d %s", resp.StatusCode, b, tc.status, tc.code)
						}
						id := resp.Header.Get("X-Request-Id")
						if id == "" || !strings.Contains(grep([]byte(logs.String()), id), "panic handling a request") {
							t.Errorf("no panic logged with request id %q:\n%s", id, logs.String())
						}
						if strings.Contains(string(b), "panicky") || strings.Contains(string(b), "goroutine") {
							t.Errorf("the panic leaked to the client: %q", b)
						}
					}
					resp, b = do(t, client, newReq(t, "GET", base+"/good", nil))
					if resp.StatusCode != 200 || decodeEcho(t, b).Path != "/good" {
						t.Fatalf("next request: status %d body %q", resp.StatusCode, b)
					}
				})
			}
		}
	}
}
