package ipfilter

import (
	"fmt"
	"net/netip"
	"strings"

	"github.com/gatehouse/gatehouse/internal/config"
)

// Config is the ipfilter policy's settings.
//
//	ipfilter:
//	  allow: [10.0.0.0/8, 192.0.2.7, "2001:db8::/32"]
//	  deny: [10.66.0.0/16]
//	  trusted_proxies: [10.0.0.1]
type Config struct {
	// Allow lists the addresses (CIDR prefixes or single IPs) that may pass.
	// When not empty, every other address is denied.
	Allow []string `yaml:"allow"`
	// Deny lists the addresses that are refused. Deny wins over Allow.
	Deny []string `yaml:"deny"`
	// TrustedProxies, when given (even empty), replaces the gateway-wide
	// trusted_proxies for this filter: the client address is computed
	// afresh from the TCP peer and forwarding headers with these proxies
	// trusted, and an empty list means the TCP peer itself. Absent: the
	// client address the gateway resolved with the global setting.
	TrustedProxies []string `yaml:"trusted_proxies"`
}

// parsed is a validated Config.
type parsed struct {
	allow, deny prefixSet
	trusted     []netip.Prefix
	ownTrusted  bool
}

// decode builds the filter of cfg: strict decoding, validate, provision.
func decode(cfg *config.Node) (*parsed, error) {
	var c Config
	if err := cfg.Decode(&c); err != nil {
		return nil, err
	}
	if err := c.validate(cfg); err != nil {
		return nil, err
	}
	return c.provision(), nil
}

// validate checks c, reporting every bad entry of every list at its place.
func (c *Config) validate(cfg *config.Node) error {
	var p config.Problems
	if len(c.Allow) == 0 && len(c.Deny) == 0 {
		p.Errorf(cfg, "", "ipfilter needs allow or deny")
	}
	for _, l := range []struct {
		field string
		list  []string
	}{{"allow", c.Allow}, {"deny", c.Deny}, {"trusted_proxies", c.TrustedProxies}} {
		for i, s := range l.list {
			if _, err := ParsePrefix(s); err != nil {
				p.Errorf(cfg, config.Index(l.field, i), "%v", err)
			}
		}
	}
	return p.Err()
}

// provision builds the prefix sets of a validated c.
func (c *Config) provision() *parsed {
	var p parsed
	for _, s := range c.Allow {
		pfx, _ := ParsePrefix(s) // validated
		p.allow.add(pfx)
	}
	for _, s := range c.Deny {
		pfx, _ := ParsePrefix(s) // validated
		p.deny.add(pfx)
	}
	if c.TrustedProxies != nil {
		p.ownTrusted = true
		p.trusted = make([]netip.Prefix, 0, len(c.TrustedProxies))
		for _, s := range c.TrustedProxies {
			pfx, _ := ParsePrefix(s) // validated
			p.trusted = append(p.trusted, pfx)
		}
	}
	return &p
}

// ParsePrefix parses a CIDR prefix ("10.0.0.0/8", "2001:db8::/32") or a
// single address ("192.0.2.7", a /32 or /128). IPv4-mapped IPv6 forms
// ("::ffff:10.0.0.0/104") become the IPv4 prefix they denote, so that they
// match IPv4 clients. A prefix with bits set past its length
// ("10.0.0.1/8") is refused rather than silently masked, as it usually
// means a typo; so are zones.
func ParsePrefix(s string) (netip.Prefix, error) {
	s = strings.TrimSpace(s)
	if !strings.Contains(s, "/") {
		a, err := netip.ParseAddr(s)
		if err != nil {
			return netip.Prefix{}, fmt.Errorf("ipfilter: %q is not an IP address or CIDR prefix", s)
		}
		if a.Zone() != "" {
			return netip.Prefix{}, fmt.Errorf("ipfilter: %q: zones are not allowed", s)
		}
		a = a.Unmap()
		return netip.PrefixFrom(a, a.BitLen()), nil
	}
	p, err := netip.ParsePrefix(s)
	if err != nil {
		return netip.Prefix{}, fmt.Errorf("ipfilter: %q is not an IP address or CIDR prefix", s)
	}
	if p.Addr().Is4In6() && p.Bits() < 96 {
		return netip.Prefix{}, fmt.Errorf("ipfilter: %q: an IPv4-mapped prefix must be at least /96", s)
	}
	if m := p.Masked(); m != p {
		return netip.Prefix{}, fmt.Errorf("ipfilter: %q has bits set past the prefix length; did you mean %s?", s, m)
	}
	if a := p.Addr(); a.Is4In6() {
		return netip.PrefixFrom(a.Unmap(), p.Bits()-96), nil
	}
	return p, nil
}
