package gateway

import (
	"net/http"
	"strings"
	"testing"
)

// TestClientIPSource drives a real gateway with each client_ip.header
// behind a trusted proxy (the test client, 127.0.0.1) and from an
// untrusted peer: the one address resolved from the chosen header is what
// ipfilter decides on, what the access log names and what the upstream's
// forwarding headers say; a header of the other kind, which a proxy
// passes on untouched, chooses nothing.
func TestClientIPSource(t *testing.T) {
	up := echoUpstream(t)
	type hdrs map[string]string
	tests := []struct {
		name     string
		clientIP string // the client_ip block
		send     hdrs   // what the "proxy" sends
		client   string // the address the gateway must resolve
		want     hdrs   // forwarding headers the upstream must get
		absent   []string
	}{
		{
			name:     "forwarded source, client-supplied xff ignored",
			clientIP: "{trusted_proxies: [127.0.0.1], header: forwarded}",
			send:     hdrs{"Forwarded": "for=198.51.100.4;proto=https", "X-Forwarded-For": "192.0.2.9"},
			client:   "198.51.100.4",
			want:     hdrs{"X-Forwarded-For": "198.51.100.4, 127.0.0.1", "Forwarded": "for=198.51.100.4;proto=https, for=127.0.0.1;"},
		},
		{
			name:     "xff source, client-supplied forwarded ignored",
			clientIP: "{trusted_proxies: [127.0.0.1], header: x-forwarded-for}",
			send:     hdrs{"X-Forwarded-For": "198.51.100.4", "Forwarded": "for=192.0.2.9"},
			client:   "198.51.100.4",
			want:     hdrs{"X-Forwarded-For": "198.51.100.4, 127.0.0.1", "Forwarded": "for=198.51.100.4, for=127.0.0.1;"},
		},
		{
			name:     "forwarded source without forwarded: the peer",
			clientIP: "{trusted_proxies: [127.0.0.1], header: forwarded}",
			send:     hdrs{"X-Forwarded-For": "198.51.100.4"},
			client:   "127.0.0.1",
			want:     hdrs{"X-Forwarded-For": "127.0.0.1", "Forwarded": "for=127.0.0.1;"},
		},
		{
			name:     "x-real-ip source, set for the upstream from the resolved address",
			clientIP: "{trusted_proxies: [127.0.0.1], header: X-Real-IP}",
			send:     hdrs{"X-Real-Ip": "198.51.100.4", "X-Forwarded-For": "192.0.2.9", "Forwarded": "for=192.0.2.10", "X_real_ip": "192.0.2.11"},
			client:   "198.51.100.4",
			want:     hdrs{"X-Real-Ip": "198.51.100.4", "X-Forwarded-For": "198.51.100.4, 127.0.0.1", "Forwarded": "for=198.51.100.4, for=127.0.0.1;"},
			absent:   []string{"X_real_ip"},
		},
		{
			name:     "cf-connecting-ip garbage: the peer",
			clientIP: "{trusted_proxies: [127.0.0.1], header: CF-Connecting-IP}",
			send:     hdrs{"Cf-Connecting-Ip": "198.51.100.4, nonsense"},
			client:   "127.0.0.1",
			want:     hdrs{"Cf-Connecting-Ip": "127.0.0.1", "X-Forwarded-For": "127.0.0.1"},
		},
		{
			name:     "untrusted peer: its x-real-ip replaced",
			clientIP: "{trusted_proxies: [10.0.0.0/8], header: X-Real-IP}",
			send:     hdrs{"X-Real-Ip": "198.51.100.4", "X-Forwarded-For": "198.51.100.5", "Forwarded": "for=198.51.100.6"},
			client:   "127.0.0.1",
			want:     hdrs{"X-Real-Ip": "127.0.0.1", "X-Forwarded-For": "127.0.0.1", "Forwarded": "for=127.0.0.1;"},
		},
		{
			name:     "legacy top-level trusted_proxies: x-forwarded-for",
			clientIP: "",
			send:     hdrs{"X-Forwarded-For": "198.51.100.4", "Forwarded": "for=192.0.2.9"},
			client:   "198.51.100.4",
			want:     hdrs{"X-Forwarded-For": "198.51.100.4, 127.0.0.1", "Forwarded": "for=198.51.100.4, for=127.0.0.1;"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			top := ""
			if tt.clientIP == "" {
				top = "trusted_proxies: [127.0.0.1]\n"
			} else {
				top = "client_ip: " + tt.clientIP + "\n"
			}
			g := startGateway(t, `
listeners: [{name: main, address: "127.0.0.1:0"}]
admin: {address: "off"}
`+top+`
routes:
  - name: echo
    match: {path: /echo}
    upstream: {url: "`+up.URL+`"}
  - name: only-client
    match: {path: /only}
    upstream: {url: "`+up.URL+`"}
    policies:
      - ipfilter: {allow: ["`+tt.client+`"]}
  - name: not-client
    match: {path: /not}
    upstream: {url: "`+up.URL+`"}
    policies:
      - ipfilter: {deny: ["`+tt.client+`"]}
`, nil)
			send := func(path string) (*http.Response, []byte) {
				req := newReq(t, "GET", g.base+path, nil)
				for k, v := range tt.send {
					req.Header[k] = []string{v}
				}
				return do(t, nil, req)
			}
			resp, b := send("/echo")
			if resp.StatusCode != 200 {
				t.Fatalf("status %d body %s", resp.StatusCode, b)
			}
			e := decodeEcho(t, b)
			for k, v := range tt.want {
				got := strings.Join(e.Header[k], "|")
				if strings.HasSuffix(v, ";") {
					if !strings.HasPrefix(got, v) {
						t.Errorf("upstream %s = %q, want it to start with %q", k, got, v)
					}
				} else if got != v {
					t.Errorf("upstream %s = %q, want %q", k, got, v)
				}
			}
			for _, k := range tt.absent {
				if v, ok := e.Header[k]; ok {
					t.Errorf("upstream got %s: %q", k, v)
				}
			}
			if !strings.Contains(grep([]byte(g.access.String()), resp.Header.Get("X-Request-Id")), `"client_ip":"`+tt.client+`"`) {
				t.Errorf("access log does not name %s: %s", tt.client, g.access.String())
			}
			if resp, b := send("/only"); resp.StatusCode != 200 {
				t.Errorf("allow-listed client refused: %d %s", resp.StatusCode, b)
			}
			if resp, b := send("/not"); resp.StatusCode != 403 {
				t.Errorf("deny-listed client allowed: %d %s", resp.StatusCode, b)
			}
		})
	}
}
