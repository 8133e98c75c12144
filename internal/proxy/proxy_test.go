package proxy

import (
	"crypto/tls"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"testing"
)

func TestSetForwarded(t *testing.T) {
	trusted := []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")}
	tests := []struct {
		name       string
		remote     string
		tls        bool
		in         http.Header
		xff, fwd   string
		host, prot string
	}{
		{
			name: "untrusted peer's headers are replaced", remote: "192.0.2.7:4000",
			in:  http.Header{"X-Forwarded-For": {"6.6.6.6"}, "Forwarded": {"for=6.6.6.6"}, "X-Forwarded-Host": {"evil"}, "X-Forwarded-Proto": {"https"}},
			xff: "192.0.2.7", fwd: "for=192.0.2.7;host=api.example.com;proto=http", host: "api.example.com", prot: "http",
		},
		{
			name: "trusted peer's headers are extended", remote: "10.1.2.3:4000",
			in:  http.Header{"X-Forwarded-For": {"198.51.100.1, 10.9.9.9"}, "Forwarded": {"for=198.51.100.1"}, "X-Forwarded-Host": {"public.example.com"}, "X-Forwarded-Proto": {"https"}},
			xff: "198.51.100.1, 10.9.9.9, 10.1.2.3", fwd: "for=198.51.100.1, for=10.1.2.3;host=api.example.com;proto=http", host: "public.example.com", prot: "https",
		},
		{
			name: "IPv6 is quoted and bracketed, TLS is https", remote: "[2001:db8::1]:4000", tls: true,
			in:  http.Header{},
			xff: "2001:db8::1", fwd: `for="[2001:db8::1]";host=api.example.com;proto=https`, host: "api.example.com", prot: "https",
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			in := httptest.NewRequest("GET", "http://api.example.com/x", nil)
			in.RemoteAddr = tc.remote
			in.Header = tc.in
			if tc.tls {
				in.TLS = &tls.ConnectionState{HandshakeComplete: true}
			}
			out := in.Clone(in.Context())
			out.Header = http.Header{}
			setForwarded(in, out, trusted)
			for k, want := range map[string]string{"X-Forwarded-For": tc.xff, "Forwarded": tc.fwd, "X-Forwarded-Host": tc.host, "X-Forwarded-Proto": tc.prot} {
				if got := out.Header.Get(k); got != want {
					t.Errorf("%s = %q, want %q", k, got, want)
				}
			}
		})
	}
}
