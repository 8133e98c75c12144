package proxy

import (
	"crypto/tls"
	"net/http"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/internal/config"
)

// TestClientsShareOnlyEqualSettings: upstreams share a transport only when
// every client setting is equal, and an HTTP/1.1 client only when they
// also dial the same host and port; the route's own settings never keep
// them apart.
func TestClientsShareOnlyEqualSettings(t *testing.T) {
	base := config.Upstream{
		URL:                   "http://backend.internal:8080",
		ConnectTimeout:        config.Duration(5 * time.Second),
		ResponseHeaderTimeout: config.Duration(60 * time.Second),
		IdleConnTimeout:       config.Duration(90 * time.Second),
		MaxIdleConnsPerHost:   256,
	}
	tests := []struct {
		name                  string
		mod                   func(*config.Upstream)
		sameTransport, sameH1 bool
	}{
		{"identical", func(*config.Upstream) {}, true, true},
		{"another path", func(u *config.Upstream) { u.URL += "/v2" }, true, true},
		{"route's own settings", func(u *config.Upstream) {
			u.PreserveHost, u.Timeout, u.WebSocket, u.RequestTrailers = true, config.Duration(time.Second), true, true
		}, true, true},
		{"default port spelled out", func(u *config.Upstream) { u.URL = "http://backend.internal:80" }, true, false},
		{"another host", func(u *config.Upstream) { u.URL = "http://other.internal:8080" }, true, false},
		{"connect_timeout", func(u *config.Upstream) { u.ConnectTimeout = config.Duration(time.Second) }, false, false},
		{"response_header_timeout", func(u *config.Upstream) { u.ResponseHeaderTimeout = config.Duration(time.Second) }, false, false},
		{"idle_conn_timeout", func(u *config.Upstream) { u.IdleConnTimeout = config.Duration(time.Second) }, false, false},
		{"max_idle_conns_per_host", func(u *config.Upstream) { u.MaxIdleConnsPerHost = 8 }, false, false},
		{"h2c", func(u *config.Upstream) { u.H2C = true }, false, false},
		{"https", func(u *config.Upstream) { u.URL = "https://backend.internal:8080" }, false, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := NewClients()
			defer c.Close()
			a := mustNew(t, base, c)
			cfg := base
			tc.mod(&cfg)
			b := mustNew(t, cfg, c)
			if got := a.transport == b.transport; got != tc.sameTransport {
				t.Errorf("same transport = %v, want %v", got, tc.sameTransport)
			}
			if got := a.h1 != nil && a.h1 == b.h1; got != tc.sameH1 {
				t.Errorf("same HTTP/1.1 client = %v, want %v", got, tc.sameH1)
			}
			if a.rp != nil || b.rp != nil {
				t.Error("the reverse proxy was built before its first use")
			}
			if a.reverseProxy() == b.reverseProxy() {
				t.Error("the reverse proxy (the route's own settings) is shared")
			}
			if a.reverseProxy().Transport != a.transport || b.reverseProxy().Transport != b.transport {
				t.Error("the reverse proxy does not use the upstream's transport")
			}
		})
	}
}

// TestClientsTLSSettingsKeepApart: https upstreams with different tls
// settings never share a transport, so never a TLS configuration; equal
// ones do, a nil tls block being the same as an empty one.
func TestClientsTLSSettingsKeepApart(t *testing.T) {
	base := config.Upstream{URL: "https://backend.internal", ConnectTimeout: config.Duration(5 * time.Second), MaxIdleConnsPerHost: 4}
	tests := []struct {
		name string
		a, b *config.UpstreamTLS
		same bool
	}{
		{"both nil", nil, nil, true},
		{"nil and empty", nil, &config.UpstreamTLS{}, true},
		{"same server_name", &config.UpstreamTLS{ServerName: "a"}, &config.UpstreamTLS{ServerName: "a"}, true},
		{"server_name", &config.UpstreamTLS{ServerName: "a"}, &config.UpstreamTLS{ServerName: "b"}, false},
		{"insecure_skip_verify", nil, &config.UpstreamTLS{InsecureSkipVerify: true}, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := NewClients()
			defer c.Close()
			ca, cb := base, base
			ca.TLS, cb.TLS = tc.a, tc.b
			a, b := mustNew(t, ca, c), mustNew(t, cb, c)
			if got := a.transport == b.transport; got != tc.same {
				t.Fatalf("same transport = %v, want %v", got, tc.same)
			}
			for _, x := range []struct {
				u   *Upstream
				tls *config.UpstreamTLS
			}{{a, tc.a}, {b, tc.b}} {
				var want config.UpstreamTLS
				if x.tls != nil {
					want = *x.tls
				}
				got := x.u.transport.TLSClientConfig
				if got.ServerName != want.ServerName || got.InsecureSkipVerify != want.InsecureSkipVerify || got.MinVersion != tls.VersionTLS12 {
					t.Errorf("TLS config %+v does not follow %+v", got, want)
				}
			}
		})
	}
}

func mustNew(t *testing.T, cfg config.Upstream, c *Clients) *Upstream {
	t.Helper()
	u, err := New(cfg, Options{OnError: func(http.ResponseWriter, *http.Request, error) {}, Clients: c})
	if err != nil {
		t.Fatal(err)
	}
	return u
}
