package proxy

import "testing"

// TestTrailerAllowed: the fields that never pass as trailers, in the
// spellings upstreams read alike, and some that do.
func TestTrailerAllowed(t *testing.T) {
	protected := []string{"X-Auth-Subject", "X-Gatehouse-Identity", "Authorization"}
	for _, tc := range []struct {
		name string
		ok   bool
	}{
		{"X-Checksum", true}, {"Content-Digest", true}, {"Server-Timing", true}, {"Grpc-Status", true},
		{"Content-Length", false}, {"content_length", false}, {"Transfer-Encoding", false}, {"Trailer", false},
		{"Host", false}, {":authority", false}, {"Connection", false}, {"Upgrade", false}, {"HTTP2-Settings", false},
		{"Authorization", false}, {"Proxy-Authorization", false}, {"proxy_authorization", false}, {"WWW-Authenticate", false},
		{"Cookie", false}, {"Set-Cookie", false}, {"set_cookie", false},
		{"X-Forwarded-For", false}, {"X_Forwarded_For", false}, {"x-forwarded_host", false}, {"X-Forwarded-Client-Cert", false},
		{"Forwarded", false}, {"Via", false}, {"X-Real-IP", false}, {"X_Real_Ip", false}, {"True-Client-IP", false},
		{"X-Request-Id", false}, {"x_request_id", false},
		{"X-Auth-Subject", false}, {"X_AUTH_SUBJECT", false}, {"x-gatehouse_identity", false},
		{"Content-Type", false}, {"Content-Encoding", false}, {"Range", false}, {"If-None-Match", false}, {"Expect", false},
		{"X-HTTP-Method-Override", false}, {"Cache-Control", false}, {"Sec-Fetch-Site", false},
		{"", false}, {"X Bad", false}, {"X-Bad:", false}, {"X-T\r\nX-Evil", false},
	} {
		if got := TrailerAllowed(tc.name, protected); got != tc.ok {
			t.Errorf("TrailerAllowed(%q) = %v, want %v", tc.name, got, tc.ok)
		}
	}
}

// TestForwardingField: the client-address family in every spelling, and
// fields that are not of it.
func TestForwardingField(t *testing.T) {
	for _, tc := range []struct {
		name string
		ok   bool
	}{
		{"X-Forwarded-For", true}, {"X_Forwarded_For", true}, {"x-forwarded_for", true}, {"X-FORWARDED-PROTO", true},
		{"X-Forwarded-Port", true}, {"X-Forwarded-Client-Cert", true}, {"Forwarded", true}, {"X-Real-Ip", true},
		{"X_Real_IP", true}, {"True-Client-IP", true}, {"X-Client-IP", true}, {"CF-Connecting-IP", true},
		{"X-Original-URL", true}, {"X-Rewrite-Url", true},
		{"X-Forwarded", false}, {"Via", false}, {"X-Forward-For", false}, {"Accept", false}, {"Forwarded-", false},
	} {
		if got := ForwardingField(tc.name); got != tc.ok {
			t.Errorf("ForwardingField(%q) = %v, want %v", tc.name, got, tc.ok)
		}
	}
}
