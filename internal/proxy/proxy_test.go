package proxy

import (
	"bufio"
	"bytes"
	"crypto/tls"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"net/textproto"
	"testing"

	"github.com/gatehouse/gatehouse/internal/clientip"
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
			setForwarded(in, out, clientip.Source{Trusted: trusted})
			for k, want := range map[string]string{"X-Forwarded-For": tc.xff, "Forwarded": tc.fwd, "X-Forwarded-Host": tc.host, "X-Forwarded-Proto": tc.prot} {
				if got := out.Header.Get(k); got != want {
					t.Errorf("%s = %q, want %q", k, got, want)
				}
			}
		})
	}
}

// TestWriteForwardedMatchesValues: the HTTP/1.1 client writes the
// forwarding fields straight to the connection; they must be the very
// values the ReverseProxy path sets.
func TestWriteForwardedMatchesValues(t *testing.T) {
	trusted := []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8"), netip.MustParsePrefix("::1/128")}
	tests := []struct {
		remote, host string
		tls          bool
		in           http.Header
	}{
		{"192.0.2.7:4000", "api.example.com", false, http.Header{"X-Forwarded-For": {"6.6.6.6"}, "Forwarded": {"for=6.6.6.6"}}},
		{"10.1.2.3:4000", "api.example.com:8443", true, http.Header{"X-Forwarded-For": {"198.51.100.1", "10.9.9.9"}, "Forwarded": {"for=198.51.100.1", `for="[2001:db8::2]"`}, "X-Forwarded-Host": {"public.example.com"}, "X-Forwarded-Proto": {"https"}}},
		{"[2001:db8::1]:4000", "h", false, http.Header{}},
		{"[::1]:4000", `we"ird\host`, true, http.Header{"X-Forwarded-For": {"203.0.113.9"}}},
		{"[::ffff:192.0.2.1]:80", "", false, http.Header{}},
		{"not an address", "h", false, http.Header{}},
	}
	for _, hdr := range []string{"", clientip.Forwarded, "X-Real-Ip"} {
		src := clientip.Source{Trusted: trusted, Header: hdr}
		for _, tc := range tests {
			in := httptest.NewRequest("GET", "http://x/", nil)
			in.RemoteAddr, in.Host, in.Header = tc.remote, tc.host, tc.in
			if tc.tls {
				in.TLS = &tls.ConnectionState{HandshakeComplete: true}
			}
			var buf bytes.Buffer
			bw := bufio.NewWriter(&buf)
			writeForwarded(bw, in, src)
			bw.WriteString("\r\n")
			bw.Flush()
			got, err := textproto.NewReader(bufio.NewReader(&buf)).ReadMIMEHeader()
			if err != nil && buf.Len() > 0 {
				t.Fatalf("%s: %v", tc.remote, err)
			}
			fw := forwardedValues(in, src)
			want := map[string]string{"X-Forwarded-For": fw.xff, "X-Forwarded-Host": fw.host, "X-Forwarded-Proto": fw.proto, "Forwarded": fw.forwarded}
			if hdr == "X-Real-Ip" {
				want[hdr] = fw.client
			}
			if fw.xff == "" {
				want = map[string]string{}
			}
			for k, v := range want {
				if g := got.Get(k); g != v || len(got[k]) != 1 {
					t.Errorf("%q %s: %s = %q, want %q", hdr, tc.remote, k, got[k], v)
				}
			}
			if len(got) != len(want) {
				t.Errorf("%q %s: wrote %v, want %v", hdr, tc.remote, got, want)
			}
		}
	}
}

// TestForwardedFollowsTheSource: towards the upstream, a trusted peer's
// values of the header the client address was read from are extended; the
// other kind is rebuilt from the resolved address, never passed on; a
// custom header is set to the resolved address, from any peer.
func TestForwardedFollowsTheSource(t *testing.T) {
	trusted := []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")}
	in := http.Header{
		"X-Forwarded-For": {"192.0.2.66"},       // client-supplied
		"Forwarded":       {"for=198.51.100.4"}, // the proxy's
		"X-Real-Ip":       {"203.0.113.99"},     // client-supplied
		"X_real_ip":       {"192.0.2.77"},       // its CGI twin
	}
	tests := []struct {
		name, header, remote string
		want                 map[string]string
	}{
		{"forwarded source", clientip.Forwarded, "10.1.2.3:1", map[string]string{
			"X-Forwarded-For": "198.51.100.4, 10.1.2.3",
			"Forwarded":       "for=198.51.100.4, for=10.1.2.3;host=api.example.com;proto=http",
			"X-Real-Ip":       "203.0.113.99", // not ours to touch: an ordinary header
		}},
		{"xff source", "", "10.1.2.3:1", map[string]string{
			"X-Forwarded-For": "192.0.2.66, 10.1.2.3",
			"Forwarded":       "for=192.0.2.66, for=10.1.2.3;host=api.example.com;proto=http",
		}},
		{"x-real-ip source", "X-Real-Ip", "10.1.2.3:1", map[string]string{
			"X-Forwarded-For": "203.0.113.99, 10.1.2.3",
			"Forwarded":       "for=203.0.113.99, for=10.1.2.3;host=api.example.com;proto=http",
			"X-Real-Ip":       "203.0.113.99",
		}},
		{"x-real-ip source, untrusted peer", "X-Real-Ip", "192.0.2.7:1", map[string]string{
			"X-Forwarded-For": "192.0.2.7",
			"Forwarded":       "for=192.0.2.7;host=api.example.com;proto=http",
			"X-Real-Ip":       "192.0.2.7",
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := httptest.NewRequest("GET", "http://api.example.com/x", nil)
			r.RemoteAddr = tc.remote
			r.Header = in.Clone()
			out := r.Clone(r.Context())
			setForwarded(r, out, clientip.Source{Trusted: trusted, Header: tc.header})
			for k, want := range tc.want {
				if got := out.Header.Get(k); got != want {
					t.Errorf("%s = %q, want %q", k, got, want)
				}
			}
			if _, ok := out.Header["X_real_ip"]; ok && tc.header == "X-Real-Ip" {
				t.Errorf("the underscore twin of the client address header was passed on: %v", out.Header)
			}
		})
	}
}

func TestIsOtherHeader(t *testing.T) {
	for _, tc := range []struct {
		k, other string
		want     bool
	}{
		{"X-Real-Ip", "X-Real-Ip", true},
		{"X_Real_IP", "X-Real-Ip", true},
		{"x_real_ip", "X-Real-Ip", true},
		{"X-Real-Ips", "X-Real-Ip", false},
		{"X^Real-Ip", "X~Real-Ip", false},
		{"", "", false},
		{"X-Real-Ip", "", false},
	} {
		if got := isOtherHeader(tc.k, tc.other); got != tc.want {
			t.Errorf("isOtherHeader(%q, %q) = %v, want %v", tc.k, tc.other, got, tc.want)
		}
	}
}
