package tracing

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/gatehouse/gatehouse/internal/config"
)

func load(t *testing.T, section string) *config.Config {
	t.Helper()
	c, err := config.LoadBytes("t.yaml", []byte("listeners: [{address: \"127.0.0.1:8080\"}]\n"+section), nil)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestNewOff(t *testing.T) {
	tr, err := New(load(t, ""), Options{})
	if tr != nil || err != nil {
		t.Fatalf("no tracing section: %v, %v; want nil, nil", tr, err)
	}
	// Nil is tracing off, and safe to shut down.
	if err := tr.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
}

// TestNewFileErrors: a certificate file that cannot be used is a config
// error naming its field and line.
func TestNewFileErrors(t *testing.T) {
	dir := t.TempDir()
	for _, tc := range []struct{ name, tls, field string }{
		{"missing CA", "{ca_file: nope.pem}", "tracing.tls.ca_file"},
		{"missing key pair", "{cert_file: c.pem, key_file: k.pem}", "tracing.tls.cert_file"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := New(load(t, "tracing:\n  endpoint: \"https://127.0.0.1:4317\"\n  tls: "+tc.tls+"\n"), Options{BaseDir: dir})
			if err == nil || !strings.Contains(err.Error(), tc.field) || !strings.Contains(err.Error(), "t.yaml:4") {
				t.Errorf("err %v, want an error at t.yaml:4 naming %s", err, tc.field)
			}
		})
	}
}

// TestStartServerTrustsByConfig: the traceparent of a request is its
// parent only from a peer propagate_from accepts, and is removed from the
// request either way.
func TestStartServerTrustsByConfig(t *testing.T) {
	const parent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
	for _, tc := range []struct {
		from    string
		trusted bool
		want    bool
	}{
		{"trusted", true, true}, {"trusted", false, false},
		{"all", false, true}, {"none", true, false},
	} {
		tr, err := New(load(t, "tracing: {endpoint: \"http://127.0.0.1:4317\", propagate_from: "+tc.from+"}\n"), Options{})
		if err != nil {
			t.Fatal(err)
		}
		r := httptest.NewRequest("GET", "http://gw/x", nil)
		r.Header.Set("Traceparent", parent)
		r.Header.Set("Tracestate", "a=b")
		_, span := tr.StartServer(r, tc.trusted, "127.0.0.1", "id")
		traceID, _ := IDs(span)
		if got := traceID == "4bf92f3577b34da6a3ce929d0e0e4736"; got != tc.want {
			t.Errorf("%s, trusted peer %v: continued %v, want %v", tc.from, tc.trusted, got, tc.want)
		}
		if r.Header.Get("Traceparent") != "" || r.Header.Get("Tracestate") != "" {
			t.Errorf("%s: the client's trace headers are still on the request", tc.from)
		}
		h := http.Header{}
		ctx, up := tr.StartUpstream(context.Background(), "GET", NewTarget("http://127.0.0.1:1"), h)
		_ = ctx
		if upTrace, upSpan := IDs(up); h.Get("Traceparent") != "00-"+upTrace+"-"+upSpan+"-01" {
			t.Errorf("injected %q for span %s/%s", h.Get("Traceparent"), upTrace, upSpan)
		}
		// A store call outside a request makes no span.
		if _, end := tr.StoreSpan(context.Background(), "get"); end == nil {
			t.Error("StoreSpan returned no end function")
		}
		tr.Shutdown(context.Background())
	}
}
