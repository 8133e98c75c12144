package config

import (
	"errors"
	"net/netip"
	"strings"
	"testing"

	"github.com/gatehouse/gatehouse/internal/clientip"
	"github.com/google/go-cmp/cmp"
)

func TestClientIP(t *testing.T) {
	const head = "listeners: [{address: ':80'}]\n"
	tests := []struct {
		name    string
		src     string
		want    clientip.Source
		errLine int
		errPath string
		errMsg  string
	}{
		{name: "nothing: peer only", src: head,
			want: clientip.Source{Header: "X-Forwarded-For"}},
		{name: "legacy top-level list", src: head + "trusted_proxies: [10.0.0.0/8]\n",
			want: clientip.Source{Trusted: []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")}, Header: "X-Forwarded-For"}},
		{name: "client_ip forwarded", src: head + "client_ip:\n  trusted_proxies: [10.0.0.1]\n  header: forwarded\n",
			want: clientip.Source{Trusted: []netip.Prefix{netip.MustParsePrefix("10.0.0.1/32")}, Header: "Forwarded"}},
		{name: "client_ip custom header with legacy list", src: head + "trusted_proxies: [192.0.2.0/24]\nclient_ip: {header: CF-Connecting-IP}\n",
			want: clientip.Source{Trusted: []netip.Prefix{netip.MustParsePrefix("192.0.2.0/24")}, Header: "Cf-Connecting-Ip"}},
		{name: "both lists, the same in another order", src: head + "trusted_proxies: [10.0.0.0/8, 192.0.2.1]\nclient_ip: {trusted_proxies: [192.0.2.1/32, 10.0.0.0/8], header: X-Real-IP}\n",
			want: clientip.Source{Trusted: []netip.Prefix{netip.MustParsePrefix("192.0.2.1/32"), netip.MustParsePrefix("10.0.0.0/8")}, Header: "X-Real-Ip"}},

		{name: "both lists differ", src: head + "trusted_proxies: [10.0.0.0/8]\nclient_ip:\n  trusted_proxies: [10.0.0.0/16]\n",
			errLine: 4, errPath: "client_ip.trusted_proxies", errMsg: "differs from the top-level trusted_proxies (line 2)"},
		{name: "bad entry", src: head + "client_ip:\n  trusted_proxies: [10.0.0.0/8, not-an-ip]\n  header: forwarded\n",
			errLine: 3, errPath: "client_ip.trusted_proxies[1]", errMsg: "invalid IP address or CIDR"},
		{name: "bad header name", src: head + "client_ip:\n  trusted_proxies: [10.0.0.1]\n  header: \"X Real IP\"\n",
			errLine: 4, errPath: "client_ip.header", errMsg: "not a header field name"},
		{name: "framing header", src: head + "client_ip:\n  trusted_proxies: [10.0.0.1]\n  header: Host\n",
			errLine: 4, errPath: "client_ip.header", errMsg: "cannot carry the client address"},
		{name: "header without trusted proxies", src: head + "client_ip:\n  header: X-Real-IP\n",
			errLine: 3, errPath: "client_ip.header", errMsg: "none is set"},
		{name: "unknown field", src: head + "client_ip:\n  trusted: [10.0.0.1]\n",
			errLine: 3, errPath: "client_ip.trusted", errMsg: "unknown field"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := LoadBytes("gw.yaml", []byte(tt.src), env(nil))
			if tt.errMsg == "" {
				if err != nil {
					t.Fatalf("LoadBytes: %v", err)
				}
				if diff := cmp.Diff(tt.want, c.ClientIPSource(), cmp.Comparer(func(a, b netip.Prefix) bool { return a == b })); diff != "" {
					t.Errorf("ClientIPSource (-want +got):\n%s", diff)
				}
				return
			}
			var e *Error
			if !errors.As(err, &e) {
				t.Fatalf("error %v, want a *Error", err)
			}
			if e.File != "gw.yaml" || e.Line != tt.errLine || e.Path != tt.errPath || !strings.Contains(e.Msg, tt.errMsg) {
				t.Errorf("error %q (file %q line %d path %q), want line %d path %q msg %q", e, e.File, e.Line, e.Path, tt.errLine, tt.errPath, tt.errMsg)
			}
		})
	}
}
