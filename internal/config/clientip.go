package config

import (
	"fmt"
	"net/netip"
	"slices"

	"github.com/gatehouse/gatehouse/internal/clientip"
)

// ClientIP says where the client's address comes from (client_ip):
//
//	client_ip:
//	  trusted_proxies: [10.0.0.0/8]
//	  header: x-forwarded-for   # or forwarded, or X-Real-IP, CF-Connecting-IP, ...
//
// The address is the TCP peer's unless the peer is a trusted proxy; then it
// is read from the one header named, right to left, skipping trusted
// proxies (see internal/clientip). No other forwarding header is read.
type ClientIP struct {
	// TrustedProxies are the CIDRs (or single addresses) of the proxies in
	// front of Gatehouse. Nil: the top-level trusted_proxies, kept for
	// older configs; giving both with different lists is an error.
	TrustedProxies []string `yaml:"trusted_proxies"`
	// Header is forwarded, x-forwarded-for (default) or the name of
	// another header the trusted proxies set.
	Header string `yaml:"header"`
}

// validateClientIP checks client_ip against the top-level trusted_proxies.
func (c *Config) validateClientIP(v *validator) {
	ci := c.ClientIP
	if ci == nil {
		return
	}
	var own []netip.Prefix
	ok := true
	for i, s := range ci.TrustedProxies {
		p, err := parseTrustedProxy(s)
		if err != nil {
			v.add(fmt.Sprintf("client_ip.trusted_proxies[%d]", i), "%v", err)
			ok = false
			continue
		}
		own = append(own, p)
	}
	if ci.TrustedProxies != nil && c.TrustedProxies != nil && ok {
		var top []netip.Prefix
		for _, s := range c.TrustedProxies {
			if p, err := parseTrustedProxy(s); err == nil {
				top = append(top, p)
			}
		}
		if !samePrefixes(own, top) {
			v.add("client_ip.trusted_proxies", "differs from the top-level trusted_proxies (line %d): give the list once, in client_ip.trusted_proxies", v.line("trusted_proxies"))
		}
	}
	if _, err := clientip.ParseHeader(ci.Header); err != nil {
		v.add("client_ip.header", "%v: want forwarded, x-forwarded-for or the name of the header your proxies set", err)
	} else if ci.Header != "" && len(ci.TrustedProxies) == 0 && len(c.TrustedProxies) == 0 {
		v.add("client_ip.header", "is read only from trusted proxies, and none is set: add client_ip.trusted_proxies")
	}
}

// samePrefixes reports whether a and b hold the same prefixes, in any
// order.
func samePrefixes(a, b []netip.Prefix) bool {
	cmp := func(x, y netip.Prefix) int {
		if c := x.Addr().Compare(y.Addr()); c != 0 {
			return c
		}
		return x.Bits() - y.Bits()
	}
	a, b = slices.Clone(a), slices.Clone(b)
	slices.SortFunc(a, cmp)
	slices.SortFunc(b, cmp)
	return slices.Equal(slices.Compact(a), slices.Compact(b))
}

// ClientIPSource returns where the client address comes from: the trusted
// proxies (TrustedPrefixes) and the header client_ip.header names
// (X-Forwarded-For by default), after a successful Load.
func (c *Config) ClientIPSource() clientip.Source {
	h := clientip.XForwardedFor
	if c.ClientIP != nil {
		if name, err := clientip.ParseHeader(c.ClientIP.Header); err == nil {
			h = name
		}
	}
	return clientip.Source{Trusted: c.TrustedPrefixes(), Header: h}
}
