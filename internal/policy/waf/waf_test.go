package waf

import (
	"bytes"
	"context"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/gatehouse/gatehouse/internal/policy"
	"github.com/gatehouse/gatehouse/internal/policy/policytest"
)

func sqli() *http.Request {
	return attack{Payload: "1' OR '1'='1' --", In: "query"}.request()
}

func TestFeatures(t *testing.T) {
	soap := `<?xml version="1.0"?><soap:Envelope xmlns:soap="http://schemas.xmlsoap.org/soap/envelope/"><soap:Body><GetProduct><id>1 UNION SELECT password FROM users--</id></GetProduct></soap:Body></soap:Envelope>`
	soapReq := func() *http.Request {
		r := httptest.NewRequest(http.MethodPost, "http://api.example.com/soap", strings.NewReader(soap))
		r.Header.Set("Content-Type", "text/xml; charset=utf-8")
		browserHeaders(r)
		return r
	}
	big := func() *http.Request {
		r := httptest.NewRequest(http.MethodPost, "http://api.example.com/api", strings.NewReader(`{"a":"`+strings.Repeat("x", 2048)+`"}`))
		r.Header.Set("Content-Type", "application/json")
		return r
	}
	for _, c := range []struct {
		name, yaml string
		req        func() *http.Request
		wantStatus int // 0: allowed
	}{
		{"sqli blocked", "", sqli, 403},
		{"benign passes", "", postRequest, 0},
		{"detect mode passes", "mode: detect", sqli, 0},
		{"excluded tag passes", "exclude: {tags: [attack-sqli]}", sqli, 0},
		{"query not inspected", "inspect: {query: false}", sqli, 0},
		{"body limit", "inspect: {body_limit: 1KiB}", big, 413},
		{"soap body inspected", "", soapReq, 403},
		{"soap body not inspected", "inspect: {body: false}", soapReq, 0},
		{"custom UA deny", `directives: ["SecRule REQUEST_HEADERS:User-Agent \"@pm sqlmap nikto\" \"id:10001,phase:1,deny,status:403,log,msg:'scanner'\""]`,
			func() *http.Request { r := getRequest(); r.Header.Set("User-Agent", "sqlmap/1.8"); return r }, 403},
	} {
		t.Run(c.name, func(t *testing.T) {
			w := oursWAF(t, c.yaml)
			err := w.Apply(context.Background(), policytest.Exchange(c.req()))
			got := 0
			if err != nil {
				d, ok := policy.AsDenial(err)
				if !ok {
					t.Fatalf("got error %v", err)
				}
				got = d.StatusCode()
				if strings.Contains(d.Detail, "942") {
					t.Errorf("detail %q names a rule", d.Detail)
				}
			}
			if got != c.wantStatus {
				t.Errorf("got status %d (%v), want %d", got, err, c.wantStatus)
			}
		})
	}
}

// Detect mode changes nothing but the logs: the request passes untouched
// and the matches, with the request id, are logged.
func TestDetectLogs(t *testing.T) {
	var buf bytes.Buffer
	env := policytest.Env()
	env.Logger = slog.New(slog.NewTextHandler(&buf, nil))
	p, err := New(policytest.Node(t, "mode: detect"), env)
	if err != nil {
		t.Fatal(err)
	}
	defer p.(*WAF).Close()
	r := sqli()
	before := r.URL.String()
	if err := p.Apply(context.Background(), policytest.Exchange(r)); err != nil {
		t.Fatalf("got %v, want nil", err)
	}
	if r.URL.String() != before {
		t.Errorf("got URL %s, want %s", r.URL, before)
	}
	for _, want := range []string{policytest.RequestID, "would_block=true", "942"} {
		if !strings.Contains(buf.String(), want) {
			t.Errorf("log %q lacks %q", buf.String(), want)
		}
	}
}
