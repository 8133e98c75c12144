package render

import (
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/gatehouse/gatehouse/internal/policy"
)

// TestRouteDenialFaultStatus: a SOAP 1.1 route with FaultStatus 500 (WS-I
// BP R1126) answers every Fault with 500, the Fault and headers as they
// were; other routes, and SOAP 1.1 routes without it, keep the denial's
// status.
func TestRouteDenialFaultStatus(t *testing.T) {
	unauth := func() *policy.Denial {
		d := policy.Deny(http.StatusUnauthorized, "wsse:FailedAuthentication", "The security token could not be authenticated or authorized")
		d.Header = http.Header{"Www-Authenticate": {`Basic realm="x"`}}
		return d
	}
	tests := []struct {
		name       string
		route      *policy.Route
		denial     *policy.Denial
		wantStatus int
		wantCode   string
	}{
		{"soap 1.1 with 500", &policy.Route{Protocol: policy.SOAP11, FaultStatus: 500}, unauth(), 500, "wsse:FailedAuthentication"},
		{"soap 1.1 with 500, 429 too", &policy.Route{Protocol: policy.SOAP11, FaultStatus: 500}, policy.Deny(http.StatusTooManyRequests, "rate_limited", ""), 500, "soap:Client"},
		{"soap 1.1 with 500, 502 too", &policy.Route{Protocol: policy.SOAP11, FaultStatus: 500}, policy.Deny(http.StatusBadGateway, "upstream_unavailable", ""), 500, "soap:Server"},
		{"soap 1.1 default", &policy.Route{Protocol: policy.SOAP11}, unauth(), 401, "wsse:FailedAuthentication"},
		{"soap 1.2 ignores it", &policy.Route{Protocol: policy.SOAP12, FaultStatus: 500}, unauth(), 401, ""},
		{"rest ignores it", &policy.Route{Protocol: policy.REST, FaultStatus: 500}, unauth(), 401, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec := httptest.NewRecorder()
			RouteDenial(rec, httptest.NewRequest(http.MethodPost, "/x", nil), tt.route, reqID, tt.denial)
			resp := rec.Result()
			body := readBody(t, resp)
			if resp.StatusCode != tt.wantStatus {
				t.Errorf("status = %d, want %d", resp.StatusCode, tt.wantStatus)
			}
			if tt.denial.Header != nil && resp.Header.Get("WWW-Authenticate") == "" {
				t.Error("WWW-Authenticate dropped")
			}
			if tt.wantCode == "" {
				return
			}
			fault := parseXML(t, body).find(t, name(NamespaceSOAP11, "Body"), name(NamespaceSOAP11, "Fault"))
			if fault == nil {
				t.Fatalf("no Fault in %s", body)
			}
			got := fault.find(t, name("", "faultcode")).Text
			if got != tt.wantCode {
				t.Errorf("faultcode = %q, want %q (the Fault must not change with the status)", got, tt.wantCode)
			}
		})
	}
}
